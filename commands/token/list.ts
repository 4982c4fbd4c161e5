import type { TokenView } from '../../src/api/tokens.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatTokens } from '../../src/cli/format.js';

export default class TokenList extends ClientCommand {
  static override description = 'List the API tokens of this daemon (ids, roles and names; never the secrets).';
  static override examples = ['<%= config.bin %> token list'];

  async run(): Promise<void> {
    const { flags } = await this.parse(TokenList);
    this.jsonMode = flags.json;
    const tokens = await (await this.client(flags)).request<TokenView[]>('GET', '/v1/tokens');
    this.output(tokens, () => formatTokens(tokens));
  }
}
