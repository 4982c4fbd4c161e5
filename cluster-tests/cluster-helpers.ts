// Helpers for multi-process cluster tests: a set of `chorus daemon` processes that can be
// killed and restarted on the same data directory with the same flags, and polling of
// every member's own view (`chorus nodes --json`) until they agree.
//
// Everything goes through harness.ts (startDaemon, cli, waitFor), so every process
// started here is tracked and killed by useProcessCleanup(), even when a test fails.
// Scope follows the harness: a daemon (re)started inside a test is killed when the
// test ends; one (re)started in beforeAll lives until the file ends.
import { EXIT } from '../src/api/client.js';
import { expect } from 'vitest';
import type { StatusView } from '../src/api/control-plane.js';
import type { JobView, NodeView } from '../src/api/views.js';
import type { MemberState } from '../src/cluster/view.js';
import { startDaemon, waitFor, type CliResult, type DaemonHandle, type StartDaemonOptions } from './harness.js';

const TRACE = process.env.CLUSTER_TEST_TRACE === '1';
const traceStart = Date.now();

/** With CLUSTER_TEST_TRACE=1, prints a timestamped progress line to stderr (to see where time goes). */
export function trace(message: string): void {
  if (TRACE) process.stderr.write(`[cluster-test +${((Date.now() - traceStart) / 1000).toFixed(1)}s] ${message}\n`);
}

/** The CLI's exit codes, from the CLI itself (one definition). */
export { EXIT };

export function expectExit(r: CliResult, code: number): void {
  expect(r.exitCode, r.context).toBe(code);
}

/** Runs a CLI command with --json against a daemon; it must exit 0. Returns the JSON document. */
export async function okJson<T>(d: DaemonHandle, args: string[], timeoutMs?: number): Promise<T> {
  const r = await d.cli([...args, '--json'], { timeoutMs });
  expectExit(r, EXIT.ok);
  return r.json<T>();
}

/**
 * Like okJson but throws a plain Error instead of failing an assertion, so it can be
 * used inside a waitFor predicate (where a throw means "not yet").
 */
export async function tryJson<T>(d: DaemonHandle, args: string[], timeoutMs = 20_000): Promise<T> {
  const r = await d.cli([...args, '--json'], { timeoutMs });
  if (r.exitCode !== EXIT.ok) throw new Error(`command failed:\n${r.context}`);
  return r.json<T>();
}

/** One member of a test cluster: its current process and how to start it again. */
export class Member {
  constructor(
    readonly label: string,
    /** The flags it was first started with (data directory included): a restart reuses them. */
    readonly options: StartDaemonOptions & { dataDir: string },
    public handle: DaemonHandle,
  ) {}

  get nodeId(): string {
    return this.handle.nodeId;
  }

  get running(): boolean {
    return this.handle.running;
  }

  /** A multiaddr to join through, from its own node.json. */
  get joinAddr(): string {
    const addr = this.handle.info.multiaddrs.find((a) => a.startsWith('/ip4/127.0.0.1/')) ?? this.handle.info.multiaddrs[0];
    if (!addr) throw new Error(`${this.label} has no multiaddr in node.json`);
    return addr;
  }

  /** Starts the daemon again on the same data directory with the same flags (plus `overrides`). */
  async restart(overrides: StartDaemonOptions = {}): Promise<DaemonHandle> {
    if (this.handle.running) throw new Error(`${this.label} (pid ${this.handle.pid}) is still running`);
    const previous = this.handle;
    trace(`restarting ${this.label}`);
    this.handle = await startDaemon({ ...this.options, ...overrides, dataDir: this.options.dataDir });
    expect(this.handle.nodeId, `${this.label} restarted on ${this.options.dataDir} with another node id`).toBe(previous.nodeId);
    return this.handle;
  }

  cli(args: string[], opts?: Parameters<DaemonHandle['cli']>[1]): Promise<CliResult> {
    return this.handle.cli(args, opts);
  }

  /** stdout+stderr of the current process, for failure messages. */
  logs(): string {
    return this.handle.logs();
  }
}

export async function startMember(label: string, opts: StartDaemonOptions = {}): Promise<Member> {
  trace(`starting ${label}`);
  const handle = await startDaemon({ name: label, ...opts });
  return new Member(label, { name: label, ...opts, dataDir: handle.dataDir }, handle);
}

/**
 * Starts `count` daemons: the first alone (the seed), every other one with
 * `--join <the seed's multiaddr>` only.
 */
export async function startThroughSeed(count: number, prefix = 'n'): Promise<Member[]> {
  const seed = await startMember(`${prefix}1`);
  const members = [seed];
  for (let i = 2; i <= count; i++) members.push(await startMember(`${prefix}${i}`, { join: [seed.joinAddr] }));
  return members;
}

