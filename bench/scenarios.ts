// The benchmark's scenarios, on the multi-process support (cluster-tests/support, the
// part without vitest): a cluster of real daemons, polled through the project's own API
// client, every process tracked and killed at the end.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { InstanceView, NodeView } from '../src/api/views.js';
import { waitForInstance as longPoll } from '../src/cli/wait.js';
import { jobSpec } from '../src/testing/fixtures.js';
import type { JobSpec } from '../src/records/types.js';
import { apiCall, apiOk, nodesOf as nodesWithin } from '../cluster-tests/support/api.js';
import { runProcess } from '../cluster-tests/support/cli.js';
import { startCluster, waitForAgreement } from '../cluster-tests/support/cluster.js';
import type { Daemon } from '../cluster-tests/support/daemon.js';
import { REPO_ROOT, RUN_JS, signalPid, spawnTracked, tempDir } from '../cluster-tests/support/processes.js';
import { sleep, waitForOrNull } from '../cluster-tests/support/wait.js';
import type { Letter, Results } from './report.js';
import { summarize } from './report.js';
import { processCpuTicks, processStatusKb } from '../src/core/proc.js';

export const SEA = join(REPO_ROOT, 'dist', 'chorus');

export interface Options {
  quick: boolean;
  trials: number;
  nodes: number;
  soakSeconds: number;
  burners: number;
  idleSeconds: number;
  selected: Set<Letter>;
  logLevel: string;
  keep: boolean;
  sea: boolean;
}

const now = () => performance.now();
/** Wall-clock epoch milliseconds (sub-millisecond), comparable with `date +%s%N`. */
const wallAt = (perfMs: number) => performance.timeOrigin + perfMs;
export const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
export const fmtMs = (ms: number | null | undefined) => (ms == null ? 'n/a' : `${ms.toFixed(1)} ms`);

/** GET /v1/nodes, given up after 3 s (a probe of a measurement, not a wait). */
const nodesOf = (d: Daemon) => nodesWithin(d, 3000);
const stateIn = (view: NodeView[], nodeId: string) => view.find((m) => m.nodeId === nodeId)?.state;
const leaderIn = (view: NodeView[]) => view.find((m) => m.leader)?.nodeId ?? null;
const maxOrNull = (xs: (number | null)[]) => (xs.some((x) => x === null) ? null : Math.max(...(xs as number[])));
const minOrNull = (xs: (number | null)[]) => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? Math.min(...v) : null;
};

/**
 * Polls `probe(d)` on every daemon of `ds` independently every intervalMs (start to
 * start) from t0 on; resolves with, per daemon, the time (ms after t0, when the answer
 * arrived) of the first truthy result, or null if none came before timeoutMs.
 */
function firstTrueEach(
  ds: Daemon[],
  probe: (d: Daemon) => Promise<boolean>,
  t0: number,
  { intervalMs = 10, timeoutMs = 15_000 } = {},
): Promise<(number | null)[]> {
  return Promise.all(
    ds.map(async (d) => {
      const hit = await waitForOrNull(async () => ((await probe(d)) ? { ms: now() - t0 } : null), {
        timeoutMs: Math.max(0, timeoutMs - (now() - t0)),
        intervalMs,
        paced: true,
      });
      return hit?.ms ?? null;
    }),
  );
}

/** The benchmark's cluster and what it measured. */
export class Bench {
  daemons: Daemon[] = [];
  /** Every folder a cluster was started in (for the log scan). */
  readonly roots: string[] = [];
  clusterRoot: string | null = null;
  /** Set when something broke: the data directories are kept for a look. */
  keepDirs: boolean;
  private bcastFile = '';

  constructor(
    readonly opts: Options,
    readonly results: Results,
  ) {
    this.keepDirs = opts.keep;
  }

  private nameOf(nodeId: string | null | undefined): string {
    return this.daemons.find((d) => d.nodeId === nodeId)?.label ?? (nodeId ? `…${nodeId.slice(-8)}` : 'none');
  }

  private started(d: Daemon): void {
    this.results.startupMs.push(d.readyMs);
    log(`started ${d.label} pid ${d.pid} id …${d.nodeId.slice(-8)} in ${d.readyMs.toFixed(0)} ms`);
  }

