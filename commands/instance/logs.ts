import { Args, Flags } from '@oclif/core';
import type { LogView } from '../../src/api/control-plane.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatLogs } from '../../src/cli/format.js';
import { defaultConfig } from '../../src/core/config.js';

export default class InstanceLogs extends ClientCommand {
  static override description = `Print the captured output (last ${defaultConfig.maxOutputBytes / 1024} KiB of stdout and stderr) of an instance, per node and attempt.`;
  static override examples = [
    '<%= config.bin %> instance logs 3f2a9c0d1e4b5a67',
    '<%= config.bin %> instance logs 3f2a9c0d1e4b5a67 --node …abcdef123456',
    '<%= config.bin %> instance logs 3f2a9c0d1e4b5a67 --node web-1',
  ];
  static override args = { id: Args.string({ required: true }) };
  static override flags = { node: Flags.string({ description: 'only this node id' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(InstanceLogs);
    this.jsonMode = flags.json;
    const query = flags.node ? `?node=${encodeURIComponent(flags.node)}` : '';
    const logs = await (await this.client(flags)).request<LogView[]>('GET', `/v1/instances/${encodeURIComponent(args.id)}/logs${query}`);
    this.output(logs, () => formatLogs(logs));
  }
}
