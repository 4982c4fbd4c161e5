// The scale benchmark of issue 9: for each cluster size, N real chorus daemons and then N
// serf agents (the anchor: HashiCorp's memberlist SWIM) on this machine, measured the same
// way, with `xargs -P N` of the same N trivial commands beside them. It measures; it
// asserts nothing. Per size and system:
//   - formation: time from the last start until every node sees N alive (and, for chorus,
//     the same single leader);
//   - an idle window: CPU and RSS per node (median and max) and of all of them together,
//     open TCP connections per node (ss), and traffic per node per second: bytes and
//     packets on the loopback interface (/proc/net/dev) while only that cluster runs and
//     the benchmark sends nothing, divided by N;
//   - a broadcast of `true` (chorus: `chorus run` through the API, all N started, and
//     `succeeded` seen by the same long-poll `chorus instance wait` uses; serf: a query
//     and how many agents answered).
//
//   npm run bench:scale -- [--sizes 5,20,50] [--idle-seconds 20] [--trials 5] [--sea] [--no-serf] [--svg FILE]
//
// serf comes from Debian's package `serf`; the benchmark installs it when missing (as root,
// apt-get) or says why it cannot and leaves the anchor out. Every process it starts is
// tracked and killed at the end, on Ctrl-C and on errors.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { InstanceView, NodeView } from '../src/api/views.js';
import { waitForInstance } from '../src/cli/wait.js';
import { processCpuTicks, processStatusKb } from '../src/core/proc.js';
import { jobSpec } from '../src/testing/fixtures.js';
import { apiGet, nodesOf } from '../cluster-tests/support/api.js';
import { runProcess } from '../cluster-tests/support/cli.js';
import { startCluster } from '../cluster-tests/support/cluster.js';
import type { Daemon } from '../cluster-tests/support/daemon.js';
import { cleanupAllSync, REPO_ROOT, signalPid, spawnTracked, tempDir } from '../cluster-tests/support/processes.js';
import { newRequestId } from '../src/records/ids.js';
import { DEFAULT_LEADER_WAIT_MS } from '../src/api/client.js';
import { sleep, waitForOrNull } from '../cluster-tests/support/wait.js';
import { ensureSerf, members, serfVersion, startAgent, type Agent } from './serf.js';
import { profileProcess, topSelfTime } from './profile.js';

const HELP = 'usage: npm run bench:scale -- [--sizes 5,20,50] [--idle-seconds 20] [--trials 5] [--busy N] [--chorus FILE] [--sea] [--no-serf] [--svg FILE]\n  --busy N: N processes spinning on the CPU the whole time (2 on 2 cores: a loaded machine)\n  --chorus FILE: run the daemons with this executable (e.g. the bin/chorus of another checkout, to compare builds)\n  --profile-leader DIR: a CPU profile of the leader while it takes the broadcasts, in DIR/leader-SIZE.cpuprofile, summed in the log\n';
const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5,20,50' },
    'idle-seconds': { type: 'string', default: '20' },
    trials: { type: 'string', default: '5' },
    sea: { type: 'boolean', default: false },
    busy: { type: 'string', default: '0' },
    chorus: { type: 'string' },
    'profile-leader': { type: 'string' },
    'no-serf': { type: 'boolean', default: false },
    svg: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const sizes = values.sizes.split(',').map(Number);
const idleSeconds = Number(values['idle-seconds']);
const trials = Number(values.trials);
const busy = Number(values.busy);
if (sizes.some((n) => !Number.isInteger(n) || n < 2 || n > 200) || !(idleSeconds > 0) || !Number.isInteger(trials) || trials < 1 || !Number.isInteger(busy) || busy < 0) {
  process.stderr.write(`bench:scale: --sizes takes whole numbers from 2 to 200, --idle-seconds a positive number, --trials a whole number ≥ 1, --busy a whole number ≥ 0\n${HELP}`);
  process.exit(2);
}
const SEA = `${REPO_ROOT}/dist/chorus`;
if (values.sea && !existsSync(SEA)) {
  process.stderr.write('bench:scale: --sea: there is no dist/chorus; build it with npm run build:binary\n');
  process.exit(2);
}

