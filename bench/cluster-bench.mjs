#!/usr/bin/env node
// chorus cluster benchmark: starts real daemons on 127.0.0.1 and prints figures.
// It measures; it asserts nothing (the exit code is 0 unless the benchmark itself
// broke). Run it through npm so the pinned Node 24 is used:
//
//   npm run bench                          # everything, 10 trials, 5 nodes, 300 s soak
//   npm run bench -- --quick               # smoke run: 2 trials, 30 s soak, 10 s idle
//   npm run bench -- --scenarios a,d,g     # only some scenarios (letters or names)
//   npm run bench -- --no-false-dead       # skip the long soak
//   node bench/cluster-bench.mjs --help    # (after npm run build) all options
//
// Scenarios (targets from issues 2, 3 and 4):
//   a kill        kill -9 of a non-leader -> `dead` at every other member      (<= 1 s)
//   b stop        SIGSTOP of a non-leader -> `dead` at every other member      (<= 3 s)
//   c leader      kill -9 of the leader -> new leader agreed by all survivors   (<= 2 s)
//   d job         PUT /v1/jobs/NAME on one node -> visible on all others       (<= 200 ms)
//   e idle        idle RSS and CPU of every daemon of an idle cluster          (< 100 MB, < 2 %)
//   f false-dead  soak with the cores kept busy: times any member saw another `dead` (0)
//   g broadcast   run -> all started (<= 50 ms median); run -> `succeeded` seen (<= 150 ms)
//   h bcast-kill  kill -9 of a target during a broadcast -> its subtask node-lost at the leader (<= 1.5 s)
//   i xargs       the same 5 trivial commands with `xargs -P 5`, as a baseline
//   j startup     `bin/run.js --version`, `dist/chorus --version`, daemon start -> node.json
//
// Everything it starts is SIGCONT+SIGKILLed at the end, on Ctrl-C and on errors
// (including job commands the daemons spawned: they carry a marker variable and are
// found through /proc). Results: a markdown table on stdout, raw samples as JSON in
// bench-results/ (git-ignored). Progress goes to stderr.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUN_JS = join(REPO, 'bin', 'run.js');
const SEA = join(REPO, 'dist', 'chorus');
const TAG_VAR = 'CHORUS_BENCH_TAG';
const RUN_ID = `${process.pid}-${randomBytes(4).toString('hex')}`;

// ---- options ----------------------------------------------------------------------------

const SCENARIOS = {
  a: 'kill',
  b: 'stop',
  c: 'leader',
  d: 'job',
  e: 'idle',
  f: 'false-dead',
  g: 'broadcast',
  h: 'bcast-kill',
  i: 'xargs',
  j: 'startup',
};
// Order of execution: startup before the cluster exists; idle on a fresh cluster; the
// soak last (it is the longest).
const ORDER = ['j', 'e', 'd', 'a', 'b', 'c', 'g', 'i', 'h', 'f'];

const HELP = `usage: node bench/cluster-bench.mjs [options]   (or: npm run bench -- [options])

  --quick                 smoke run: 2 trials, 30 s soak, 10 s idle window   [env BENCH_QUICK=1]
  --trials N              trials per scenario (default 10)                    [env BENCH_TRIALS]
  --nodes N               daemons in the cluster (default 5, at least 3)      [env BENCH_NODES]
  --scenarios LIST        comma-separated letters or names (default: all)     [env BENCH_SCENARIOS]
                          ${Object.entries(SCENARIOS).map(([k, v]) => `${k}=${v}`).join(' ')}
  --false-dead            add the false-dead soak (f) to an explicit --scenarios list
  --no-false-dead         skip the false-dead soak
  --soak-seconds S        duration of the soak (default 300, quick 30)        [env BENCH_SOAK_SECONDS]
  --burners N             busy-loop processes during the soak (default 2)     [env BENCH_BURNERS]
  --idle-seconds S        CPU measurement window of scenario e (default 30, quick 10) [env BENCH_IDLE_SECONDS]
  --log-level L           daemon --log-level (default info)
  --keep                  keep the temporary data directories (daemon.log of every node)
  --sea                   run the daemons as dist/chorus (single executable) instead of node bin/run.js [env BENCH_SEA=1]
  --help
`;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      trials: { type: 'string' },
      nodes: { type: 'string' },
      scenarios: { type: 'string' },
      'false-dead': { type: 'boolean', default: false },
      'no-false-dead': { type: 'boolean', default: false },
      'soak-seconds': { type: 'string' },
      burners: { type: 'string' },
      'idle-seconds': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      keep: { type: 'boolean', default: false },
      sea: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const env = process.env;
  const quick = values.quick || env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  const int = (name, raw, fallback, min, max) => {
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) die(`--${name} must be an integer from ${min} to ${max}, not "${raw}"`);
    return n;
  };
  const trials = int('trials', values.trials ?? env.BENCH_TRIALS, quick ? 2 : 10, 1, 1000);
  const nodes = int('nodes', values.nodes ?? env.BENCH_NODES, 5, 3, 20);
  const soakSeconds = int('soak-seconds', values['soak-seconds'] ?? env.BENCH_SOAK_SECONDS, quick ? 30 : 300, 1, 24 * 3600);
  const burners = int('burners', values.burners ?? env.BENCH_BURNERS, 2, 0, 64);
  const idleSeconds = int('idle-seconds', values['idle-seconds'] ?? env.BENCH_IDLE_SECONDS, quick ? 10 : 30, 1, 3600);
  let selected;
  const list = values.scenarios ?? env.BENCH_SCENARIOS;
  if (list) {
    selected = new Set();
    for (const word of list.split(',').map((w) => w.trim()).filter(Boolean)) {
      const key = SCENARIOS[word] ? word : Object.keys(SCENARIOS).find((k) => SCENARIOS[k] === word);
      if (!key) die(`unknown scenario "${word}"; use ${Object.entries(SCENARIOS).map(([k, v]) => `${k}|${v}`).join(', ')}`);
      selected.add(key);
    }
    if (values['false-dead']) selected.add('f');
  } else {
    selected = new Set(Object.keys(SCENARIOS));
  }
  if (values['no-false-dead']) selected.delete('f');
  const sea = values.sea || env.BENCH_SEA === '1';
  if (sea && !existsSync(SEA)) die('--sea: there is no dist/chorus; build it with npm run build:binary');
  return { quick, trials, nodes, soakSeconds, burners, idleSeconds, selected, logLevel: values['log-level'], keep: values.keep, sea };
}

