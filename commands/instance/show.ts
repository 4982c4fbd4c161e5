import { Args } from '@oclif/core';
import type { InstanceView } from '../../src/api/views.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatInstance } from '../../src/cli/format.js';

export default class InstanceShow extends ClientCommand {
  static override description = 'Show an instance with the outcome on every node.';
  static override examples = [
    '<%= config.bin %> instance show 3f2a9c0d1e4b5a67',
    '<%= config.bin %> instance show 3f2a9c0d1e4b5a67 --json',
  ];
  static override args = { id: Args.string({ required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(InstanceShow);
    const view = await (await this.client(flags)).request<InstanceView>('GET', `/v1/instances/${encodeURIComponent(args.id)}`);
    this.output(view, () => formatInstance(view));
  }
}
