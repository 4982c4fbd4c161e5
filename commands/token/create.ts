import { Flags } from '@oclif/core';
import type { TokenView } from '../../src/api/tokens.js';
import { ClientCommand } from '../../src/cli/base.js';

export default class TokenCreate extends ClientCommand {
  static override description =
    'Create an API token on this daemon: read (status, nodes, job list/show/export, instance list/show/logs/wait) or operate (everything). It is printed once; the daemon keeps only its hash.';
  static override examples = ['<%= config.bin %> token create --role read --name ci-dashboard', '<%= config.bin %> token create --role operate --json'];
  static override flags = {
    role: Flags.string({ options: ['read', 'operate'], required: true, description: 'what the token may do' }),
    name: Flags.string({ description: 'a note for `token list`' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(TokenCreate);
    await this.printAnswer(flags, (client) => client.request<TokenView & { token: string }>('POST', '/v1/tokens', { role: flags.role, name: flags.name ?? null }), (created) => `${created.token}\n(id ${created.id}, role ${created.role}: shown once; revoke with chorus token revoke ${created.id})`);
  }
}
