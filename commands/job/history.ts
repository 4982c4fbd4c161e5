import { Flags } from '@oclif/core';
import type { FireView } from '../../src/api/views.js';
import { ClientCommand, jobNameArg, jobPath } from '../../src/cli/base.js';
import { formatHistory } from '../../src/cli/format.js';

export default class JobHistory extends ClientCommand {
  static override description =
    'List the due fires of a scheduled job, newest first: when each was due, its outcome (created, skipped, caught-up, missed), why, its instance and the leader that decided it. The same on every node.';
  static override examples = ['<%= config.bin %> job history nightly', '<%= config.bin %> job history nightly --limit 20 --json'];
  static override args = jobNameArg;
  static override flags = { limit: Flags.integer({ min: 1, max: 10_000, default: 1000, description: 'at most this many, newest first' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobHistory);
    await this.printAnswer(flags, (client) => client.request<FireView[]>('GET', jobPath(args.name, `/history?limit=${flags.limit}`)), formatHistory);
  }
}
