import { Args } from '@oclif/core';
import type { InstanceView } from '../../src/api/views.js';
import { ClientCommand } from '../../src/cli/base.js';
import { formatInstance } from '../../src/cli/format.js';

export default class InstanceResume extends ClientCommand {
  static override description = 'Resume a paused rolling broadcast: the leader releases its subtasks again.';
  static override examples = ['<%= config.bin %> instance resume 3f2a9c0d1e4b5a67'];
  static override args = { id: Args.string({ required: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(InstanceResume);
    const view = await (await this.client(flags)).request<InstanceView>('POST', `/v1/instances/${encodeURIComponent(args.id)}/resume`);
    this.output(view, () => `resumed\n${formatInstance(view)}`);
  }
}
