import type { TokenView } from '../../src/api/tokens.js';
import type { SessionView } from '../../src/api/ui-sessions.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatTokens } from '../../src/cli/format.js';

export default class TokenList extends ClientCommand {
  static override description =
    'List the API tokens of this daemon (ids, roles and names; never the secrets) and its live dashboard sessions (id, role, the token that made each; never the cookie). --json: one array, each entry with kind "token" or "session".';
  static override examples = ['<%= config.bin %> token list', '<%= config.bin %> token list --json'];

  async run(): Promise<void> {
    const { flags } = await this.parse(TokenList);
    const client = await this.client(flags);
    const tokens = await client.request<TokenView[]>('GET', '/v1/tokens');
    const sessions = await client.request<SessionView[]>('GET', '/v1/ui/sessions');
    const entries = [...tokens.map((t) => ({ kind: 'token' as const, ...t })), ...sessions.map((s) => ({ kind: 'session' as const, ...s }))];
    this.output(entries, () => formatTokens(tokens, sessions));
  }
}
