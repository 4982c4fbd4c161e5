import { Args, Flags } from '@oclif/core';
import type { StatusView } from '../../src/api/control-plane.js';
import type { NodeDetailView } from '../../src/api/views.js';
import { EXIT } from '../../src/api/client.js';
import { ClientCommand } from '../../src/cli/base.js';
import { drainNode } from '../../src/cli/drain.js';
import { durationFlag } from '../../src/cli/job-spec.js';
import { escapeControl } from '../../src/output/escape.js';

export default class NodeDrain extends ClientCommand {
  static override description =
    'Drain a node: no new instance targets it (broadcast or standalone); what it runs now finishes. It stays drained across restarts until `chorus node undrain`.';
  static override examples = [
    '<%= config.bin %> node drain                 # this daemon',
    '<%= config.bin %> node drain web-3 --wait    # by name, id or id suffix; wait until it runs nothing',
  ];
  static override args = { node: Args.string({ description: 'the node: its name, full id or id suffix [default: the daemon the CLI talks to]' }) };
  static override flags = {
    wait: Flags.boolean({ description: 'return once the node runs nothing (no pending or running subtask or step)' }),
    timeout: Flags.string({ description: 'with --wait: give up after this long (exit 124)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeDrain);
    const timeoutMs = flags.timeout === undefined ? null : durationFlag('timeout', flags.timeout);
    const client = await this.client(flags);
    const ref = args.node ?? (await client.request<StatusView>('GET', '/v1/status')).nodeId;
    const result = await drainNode(client, ref, true, { wait: flags.wait, timeoutMs, progress: (line) => this.progress(line) });
    this.output(result.node, () => describeDrain(result.node, result.timedOut));
    if (result.timedOut) this.finish(EXIT.timedOut);
  }
}

export function describeDrain(node: NodeDetailView, timedOut = false): string {
  const state = node.draining ? 'draining' : 'not draining';
  const work = node.unfinished === 0 ? 'runs nothing' : `still has ${node.unfinished} unfinished subtask(s)`;
  return escapeControl(`node ${node.name} (${node.nodeId}): ${state}; ${work}${timedOut ? ' (timed out waiting)' : ''}`);
}
