// Files in a node's data directory, named in one place.
import { join } from 'node:path';

export const dataPaths = (dataDir: string) => ({
  nodeInfo: join(dataDir, 'node.json'),
  token: join(dataDir, 'api-token'),
  /** More API tokens, hashed, with their roles (`chorus token create`). */
  tokens: join(dataDir, 'tokens.json'),
  journal: join(dataDir, 'journal.log'),
  swarmKey: join(dataDir, 'swarm.key'),
  state: join(dataDir, 'state.json'),
  /** Changes since the snapshot in state.json (state-file.ts). */
  stateLog: join(dataDir, 'state.log'),
  peerKey: join(dataDir, 'peer-key'),
  /** The node id of the last start: tells a lost peer-key (a new identity) from a first start. */
  nodeId: join(dataDir, 'node-id'),
  logs: join(dataDir, 'logs'),
});

/** What `node.json` holds: how clients and other nodes find this daemon. */
export interface NodeInfo {
  nodeId: string;
  name: string;
  multiaddrs: string[];
  api: string;
  pid: number;
  version: string;
  startedAt: string;
  /** The API's TLS certificate, when it speaks HTTPS: a CLI on this host trusts it for this daemon. */
  tlsCert?: string;
  /** The Prometheus endpoint, when the daemon serves one (`--metrics`). */
  metrics?: string;
}