const log = (line: string) => process.stderr.write(`[scale ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143)); // through the exit handler, which kills every process it started
process.on('exit', () => cleanupAllSync());
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

// ---- measuring ----------------------------------------------------------------------------

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] as number);
};
const max = (xs: number[]) => (xs.length === 0 ? NaN : Math.max(...xs));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Bytes and packets sent on the loopback interface so far (every packet between local processes). */
function loopback(): { bytes: number; packets: number } {
  const line = readFileSync('/proc/net/dev', 'utf8')
    .split('\n')
    .find((l) => l.trim().startsWith('lo:'));
  const fields = (line?.split(':')[1] ?? '').trim().split(/\s+/).map(Number);
  // receive: bytes packets errs drop fifo frame compressed multicast | transmit: bytes packets ...
  return { bytes: fields[8] ?? NaN, packets: fields[9] ?? NaN };
}

/** Established TCP connections per pid, not counting those on the given local ports (the API). */
function tcpConnections(pids: number[], excludeLocalPorts: Set<number>): Map<number, number> {
  const out = new Map(pids.map((p) => [p, 0]));
  const text = spawnSync('ss', ['-tanpH', 'state', 'established'], { encoding: 'utf8' }).stdout;
  for (const line of text.split('\n')) {
    const pid = Number(/pid=(\d+)/.exec(line)?.[1]);
    if (!out.has(pid)) continue;
    const local = line.trim().split(/\s+/)[2] ?? '';
    if (excludeLocalPorts.has(Number(local.slice(local.lastIndexOf(':') + 1)))) continue;
    out.set(pid, (out.get(pid) ?? 0) + 1);
  }
  return out;
}

interface Idle {
  cpuMedian: number;
  cpuMax: number;
  cpuAll: number;
  rssMedian: number;
  rssMax: number;
  connMedian: number;
  connMax: number;
  bytesPerNodeS: number;
  packetsPerNodeS: number;
}

/** An idle window over these processes, with nothing else talking on loopback. */
async function idleWindow(pids: number[], apiPorts: Set<number>): Promise<Idle> {
  const t0 = performance.now();
  const ticks0 = pids.map((p) => processCpuTicks(p) ?? 0);
  const lo0 = loopback();
  await sleep(idleSeconds * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const lo1 = loopback();
  const cpu = pids.map((p, i) => (((processCpuTicks(p) ?? 0) - (ticks0[i] as number)) / CLK_TCK / seconds) * 100);
  const rss = pids.map((p) => (processStatusKb(p, 'VmRSS') ?? 0) / 1024);
  const conns = [...tcpConnections(pids, apiPorts).values()];
  return {
    cpuMedian: median(cpu),
    cpuMax: max(cpu),
    cpuAll: sum(cpu),
    rssMedian: median(rss),
    rssMax: max(rss),
    connMedian: median(conns),
    connMax: max(conns),
    bytesPerNodeS: (lo1.bytes - lo0.bytes) / seconds / pids.length,
    packetsPerNodeS: (lo1.packets - lo0.packets) / seconds / pids.length,
  };
}

// ---- chorus --------------------------------------------------------------------------------

interface ChorusRow {
  size: number;
  formMs: number | null;
  idle: Idle | null;
  allStartedMs: number[];
  succeededSeenMs: number[];
  /** From the request to the answer with the created instance (the CLI's own waits for a busy leader included). */
  createdMs: number[];
  /** Times the leader was busy or gone and the request was asked again (with the same request id). */
  leaderWaits: number;
  /** Broadcasts the CLI could not get created at all (it gave up waiting for the leader). */
  notCreated: number;
  failedTrials: number;
  /** CPU per broadcast (ms, idle CPU taken off): the median keeper, the median other member, and all daemons together. */
  cpu: { keeperMs: number; memberMs: number | null; allMs: number } | null;
  /**
   * From just before the first broadcast to 15 s after the last (no daemon dies meanwhile):
   * dead verdicts (all false), stalls daemons found in themselves, and connections refused
   * for want of the swarm key handshake, summed over the daemons that answered `status`.
   */
  burst: { deadVerdicts: number; stalls: number; stalledDaemons: number; refused: number; unanswered: number } | null;
}

/** The overload counters of every daemon (`chorus status --json`); null for one that does not answer in 10 s. */
async function overloadCounters(daemons: Daemon[]): Promise<({ dead: number; stalls: number; refused: number } | null)[]> {
  return Promise.all(
    daemons.map(async (d) => {
      try {
        const status = await apiGet<{ counters: Record<string, number> }>(d, '/v1/status', 10_000);
        const c = status.counters;
        return { dead: c['membership.deadVerdicts'] ?? 0, stalls: c['membership.stallsDetected'] ?? 0, refused: c['network.refusedConnections'] ?? 0 };
      } catch {
        return null;
      }
    }),
  );
}

/** How long after the last broadcast false verdicts and stalls are still counted (issue 22, point 7). */
const CALM_WINDOW_MS = 15_000;

function agreed(views: NodeView[][], n: number): boolean {
  const leaders = new Set<string>();
  for (const view of views) {
    if (view.filter((m) => m.state === 'alive').length !== n) return false;
    const leader = view.filter((m) => m.leader);
    if (leader.length !== 1) return false;
    leaders.add((leader[0] as NodeView).nodeId);
  }
  return leaders.size === 1;
}

async function measureChorus(size: number): Promise<ChorusRow> {
  const root = await tempDir(`chorus-scale-${size}-`);
  const row: ChorusRow = { size, formMs: null, idle: null, allStartedMs: [], succeededSeenMs: [], createdMs: [], leaderWaits: 0, notCreated: 0, failedTrials: 0, cpu: null, burst: null };
  const t0 = performance.now();
  const daemons: Daemon[] = await startCluster({
    prefix: 'n',
    count: size,
    root,
    daemon: { logLevel: 'warn', readyTimeoutMs: 120_000, ...(values.sea ? { executable: SEA } : values.chorus ? { executable: values.chorus } : {}) },
    onStarted: (d) => log(`chorus ${d.label} ready in ${d.readyMs.toFixed(0)} ms`),
  });
  const lastStart = performance.now();
  log(`${size} daemons started in ${((lastStart - t0) / 1000).toFixed(1)} s`);
  try {
    const formed = await waitForOrNull(async () => agreed(await Promise.all(daemons.map((d) => nodesOf(d, 5000))), size), {
      timeoutMs: 120_000,
      intervalMs: 100,
      what: `${size} daemons to agree`,
    });
    row.formMs = formed ? performance.now() - lastStart : null;
    log(`every node sees ${size} alive and one leader: ${row.formMs === null ? 'not within 120 s' : `${(row.formMs / 1000).toFixed(2)} s after the last start`}`);
    await sleep(5000); // the join's traffic dies down
    row.idle = await idleWindow(
      daemons.map((d) => d.pid),
      new Set(daemons.map((d) => Number(new URL(d.info.api).port))),
    );
    log(`idle: CPU median ${row.idle.cpuMedian.toFixed(2)} %, RSS median ${row.idle.rssMedian.toFixed(0)} MB, ${row.idle.connMedian} connections`);
    const origin = daemons[0] as Daemon;
    const profileDir = values['profile-leader'];
    const leaderId = profileDir ? (await nodesOf(origin, 30_000)).find((n) => n.leader)?.nodeId : undefined;
    const leader = daemons.find((d) => d.nodeId === leaderId);
    const profiling = leader ? await profileProcess(leader.pid) : null;
    const countersBefore = await overloadCounters(daemons);
    const ticksBefore = daemons.map((d) => processCpuTicks(d.pid) ?? 0);
    const trialsFromMs = performance.now();
    for (let t = 0; t < trials; t++) {
      const tReq = Date.now();
      try {
        // As `chorus run` asks: with a request id, asked again while the leader is busy (up to 60 s, the CLI's default).
        const created = await origin.api.requestRun<InstanceView>(
          '/v1/run',
          { spec: jobSpec({ cmd: 'true' }), requestId: newRequestId() },
          DEFAULT_LEADER_WAIT_MS,
          (line) => log(`broadcast #${t + 1}: ${line}`),
          () => (row.leaderWaits += 1),
        );
        row.createdMs.push(Date.now() - tReq);
        const waited = await waitForInstance(origin.api, created, 120_000, null);
        const seenMs = Date.now() - tReq;
        const view = waited.view;
        const starts = view.subtasks.map((s) => (s.startedAt === null ? NaN : Date.parse(s.startedAt)));
        if (view.status !== 'succeeded' || starts.some((x) => !Number.isFinite(x)) || view.subtasks.length !== size) {
          row.failedTrials += 1;
          log(`broadcast #${t + 1}: ${view.status} with ${view.subtasks.length} subtasks`);
        } else {
          row.allStartedMs.push(Math.max(...starts) - tReq);
          row.succeededSeenMs.push(seenMs);
          log(`broadcast #${t + 1}: all ${size} started ${(Math.max(...starts) - tReq).toFixed(0)} ms after the request, succeeded seen at ${seenMs} ms`);
        }
      } catch (err) {
        row.failedTrials += 1;
        if (row.createdMs.length < t + 1) row.notCreated += 1;
        log(`broadcast #${t + 1} failed: ${(err as Error).message}`);
      }
      await sleep(1000);
    }
    row.cpu = await cpuPerBroadcast(origin, daemons, ticksBefore, performance.now() - trialsFromMs, row.idle.cpuMedian);
    await sleep(CALM_WINDOW_MS - 1000);
    const countersAfter = await overloadCounters(daemons);
    const burst = { deadVerdicts: 0, stalls: 0, stalledDaemons: 0, refused: 0, unanswered: 0 };
    countersAfter.forEach((after, i) => {
      const before = countersBefore[i];
      if (!after || !before) return void (burst.unanswered += 1);
      burst.deadVerdicts += after.dead - before.dead;
      burst.stalls += after.stalls - before.stalls;
      burst.stalledDaemons += after.stalls > before.stalls ? 1 : 0;
      burst.refused += after.refused - before.refused;
    });
    row.burst = burst;
    log(`from the first broadcast to ${CALM_WINDOW_MS / 1000} s after the last: ${burst.deadVerdicts} dead verdicts (no daemon died), ${burst.stalls} stalls in ${burst.stalledDaemons} daemons, ${burst.refused} connections refused${burst.unanswered > 0 ? `; ${burst.unanswered} daemons did not answer status` : ''}`);
    if (row.cpu) log(`CPU per broadcast: keeper ${row.cpu.keeperMs.toFixed(0)} ms, other member ${row.cpu.memberMs?.toFixed(0) ?? '—'} ms (medians), all daemons ${row.cpu.allMs.toFixed(0)} ms`);
    if (profiling && profileDir) {
      const file = `${profileDir}/leader-${size}.cpuprofile`;
      const top = topSelfTime(await profiling.stop(file), 15);
      log(`the leader during the broadcasts (${file}), self time:\n${top.join('\n')}`);
    }
  } finally {
    for (const d of daemons) if (d.running) d.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.waitForExit(20_000).catch(() => undefined)));
  }
  return row;
}

