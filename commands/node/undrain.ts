import { Args } from '@oclif/core';
import type { StatusView } from '../../src/api/control-plane.js';
import { ClientCommand } from '../../src/cli/base.js';
import { drainNode } from '../../src/cli/drain.js';
import { describeDrain } from './drain.js';

export default class NodeUndrain extends ClientCommand {
  static override description = 'Undrain a node: new instances may target it again.';
  static override examples = ['<%= config.bin %> node undrain', '<%= config.bin %> node undrain web-3'];
  static override args = { node: Args.string({ description: 'the node: its name, full id or id suffix [default: the daemon the CLI talks to]' }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeUndrain);
    const client = await this.client(flags);
    const ref = args.node ?? (await client.request<StatusView>('GET', '/v1/status')).nodeId;
    const result = await drainNode(client, ref, false, { wait: false, timeoutMs: null, progress: () => undefined });
    this.output(result.node, () => describeDrain(result.node));
  }
}
