import { ClientCommand, jobNameArg, jobPath } from '../../src/cli/base.js';
import { formatPlan } from '../../src/cli/format.js';
import type { PlanView } from '../../src/scheduler/plan.js';

export default class JobPlan extends ClientCommand {
  static override description = 'Show the nodes a run of the job would target now (tags, state, shard, wave) and the alive nodes left out and why; nothing is run.';
  static override examples = ['<%= config.bin %> job plan restart-agent', '<%= config.bin %> job plan restart-agent --json'];
  static override args = jobNameArg;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobPlan);
    await this.printAnswer(flags, (client) => client.request<PlanView>('GET', jobPath(args.name, '/plan')), formatPlan);
  }
}
