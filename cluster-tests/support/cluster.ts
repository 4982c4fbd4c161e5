// A cluster of daemons: started through one seed, polled until every member's own view
// (GET /v1/nodes, what `chorus nodes --json` prints) agrees, healed after kills. No vitest.
import { join } from 'node:path';
import type { NodeView } from '../../src/api/views.js';
import type { MemberState } from '../../src/cluster/view.js';
import { nodesOf } from './api.js';
import { Daemon, type StartDaemonOptions } from './daemon.js';
import { waitFor } from './wait.js';

const TRACE = process.env.CLUSTER_TEST_TRACE === '1';
const traceStart = Date.now();

/** With CLUSTER_TEST_TRACE=1, prints a timestamped progress line to stderr (to see where time goes). */
export function trace(message: string): void {
  if (TRACE) process.stderr.write(`[cluster-test +${((Date.now() - traceStart) / 1000).toFixed(1)}s] ${message}\n`);
}

export interface ClusterOptions {
  /** Labels (and --name) are PREFIX1, PREFIX2, ... */
  prefix: string;
  /** How many daemons; default: one per entry of `tags`. */
  count?: number;
  /** Each node's --tag list, by position. */
  tags?: string[][];
  /** Start the nodes after the seed all at once instead of one after the other. */
  parallel?: boolean;
  /** Put each data directory under this folder (named by the label) instead of a new temporary one. */
  root?: string;
  /** More flags for every daemon. */
  daemon?: StartDaemonOptions;
  /** Called as each daemon is ready. */
  onStarted?: (d: Daemon) => void;
}

/**
 * Starts the daemons: the seed alone, every other one with `--join <the seed's
 * multiaddr>` only. Returns them in label order; does not wait for them to agree.
 */
export async function startCluster(opts: ClusterOptions): Promise<Daemon[]> {
  const count = opts.count ?? opts.tags?.length ?? 0;
  if (count < 1) throw new Error('startCluster: no nodes');
  const start = async (i: number, joinAddrs: string[]) => {
    const name = `${opts.prefix}${i + 1}`;
    trace(`starting ${name}`);
    const d = await Daemon.start({
      ...opts.daemon,
      name,
      tags: opts.tags?.[i] ?? [],
      join: joinAddrs,
      ...(opts.root === undefined ? {} : { dataDir: join(opts.root, name) }),
    });
    opts.onStarted?.(d);
    return d;
  };
  const seed = await start(0, []);
  const rest: Daemon[] = [];
  if (opts.parallel) {
    rest.push(...(await Promise.all(Array.from({ length: count - 1 }, (_, i) => start(i + 1, [seed.joinAddr])))));
  } else {
    for (let i = 1; i < count; i++) rest.push(await start(i, [seed.joinAddr]));
  }
  return [seed, ...rest];
}

/** The daemons sorted by node id (so [0] is the leader of a fresh cluster). */
export function sortById(daemons: Daemon[]): Daemon[] {
  return [...daemons].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}

export interface Agreement {
  leader: string;
  /** Each observer's view (`nodes --json`), by the observer's node id. */
  views: Map<string, NodeView[]>;
}

export interface AgreementSpec {
  /** Daemons whose views are polled (default: `alive`). */
  observers?: Daemon[];
  /** Daemons every observer must see `alive`. */
  alive: Daemon[];
  /** Daemons every observer must see in the given state (e.g. dead, left). */
  gone?: { daemon: Daemon; state: MemberState }[];
  /**
   * Whether other member records (earlier nodes that are gone for good) may appear;
   * they must then be dead or left, never alive or suspect. Default false: exactly these.
   */
  allowOthersGone?: boolean;
  /** The agreed leader must not be this node id. */
  notLeader?: string;
  /**
   * Restarted daemons every observer must see with an incarnation above the given one: a
   * connection shows a restarted node alive a moment before its new member record arrives.
   */
  newIncarnation?: { daemon: Daemon; above: number }[];
  /** The agreement must hold without a break for this long (default 0: once is enough). */
  stableMs?: number;
  timeoutMs?: number;
  /** Time between two rounds of probes (default 250 ms). */
  intervalMs?: number;
  what?: string;
}

