// A node joining a cluster that holds many records: how long until it holds all of them,
// in how many pages, and the largest page. Real daemons (bin/run.js) on 127.0.0.1: the
// first starts on a data directory prepared with N records, signed as their writers would
// sign them (an instance per 100 subtasks, each subtask signed by its own owner's key);
// the second joins it with an empty one. It measures; it asserts nothing.
//
//   npm run bench:catch-up -- [--records 200000]
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { Daemon } from '../cluster-tests/support/daemon.js';
import { cleanupAllSync, tempDir } from '../cluster-tests/support/processes.js';
import { Ed25519RecordKeys } from '../src/network/record-keys.js';
import { loadOrCreatePrivateKey } from '../src/network/peer-key.js';
import { signRecord, UNSIGNED } from '../src/records/signature.js';
import type { AnyRecord, JobSpec } from '../src/records/types.js';

const { values } = parseArgs({ options: { records: { type: 'string', default: '200000' }, keep: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } }, strict: true });
if (values.help) {
  process.stdout.write('usage: npm run bench:catch-up -- [--records 200000] [--keep]   (--keep: keep the data directories and their daemon.log)\n');
  process.exit(0);
}
const target = Number(values.records);
if (!Number.isInteger(target) || target < 1000) {
  process.stderr.write('catch-up: --records takes a whole number of at least 1000\n');
  process.exit(2);
}
const log = (message: string) => process.stderr.write(`[catch-up ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
process.on('exit', () => cleanupAllSync({ keepDirs: values.keep, onKept: (paths) => process.stderr.write(`kept ${paths.join(' ')}\n`) }));
process.on('SIGINT', () => process.exit(130));

const SUBTASKS_PER_INSTANCE = 100;
const OWNERS = 100;

async function prepare(dataDir: string): Promise<number> {
  mkdirSync(dataDir, { recursive: true });
  const leaderKey = await loadOrCreatePrivateKey(dataDir);
  const leader = { id: peerIdFromPrivateKey(leaderKey).toString(), keys: new Ed25519RecordKeys(leaderKey) };
  const owners = await Promise.all(
    Array.from({ length: OWNERS }, async () => {
      const key = await generateKeyPair('Ed25519');
      return { id: peerIdFromPrivateKey(key).toString(), keys: new Ed25519RecordKeys(key) };
    }),
  );
  const spec: JobSpec = { cmd: 'systemctl restart agent', type: 'broadcast', schedule: null, tags: {}, timeoutMs: 60_000, retries: 0, concurrency: 'allow', pre: null, post: null };
  const records: AnyRecord[] = [];
  const t0 = Date.now();
  let wallMs = t0 - 30 * 86_400_000;
  const stamp = (nodeId: string) => ({ wallMs: (wallMs += 1), counter: 0, nodeId });
  const instances = Math.ceil(target / (SUBTASKS_PER_INSTANCE + 1));
  const jobs = Math.ceil(instances / 100); // under the retention bound of 200 per job
  for (let j = 0; j < jobs; j++) {
    records.push(signRecord({ kind: 'job', record: { name: `job-${j}`, spec, enabled: true, deleted: false, createdAtMs: wallMs, stamp: stamp(leader.id), sig: UNSIGNED } }, leader.keys));
  }
  const targets = owners.map((o) => o.id).sort();
  for (let i = 0; i < instances && records.length < target; i++) {
    const id = `bench${String(i).padStart(11, '0')}`;
    const createdAtMs = wallMs;
    records.push(signRecord({ kind: 'instance', record: { id, job: `job-${i % jobs}`, spec, trigger: 'manual', scheduledAtMs: null, createdAtMs, targets, failure: null, stamp: stamp(leader.id), sig: UNSIGNED } }, leader.keys));
    for (const owner of owners.slice(0, Math.min(SUBTASKS_PER_INSTANCE, target - records.length))) {
      const s = stamp(owner.id);
      records.push(
        signRecord(
          { kind: 'subtask', record: { instanceId: id, nodeId: owner.id, attempt: 1, status: 'succeeded', reason: null, exitCode: 0, startedAtMs: s.wallMs - 500, finishedAtMs: s.wallMs, notBeforeMs: null, history: [], reporter: owner.id, stamp: s, sig: UNSIGNED } },
          owner.keys,
        ),
      );
    }
  }
  const text = JSON.stringify({ version: 1, records, pruned: [] });
  writeFileSync(join(dataDir, 'state.json'), text);
  log(`prepared ${records.length} records (${(text.length / 1e6).toFixed(1)} MB) in ${Date.now() - t0} ms`);
  return records.length;
}

async function recordsOf(daemon: Daemon): Promise<number> {
  const status = await daemon.api.request<{ records: number }>('GET', '/v1/status');
  return status.records;
}

async function main(): Promise<void> {
  const root = await tempDir('chorus-catchup-');
  const holderDir = join(root, 'holder');
  const total = await prepare(holderDir);
  const holderProfile = process.env.CATCH_UP_HOLDER_PROFILE_DIR;
  const holder = await Daemon.start({ label: 'holder', name: 'holder', dataDir: holderDir, logLevel: 'info', readyTimeoutMs: 300_000, ...(holderProfile ? { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${holderProfile}` } } : {}) });
  log(`holder ready in ${holder.readyMs} ms (loading ${total} records)`);
  const held = await recordsOf(holder);
  const profile = process.env.CATCH_UP_PROFILE_DIR; // a CPU profile of the joiner, for looking into it
  const joiner = await Daemon.start({ label: 'joiner', name: 'joiner', join: [holder.joinAddr], logLevel: process.env.CATCH_UP_LOG_LEVEL ?? 'info', ...(profile ? { env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profile}` } } : {}) });
  const startedMs = Date.now();
  let lastLogMs = 0;
  for (let count = await recordsOf(joiner); count < held; count = await recordsOf(joiner)) {
    if (Date.now() - startedMs > 120_000) throw new Error(`the joiner holds ${count} of ${held} records after 2 minutes`);
    if (Date.now() - lastLogMs > (process.env.CATCH_UP_TRACE ? 0 : 5000)) {
      log(`joiner holds ${count} of ${held} (+${Date.now() - startedMs} ms)`);
      lastLogMs = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const caughtUpMs = Date.now() - startedMs;
  const counters = (d: Daemon) => d.api.request<{ counters: Record<string, number>; memory: { rssBytes: number } }>('GET', '/v1/status');
  const [h, j] = await Promise.all([counters(holder), counters(joiner)]);
  process.stdout.write(
    [
      `## Catch-up of a joining node (${held} records held, bin/run.js daemons on 127.0.0.1)`,
      '',
      '| measure | value |',
      '|---|---:|',
      `| records on the holder | ${held} |`,
      `| holder start (load of state.json) | ${holder.readyMs} ms |`,
      `| joiner ready → holds every record | ${caughtUpMs} ms |`,
      `| pages the joiner pulled and pushed | ${j.counters['replication.syncPages']} |`,
      `| largest page the holder sent | ${(h.counters['replication.largestSyncPageBytes'] ?? 0).toLocaleString('en')} bytes (limit ${(1024 * 1024).toLocaleString('en')}) |`,
      `| records refused by the joiner | ${j.counters['replication.recordsRejected']} |`,
      `| RSS holder / joiner | ${(h.memory.rssBytes / 1e6).toFixed(0)} / ${(j.memory.rssBytes / 1e6).toFixed(0)} MB |`,
      '',
    ].join('\n'),
  );
  await Promise.all([joiner.stop(), holder.stop()]);
}

main().catch((err: unknown) => {
  process.stderr.write(`catch-up: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
