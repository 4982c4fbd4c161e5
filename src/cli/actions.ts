// The commands that are one request about one job or instance, printed after it: `job
// enable|disable` and `instance cancel|pause|resume`. The API has one route for each family
// (POST .../NAME/VERB); so has the CLI: each command file names its verb and its words.
import type { InstanceView, JobView } from '../api/views.js';
import { ClientCommand, instanceIdArg, instancePath, jobNameArg, jobPath } from './base.js';
import { formatInstance, formatJob } from './format.js';

/** `job enable NAME` or `job disable NAME`: the schedule fires again, or stops firing; the job is printed after it. */
export function jobSwitchCommand(verb: 'enable' | 'disable', description: string): typeof ClientCommand {
  return class JobSwitch extends ClientCommand {
    static override description = description;
    static override examples = [`<%= config.bin %> job ${verb} disk-report`];
    static override args = jobNameArg;

    async run(): Promise<void> {
      const { args, flags } = await this.parse(JobSwitch);
      await this.printAnswer(flags, (client) => client.request<JobView>('POST', jobPath(args.name, `/${verb}`)), (job) => `${verb}d\n${formatJob(job)}`);
    }
  };
}

/** `instance cancel|pause|resume ID`: the instance is printed after what was done (`done`). */
export function instanceActionCommand(verb: 'cancel' | 'pause' | 'resume', description: string, done: (view: InstanceView) => string): typeof ClientCommand {
  return class InstanceAction extends ClientCommand {
    static override description = description;
    static override examples = [`<%= config.bin %> instance ${verb} 3f2a9c0d1e4b5a67`];
    static override args = instanceIdArg;

    async run(): Promise<void> {
      const { args, flags } = await this.parse(InstanceAction);
      await this.printAnswer(flags, (client) => client.request<InstanceView>('POST', instancePath(args.id, `/${verb}`)), (view) => `${done(view)}\n${formatInstance(view)}`);
    }
  };
}