function die(message) {
  process.stderr.write(`cluster-bench: ${message}\n`);
  process.exit(2);
}

// ---- small helpers ----------------------------------------------------------------------

const now = () => performance.now();
/** Wall-clock epoch milliseconds (sub-millisecond), comparable with `date +%s%N`. */
const wallAt = (perfMs) => performance.timeOrigin + perfMs;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (line) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
const fmtMs = (ms) => (ms == null ? 'n/a' : `${ms.toFixed(1)} ms`);

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function summarize(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { n: 0, median: null, p90: null, min: null, max: null };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { n: v.length, median, p90: percentile(v, 90), min: v[0], max: v[v.length - 1] };
}

// ---- process tracking and cleanup -------------------------------------------------------

/** Every child process this benchmark started and that may still run: pid -> label. */
const live = new Map();
const tempRoots = [];
let keepDirs = false;
let cleanedUp = false;

function track(child, label) {
  if (child.pid === undefined) return;
  live.set(child.pid, label);
  child.once('exit', () => live.delete(child.pid));
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Processes that carry this run's marker (daemons, CLIs, and the jobs they spawned). */
function taggedPids() {
  const marker = Buffer.from(`${TAG_VAR}=${RUN_ID}\0`);
  const out = [];
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`).includes(marker)) out.push(pid);
    } catch {
      // gone or not ours
    }
  }
  return out;
}

/** Synchronous: usable from 'exit' and signal handlers. Idempotent. */
function cleanupSync() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const pid of live.keys()) {
    signal(pid, 'SIGCONT');
    signal(pid, 'SIGKILL');
  }
  live.clear();
  for (const pid of taggedPids()) {
    signal(pid, 'SIGCONT');
    signal(pid, 'SIGKILL');
  }
  for (const root of tempRoots) {
    if (keepDirs) {
      process.stderr.write(`[bench] kept data directories (daemon.log per node): ${root}\n`);
    } else {
      try {
        rmSync(root, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  }
}

process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`\n[bench] ${sig}: killing everything this benchmark started\n`);
    keepDirs = keepDirs || sig !== 'SIGINT';
    cleanupSync();
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  process.stderr.write(`[bench] uncaught: ${err?.stack ?? err}\n`);
  keepDirs = true;
  cleanupSync();
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`[bench] unhandled rejection: ${err?.stack ?? err}\n`);
  keepDirs = true;
  cleanupSync();
  process.exit(1);
});

/** process.env without CHORUS_* (the outer shell must not redirect the daemons), plus the marker. */
function childEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CHORUS_')) env[k] = v;
  env[TAG_VAR] = RUN_ID;
  return env;
}

/** Runs a command to completion; resolves with wall time and exit code. Bounded by timeoutMs. */
function timedRun(cmd, args, { timeoutMs = 60_000, env = childEnv(), cwd = REPO } = {}) {
  return new Promise((resolveRun) => {
    const t0 = now();
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    track(child, `${cmd} ${args.join(' ')}`);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout = (stdout + c).slice(-65536)));
    child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-65536)));
    const timer = setTimeout(() => {
      signal(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolveRun({ ms: now() - t0, t0, code: null, signal: null, stdout, stderr: String(err) });
    });
    child.once('exit', (code, sig) => {
      const t1 = now();
      clearTimeout(timer);
      resolveRun({ ms: t1 - t0, t0, t1, code, signal: sig, stdout, stderr });
    });
  });
}

// ---- HTTP API ---------------------------------------------------------------------------

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

/** One request to a daemon's control API. Resolves {status, body}; rejects on network errors. */
function api(d, method, path, body, timeoutMs = 5000) {
  return new Promise((resolveReq, reject) => {
    const url = new URL(path, d.api);
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers: {
          authorization: `Bearer ${d.token}`,
          ...(data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolveReq({ status: res.statusCode, body: json, text });
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${path} on ${d.name}: no answer in ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(data);
  });
}

async function apiOk(d, method, path, body, timeoutMs) {
  const r = await api(d, method, path, body, timeoutMs);
  if (r.status !== 200) throw new Error(`${method} ${path} on ${d.name}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

const nodesOf = (d, timeoutMs = 3000) => apiOk(d, 'GET', '/v1/nodes', undefined, timeoutMs);
const stateIn = (view, nodeId) => view.find((m) => m.nodeId === nodeId)?.state;
const leaderIn = (view) => view.find((m) => m.leader)?.nodeId ?? null;

// ---- daemons ----------------------------------------------------------------------------

class Daemon {
  constructor(index, dataDir) {
    this.index = index;
    this.name = `n${index + 1}`;
    this.dataDir = dataDir;
    this.child = null;
    this.pid = null;
    this.info = null;
    this.api = null;
    this.token = null;
    this.exited = true;
    this.exitPromise = Promise.resolve();
  }
  get nodeId() {
    return this.info?.nodeId;
  }
  get running() {
    return !this.exited;
  }
  joinAddr() {
    const addrs = this.info?.multiaddrs ?? [];
    return addrs.find((a) => a.startsWith('/ip4/127.0.0.1/')) ?? addrs[0];
  }
}

let opts;
let daemons = [];
let clusterRoot = null;
const startupMs = []; // daemon spawn -> node.json written by that pid
const results = {}; // scenario letter -> { samples: { metric: [values] }, info, errors }
let versionOf = null;

function bucket(letter) {
  results[letter] ??= { samples: {}, extra: {}, errors: [] };
  return results[letter];
}
function sample(letter, metric, value) {
  const b = bucket(letter);
  (b.samples[metric] ??= []).push(value);
}

// Every daemon of the bench shares one swarm key (a chorus cluster is always closed).
let swarmKeyFile = null;
function benchSwarmKey() {
  if (swarmKeyFile) return swarmKeyFile;
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-key-'));
  tempRoots.push(dir);
  swarmKeyFile = join(dir, 'swarm.key');
  writeFileSync(swarmKeyFile, `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return swarmKeyFile;
}

async function startDaemon(d, joinAddrs) {
  mkdirSync(d.dataDir, { recursive: true, mode: 0o700 });
  const logFd = openSync(join(d.dataDir, 'daemon.log'), 'a');
  const args = [
    'daemon', '--data-dir', d.dataDir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0',
    '--name', d.name, '--log-level', opts.logLevel, '--swarm-key', benchSwarmKey(), ...joinAddrs.flatMap((j) => ['--join', j]),
  ];
  const t0 = now();
  const [cmd, argv] = opts.sea ? [SEA, args] : [process.execPath, [RUN_JS, ...args]];
  const child = spawn(cmd, argv, { cwd: REPO, env: childEnv(), stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  track(child, `daemon ${d.name}`);
  d.child = child;
  d.pid = child.pid;
  d.exited = false;
  d.exitPromise = new Promise((r) => child.once('exit', (code, sig) => {
    d.exited = true;
    d.exitInfo = { code, signal: sig };
    r();
  }));
  const deadline = t0 + 60_000;
  for (;;) {
    if (d.exited) throw new Error(`daemon ${d.name} exited before it was ready (${JSON.stringify(d.exitInfo)}); see ${join(d.dataDir, 'daemon.log')}`);
    try {
      const info = JSON.parse(readFileSync(join(d.dataDir, 'node.json'), 'utf8'));
      if (info.pid === child.pid) {
        const ms = now() - t0;
        startupMs.push(ms);
        d.info = info;
        d.api = /^https?:\/\//.test(info.api) ? info.api : `http://${info.api}`;
        d.token = readFileSync(join(d.dataDir, 'api-token'), 'utf8').trim();
        log(`started ${d.name} pid ${d.pid} id …${info.nodeId.slice(-8)} in ${ms.toFixed(0)} ms`);
        return ms;
      }
    } catch {
      // not written yet
    }
    if (now() > deadline) throw new Error(`daemon ${d.name} wrote no node.json within 60 s; see ${join(d.dataDir, 'daemon.log')}`);
    await sleep(5);
  }
}