  async newRoot(): Promise<string> {
    this.clusterRoot = await tempDir('chorus-bench-');
    this.roots.push(this.clusterRoot);
    return this.clusterRoot;
  }

  async startCluster(): Promise<void> {
    const root = await this.newRoot();
    this.daemons = await startCluster({
      prefix: 'n',
      count: this.opts.nodes,
      root,
      daemon: {
        logLevel: this.opts.logLevel,
        readyTimeoutMs: 60_000,
        readyPollMs: 5,
        ...(this.opts.sea ? { executable: SEA } : {}),
      },
      onStarted: (d) => this.started(d),
    });
    const t0 = now();
    const leader = await this.waitSettled();
    log(`cluster of ${this.opts.nodes} formed: everyone sees everyone alive, leader ${this.nameOf(leader)} (${(now() - t0).toFixed(0)} ms after the last start)`);
  }

  /** Waits until every daemon runs, sees every daemon alive and all agree on one leader, continuously for stableMs. */
  async waitSettled({ timeoutMs = 90_000, stableMs = 1500 } = {}): Promise<string> {
    const agreed = await waitForAgreement({ alive: this.daemons, stableMs, timeoutMs, intervalMs: 100, what: `the cluster to settle (stable for ${stableMs} ms)` });
    return agreed.leader;
  }

  async currentLeader(): Promise<Daemon> {
    const leader = await this.waitSettled({ stableMs: 0, timeoutMs: 30_000 });
    return this.daemons.find((d) => d.nodeId === leader) as Daemon;
  }

  private async kill(d: Daemon): Promise<void> {
    if (!d.running) return;
    d.thaw();
    d.kill('SIGKILL');
    await d.waitForExit(10_000).catch(() => undefined);
  }

  /** Kills the daemon if it runs, then starts it again, joining through a member that runs. */
  async restart(d: Daemon): Promise<void> {
    await this.kill(d);
    const via = this.daemons.find((o) => o !== d && o.running);
    await d.restart({ join: via ? [via.joinAddr] : [] });
    this.started(d);
  }

  /** Make sure all nodes run and agree; rebuild the cluster from scratch if that fails. */
  async ensureCluster(): Promise<void> {
    try {
      for (const d of this.daemons) if (!d.running) await this.restart(d);
      await this.waitSettled({ timeoutMs: 45_000 });
    } catch (err) {
      log(`cluster is not healthy (${(err as Error).message.slice(0, 400)}); starting a fresh one`);
      await Promise.all(this.daemons.map((d) => this.kill(d)));
      this.keepDirs = true; // keep the broken cluster's logs
      await this.startCluster();
    }
  }

  /** The leader, a non-leader (another one each trial) and everyone but that one. */
  private async pickVictim(trial: number): Promise<{ leader: Daemon; victim: Daemon; survivors: Daemon[] }> {
    const leader = await this.currentLeader();
    const candidates = this.daemons.filter((d) => d.nodeId !== leader.nodeId);
    const victim = candidates[trial % candidates.length] as Daemon;
    return { leader, victim, survivors: this.daemons.filter((d) => d !== victim) };
  }

  // ---- a kill, b stop, c leader ------------------------------------------------------------

  async kill9(trial: number): Promise<void> {
    const { victim, survivors } = await this.pickVictim(trial);
    const t0 = now();
    victim.kill('SIGKILL');
    const times = await firstTrueEach(survivors, async (d) => stateIn(await nodesOf(d), victim.nodeId) === 'dead', t0, { timeoutMs: 15_000 });
    const all = maxOrNull(times);
    this.results.sample('a', 'dead at all survivors', all);
    this.results.sample('a', 'dead at first survivor', minOrNull(times));
    log(`a#${trial + 1}: kill -9 ${victim.label} -> dead everywhere after ${fmtMs(all)} (per survivor: ${times.map(fmtMs).join(', ')})`);
    await this.restart(victim);
    await this.waitSettled();
  }