/** Why an observer's view does not (yet) match, or null if it does. */
function mismatch(view: NodeView[], spec: AgreementSpec): string | null {
  const byId = new Map(view.map((n) => [n.nodeId, n]));
  for (const d of spec.alive) {
    const n = byId.get(d.nodeId);
    if (!n) return `${d.label} missing`;
    if (n.state !== 'alive') return `${d.label} is ${n.state}`;
  }
  for (const { daemon, state } of spec.gone ?? []) {
    const n = byId.get(daemon.nodeId);
    if (!n) return `${daemon.label} missing`;
    if (n.state !== state) return `${daemon.label} is ${n.state}, not ${state}`;
  }
  for (const { daemon, above } of spec.newIncarnation ?? []) {
    const n = byId.get(daemon.nodeId);
    if (n && n.incarnation <= above) return `${daemon.label} still has incarnation ${n.incarnation}`;
  }
  const known = new Set([...spec.alive, ...(spec.gone ?? []).map((g) => g.daemon)].map((d) => d.nodeId));
  for (const n of view) {
    if (known.has(n.nodeId)) continue;
    if (!spec.allowOthersGone) return `unexpected member ${n.nodeId} (${n.name}, ${n.state})`;
    if (n.state !== 'dead' && n.state !== 'left') return `other member ${n.nodeId} (${n.name}) is ${n.state}`;
  }
  const leaders = view.filter((n) => n.leader);
  if (leaders.length !== 1) return `${leaders.length} leaders: ${leaders.map((n) => n.name).join(', ')}`;
  return null;
}

/**
 * Polls every observer's view until they all show the expected members in the expected
 * states and name the same single leader, which is one of the alive members.
 */
export async function waitForAgreement(spec: AgreementSpec): Promise<Agreement> {
  const observers = spec.observers ?? spec.alive;
  const aliveIds = new Set(spec.alive.map((d) => d.nodeId));
  const stableMs = spec.stableMs ?? 0;
  let agreedSince: number | null = null;
  trace(`waiting: ${spec.what ?? 'agreement'}`);
  const agreed = await waitFor(
    async () => {
      let result: Agreement;
      try {
        result = await agreementNow(observers, aliveIds, spec);
      } catch (err) {
        agreedSince = null;
        throw err;
      }
      agreedSince ??= Date.now();
      return Date.now() - agreedSince >= stableMs ? result : null;
    },
    { timeoutMs: spec.timeoutMs ?? 30_000, intervalMs: spec.intervalMs ?? 250, what: spec.what ?? 'the members to agree on the membership and one leader' },
  );
  trace(`agreed: leader ${agreed.leader.slice(-6)}`);
  return agreed;
}

async function agreementNow(observers: Daemon[], aliveIds: Set<string>, spec: AgreementSpec): Promise<Agreement> {
  const down = observers.filter((o) => !o.running);
  if (down.length > 0) throw new Error(`not running: ${down.map((o) => o.label).join(', ')}`);
  const views = new Map<string, NodeView[]>();
  const results = await Promise.all(observers.map(async (o) => [o, await nodesOf(o)] as const));
  const problems: string[] = [];
  for (const [o, view] of results) {
    views.set(o.nodeId, view);
    const why = mismatch(view, spec);
    if (why) problems.push(`${o.label} sees: ${why}`);
  }
  const leaderIds = new Set(results.map(([, view]) => view.find((n) => n.leader)?.nodeId));
  if (problems.length === 0 && leaderIds.size !== 1) problems.push(`leaders differ: ${[...leaderIds].join(', ')}`);
  const leader = [...leaderIds][0];
  if (problems.length === 0 && (leader === undefined || !aliveIds.has(leader))) problems.push(`leader ${leader} is not an alive member`);
  if (problems.length === 0 && leader === spec.notLeader) problems.push(`leader is still ${leader}`);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return { leader: leader as string, views };
}

/**
 * Restarts every daemon whose process is not running (same data directory, same flags)
 * and waits until all of them agree again. Call it from beforeAll to give the restarted
 * daemons the file's lifetime. Daemons are restarted one at a time so each rejoins
 * through the live ones.
 */
export async function heal(daemons: Daemon[], opts: Omit<AgreementSpec, 'alive'> = {}): Promise<Agreement> {
  for (const d of daemons) {
    if (d.running) continue;
    trace(`restarting ${d.label}`);
    await d.restart();
  }
  return waitForAgreement({ allowOthersGone: true, timeoutMs: 30_000, what: 'the healed cluster to agree', ...opts, alive: daemons });
}

/** The daemons that are not `exclude`d, in order. */
export function others(daemons: Daemon[], ...exclude: Daemon[]): Daemon[] {
  const skip = new Set(exclude.map((d) => d.nodeId));
  return daemons.filter((d) => !skip.has(d.nodeId));
}

/** The daemon with this node id. */
export function byId(daemons: Daemon[], nodeId: string): Daemon {
  const d = daemons.find((x) => x.nodeId === nodeId);
  if (!d) throw new Error(`no daemon with node id ${nodeId}`);
  return d;
}

/** Output of several daemons (the tails), for an assertion message. */
export function logsOf(daemons: Daemon[], tailChars = 6000): string {
  return daemons.map((d) => `--- ${d.label} ${d.nodeId} pid ${d.pid} ---\n${d.logs().slice(-tailChars)}`).join('\n');
}