async function killDaemon(d, sig = 'SIGKILL') {
  if (!d.running) return;
  signal(d.pid, 'SIGCONT');
  signal(d.pid, sig);
  await Promise.race([d.exitPromise, sleep(10_000)]);
}

async function restartDaemon(d) {
  await killDaemon(d);
  const via = daemons.find((o) => o !== d && o.running);
  await startDaemon(d, via ? [via.joinAddr()] : []);
}

async function startCluster() {
  clusterRoot = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  tempRoots.push(clusterRoot);
  daemons = [];
  for (let i = 0; i < opts.nodes; i++) {
    const d = new Daemon(i, join(clusterRoot, `n${i + 1}`));
    daemons.push(d);
    await startDaemon(d, i === 0 ? [] : [daemons[0].joinAddr()]);
  }
  const t0 = now();
  const { leader } = await waitSettled();
  log(`cluster of ${opts.nodes} formed: everyone sees everyone alive, leader ${nameOf(leader)} (${(now() - t0).toFixed(0)} ms after the last start)`);
}

const nameOf = (nodeId) => daemons.find((d) => d.nodeId === nodeId)?.name ?? (nodeId ? `…${nodeId.slice(-8)}` : 'none');

/**
 * Waits until every running daemon sees every daemon alive and all agree on one
 * leader, continuously for stableMs. Bounded by timeoutMs.
 */
async function waitSettled({ timeoutMs = 90_000, stableMs = 1500 } = {}) {
  const deadline = now() + timeoutMs;
  const ids = daemons.map((d) => d.nodeId);
  let okSince = null;
  let last;
  for (;;) {
    const running = daemons.filter((d) => d.running);
    let ok = running.length === daemons.length;
    let leader = null;
    try {
      const views = await Promise.all(running.map((d) => nodesOf(d)));
      const leaders = new Set(views.map(leaderIn));
      for (const v of views) {
        if (!ids.every((id) => stateIn(v, id) === 'alive')) ok = false;
      }
      if (leaders.size !== 1 || leaders.has(null)) ok = false;
      leader = [...leaders][0];
      last = views.map((v, i) => `${running[i].name}: ${v.map((m) => `${nameOf(m.nodeId)}=${m.state}${m.leader ? '*' : ''}`).join(' ')}`).join(' | ');
    } catch (err) {
      ok = false;
      last = String(err.message ?? err);
    }
    if (ok) {
      okSince ??= now();
      if (now() - okSince >= stableMs) return { leader };
    } else {
      okSince = null;
    }
    if (now() > deadline) throw new Error(`cluster did not settle in ${timeoutMs} ms; last views: ${last}`);
    await sleep(100);
  }
}

async function currentLeader() {
  const { leader } = await waitSettled({ stableMs: 0, timeoutMs: 30_000 });
  return daemons.find((d) => d.nodeId === leader);
}

/** Make sure all nodes run and agree; rebuild the cluster from scratch if that fails. */
async function ensureCluster() {
  try {
    for (const d of daemons) if (!d.running) await restartDaemon(d);
    await waitSettled({ timeoutMs: 45_000 });
  } catch (err) {
    log(`cluster is not healthy (${err.message.slice(0, 400)}); starting a fresh one`);
    await Promise.all(daemons.map((d) => killDaemon(d)));
    keepDirs = true; // keep the broken cluster's logs
    await startCluster();
  }
}

/**
 * Polls `probe(d)` on every daemon of `ds` independently every intervalMs from now on;
 * resolves with, per daemon, the time (ms after t0, when the answer arrived) of the
 * first truthy result, or null if none came before timeoutMs.
 */
async function firstTrueEach(ds, probe, t0, { intervalMs = 10, timeoutMs = 15_000 } = {}) {
  return Promise.all(
    ds.map(async (d) => {
      while (now() - t0 < timeoutMs) {
        const started = now();
        try {
          if (await probe(d)) return now() - t0;
        } catch {
          // a failed poll is "not yet"
        }
        const wait = intervalMs - (now() - started);
        if (wait > 0) await sleep(wait);
      }
      return null;
    }),
  );
}

const maxOrNull = (xs) => (xs.some((x) => x === null) ? null : Math.max(...xs));
const minOrNull = (xs) => {
  const v = xs.filter((x) => x !== null);
  return v.length ? Math.min(...v) : null;
};

// ---- scenarios --------------------------------------------------------------------------

function nonLeaders(leaderId) {
  return daemons.filter((d) => d.nodeId !== leaderId);
}