/**
 * CPU each daemon spent per broadcast over the trials, its idle CPU taken off: the keepers
 * as the daemon the benchmark talks to names them (a build without keepers: the leader).
 */
async function cpuPerBroadcast(origin: Daemon, daemons: Daemon[], ticksBefore: number[], windowMs: number, idleCpuPercent: number): Promise<ChorusRow['cpu']> {
  const status = await apiGet<{ leader: string | null; keepers?: string[] }>(origin, '/v1/status').catch(() => null);
  if (status === null) return null;
  const keepers = new Set(status.keepers ?? (status.leader === null ? [] : [status.leader]));
  const idleMs = (idleCpuPercent / 100) * windowMs;
  const spent = daemons.map((d, i) => Math.max(0, (((processCpuTicks(d.pid) ?? 0) - (ticksBefore[i] as number)) / CLK_TCK) * 1000 - idleMs) / trials);
  const of = (keep: boolean) => spent.filter((_, i) => keepers.has((daemons[i] as Daemon).nodeId) === keep);
  const keeperMs = median(of(true));
  const members = of(false);
  return { keeperMs, memberMs: members.length > 0 ? median(members) : null, allMs: sum(spent) };
}

// ---- serf ----------------------------------------------------------------------------------

interface SerfRow {
  size: number;
  formMs: number | null;
  idle: Idle | null;
  queryAnswered: string;
}