  async stop(trial: number): Promise<void> {
    const { victim, survivors } = await this.pickVictim(trial);
    const t0 = now();
    victim.freeze();
    let times: (number | null)[];
    try {
      const opts = { timeoutMs: 20_000, intervalMs: 10 };
      const suspect = firstTrueEach(survivors, async (d) => ['suspect', 'dead'].includes(stateIn(await nodesOf(d), victim.nodeId) ?? ''), t0, opts);
      const dead = firstTrueEach(survivors, async (d) => stateIn(await nodesOf(d), victim.nodeId) === 'dead', t0, opts);
      const [s, dd] = await Promise.all([suspect, dead]);
      times = dd;
      this.results.sample('b', 'suspect at all survivors', maxOrNull(s));
    } finally {
      victim.thaw();
      victim.kill('SIGKILL');
    }
    const all = maxOrNull(times);
    this.results.sample('b', 'dead at all survivors', all);
    log(`b#${trial + 1}: SIGSTOP ${victim.label} -> dead everywhere after ${fmtMs(all)} (per survivor: ${times.map(fmtMs).join(', ')})`);
    await this.restart(victim);
    await this.waitSettled();
  }

  async leaderKill(trial: number): Promise<void> {
    const victim = await this.currentLeader();
    const survivors = this.daemons.filter((d) => d !== victim);
    const t0 = now();
    victim.kill('SIGKILL');
    let agreedMs: number | null = null;
    let deadAllMs: number | null = null;
    let newLeader: string | null = null;
    const deadAt = new Map<Daemon, number>();
    await waitForOrNull(
      async () => {
        const views = await Promise.all(survivors.map((d) => nodesOf(d).catch(() => null)));
        const arrived = now() - t0;
        views.forEach((v, i) => {
          const d = survivors[i] as Daemon;
          if (v && stateIn(v, victim.nodeId) === 'dead' && !deadAt.has(d)) deadAt.set(d, arrived);
        });
        if (deadAllMs === null && deadAt.size === survivors.length) deadAllMs = Math.max(...deadAt.values());
        if (agreedMs === null && views.every(Boolean)) {
          const leaders = new Set((views as NodeView[][]).map(leaderIn));
          const [l] = leaders;
          if (leaders.size === 1 && l && l !== victim.nodeId) {
            agreedMs = arrived;
            newLeader = l;
          }
        }
        return agreedMs !== null && deadAllMs !== null;
      },
      { timeoutMs: 20_000, intervalMs: 10, paced: true },
    );
    this.results.sample('c', 'new leader agreed by all survivors', agreedMs);
    this.results.sample('c', 'old leader dead at all survivors', deadAllMs);
    log(`c#${trial + 1}: kill -9 leader ${victim.label} -> ${this.nameOf(newLeader)} agreed after ${fmtMs(agreedMs)}; dead everywhere after ${fmtMs(deadAllMs)}`);
    await this.restart(victim);
    await this.waitSettled();
  }

  // ---- d job ---------------------------------------------------------------------------

  async job(trial: number): Promise<void> {
    const origin = this.daemons[trial % this.daemons.length] as Daemon;
    const others = this.daemons.filter((d) => d !== origin);
    const name = `bench-job-${trial}-${randomBytes(3).toString('hex')}`;
    const t0 = now();
    await apiCall(origin, 'PUT', `/v1/jobs/${name}`, { spec: jobSpec({ cmd: 'true' }), replace: false }, 10_000);
    const tAck = now();
    const times = await firstTrueEach(others, (d) => apiOk(d, 'GET', `/v1/jobs/${name}`, undefined, 5000), tAck, { intervalMs: 5, timeoutMs: 10_000 });
    const all = maxOrNull(times);
    this.results.sample('d', 'PUT acknowledged (request -> response)', tAck - t0);
    this.results.sample('d', 'visible on all others, from the response', all);
    this.results.sample('d', 'visible on all others, from the request', all === null ? null : all + (tAck - t0));
    log(`d#${trial + 1}: job on ${origin.label}: ack ${fmtMs(tAck - t0)}, on all others ${fmtMs(all)} after the ack`);
    await apiOk(origin, 'DELETE', `/v1/jobs/${name}`, undefined, 5000);
  }

  // ---- e idle ---------------------------------------------------------------------------

