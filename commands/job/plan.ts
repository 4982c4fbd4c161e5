import { Args } from '@oclif/core';
import { ClientCommand } from '../../src/cli/base.js';
import { formatPlan } from '../../src/cli/format.js';
import { checkJobName } from '../../src/cli/job-spec.js';
import type { PlanView } from '../../src/scheduler/plan.js';

export default class JobPlan extends ClientCommand {
  static override description = 'Show the nodes a run of the job would target now (tags, state, shard, wave) and the alive nodes left out and why; nothing is run.';
  static override examples = ['<%= config.bin %> job plan restart-agent', '<%= config.bin %> job plan restart-agent --json'];
  static override args = { name: Args.string({ required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(JobPlan);
    const plan = await (await this.client(flags)).request<PlanView>('GET', `/v1/jobs/${encodeURIComponent(checkJobName(args.name))}/plan`);
    this.output(plan, () => formatPlan(plan));
  }
}