async function scenarioKill(trial) {
  const leader = await currentLeader();
  const candidates = nonLeaders(leader.nodeId);
  const victim = candidates[trial % candidates.length];
  const survivors = daemons.filter((d) => d !== victim);
  const t0 = now();
  signal(victim.pid, 'SIGKILL');
  const times = await firstTrueEach(survivors, async (d) => stateIn(await nodesOf(d), victim.nodeId) === 'dead', t0, { timeoutMs: 15_000 });
  const all = maxOrNull(times);
  sample('a', 'dead at all survivors', all);
  sample('a', 'dead at first survivor', minOrNull(times));
  log(`a#${trial + 1}: kill -9 ${victim.name} -> dead everywhere after ${fmtMs(all)} (per survivor: ${times.map(fmtMs).join(', ')})`);
  await restartDaemon(victim);
  await waitSettled();
}

async function scenarioStop(trial) {
  const leader = await currentLeader();
  const candidates = nonLeaders(leader.nodeId);
  const victim = candidates[trial % candidates.length];
  const survivors = daemons.filter((d) => d !== victim);
  const t0 = now();
  signal(victim.pid, 'SIGSTOP');
  let times;
  try {
    const suspect = firstTrueEach(survivors, async (d) => ['suspect', 'dead'].includes(stateIn(await nodesOf(d), victim.nodeId)), t0, { timeoutMs: 20_000, intervalMs: 10 });
    const dead = firstTrueEach(survivors, async (d) => stateIn(await nodesOf(d), victim.nodeId) === 'dead', t0, { timeoutMs: 20_000, intervalMs: 10 });
    const [s, dd] = await Promise.all([suspect, dead]);
    times = dd;
    sample('b', 'suspect at all survivors', maxOrNull(s));
  } finally {
    signal(victim.pid, 'SIGCONT');
    signal(victim.pid, 'SIGKILL');
  }
  const all = maxOrNull(times);
  sample('b', 'dead at all survivors', all);
  log(`b#${trial + 1}: SIGSTOP ${victim.name} -> dead everywhere after ${fmtMs(all)} (per survivor: ${times.map(fmtMs).join(', ')})`);
  await restartDaemon(victim);
  await waitSettled();
}

async function scenarioLeader(trial) {
  const victim = await currentLeader();
  const survivors = daemons.filter((d) => d !== victim);
  const t0 = now();
  signal(victim.pid, 'SIGKILL');
  let agreedMs = null;
  let deadAllMs = null;
  let newLeader = null;
  const deadAt = new Map();
  while (now() - t0 < 20_000 && (agreedMs === null || deadAllMs === null)) {
    const started = now();
    const views = await Promise.all(survivors.map((d) => nodesOf(d).catch(() => null)));
    const arrived = now() - t0;
    views.forEach((v, i) => {
      if (v && stateIn(v, victim.nodeId) === 'dead' && !deadAt.has(survivors[i])) deadAt.set(survivors[i], arrived);
    });
    if (deadAllMs === null && deadAt.size === survivors.length) deadAllMs = Math.max(...deadAt.values());
    if (agreedMs === null && views.every(Boolean)) {
      const leaders = new Set(views.map(leaderIn));
      const [l] = leaders;
      if (leaders.size === 1 && l && l !== victim.nodeId) {
        agreedMs = arrived;
        newLeader = l;
      }
    }
    const wait = 10 - (now() - started);
    if (wait > 0) await sleep(wait);
  }
  sample('c', 'new leader agreed by all survivors', agreedMs);
  sample('c', 'old leader dead at all survivors', deadAllMs);
  log(`c#${trial + 1}: kill -9 leader ${victim.name} -> ${nameOf(newLeader)} agreed after ${fmtMs(agreedMs)}; dead everywhere after ${fmtMs(deadAllMs)}`);
  await restartDaemon(victim);
  await waitSettled();
}

const trivialSpec = (cmd, extra = {}) => ({
  cmd,
  type: 'broadcast',
  schedule: null,
  tags: {},
  timeoutMs: null,
  retries: 0,
  concurrency: 'allow',
  pre: null,
  post: null,
  ...extra,
});

async function scenarioJob(trial) {
  const origin = daemons[trial % daemons.length];
  const others = daemons.filter((d) => d !== origin);
  const name = `bench-job-${trial}-${randomBytes(3).toString('hex')}`;
  const t0 = now();
  const r = await api(origin, 'PUT', `/v1/jobs/${name}`, { spec: trivialSpec('true'), replace: false }, 10_000);
  const tAck = now();
  if (r.status !== 200) throw new Error(`PUT /v1/jobs/${name} on ${origin.name}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  const times = await firstTrueEach(others, async (d) => (await api(d, 'GET', `/v1/jobs/${name}`)).status === 200, tAck, { intervalMs: 5, timeoutMs: 10_000 });
  const all = maxOrNull(times);
  sample('d', 'PUT acknowledged (request -> response)', tAck - t0);
  sample('d', 'visible on all others, from the response', all);
  sample('d', 'visible on all others, from the request', all === null ? null : all + (tAck - t0));
  log(`d#${trial + 1}: job on ${origin.name}: ack ${fmtMs(tAck - t0)}, on all others ${fmtMs(all)} after the ack`);
  await api(origin, 'DELETE', `/v1/jobs/${name}`).catch(() => undefined);
}

function readProcStat(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return { utime: Number(fields[11]), stime: Number(fields[12]) };
}
function readProcStatusKb(pid, key) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : null;
}

async function scenarioIdle() {
  const clk = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  await waitSettled();
  const warm = opts.quick ? 2000 : 5000;
  log(`e: letting the cluster idle ${warm / 1000} s, then measuring CPU over ${opts.idleSeconds} s (no API calls meanwhile)`);
  await sleep(warm);
  const before = daemons.map((d) => ({ d, t: now(), ...readProcStat(d.pid) }));
  await sleep(opts.idleSeconds * 1000);
  const perNode = before.map(({ d, t, utime, stime }) => {
    const after = readProcStat(d.pid);
    const seconds = (now() - t) / 1000;
    const cpu = ((after.utime + after.stime - utime - stime) / clk / seconds) * 100;
    const rssMb = readProcStatusKb(d.pid, 'VmRSS') / 1024;
    const hwmMb = readProcStatusKb(d.pid, 'VmHWM') / 1024;
    sample('e', 'idle RSS per daemon (MB)', rssMb);
    sample('e', 'idle peak RSS (VmHWM) per daemon (MB)', hwmMb);
    sample('e', 'idle CPU per daemon (% of one core)', cpu);
    return { node: d.name, pid: d.pid, rssMb, hwmMb, cpuPercent: cpu };
  });
  bucket('e').extra.perNode = perNode;
  for (const p of perNode) log(`e: ${p.node}: RSS ${p.rssMb.toFixed(1)} MB (peak ${p.hwmMb.toFixed(1)}), CPU ${p.cpuPercent.toFixed(2)} %`);
  await waitSettled({ stableMs: 0 });
}