  async idle(): Promise<void> {
    const clk = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    await this.waitSettled();
    const warm = this.opts.quick ? 2000 : 5000;
    log(`e: letting the cluster idle ${warm / 1000} s, then measuring CPU over ${this.opts.idleSeconds} s (no API calls meanwhile)`);
    // Measurement windows, not waits for a condition.
    await sleep(warm);
    const before = this.daemons.map((d) => ({ d, t: now(), ticks: processCpuTicks(d.pid) ?? 0 }));
    await sleep(this.opts.idleSeconds * 1000);
    const perNode = before.map(({ d, t, ticks }) => {
      const seconds = (now() - t) / 1000;
      const cpu = ((((processCpuTicks(d.pid) ?? ticks) - ticks) / clk / seconds) * 100);
      const rssMb = (processStatusKb(d.pid, 'VmRSS') ?? 0) / 1024;
      const hwmMb = (processStatusKb(d.pid, 'VmHWM') ?? 0) / 1024;
      this.results.sample('e', 'idle RSS per daemon (MB)', rssMb);
      this.results.sample('e', 'idle peak RSS (VmHWM) per daemon (MB)', hwmMb);
      this.results.sample('e', 'idle CPU per daemon (% of one core)', cpu);
      return { node: d.label, pid: d.pid, rssMb, hwmMb, cpuPercent: cpu };
    });
    this.results.bucket('e').extra.perNode = perNode;
    for (const p of perNode) log(`e: ${p.node}: RSS ${p.rssMb.toFixed(1)} MB (peak ${p.hwmMb.toFixed(1)}), CPU ${p.cpuPercent.toFixed(2)} %`);
    await this.waitSettled({ stableMs: 0 });
  }

  // ---- f false-dead -----------------------------------------------------------------------

  async falseDead(): Promise<void> {
    await this.waitSettled();
    const { soakSeconds, burners: burnerCount } = this.opts;
    log(`f: soak for ${soakSeconds} s with ${burnerCount} busy loop(s) (yes > /dev/null), polling /v1/nodes on every node every 100 ms`);
    const burners = Array.from({ length: burnerCount }, () => spawnTracked('yes', [], { kind: 'burner' }));
    const prev = new Map<string, string>(); // `${observer}>${subject}` -> state
    const prevLeader = new Map<string, string | null>();
    let deadReports = 0;
    let suspectReports = 0;
    let leaderChanges = 0;
    let pollErrors = 0;
    const events: Record<string, unknown>[] = [];
    const latencies: number[] = [];
    let polls = 0;
    const t0 = now();
    const atS = () => (now() - t0) / 1000;
    try {
      // A sampling loop over the soak window: one round of polls every 100 ms.
      while (now() - t0 < soakSeconds * 1000) {
        const started = now();
        await Promise.all(
          this.daemons.map(async (obs) => {
            const s = now();
            let view: NodeView[];
            try {
              view = await nodesWithin(obs, 5000);
            } catch (err) {
              pollErrors++;
              if (events.length < 200) events.push({ atS: atS(), observer: obs.label, error: (err as Error).message });
              return;
            }
            latencies.push(now() - s);
            polls++;
            for (const m of view) {
              if (m.nodeId === obs.nodeId) continue;
              const key = `${obs.label}>${m.nodeId}`;
              const before = prev.get(key) ?? 'alive';
              if (m.state !== before) {
                if (m.state === 'dead') deadReports++;
                if (m.state === 'suspect') suspectReports++;
                if (events.length < 200) events.push({ atS: atS(), observer: obs.label, subject: this.nameOf(m.nodeId), from: before, to: m.state });
                if (m.state === 'dead' || m.state === 'suspect') log(`f: ${obs.label} sees ${this.nameOf(m.nodeId)} ${m.state} (was ${before}) at ${atS().toFixed(1)} s`);
              }
              prev.set(key, m.state);
            }
            const l = leaderIn(view);
            if (prevLeader.has(obs.label) && prevLeader.get(obs.label) !== l) leaderChanges++;
            prevLeader.set(obs.label, l);
          }),
        );
        const wait = 100 - (now() - started);
        if (wait > 0) await sleep(wait);
      }
    } finally {
      for (const b of burners) signalPid(b.child.pid, 'SIGKILL');
    }
    const lat = summarize(latencies);
    this.results.sample('f', 'false dead reports', deadReports);
    this.results.sample('f', 'false suspect reports', suspectReports);
    this.results.sample('f', 'leader changes seen', leaderChanges);
    this.results.sample('f', 'failed /v1/nodes polls', pollErrors);
    this.results.sample('f', 'GET /v1/nodes latency p90 under load (ms)', lat.p90);
    this.results.sample('f', 'GET /v1/nodes latency max under load (ms)', lat.max);
    Object.assign(this.results.bucket('f').extra, { events, polls, latency: lat, soakSeconds, burners: burnerCount, loadavgAfter: loadavg() });
    log(`f: ${deadReports} false dead, ${suspectReports} suspect, ${leaderChanges} leader changes, ${pollErrors} failed polls over ${polls} polls; API latency p90 ${fmtMs(lat.p90)} max ${fmtMs(lat.max)}`);
  }