async function measureSerf(serf: string, size: number): Promise<SerfRow> {
  const row: SerfRow = { size, formMs: null, idle: null, queryAnswered: 'n/a' };
  const agents: Agent[] = [];
  try {
    const seed = await startAgent(serf, 's1', null);
    agents.push(seed);
    for (let i = 2; i <= size; i++) agents.push(await startAgent(serf, `s${i}`, seed.bind));
    const lastStart = performance.now();
    const formed = await waitForOrNull(
      async () => {
        for (const a of agents) if ((await members(serf, a, 'alive')).size !== size) return false;
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `${size} serf agents to see each other` },
    );
    row.formMs = formed ? performance.now() - lastStart : null;
    await sleep(5000);
    const pids = agents.map((a) => a.proc.child.pid as number);
    row.idle = await idleWindow(pids, new Set(agents.map((a) => Number(a.rpc.split(':')[1]))));
    const q = await runProcess(serf, ['query', `-rpc-addr=${seed.rpc}`, '-timeout=3s', 'bench', 'x'], { timeoutMs: 15_000 });
    const acks = /Total Acks:\s*(\d+)/.exec(q.stdout)?.[1];
    row.queryAnswered = acks === undefined ? `failed (exit ${q.exitCode})` : `${acks}/${size}`;
    log(`serf ${size}: all see all ${row.formMs === null ? 'never' : `${(row.formMs / 1000).toFixed(2)} s`}, idle CPU median ${row.idle.cpuMedian.toFixed(2)} %, query acks ${row.queryAnswered}`);
  } finally {
    for (const a of agents) signalPid(a.proc.child.pid, 'SIGKILL');
    await Promise.all(agents.map((a) => a.proc.exited));
  }
  return row;
}