async function scenarioFalseDead() {
  await waitSettled();
  const burners = [];
  log(`f: soak for ${opts.soakSeconds} s with ${opts.burners} busy loop(s) (yes > /dev/null), polling /v1/nodes on every node every 100 ms`);
  for (let i = 0; i < opts.burners; i++) {
    const child = spawn('yes', [], { stdio: ['ignore', 'ignore', 'ignore'], env: childEnv() });
    track(child, 'yes');
    burners.push(child);
  }
  const prev = new Map(); // `${observer}>${subject}` -> state
  const prevLeader = new Map();
  let deadReports = 0;
  let suspectReports = 0;
  let leaderChanges = 0;
  let pollErrors = 0;
  const events = [];
  const latencies = [];
  let polls = 0;
  const t0 = now();
  try {
    while (now() - t0 < opts.soakSeconds * 1000) {
      const started = now();
      await Promise.all(
        daemons.map(async (obs) => {
          const s = now();
          let view;
          try {
            view = await nodesOf(obs, 5000);
          } catch (err) {
            pollErrors++;
            if (events.length < 200) events.push({ atS: (now() - t0) / 1000, observer: obs.name, error: String(err.message ?? err) });
            return;
          }
          latencies.push(now() - s);
          polls++;
          for (const m of view) {
            if (m.nodeId === obs.nodeId) continue;
            const key = `${obs.name}>${m.nodeId}`;
            const before = prev.get(key) ?? 'alive';
            if (m.state !== before) {
              if (m.state === 'dead') deadReports++;
              if (m.state === 'suspect') suspectReports++;
              if (events.length < 200) events.push({ atS: (now() - t0) / 1000, observer: obs.name, subject: nameOf(m.nodeId), from: before, to: m.state });
              if (m.state === 'dead' || m.state === 'suspect') log(`f: ${obs.name} sees ${nameOf(m.nodeId)} ${m.state} (was ${before}) at ${((now() - t0) / 1000).toFixed(1)} s`);
            }
            prev.set(key, m.state);
          }
          const l = leaderIn(view);
          if (prevLeader.has(obs.name) && prevLeader.get(obs.name) !== l) leaderChanges++;
          prevLeader.set(obs.name, l);
        }),
      );
      const wait = 100 - (now() - started);
      if (wait > 0) await sleep(wait);
    }
  } finally {
    for (const b of burners) signal(b.pid, 'SIGKILL');
  }
  const lat = summarize(latencies);
  sample('f', 'false dead reports', deadReports);
  sample('f', 'false suspect reports', suspectReports);
  sample('f', 'leader changes seen', leaderChanges);
  sample('f', 'failed /v1/nodes polls', pollErrors);
  sample('f', 'GET /v1/nodes latency p90 under load (ms)', lat.p90);
  sample('f', 'GET /v1/nodes latency max under load (ms)', lat.max);
  Object.assign(bucket('f').extra, { events, polls, latency: lat, soakSeconds: opts.soakSeconds, burners: opts.burners, loadavgAfter: loadavg() });
  log(`f: ${deadReports} false dead, ${suspectReports} suspect, ${leaderChanges} leader changes, ${pollErrors} failed polls over ${polls} polls; API latency p90 ${fmtMs(lat.p90)} max ${fmtMs(lat.max)}`);
}

let bcastFile = null;
async function ensureJob(name, spec) {
  await apiOk(daemons[0], 'PUT', `/v1/jobs/${name}`, { spec, replace: true }, 15_000);
  // Visible everywhere before the first run.
  const t0 = now();
  const ok = await firstTrueEach(daemons, async (d) => (await api(d, 'GET', `/v1/jobs/${name}`)).status === 200, t0, { timeoutMs: 15_000, intervalMs: 20 });
  if (ok.some((x) => x === null)) throw new Error(`job ${name} did not reach every node`);
}

function startLines(file, filter) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w.length >= 2 && filter(w))
    .map((w) => ({ wallMs: Number(BigInt(w[0]) / 1000n) / 1000, who: w[1] }));
}

/** Long-polls the instance on `d` until it is finished; returns {view, arrivedAt}. */
async function waitInstance(d, view, deadlineMs) {
  while (!['succeeded', 'failed', 'cancelled'].includes(view.status)) {
    const left = deadlineMs - now();
    if (left <= 0) return { view, arrivedAt: null };
    const waitMs = Math.max(1, Math.min(10_000, Math.floor(left)));
    view = await apiOk(d, 'GET', `/v1/instances/${encodeURIComponent(view.id)}?waitMs=${waitMs}&version=${versionOf(view)}`, undefined, waitMs + 5000);
  }
  return { view, arrivedAt: now() };
}

