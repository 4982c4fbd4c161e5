import { Flags } from '@oclif/core';
import type { InstanceView } from '../../src/api/views.js';
import { ClientCommand, followInstance, instanceIdArg, instancePath } from '../../src/cli/base.js';
import { optionalDurationFlag } from '../../src/cli/job-spec.js';

export default class InstanceWait extends ClientCommand {
  static override description = 'Wait until an instance ends. Exit 0 if every subtask succeeded, 1 if not, 124 on --timeout.';
  static override examples = [
    '<%= config.bin %> instance wait 3f2a9c0d1e4b5a67',
    '<%= config.bin %> instance wait 3f2a9c0d1e4b5a67 --timeout 10m --json',
  ];
  static override args = instanceIdArg;
  static override flags = {
    timeout: Flags.string({ description: 'give up after this long (exit 124)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(InstanceWait);
    const timeoutMs = optionalDurationFlag('timeout', flags.timeout);
    const client = await this.client(flags);
    const view = await client.request<InstanceView>('GET', instancePath(args.id));
    this.finish(await followInstance(this, client, view, { wait: true, timeoutMs, json: flags.json }));
  }
}