// ---- xargs ---------------------------------------------------------------------------------

async function measureXargs(size: number): Promise<number> {
  const times: number[] = [];
  for (let t = 0; t < trials; t++) {
    const r = await runProcess('sh', ['-c', `seq ${size} | xargs -P ${size} -I{} sh -c true`], { timeoutMs: 30_000 });
    if (r.exitCode === 0) times.push(r.ms);
  }
  return median(times);
}

// ---- report --------------------------------------------------------------------------------

const f1 = (x: number | null | undefined, unit = '') => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${x.toFixed(1)}${unit}`);
const f2 = (x: number | null | undefined, unit = '') => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${x.toFixed(2)}${unit}`);
const f0 = (x: number | null | undefined, unit = '') => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${Math.round(x).toLocaleString('en')}${unit}`);

function table(chorus: ChorusRow[], serf: SerfRow[], xargs: Map<number, number>): string {
  const lines: string[] = [];
  lines.push('| nodes | system | all alive (and one leader), after the last start | idle CPU per node, median / max | all nodes | RSS per node, median / max | TCP connections per node, median / max | loopback bytes per node per s | packets per node per s | broadcast of `true`: created (median / max; tries again) | all started (median) | `succeeded` seen (median) | CPU per broadcast: keeper / other member (medians) / all daemons | to 15 s after the last broadcast: dead verdicts (all false) / stalls (daemons) / refused connections |');
  lines.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const size of sizes) {
    const c = chorus.find((r) => r.size === size);
    const s = serf.find((r) => r.size === size);
    if (c) {
      const i = c.idle;
      const failed = c.failedTrials > 0 ? ` (${c.failedTrials} of ${trials} failed)` : '';
      lines.push(
        `| ${size} | chorus${values.sea ? ' (dist/chorus)' : values.chorus ? ` (${values.chorus})` : ''} | ${c.formMs === null ? 'not within 120 s' : f2(c.formMs / 1000, ' s')} | ${f2(i?.cpuMedian, ' %')} / ${f2(i?.cpuMax, ' %')} | ${f1(i?.cpuAll, ' %')} | ${f0(i?.rssMedian, ' MB')} / ${f0(i?.rssMax, ' MB')} | ${f0(i?.connMedian)} / ${f0(i?.connMax)} | ${f0(i?.bytesPerNodeS)} | ${f1(i?.packetsPerNodeS)} | ${f0(median(c.createdMs), ' ms')} / ${f0(max(c.createdMs), ' ms')}; ${c.leaderWaits}${c.notCreated > 0 ? `; ${c.notCreated} not created` : ''} | ${f0(median(c.allStartedMs), ' ms')}${failed} | ${f0(median(c.succeededSeenMs), ' ms')} | ${c.cpu ? `${f0(c.cpu.keeperMs, ' ms')} / ${f0(c.cpu.memberMs ?? undefined, ' ms')} / ${f0(c.cpu.allMs, ' ms')}` : ''} | ${c.burst ? `${c.burst.deadVerdicts} / ${c.burst.stalls} (${c.burst.stalledDaemons}) / ${c.burst.refused}${c.burst.unanswered > 0 ? `; ${c.burst.unanswered} unanswered` : ''}` : ''} |`,
      );
    }
    if (s) {
      const i = s.idle;
      lines.push(
        `| ${size} | serf | ${s.formMs === null ? 'not within 60 s' : f2(s.formMs / 1000, ' s')} | ${f2(i?.cpuMedian, ' %')} / ${f2(i?.cpuMax, ' %')} | ${f1(i?.cpuAll, ' %')} | ${f0(i?.rssMedian, ' MB')} / ${f0(i?.rssMax, ' MB')} | ${f0(i?.connMedian)} / ${f0(i?.connMax)} | ${f0(i?.bytesPerNodeS)} | ${f1(i?.packetsPerNodeS)} | | query answered ${s.queryAnswered} | | |`,
      );
    }
    const x = xargs.get(size);
    if (x !== undefined) lines.push(`| ${size} | \`xargs -P ${size}\` of \`sh -c true\` | | | | | | | | | all done ${f0(x, ' ms')} | |`);
  }
  return lines.join('\n');
}

