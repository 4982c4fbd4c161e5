// What the daemon reads and writes in its data directory besides the records and the
// journal: the API token, the swarm key, and the signs of files lost since the last start.
import { chmod, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/log.js';
import type { ChorusNode } from '../node/node.js';
import { loadOrCreateSwarmKey, readSwarmKey } from '../network/swarm-key.js';
import { writeFileDurable } from '../store/durable-file.js';
import { dataPaths } from '../store/paths.js';

export interface VanishedFiles {
  missing: string[];
  remaining: string[];
  /** The node id of the last start (DIR/node-id), if it was written. */
  previousNodeId: string | null;
}

/**
 * Files a data directory had and lost: state.json or peer-key gone while the journal,
 * logs or token of an earlier start remain (a restore gone wrong, a careless cleanup).
 */
export async function vanishedFiles(dataDir: string): Promise<VanishedFiles> {
  const paths = dataPaths(dataDir);
  const has = async (path: string) => stat(path).then(() => true, () => false);
  const previousNodeId = await readFile(paths.nodeId, 'utf8').then((t) => t.trim() || null, () => null);
  const remaining: string[] = [];
  for (const [name, path] of [['journal.log', paths.journal], ['logs/', paths.logs], ['api-token', paths.token], ['node-id', paths.nodeId]] as const) {
    if (await has(path)) remaining.push(name);
  }
  const missing: string[] = [];
  if (remaining.length > 0) {
    if (!(await has(paths.state)) && !(await has(paths.stateLog))) missing.push('state.json');
    if (!(await has(paths.peerKey))) missing.push('peer-key');
  }
  return { missing, remaining, previousNodeId };
}

/**
 * Says what vanished and, when the peer key did, marks the identity it belonged to as left:
 * that identity can never come back, so it must not stay a second, silently dead row with
 * the same name. Runs before the node starts (the record goes out with its first sync).
 */
export function reportVanished(vanished: VanishedFiles, dataDir: string, node: ChorusNode, log: Logger): void {
  if (vanished.missing.length > 0) {
    log.warn(
      { dataDir, missing: vanished.missing, remaining: vanished.remaining },
      `${vanished.missing.join(' and ')} vanished from ${dataDir} while ${vanished.remaining.join(', ')} remain` +
        (vanished.missing.includes('peer-key') ? `: this node starts with a new identity ${node.id}` : ': the state is filled in again from the cluster'),
    );
  }
  const oldId = vanished.previousNodeId;
  const oldSelf = oldId !== null && oldId !== node.id ? node.store.member(oldId) : undefined;
  if (oldSelf && !oldSelf.left) {
    node.commit([{ kind: 'member', record: { ...oldSelf, left: true, incarnation: oldSelf.incarnation + 1, stamp: node.hlc.tick() } }]);
    log.warn({ oldNodeId: oldId, nodeId: node.id }, `the old identity ${oldId} of this data directory is marked left`);
  }
}

/** The swarm key: the --swarm-key file, or DIR/swarm.key (created on the first start). */
export async function swarmKeyOf(swarmKeyFile: string | null, dataDir: string, log: Logger): Promise<Uint8Array> {
  if (swarmKeyFile !== null) return readSwarmKey(swarmKeyFile);
  const path = dataPaths(dataDir).swarmKey;
  const { key, created } = await loadOrCreateSwarmKey(path);
  if (created) log.info({ swarmKey: path }, `created the swarm key ${path}; start every other node with --swarm-key pointing at a copy of it`);
  return key;
}

/** The API token in DIR/api-token (mode 0600), created on the first start. */
export async function loadOrCreateToken(path: string): Promise<string> {
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if ((await stat(path)).mode & 0o077) await chmod(path, 0o600);
    if (token.length >= 32) return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('hex');
  await writeFileDurable(path, `${token}\n`, 0o600);
  return token;
}

/**
 * Half-written copies a daemon killed in the middle of a durable write left (`.state.json.PID.tmp`,
 * a compaction's `.journal.log.compacting`): whoever holds the lock owns the directory, so
 * they are nobody's now, and they hold space a full disk needs. Returns their names.
 */
export async function removeLeftoverCopies(dataDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dataDir)) {
    if (!/^\..+\.(\d+\.tmp|compacting)$/.test(name)) continue;
    await unlink(`${dataDir}/${name}`).then(
      () => removed.push(name),
      () => undefined,
    );
  }
  return removed;
}
