import { Args } from '@oclif/core';
import { SESSION_ID_PREFIX } from '../../src/api/ui-sessions.js';
import { ClientCommand } from '../../src/cli/base.js';

interface Revoked {
  kind: 'token' | 'session';
  revoked: string;
  endedSessions?: number;
  droppedCodes?: number;
}

export default class TokenRevoke extends ClientCommand {
  static override description =
    'Revoke an API token of this daemon by its id (the part before the dot), which also ends every dashboard session and unused login code made with it; or end one dashboard session by its id (ui-...). `chorus token list` shows both.';
  static override examples = ['<%= config.bin %> token revoke 3f2a9c0d1e4b', '<%= config.bin %> token revoke ui-9c0d1e4b3f'];
  static override args = { id: Args.string({ required: true, description: 'a token id, or a dashboard session id (ui-...)' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(TokenRevoke);
    const id = args.id.includes('.') ? (args.id.split('.')[0] as string) : args.id;
    const path = id.startsWith(SESSION_ID_PREFIX) ? `/v1/ui/sessions/${encodeURIComponent(id)}` : `/v1/tokens/${encodeURIComponent(id)}`;
    await this.printAnswer(flags, (client) => client.request<Revoked>('DELETE', path), (result) => (result.kind === 'session' ? `ended dashboard session ${result.revoked}` : `revoked ${result.revoked}${endedText(result)}`));
  }
}

function endedText(result: Revoked): string {
  const parts = [];
  if (result.endedSessions) parts.push(`${result.endedSessions} dashboard session(s) ended`);
  if (result.droppedCodes) parts.push(`${result.droppedCodes} unused login code(s) dropped`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}