  // ---- g broadcast, i xargs ------------------------------------------------------------------

  /** Stores a job and waits until every node has it. */
  private async ensureJob(name: string, spec: JobSpec): Promise<void> {
    await apiCall(this.daemons[0] as Daemon, 'PUT', `/v1/jobs/${name}`, { spec, replace: true }, 15_000);
    const t0 = now();
    const ok = await firstTrueEach(this.daemons, (d) => apiOk(d, 'GET', `/v1/jobs/${name}`, undefined, 5000), t0, { timeoutMs: 15_000, intervalMs: 20 });
    if (ok.some((x) => x === null)) throw new Error(`job ${name} did not reach every node`);
  }

  private async broadcastTrial(trial: number, { cli }: { cli: boolean }): Promise<void> {
    const origin = this.daemons[trial % this.daemons.length] as Daemon;
    const leaderNow = leaderIn(await nodesOf(origin));
    const t0 = now();
    const created = await apiCall<InstanceView>(origin, 'POST', '/v1/jobs/bench-bcast/run', undefined, 15_000);
    const tResp = now();
    const id = created.id;
    const targets = created.targets?.length ?? this.daemons.length;
    if (cli) {
      const res = await origin.cli(['instance', 'wait', id, '--timeout', '30s'], { timeoutMs: 40_000 });
      const doneMs = res.exitedAt - tResp;
      this.results.sample('g', 'CLI `instance wait` exit, from the run response (ms, incl. CLI start)', res.exitCode === 0 ? doneMs : null);
      const show = await origin.cli(['instance', 'show', id, '--json'], { timeoutMs: 40_000 });
      this.results.sample('g', 'CLI `instance show ID --json` wall time (finished instance)', show.exitCode === 0 ? show.ms : null);
      log(`g#${trial + 1} (CLI): instance wait exited ${res.exitCode} ${fmtMs(doneMs)} after the run response; instance show took ${fmtMs(show.ms)}`);
      return;
    }
    // The CLI's own long-poll (chorus instance wait).
    const waited = await longPoll(origin.api, created, 30_000 - (now() - tResp), null);
    const arrivedAt = waited.timedOut ? null : now();
    const view = waited.view;
    let lines: StartLine[] = [];
    await waitForOrNull(
      () => {
        lines = startLines(this.bcastFile, (w) => w[2] === id);
        return lines.length >= targets;
      },
      { timeoutMs: 5000, intervalMs: 5 },
    );
    const maxStart = lines.length >= targets ? Math.max(...lines.map((l) => l.wallMs)) : null;
    const minStart = lines.length ? Math.min(...lines.map((l) => l.wallMs)) : null;
    const ok = view.status === 'succeeded';
    const isoMs = (x: string | null) => (x ? Date.parse(x) : null);
    const createdAt = isoMs(view.createdAt);
    const finishedAt = isoMs(view.finishedAt);
    const since = (x: number | null, base: number) => (x === null ? null : x - wallAt(base));
    const sample = (metric: string, value: number | null) => this.results.sample('g', metric, value);
    sample('run response (request -> response)', tResp - t0);
    sample('instance createdAt (daemon clock), from the run request', since(createdAt, t0));
    sample('instance finishedAt (daemon clock), from the run request', since(finishedAt, t0));
    sample('all started, from the run response', since(maxStart, tResp));
    sample('all started, from the run request', since(maxStart, t0));
    sample('first started, from the run request', since(minStart, t0));
    sample('`succeeded` seen by long-poll, from the run response', ok && arrivedAt !== null ? arrivedAt - tResp : null);
    sample('`succeeded` seen by long-poll, from the run request', ok && arrivedAt !== null ? arrivedAt - t0 : null);
    if (!ok) this.results.bucket('g').errors.push(`trial ${trial + 1}: instance ${id} ended ${view.status}`);
    log(
      `g#${trial + 1}: via ${origin.label}: response ${fmtMs(tResp - t0)}, ${lines.length}/${targets} started, last ${fmtMs(since(maxStart, tResp))} after the response; ` +
        `${view.status} seen ${fmtMs(arrivedAt === null ? null : arrivedAt - tResp)} after the response ` +
        `(daemon clock: created +${fmtMs(since(createdAt, t0))}, finished +${fmtMs(since(finishedAt, t0))} after the request; leader ${this.nameOf(leaderNow)})`,
    );
  }

