// What chorus reads of gossipsub's private state, all in one place. gossipsub has no public
// way to tell whether it holds an outbound stream to a peer, which the stale-connection
// repair needs (stale-repair.ts). An upgrade that renames the field makes
// gossipsub-internals.test.ts fail loudly, rather than the repair silently never running.
import type { GossipSub } from '@libp2p/gossipsub';

/** gossipsub's per-peer outbound streams (its private `streamsOutbound`), or null when this version has no such map. */
export function outboundStreams(pubsub: GossipSub): Map<string, unknown> | null {
  const internals = pubsub as unknown as { streamsOutbound?: unknown };
  return internals.streamsOutbound instanceof Map ? (internals.streamsOutbound as Map<string, unknown>) : null;
}

/** Whether gossipsub has a live outbound stream to the peer; true if that cannot be known (assume fine rather than flap). */
export function hasGossipStream(pubsub: GossipSub, peer: string): boolean {
  const streams = outboundStreams(pubsub);
  return streams === null ? true : streams.has(peer);
}