async function broadcastTrial(trial, { cli }) {
  const origin = daemons[trial % daemons.length];
  const leaderNow = leaderIn(await nodesOf(origin));
  const t0 = now();
  const r = await api(origin, 'POST', '/v1/jobs/bench-bcast/run', undefined, 15_000);
  const tResp = now();
  if (r.status !== 200) throw new Error(`POST /v1/jobs/bench-bcast/run on ${origin.name}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  const id = r.body.id;
  const targets = r.body.targets?.length ?? daemons.length;
  if (cli) {
    const res = await timedRun(process.execPath, [RUN_JS, 'instance', 'wait', id, '--data-dir', origin.dataDir, '--timeout', '30s'], { timeoutMs: 40_000 });
    const doneMs = res.t1 - tResp;
    sample('g', 'CLI `instance wait` exit, from the run response (ms, incl. CLI start)', res.code === 0 ? doneMs : null);
    const show = await timedRun(process.execPath, [RUN_JS, 'instance', 'show', id, '--json', '--data-dir', origin.dataDir], { timeoutMs: 40_000 });
    sample('g', 'CLI `instance show ID --json` wall time (finished instance)', show.code === 0 ? show.ms : null);
    log(`g#${trial + 1} (CLI): instance wait exited ${res.code} ${fmtMs(doneMs)} after the run response; instance show took ${fmtMs(show.ms)}`);
    return;
  }
  const { view, arrivedAt } = await waitInstance(origin, r.body, tResp + 30_000);
  let lines = [];
  const until = now() + 5000;
  while (now() < until) {
    lines = startLines(bcastFile, (w) => w[2] === id);
    if (lines.length >= targets) break;
    await sleep(5);
  }
  const maxStart = lines.length >= targets ? Math.max(...lines.map((l) => l.wallMs)) : null;
  const minStart = lines.length ? Math.min(...lines.map((l) => l.wallMs)) : null;
  const ok = view.status === 'succeeded';
  const isoMs = (x) => (x ? Date.parse(x) : null);
  const created = isoMs(view.createdAt);
  const finished = isoMs(view.finishedAt);
  sample('g', 'run response (request -> response)', tResp - t0);
  sample('g', 'instance createdAt (daemon clock), from the run request', created === null ? null : created - wallAt(t0));
  sample('g', 'instance finishedAt (daemon clock), from the run request', finished === null ? null : finished - wallAt(t0));
  sample('g', 'all started, from the run response', maxStart === null ? null : maxStart - wallAt(tResp));
  sample('g', 'all started, from the run request', maxStart === null ? null : maxStart - wallAt(t0));
  sample('g', 'first started, from the run request', minStart === null ? null : minStart - wallAt(t0));
  sample('g', '`succeeded` seen by long-poll, from the run response', ok && arrivedAt !== null ? arrivedAt - tResp : null);
  sample('g', '`succeeded` seen by long-poll, from the run request', ok && arrivedAt !== null ? arrivedAt - t0 : null);
  if (!ok) bucket('g').errors.push(`trial ${trial + 1}: instance ${id} ended ${view.status}`);
  log(
    `g#${trial + 1}: via ${origin.name}: response ${fmtMs(tResp - t0)}, ${lines.length}/${targets} started, last ${fmtMs(maxStart === null ? null : maxStart - wallAt(tResp))} after the response; ` +
      `${view.status} seen ${fmtMs(arrivedAt === null ? null : arrivedAt - tResp)} after the response ` +
      `(daemon clock: created +${fmtMs(created === null ? null : created - wallAt(t0))}, finished +${fmtMs(finished === null ? null : finished - wallAt(t0))} after the request; leader ${nameOf(leaderNow)})`,
  );
}

async function xargsTrial(trial, file) {
  const script = `printf '%s\\n' 1 2 3 4 5 | xargs -P 5 -I{} sh -c 'echo "$(date +%s%N) {} x${trial}" >> ${file}'`;
  const res = await timedRun('sh', ['-c', script], { timeoutMs: 20_000 });
  const lines = startLines(file, (w) => w[2] === `x${trial}`);
  const maxStart = lines.length === 5 ? Math.max(...lines.map((l) => l.wallMs)) : null;
  sample('i', 'xargs -P 5 (same command as g): all started, from spawn', maxStart === null ? null : maxStart - wallAt(res.t0));
  sample('i', 'xargs -P 5 (same command as g): all done, from spawn', res.code === 0 ? res.ms : null);
  const t = await timedRun('sh', ['-c', `printf '%s\\n' 1 2 3 4 5 | xargs -P 5 -I{} sh -c 'true'`], { timeoutMs: 20_000 });
  sample('i', "xargs -P 5 sh -c 'true': all done, from spawn", t.code === 0 ? t.ms : null);
  log(`i#${trial + 1}: xargs: all started ${fmtMs(maxStart === null ? null : maxStart - wallAt(res.t0))}, done ${fmtMs(res.ms)}; sh -c true x5: ${fmtMs(t.ms)}`);
}

async function scenarioBroadcast(withBroadcast, withXargs) {
  bcastFile = join(clusterRoot, 'bcast-starts.txt');
  const xargsFile = join(clusterRoot, 'xargs-starts.txt');
  if (withBroadcast) {
    await ensureJob('bench-bcast', trivialSpec(`echo "$(date +%s%N) $CHORUS_NODE_ID $CHORUS_INSTANCE_ID" >> '${bcastFile}'`, { timeoutMs: 30_000 }));
    await waitSettled({ stableMs: 500 });
  }
  for (let t = 0; t < opts.trials; t++) {
    if (withBroadcast) {
      try {
        await broadcastTrial(t, { cli: false });
      } catch (err) {
        bucket('g').errors.push(`trial ${t + 1}: ${err.message}`);
        log(`g#${t + 1}: error: ${err.message}`);
      }
      await sleep(200);
    }
    if (withXargs) {
      await xargsTrial(t, xargsFile);
      await sleep(200);
    }
  }
  if (withBroadcast) {
    for (let t = 0; t < opts.trials; t++) {
      try {
        await broadcastTrial(t, { cli: true });
      } catch (err) {
        bucket('g').errors.push(`CLI trial ${t + 1}: ${err.message}`);
      }
      await sleep(200);
    }
  }
}