export interface Agreement {
  leader: string;
  /** Each observer's `nodes --json`, by the observer's node id. */
  views: Map<string, NodeView[]>;
}

export interface AgreementSpec {
  /** Members whose views are polled (default: `alive`). */
  observers?: Member[];
  /** Members every observer must see `alive`. */
  alive: Member[];
  /** Members every observer must see in the given state (e.g. dead, left). */
  gone?: { member: Member; state: MemberState }[];
  /**
   * Whether other member records (earlier test nodes that are gone for good) may appear;
   * they must then be dead or left, never alive or suspect. Default false: exactly these.
   */
  allowOthersGone?: boolean;
  /** The agreed leader must not be this node id. */
  notLeader?: string;
  timeoutMs?: number;
  what?: string;
}

/** Why an observer's view does not (yet) match, or null if it does. */
function mismatch(view: NodeView[], spec: AgreementSpec): string | null {
  const byId = new Map(view.map((n) => [n.nodeId, n]));
  for (const m of spec.alive) {
    const n = byId.get(m.nodeId);
    if (!n) return `${m.label} missing`;
    if (n.state !== 'alive') return `${m.label} is ${n.state}`;
  }
  for (const { member, state } of spec.gone ?? []) {
    const n = byId.get(member.nodeId);
    if (!n) return `${member.label} missing`;
    if (n.state !== state) return `${member.label} is ${n.state}, not ${state}`;
  }
  const known = new Set([...spec.alive, ...(spec.gone ?? []).map((g) => g.member)].map((m) => m.nodeId));
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
 * Polls `nodes --json` on every observer until they all show the expected members in the
 * expected states and name the same single leader, which is one of the alive members.
 */
export async function waitForAgreement(spec: AgreementSpec): Promise<Agreement> {
  const observers = spec.observers ?? spec.alive;
  const aliveIds = new Set(spec.alive.map((m) => m.nodeId));
  trace(`waiting: ${spec.what ?? 'agreement'}`);
  const agreed = await waitFor(
    async () => {
      const views = new Map<string, NodeView[]>();
      const results = await Promise.all(observers.map(async (o) => [o, await tryJson<NodeView[]>(o.handle, ['nodes'])] as const));
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
    },
    { timeoutMs: spec.timeoutMs ?? 30_000, intervalMs: 250, what: spec.what ?? 'the members to agree on the membership and one leader' },
  );
  trace(`agreed: leader ${agreed.leader.slice(-6)}`);
  return agreed;
}

/** `status --json` of a member. */
export function statusOf(m: Member): Promise<StatusView> {
  return tryJson<StatusView>(m.handle, ['status']);
}

/** A job as `job list --json` shows it, minus what the reader computes from its own clock. */
export type JobState = Omit<JobView, 'nextRunAt'>;

/**
 * `job list --json` of a member, without `nextRunAt`: that one is computed from the
 * reader's clock (it moves when a schedule boundary passes), not replicated state.
 */
export async function jobsOf(m: Member): Promise<JobState[]> {
  return (await tryJson<JobView[]>(m.handle, ['job', 'list'])).map(({ nextRunAt: _next, ...rest }) => rest);
}

/** Names of the jobs a member lists. */
export async function jobNamesOf(m: Member): Promise<string[]> {
  return (await jobsOf(m)).map((j) => j.name).sort();
}

/**
 * Restarts every member whose process is not running (same data directory, same flags)
 * and waits until all of them agree again. Call it from beforeAll to give the restarted
 * daemons the file's lifetime. Members are restarted one at a time so each rejoins
 * through the live ones.
 */
export async function heal(members: Member[], opts: { timeoutMs?: number } = {}): Promise<Agreement> {
  for (const m of members) if (!m.running) await m.restart();
  return waitForAgreement({ alive: members, allowOthersGone: true, timeoutMs: opts.timeoutMs ?? 30_000, what: 'the healed cluster to agree' });
}

/** The members that are not `exclude`d, in order. */
export function others(members: Member[], ...exclude: Member[]): Member[] {
  const skip = new Set(exclude.map((m) => m.nodeId));
  return members.filter((m) => !skip.has(m.nodeId));
}

/** The member with this node id. */
export function memberById(members: Member[], nodeId: string): Member {
  const m = members.find((x) => x.nodeId === nodeId);
  if (!m) throw new Error(`no member with node id ${nodeId}`);
  return m;
}

/** Logs of several members (the tails), for an assertion message. */
export function logsOf(members: Member[], tailChars = 6000): string {
  return members.map((m) => `--- ${m.label} (${m.nodeId}) ---\n${m.logs().slice(-tailChars)}`).join('\n');
}