  private async xargsTrial(trial: number, file: string): Promise<void> {
    const script = `printf '%s\\n' 1 2 3 4 5 | xargs -P 5 -I{} sh -c 'echo "$(date +%s%N) {} x${trial}" >> ${file}'`;
    const res = await runProcess('sh', ['-c', script], { timeoutMs: 20_000 });
    const lines = startLines(file, (w) => w[2] === `x${trial}`);
    const maxStart = lines.length === 5 ? Math.max(...lines.map((l) => l.wallMs)) : null;
    this.results.sample('i', 'xargs -P 5 (same command as g): all started, from spawn', maxStart === null ? null : maxStart - wallAt(res.startedAt));
    this.results.sample('i', 'xargs -P 5 (same command as g): all done, from spawn', res.exitCode === 0 ? res.ms : null);
    const t = await runProcess('sh', ['-c', `printf '%s\\n' 1 2 3 4 5 | xargs -P 5 -I{} sh -c 'true'`], { timeoutMs: 20_000 });
    this.results.sample('i', "xargs -P 5 sh -c 'true': all done, from spawn", t.exitCode === 0 ? t.ms : null);
    log(`i#${trial + 1}: xargs: all started ${fmtMs(maxStart === null ? null : maxStart - wallAt(res.startedAt))}, done ${fmtMs(res.ms)}; sh -c true x5: ${fmtMs(t.ms)}`);
  }

  async broadcast(withBroadcast: boolean, withXargs: boolean): Promise<void> {
    const root = this.clusterRoot ?? (await this.newRoot());
    this.bcastFile = join(root, 'bcast-starts.txt');
    const xargsFile = join(root, 'xargs-starts.txt');
    if (withBroadcast) {
      await this.ensureJob('bench-bcast', jobSpec({ cmd: `echo "$(date +%s%N) $CHORUS_NODE_ID $CHORUS_INSTANCE_ID" >> '${this.bcastFile}'`, timeoutMs: 30_000 }));
      await this.waitSettled({ stableMs: 500 });
    }
    // A short pause between trials, so one trial's tail does not overlap the next one.
    const gap = () => sleep(200);
    for (let t = 0; t < this.opts.trials; t++) {
      if (withBroadcast) {
        try {
          await this.broadcastTrial(t, { cli: false });
        } catch (err) {
          this.results.bucket('g').errors.push(`trial ${t + 1}: ${(err as Error).message}`);
          log(`g#${t + 1}: error: ${(err as Error).message}`);
        }
        await gap();
      }
      if (withXargs) {
        await this.xargsTrial(t, xargsFile);
        await gap();
      }
    }
    if (withBroadcast) {
      for (let t = 0; t < this.opts.trials; t++) {
        try {
          await this.broadcastTrial(t, { cli: true });
        } catch (err) {
          this.results.bucket('g').errors.push(`CLI trial ${t + 1}: ${(err as Error).message}`);
        }
        await gap();
      }
    }
  }

