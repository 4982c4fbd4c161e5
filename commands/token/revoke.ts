import { Args } from '@oclif/core';
import { ClientCommand } from '../../src/cli/base.js';

export default class TokenRevoke extends ClientCommand {
  static override description = 'Revoke an API token of this daemon by its id (the part before the dot; `chorus token list` shows them).';
  static override examples = ['<%= config.bin %> token revoke 3f2a9c0d1e4b'];
  static override args = { id: Args.string({ required: true, description: 'the token id' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(TokenRevoke);
    this.jsonMode = flags.json;
    const id = args.id.includes('.') ? (args.id.split('.')[0] as string) : args.id;
    const result = await (await this.client(flags)).request<{ revoked: string }>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
    this.output(result, () => `revoked ${result.revoked}`);
  }
}