async function scenarioBroadcastKill(trial) {
  if (trial === 0) await ensureJob('bench-long', trivialSpec('sleep 20', { timeoutMs: 60_000 }));
  const leader = await currentLeader();
  const candidates = nonLeaders(leader.nodeId);
  const victim = candidates[trial % candidates.length];
  const tReq = now();
  const r = await apiOk(leader, 'POST', '/v1/jobs/bench-long/run', undefined, 15_000);
  sample('h', 'run response of a `sleep 20` broadcast, on the leader', now() - tReq);
  const id = r.id;
  const path = `/v1/instances/${encodeURIComponent(id)}`;
  try {
    // All subtasks running (as the leader sees it) before the kill.
    const runningDeadline = now() + 20_000;
    for (;;) {
      const v = await apiOk(leader, 'GET', path);
      if (v.subtasks.length === daemons.length && v.subtasks.every((s) => s.status === 'running')) break;
      if (now() > runningDeadline) throw new Error(`instance ${id}: not every subtask running after 20 s: ${v.subtasks.map((s) => `${nameOf(s.nodeId)}=${s.status}`).join(' ')}`);
      await sleep(20);
    }
    const t0 = now();
    signal(victim.pid, 'SIGKILL');
    let reason = null;
    const [ms] = await firstTrueEach(
      [leader],
      async (d) => {
        const v = await apiOk(d, 'GET', path);
        const s = v.subtasks.find((x) => x.nodeId === victim.nodeId);
        if (s?.status === 'failed' || s?.status === 'succeeded' || s?.status === 'cancelled') reason = `${s.status}/${s.reason}`;
        return s?.status === 'failed' && s.reason === 'node-lost';
      },
      t0,
      { intervalMs: 10, timeoutMs: 15_000 },
    );
    sample('h', 'killed target `failed` node-lost at the leader', ms);
    log(`h#${trial + 1}: kill -9 ${victim.name} mid-broadcast -> node-lost at leader ${leader.name} after ${fmtMs(ms)}${ms === null ? ` (last: ${reason})` : ''}`);
  } finally {
    await api(leader, 'POST', `${path}/cancel`).catch(() => undefined);
    const deadline = now() + 15_000;
    while (now() < deadline) {
      const v = await apiOk(leader, 'GET', path).catch(() => null);
      if (v && ['succeeded', 'failed', 'cancelled'].includes(v.status)) break;
      await sleep(50);
    }
  }
  await restartDaemon(victim);
  await waitSettled();
}

async function scenarioStartup() {
  for (let t = 0; t < opts.trials; t++) {
    const r = await timedRun(process.execPath, [RUN_JS, '--version'], { timeoutMs: 30_000 });
    sample('j', '`node bin/run.js --version` wall time', r.code === 0 ? r.ms : null);
    if (existsSync(SEA)) {
      const s = await timedRun(SEA, ['--version'], { timeoutMs: 30_000 });
      sample('j', '`dist/chorus --version` wall time', s.code === 0 ? s.ms : null);
      log(`j#${t + 1}: bin/run.js --version ${fmtMs(r.ms)} (exit ${r.code}); dist/chorus --version ${fmtMs(s.ms)} (exit ${s.code})`);
    } else {
      log(`j#${t + 1}: bin/run.js --version ${fmtMs(r.ms)} (exit ${r.code}); no dist/chorus`);
    }
  }
}

// ---- report -----------------------------------------------------------------------------

/** Counts warn/error/fatal lines (pino JSON) in every daemon.log of every cluster this run started. */
function scanDaemonLogs() {
  const names = { 40: 'warn', 50: 'error', 60: 'fatal' };
  const byLevel = {};
  const byMsg = new Map();
  for (const root of tempRoots) {
    let dirs;
    try {
      dirs = readdirSync(root);
    } catch {
      continue;
    }
    for (const dir of dirs) {
      let text;
      try {
        text = readFileSync(join(root, dir, 'daemon.log'), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line.startsWith('{')) {
          if (line.trim()) {
            byLevel['non-JSON output line'] = (byLevel['non-JSON output line'] ?? 0) + 1;
            const key = `non-JSON|${line.trim().slice(0, 160)}`;
            byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
          }
          continue;
        }
        let rec;
        try {
          rec = JSON.parse(line);
        } catch {
          continue;
        }
        const level = names[rec.level];
        if (!level) continue;
        byLevel[level] = (byLevel[level] ?? 0) + 1;
        const key = `${level}|${String(rec.msg ?? '').slice(0, 160)}`;
        byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
      }
    }
  }
  const top = [...byMsg.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([key, count]) => ({ level: key.split('|')[0], msg: key.slice(key.indexOf('|') + 1), count }));
  return { byLevel, top };
}

// Targets: [scenario, metric] -> { text, check(summary) }
const TARGETS = {
  'a|dead at all survivors': { text: '≤ 1000 ms', ok: (s) => s.median <= 1000 },
  'b|dead at all survivors': { text: '≤ 3000 ms', ok: (s) => s.median <= 3000 },
  'c|new leader agreed by all survivors': { text: '≤ 2000 ms', ok: (s) => s.median <= 2000 },
  'd|visible on all others, from the response': { text: '≤ 200 ms', ok: (s) => s.median <= 200 },
  'd|visible on all others, from the request': { text: '≤ 200 ms', ok: (s) => s.median <= 200 },
  'e|idle RSS per daemon (MB)': { text: '< 100 MB (max)', ok: (s) => s.max < 100 },
  'e|idle CPU per daemon (% of one core)': { text: '< 2 % (max)', ok: (s) => s.max < 2 },
  'f|false dead reports': { text: '0', ok: (s) => s.max === 0 },
  'g|all started, from the run response': { text: 'median ≤ 50 ms', ok: (s) => s.median <= 50 },
  'g|all started, from the run request': { text: '(≤ 50 ms, for reference)', ok: (s) => s.median <= 50 },
  'g|`succeeded` seen by long-poll, from the run response': { text: 'median ≤ 150 ms', ok: (s) => s.median <= 150 },
  'g|`succeeded` seen by long-poll, from the run request': { text: '(≤ 150 ms, for reference)', ok: (s) => s.median <= 150 },
  'h|killed target `failed` node-lost at the leader': { text: 'median ≤ 1500 ms', ok: (s) => s.median <= 1500 },
};

const fmtV = (v) => (v == null ? '–' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));

function buildRows() {
  const rows = [];
  for (const letter of ORDER) {
    const b = results[letter];
    if (!b) continue;
    for (const [metric, values] of Object.entries(b.samples)) {
      const s = summarize(values);
      const missing = values.filter((v) => v === null || v === undefined).length;
      const target = TARGETS[`${letter}|${metric}`];
      const verdict = target ? (s.n === 0 ? '✗ (no data)' : target.ok(s) && missing === 0 ? '✓' : '✗') : '';
      rows.push({ scenario: `${letter} ${SCENARIOS[letter]}`, metric, target: target?.text ?? '', ...s, missing, verdict });
    }
  }
  if (startupMs.length) {
    const s = summarize(startupMs);
    rows.push({ scenario: 'j startup', metric: 'daemon spawn -> node.json (all starts and restarts)', target: '', ...s, missing: 0, verdict: '' });
  }
  return rows;
}

