// The one place a chorus node is put together from its parts, for the daemon and for
// the simulator alike: the clock of its records, its member record for this start and
// the node itself. Each of them puts the control-plane service (src/api/) over it.
import { validateConfig } from '../core/config.js';
import { HybridClock } from '../records/hlc.js';
import { randomInstanceId } from '../records/ids.js';
import type { MemberRecord } from '../records/types.js';
import { UNSIGNED } from '../records/signature.js';
import { ChorusNode, type NodeComponents } from './node.js';

/**
 * What the host provides. The assembly adds the rest: the record clock, this start's member
 * record, a default instance id source. `store` must be loaded (its records decide the
 * incarnation and the record clock's floor) and `journal` opened (the worker reconciles it
 * with the store at start).
 */
export type NodeParts = Omit<NodeComponents, 'hlc' | 'self' | 'newInstanceId'> & {
  name: string;
  tags: Record<string, string>;
  /** Default: random bytes. */
  newInstanceId?: () => string;
};

/** Builds a node; nothing runs until `node.start()`. */
export function assembleNode(parts: NodeParts): ChorusNode {
  const config = validateConfig(parts.config);
  const { transport, clock, store } = parts;
  const nodeId = transport.localId;
  const hlc = new HybridClock(clock, nodeId, config.maxRemoteDriftMs);
  // Later local stamps must order after every stamp this node ever wrote or saw.
  for (const r of store.all()) hlc.observe(r.record.stamp);
  const previous = store.member(nodeId);
  const self: MemberRecord = {
    nodeId,
    name: parts.name,
    tags: parts.tags,
    addrs: transport.addresses(),
    incarnation: (previous?.incarnation ?? 0) + 1,
    left: false,
    // A drain outlives a restart: the node comes back still taking no new work.
    ...(previous?.draining === true ? { draining: true } : {}),
    stamp: hlc.tick(),
    sig: UNSIGNED, // signed when the node commits it at start
  };
  return new ChorusNode({
    transport,
    clock,
    random: parts.random,
    config,
    store,
    journal: parts.journal,
    outputs: parts.outputs,
    executor: parts.executor,
    hlc,
    keys: parts.keys,
    self,
    log: parts.log,
    newInstanceId: parts.newInstanceId ?? randomInstanceId,
    fatal: parts.fatal,
    ...(parts.observer ? { observer: parts.observer } : {}),
    webhooks: parts.webhooks,
  });
}
