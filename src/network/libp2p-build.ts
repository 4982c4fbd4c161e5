// Builds the libp2p node a chorus daemon runs on: TCP, noise, a guarded yamux, the swarm-key
// protector, identify, ping and gossipsub, with the settings a closed cluster on one host or
// a LAN needs (the traps in DESIGN.md: loopback allowed, IP-colocation scoring off).
import { createHash } from 'node:crypto';
import { gossipsub, StrictNoSign } from '@libp2p/gossipsub';
import type { GossipSub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { Identify } from '@libp2p/identify';
import type { Libp2p, PrivateKey } from '@libp2p/interface';
import { mdns } from '@libp2p/mdns';
import { ping } from '@libp2p/ping';
import type { Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { createLibp2p } from 'libp2p';
import type { ChorusConfig } from '../core/config.js';
import { guardedYamux } from './muxer.js';
import { swarmGuard } from './swarm-guard.js';

export interface Services {
  identify: Identify;
  ping: Ping;
  pubsub: GossipSub;
  [key: string]: unknown;
}

export type ChorusLibp2p = Libp2p<Services>;

export interface BuildOptions {
  privateKey: PrivateKey;
  listen: string[];
  mdns: boolean;
  swarmKey: Uint8Array;
  config: Pick<ChorusConfig, 'swarmHandshakeTimeoutMs' | 'maxConnections' | 'maxConnectionsPerHostPerSecond' | 'maxPendingInboundConnections' | 'dialTimeoutMs' | 'connectionPingIntervalMs'>;
  /** A connection refused for want of the swarm key, with the peer's address. */
  onRefused: (remoteAddr: string, why: string) => void;
}

/** The libp2p node, not started. */
export function buildLibp2p(opts: BuildOptions): Promise<ChorusLibp2p> {
  const { config } = opts;
  return createLibp2p<Services>({
    start: false,
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    // No keep-alive pings per connection (one every 30 s each): SWIM's probes find dead members.
    streamMuxers: [guardedYamux({ enableKeepAlive: false })],
    peerDiscovery: opts.mdns ? [mdns()] : [],
    connectionProtector: swarmGuard({ psk: opts.swarmKey, handshakeTimeoutMs: config.swarmHandshakeTimeoutMs, onRefused: opts.onRefused }),
    connectionManager: {
      // Many daemons share one host in tests and small deployments: the default
      // per-host rate limit (5 connections/s) and caps would refuse their dials.
      maxConnections: config.maxConnections,
      inboundConnectionThreshold: config.maxConnectionsPerHostPerSecond,
      maxIncomingPendingConnections: config.maxPendingInboundConnections,
      allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128'],
      dialTimeout: config.dialTimeoutMs,
    },
    // libp2p pings every connection to find dead ones; SWIM's probes already find dead
    // members, so this only needs to clear half-open connections, and rarely.
    connectionMonitor: config.connectionPingIntervalMs > 0 ? { pingInterval: config.connectionPingIntervalMs } : { enabled: false },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        // Unsigned messages: every record inside carries its writer's signature, checked
        // by the receiver whoever relayed it (records/signature.ts). Signing each gossip
        // message as well cost a signature check per copy received, duplicates included
        // (gossipsub checks before it drops a duplicate): about 450 ed25519 checks per
        // node for one broadcast on 20 daemons, most of their CPU (BENCHMARKS.md).
        globalSignaturePolicy: StrictNoSign,
        // Without a sender and sequence number, a message is known by its content.
        msgIdFn: (msg) => createHash('sha256').update(msg.data).digest(),
        fastMsgIdFn: (msg) => createHash('sha1').update(msg.data ?? new Uint8Array()).digest('base64'),
        emitSelf: false,
        // Own messages go to the mesh (gossipsub's D peers), not to every connected peer:
        // a node's gossip costs the same whatever the cluster's size. Zero subscribers is
        // normal while starting.
        floodPublish: false,
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        fallbackToFloodsub: false,
        // Peer scoring defends public networks against sybils; in a cluster of trusted
        // nodes it only hurts: colocated nodes (all on 127.0.0.1) and restarted nodes
        // re-grafting inside a backoff window would be scored down and graylisted.
        // Records are repaired by anti-entropy, so gossipsub's own mesh upkeep and lazy
        // repair can run at half its usual pace, and scores (unused: weights are 0) decay
        // rarely: fewer wake-ups of every idle node.
        heartbeatInterval: 2000,
        scoreParams: {
          decayInterval: 10_000,
          IPColocationFactorWeight: 0,
          IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']),
          behaviourPenaltyWeight: 0,
        },
      }),
    },
  });
}