  // ---- h bcast-kill ----------------------------------------------------------------------

  async broadcastKill(trial: number): Promise<void> {
    if (trial === 0) await this.ensureJob('bench-long', jobSpec({ cmd: 'sleep 20', timeoutMs: 60_000 }));
    const { leader, victim } = await this.pickVictim(trial);
    const tReq = now();
    const r = await apiCall<InstanceView>(leader, 'POST', '/v1/jobs/bench-long/run', undefined, 15_000);
    this.results.sample('h', 'run response of a `sleep 20` broadcast, on the leader', now() - tReq);
    const id = r.id;
    const path = `/v1/instances/${encodeURIComponent(id)}`;
    const show = () => apiCall<InstanceView>(leader, 'GET', path, undefined, 5000);
    try {
      // All subtasks running (as the leader sees it) before the kill.
      const seen: { view: InstanceView | null } = { view: null };
      const running = await waitForOrNull(
        async () => {
          const v = (seen.view = await show());
          return v.subtasks.length === this.daemons.length && v.subtasks.every((s) => s.status === 'running');
        },
        { timeoutMs: 20_000, intervalMs: 20 },
      );
      if (!running) {
        const states = seen.view?.subtasks.map((s) => `${this.nameOf(s.nodeId)}=${s.status}`).join(' ') ?? 'no answer';
        throw new Error(`instance ${id}: not every subtask running after 20 s: ${states}`);
      }
      const t0 = now();
      victim.kill('SIGKILL');
      let reason: string | null = null;
      const [ms] = await firstTrueEach(
        [leader],
        async () => {
          const v = await show();
          const s = v.subtasks.find((x) => x.nodeId === victim.nodeId);
          if (s?.status === 'failed' || s?.status === 'succeeded' || s?.status === 'cancelled') reason = `${s.status}/${s.reason}`;
          return s?.status === 'failed' && s.reason === 'node-lost';
        },
        t0,
        { intervalMs: 10, timeoutMs: 15_000 },
      );
      this.results.sample('h', 'killed target `failed` node-lost at the leader', ms ?? null);
      log(`h#${trial + 1}: kill -9 ${victim.label} mid-broadcast -> node-lost at leader ${leader.label} after ${fmtMs(ms)}${ms === null ? ` (last: ${reason})` : ''}`);
    } finally {
      await apiOk(leader, 'POST', `${path}/cancel`, undefined, 5000);
      await waitForOrNull(async () => ['succeeded', 'failed', 'cancelled'].includes((await show()).status), { timeoutMs: 15_000, intervalMs: 50 });
    }
    await this.restart(victim);
    await this.waitSettled();
  }

  // ---- j startup -----------------------------------------------------------------------------

  async startup(): Promise<void> {
    for (let t = 0; t < this.opts.trials; t++) {
      const r = await runProcess(process.execPath, [RUN_JS, '--version'], { timeoutMs: 30_000 });
      this.results.sample('j', '`node bin/run.js --version` wall time', r.exitCode === 0 ? r.ms : null);
      if (existsSync(SEA)) {
        const s = await runProcess(SEA, ['--version'], { timeoutMs: 30_000 });
        this.results.sample('j', '`dist/chorus --version` wall time', s.exitCode === 0 ? s.ms : null);
        log(`j#${t + 1}: bin/run.js --version ${fmtMs(r.ms)} (exit ${r.exitCode}); dist/chorus --version ${fmtMs(s.ms)} (exit ${s.exitCode})`);
      } else {
        log(`j#${t + 1}: bin/run.js --version ${fmtMs(r.ms)} (exit ${r.exitCode}); no dist/chorus`);
      }
    }
  }
}

interface StartLine {
  wallMs: number;
  who: string;
}

/** Lines "NANOSECONDS WHO ..." of a start file that `filter` accepts (by their words). */
function startLines(file: string, filter: (words: string[]) => boolean): StartLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w.length >= 2 && filter(w))
    .map((w) => ({ wallMs: Number(BigInt(w[0] as string) / 1000n) / 1000, who: w[1] as string }));
}