/** Two small line charts, idle CPU and RSS per node against cluster size, chorus and serf. */
function svg(chorus: ChorusRow[], serf: SerfRow[]): string {
  const W = 320;
  const H = 220;
  const pad = { l: 48, r: 12, t: 28, b: 36 };
  const chart = (x0: number, title: string, unit: string, pick: (i: Idle) => number) => {
    const series = [
      { name: 'chorus', color: '#1f77b4', points: chorus.filter((r) => r.idle).map((r) => [r.size, pick(r.idle as Idle)] as const) },
      { name: 'serf', color: '#d62728', points: serf.filter((r) => r.idle).map((r) => [r.size, pick(r.idle as Idle)] as const) },
    ];
    const xs = sizes;
    const ymax = Math.max(1e-9, ...series.flatMap((s) => s.points.map((p) => p[1]))) * 1.15;
    const xmax = Math.max(...xs);
    const px = (x: number) => x0 + pad.l + (x / xmax) * (W - pad.l - pad.r);
    const py = (y: number) => pad.t + (1 - y / ymax) * (H - pad.t - pad.b);
    const out: string[] = [];
    out.push(`<text x="${x0 + W / 2}" y="16" text-anchor="middle" font-size="13">${title}</text>`);
    out.push(`<line x1="${px(0)}" y1="${py(0)}" x2="${px(xmax)}" y2="${py(0)}" stroke="#333"/><line x1="${px(0)}" y1="${py(0)}" x2="${px(0)}" y2="${py(ymax)}" stroke="#333"/>`);
    for (const x of xs) out.push(`<text x="${px(x)}" y="${py(0) + 14}" text-anchor="middle" font-size="10">${x}</text>`);
    out.push(`<text x="${x0 + W / 2}" y="${H - 4}" text-anchor="middle" font-size="10">nodes</text>`);
    for (const frac of [0.5, 1]) {
      const y = (ymax / 1.15) * frac;
      out.push(`<text x="${px(0) - 4}" y="${py(y) + 3}" text-anchor="end" font-size="10">${y.toFixed(y < 10 ? 2 : 0)}${unit}</text>`);
    }
    series.forEach((s, k) => {
      if (s.points.length === 0) return;
      out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
      for (const [x, y] of s.points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
      out.push(`<text x="${x0 + pad.l + 8}" y="${pad.t + 12 + k * 13}" font-size="11" fill="${s.color}">${s.name}</text>`);
    });
    return out.join('\n');
  };
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H}" viewBox="0 0 ${2 * W} ${H}" font-family="sans-serif">`,
    '<rect width="100%" height="100%" fill="white"/>',
    chart(0, 'idle CPU per node (% of one core)', '%', (i) => i.cpuMedian),
    chart(W, 'RSS per node (MB)', '', (i) => i.rssMedian),
    '</svg>',
    '',
  ].join('\n');
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const load0 = loadavg().map((l) => l.toFixed(2)).join(' ');
  log(`sizes ${sizes.join(', ')}; ${cpus().length} CPUs; load ${load0}; ${values.sea ? 'dist/chorus' : values.chorus ? values.chorus : 'bin/run.js on Node ' + process.versions.node}${busy > 0 ? `; ${busy} spinning process(es) beside it` : ''}`);
  // A loaded machine: processes that take the CPU the whole time (killed with everything else at the end).
  for (let i = 0; i < busy; i++) spawnTracked('sh', ['-c', 'while :; do :; done'], { kind: 'busy' });
  const serf = values['no-serf'] ? null : ensureSerf(log);
  const chorusRows: ChorusRow[] = [];
  const serfRows: SerfRow[] = [];
  const xargs = new Map<number, number>();
  for (const size of sizes) {
    chorusRows.push(await measureChorus(size));
    if (serf) serfRows.push(await measureSerf(serf, size));
    xargs.set(size, await measureXargs(size));
  }
  const title = `## Scale: chorus and ${serf ? serfVersion(serf) : '(no serf)'} on ${cpus().length} CPUs${busy > 0 ? ` with ${busy} spinning process(es) beside it` : ', quiet'}, idle window ${idleSeconds} s, ${trials} broadcasts per size (load ${load0} -> ${loadavg().map((l) => l.toFixed(2)).join(' ')})`;
  process.stdout.write(`\n${title}\n\n${table(chorusRows, serfRows, xargs)}\n`);
  if (values.svg) {
    writeFileSync(values.svg, svg(chorusRows, serfRows));
    log(`chart written to ${values.svg}`);
  }
}

main().then(
  // Exit now: the spinning processes of --busy would keep it alive; the exit handler kills them.
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:scale: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
