// gossipsub's private state that chorus reads: fails loudly when an upgrade of
// @libp2p/gossipsub renames or removes it (the stale-connection repair would stop working).
import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../testing/wait.js';
import { outboundStreams, hasGossipStream } from './gossipsub-internals.js';
import { buildLibp2p, type ChorusLibp2p } from './libp2p-build.js';
import { DEFAULT_TRANSPORT_CONFIG } from './libp2p-transport.js';
import { generateSwarmKey } from './swarm-key.js';

const TOPIC = 'chorus/test/internals';
const swarmKey = new TextEncoder().encode(generateSwarmKey().trim());
const started: ChorusLibp2p[] = [];

afterEach(async () => {
  await Promise.allSettled(started.splice(0).map((node) => node.stop()));
});

async function node(): Promise<ChorusLibp2p> {
  const built = await buildLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, swarmKey, config: DEFAULT_TRANSPORT_CONFIG, onRefused: () => {} });
  started.push(built);
  await built.start();
  built.services.pubsub.subscribe(TOPIC);
  return built;
}

describe('gossipsub internals', () => {
  it('gossipsub still keeps its outbound streams in a private map named streamsOutbound, keyed by peer id', async () => {
    const [a, b] = [await node(), await node()];
    expect(outboundStreams(a.services.pubsub), 'gossipsub no longer has a `streamsOutbound` Map: update src/network/gossipsub-internals.ts').toBeInstanceOf(Map);
    const peerB = b.peerId.toString();
    expect(hasGossipStream(a.services.pubsub, peerB)).toBe(false);
    await a.dial(b.getMultiaddrs()[0]!);
    await waitFor(() => outboundStreams(a.services.pubsub)?.has(peerB) === true, 'gossipsub to open its outbound stream to the peer', 20_000);
    expect(hasGossipStream(a.services.pubsub, peerB)).toBe(true);
  });
});