function markdown(rows) {
  const head = '| scenario | metric (ms unless stated) | n | median | p90 | min | max | failed trials | target | meets |';
  const sep = '|---|---|---:|---:|---:|---:|---:|---:|---|---|';
  const body = rows.map(
    (r) => `| ${r.scenario} | ${r.metric} | ${r.n} | ${fmtV(r.median)} | ${fmtV(r.p90)} | ${fmtV(r.min)} | ${fmtV(r.max)} | ${r.missing} | ${r.target} | ${r.verdict} |`,
  );
  return [head, sep, ...body].join('\n');
}

// ---- main -------------------------------------------------------------------------------

async function main() {
  opts = parseOptions();
  keepDirs = opts.keep;
  const [major] = process.versions.node.split('.').map(Number);
  if (major < 22) die(`needs Node 22+ (this is ${process.versions.node}); run it with: npm run bench`);
  const versionModule = join(REPO, 'dist', 'src', 'api', 'version-of.js');
  if (!existsSync(versionModule) || !existsSync(join(REPO, 'dist', 'commands'))) die('dist/ is missing: run `npm run build` first (npm run bench does)');
  ({ versionOf } = await import(pathToFileURL(versionModule).href));

  const startedAt = new Date();
  const load0 = loadavg();
  const selected = ORDER.filter((k) => opts.selected.has(k));
  log(
    `chorus cluster bench: ${opts.nodes} ${opts.sea ? 'dist/chorus' : 'node bin/run.js'} daemons, ${opts.trials} trials, scenarios ${selected.map((k) => `${k}(${SCENARIOS[k]})`).join(' ')}` +
      `${opts.quick ? ', quick' : ''}; ${cpus().length} CPUs, load ${load0.map((l) => l.toFixed(2)).join(' ')}; node ${process.version}`,
  );

  const errors = [];
  const runScenario = async (letter, fn) => {
    log(`--- ${letter} ${SCENARIOS[letter]} ---`);
    const t0 = now();
    try {
      await fn();
    } catch (err) {
      const msg = `${letter}: ${err?.message ?? err}`;
      bucket(letter).errors.push(msg);
      errors.push(msg);
      log(`error in ${letter}: ${err?.stack ?? err}`);
      keepDirs = true;
      await ensureCluster();
    }
    bucket(letter).extra.elapsedSeconds = (now() - t0) / 1000;
  };
  const perTrial = (letter, fn) => async () => {
    for (let t = 0; t < opts.trials; t++) {
      try {
        await fn(t);
      } catch (err) {
        const msg = `${letter} trial ${t + 1}: ${err?.message ?? err}`;
        bucket(letter).errors.push(msg);
        errors.push(msg);
        log(`error: ${msg}`);
        keepDirs = true;
        await ensureCluster();
      }
    }
  };

  if (opts.selected.has('j')) await runScenario('j', scenarioStartup);
  const needCluster = selected.some((k) => k !== 'j' && k !== 'i') || opts.selected.has('j');
  if (needCluster) {
    log(`starting ${opts.nodes} daemons`);
    await startCluster();
  }
  if (opts.selected.has('e')) await runScenario('e', scenarioIdle);
  if (opts.selected.has('d')) await runScenario('d', perTrial('d', scenarioJob));
  if (opts.selected.has('a')) await runScenario('a', perTrial('a', scenarioKill));
  if (opts.selected.has('b')) await runScenario('b', perTrial('b', scenarioStop));
  if (opts.selected.has('c')) await runScenario('c', perTrial('c', scenarioLeader));
  if (opts.selected.has('g') || opts.selected.has('i')) {
    const letter = opts.selected.has('g') ? 'g' : 'i';
    if (!clusterRoot) {
      clusterRoot = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
      tempRoots.push(clusterRoot);
    }
    await runScenario(letter, () => scenarioBroadcast(opts.selected.has('g'), opts.selected.has('i')));
  }
  if (opts.selected.has('h')) await runScenario('h', perTrial('h', scenarioBroadcastKill));
  if (opts.selected.has('f')) await runScenario('f', scenarioFalseDead);

  const daemonLogs = scanDaemonLogs();
  // Stop everything before writing the report, so the figures are final.
  cleanupSync();

  const rows = buildRows();
  const table = markdown(rows);
  const outDir = join(REPO, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const outFile = join(outDir, `cluster-bench-${stamp}.json`);
  let gitHead = null;
  try {
    gitHead = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).stdout.trim() || null;
  } catch {
    // not a git checkout
  }
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: { ...opts, selected: [...opts.selected] },
    environment: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, loadavgStart: load0, loadavgEnd: loadavg(), gitHead },
    summary: rows,
    scenarios: Object.fromEntries(Object.entries(results).map(([k, v]) => [`${k} ${SCENARIOS[k]}`, v])),
    daemonStartupMs: startupMs,
    daemonLogs,
    errors,
  };
  writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n## chorus cluster bench (${opts.nodes} ${opts.sea ? 'dist/chorus' : 'node bin/run.js'} daemons, ${opts.trials} trials${opts.quick ? ', quick' : ''}, load ${load0.map((l) => l.toFixed(2)).join(' ')} -> ${loadavg().map((l) => l.toFixed(2)).join(' ')})\n\n${table}\n\n`);
  process.stdout.write('p90 is nearest-rank; "failed trials" timed out or failed and are left out of the statistics; "meets" compares the median (max for e and f) with the target, and fails when any trial failed.\n');
  const logLine = Object.entries(daemonLogs.byLevel).map(([lvl, n]) => `${n} ${lvl}`).join(', ');
  process.stdout.write(`\ndaemon logs: ${logLine || 'nothing at warn or above'}${daemonLogs.top.length ? '; most frequent:' : ''}\n`);
  for (const t of daemonLogs.top) process.stdout.write(`- ${t.count}× ${t.level}: ${t.msg}\n`);
  if (errors.length) process.stdout.write(`\nerrors (${errors.length}):\n${errors.map((e) => `- ${e}`).join('\n')}\n`);
  process.stdout.write(`\nraw results: ${outFile}\n`);
}

main().then(
  () => {
    cleanupSync();
    process.exit(0);
  },
  (err) => {
    process.stderr.write(`[bench] failed: ${err?.stack ?? err}\n`);
    keepDirs = true;
    cleanupSync();
    process.exit(1);
  },
);
