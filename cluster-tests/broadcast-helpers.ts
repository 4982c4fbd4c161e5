// Helpers for the broadcast failure tests (broadcast-failures.test.ts): a cluster of real
// daemons, a job command that leaves evidence of every start in a shared history file,
// and polling of every survivor's own view of an instance.
//
// Everything is started through harness.ts, so the harness kills it when the test (or,
// from beforeAll, the file) ends, even on failure; job processes inherit the harness's
// process tag and are killed with their daemon. A daemon frozen with SIGSTOP is thawed
// (SIGCONT) before that SIGKILL by the afterEach/afterAll installed here.
import { EXIT } from '../src/api/client.js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, expect } from 'vitest';
import type { InstanceView, NodeView } from '../src/api/views.js';
import { checkBroadcasts, parseHistory, type HistoryLine } from '../src/testing/checker.js';
import {
  isProcessAlive,
  isProcessGroupAlive,
  readPidFile,
  startDaemon,
  tempDir,
  trackProcessGroup,
  waitFor,
  type CliResult,
  type DaemonHandle,
  type StartDaemonOptions,
} from './harness.js';

/** The CLI's exit codes, from the CLI itself (one definition). */
export { EXIT };

/** A single-quoted shell word (for paths inside --cmd). */
export const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function expectExit(r: CliResult, code: number): void {
  expect(r.exitCode, r.context).toBe(code);
}

/** Runs `ARGS --json` against a daemon; it must exit 0. Returns the JSON document. */
export async function okJson<T>(d: DaemonHandle, args: string[], timeoutMs?: number): Promise<T> {
  const r = await d.cli([...args, '--json'], { timeoutMs });
  expectExit(r, EXIT.ok);
  return r.json<T>();
}

/**
 * GET on a node's control API (what the CLI does, without starting a process: polling
 * through the CLI costs a Node start per probe, which a loaded 2-core machine feels).
 * Throws on any error, so it fits waitFor predicates.
 */
export async function apiGet<T>(n: Node, path: string): Promise<T> {
  const token = readFileSync(join(n.handle.dataDir, 'api-token'), 'utf8').trim();
  const res = await fetch(`${n.handle.info.api}${path}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${path} on ${n.label}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

const showInstance = (n: Node, id: string) => apiGet<InstanceView>(n, `/v1/instances/${encodeURIComponent(id)}`);

// ---- frozen daemons --------------------------------------------------------------------

const frozen = new Set<number>();

/** SIGSTOPs a daemon's own pid (its job processes, in their own groups, keep running). */
export function freeze(n: Node): void {
  frozen.add(n.handle.pid);
  process.kill(n.handle.pid, 'SIGSTOP');
}

/** SIGCONTs a daemon frozen with freeze(). */
export function thaw(n: Node): void {
  frozen.delete(n.handle.pid);
  try {
    process.kill(n.handle.pid, 'SIGCONT');
  } catch {
    // gone already
  }
}

function thawAll(): void {
  for (const pid of frozen) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone already
    }
  }
  frozen.clear();
}

let thawHooksInstalled = false;

/**
 * Call once at the top level of the file, AFTER useProcessCleanup(): vitest runs
 * afterEach hooks in reverse order, so frozen daemons are thawed before they are killed.
 */
export function useThawBeforeCleanup(): void {
  if (thawHooksInstalled) return;
  thawHooksInstalled = true;
  afterEach(thawAll);
  afterAll(thawAll);
  process.on('exit', thawAll);
}

// ---- a cluster ---------------------------------------------------------------------------

export interface Node {
  label: string;
  handle: DaemonHandle;
  /** The flags it was started with (data directory included), for a restart. */
  options: StartDaemonOptions & { dataDir: string };
}

export const nodeId = (n: Node) => n.handle.nodeId;

/** Starts a daemon again on the same data directory with the same flags. */
export async function restart(n: Node): Promise<void> {
  if (n.handle.running) throw new Error(`${n.label} (pid ${n.handle.pid}) is still running`);
  const before = n.handle.nodeId;
  n.handle = await startDaemon(n.options);
  expect(n.handle.nodeId, `${n.label} came back with another node id`).toBe(before);
}

/**
 * Starts one daemon per entry of `tags` (each entry: that node's --tag list): the first
 * alone, the others in parallel with --join to the first. Waits until every node sees
 * every other one alive and all name the same leader. Returns them sorted by node id
 * (so nodes[0] is the leader of a fresh cluster).
 */
export async function startCluster(prefix: string, tags: string[][]): Promise<Node[]> {
  const start = async (i: number, join: string[]): Promise<Node> => {
    const options = { name: `${prefix}${i + 1}`, tags: tags[i] ?? [], join };
    const handle = await startDaemon(options);
    return { label: options.name, handle, options: { ...options, dataDir: handle.dataDir } };
  };
  const seed = await start(0, []);
  const addr = seed.handle.info.multiaddrs.find((a) => a.startsWith('/ip4/127.0.0.1/')) ?? seed.handle.info.multiaddrs[0];
  if (!addr) throw new Error('the seed has no multiaddr');
  const rest = await Promise.all(tags.slice(1).map((_, i) => start(i + 1, [addr])));
  const nodes = [seed, ...rest].sort((a, b) => nodeId(a).localeCompare(nodeId(b)));
  await waitForMembers(nodes, { alive: nodes });
  return nodes;
}

/**
 * Polls `nodes --json` on each observer until it sees the `alive` nodes alive and the
 * `gone` ones in the given state, and all observers name one leader among the alive.
 * Returns the leader's node id.
 */
export async function waitForMembers(
  observers: Node[],
  spec: { alive: Node[]; gone?: { node: Node; state: 'dead' | 'left' }[]; timeoutMs?: number },
): Promise<string> {
  return waitFor(
    async () => {
      const views = await Promise.all(observers.map((o) => apiGet<NodeView[]>(o, '/v1/nodes')));
      const leaders = new Set<string | undefined>();
      views.forEach((view, i) => {
        const state = (n: Node) => view.find((m) => m.nodeId === nodeId(n))?.state;
        for (const n of spec.alive) if (state(n) !== 'alive') throw new Error(`${observers[i]?.label} sees ${n.label} ${state(n)}`);
        for (const g of spec.gone ?? []) if (state(g.node) !== g.state) throw new Error(`${observers[i]?.label} sees ${g.node.label} ${state(g.node)}`);
        const lead = view.filter((m) => m.leader);
        if (lead.length !== 1) throw new Error(`${observers[i]?.label} sees ${lead.length} leaders`);
        leaders.add(lead[0]?.nodeId);
      });
      const [leader] = [...leaders];
      if (leaders.size !== 1 || !spec.alive.some((n) => nodeId(n) === leader)) throw new Error(`leaders: ${[...leaders].join(', ')}`);
      return leader as string;
    },
    { timeoutMs: spec.timeoutMs ?? 30_000, intervalMs: 250, what: 'the members to agree on the membership and one leader' },
  );
}

export function logsOf(nodes: Node[], tailChars = 5000): string {
  return nodes.map((n) => `--- ${n.label} ${nodeId(n)} pid ${n.handle.pid} ---\n${n.handle.logs().slice(-tailChars)}`).join('\n');
}

// ---- the job command and its evidence -----------------------------------------------------

/**
 * A working directory for one scenario's jobs:
 *  - `history`: one line "node instance attempt" per start of a command (the checker's input),
 *  - `shards`: one line "node instance attempt shardIndex shardTotal" per start,
 *  - `started/NODE.INSTANCE.ATTEMPT`: exists once that attempt runs,
 *  - `pids/NODE.INSTANCE.ATTEMPT`: the shell's pid (= its process group id),
 *  - `release` releases every waiting command, `release.NODE` only that node's.
 */
export class Work {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Work> {
    const dir = await tempDir('chorus-bcast-');
    const work = new Work(dir);
    await mkdir(join(dir, 'started'));
    await mkdir(join(dir, 'pids'));
    return work;
  }

  get historyFile(): string {
    return join(this.dir, 'history');
  }

  /**
   * The shell command of a job: records its start, then (with `wait`) waits for a release
   * file, polling; `fail` is a shell condition under which it exits 1 right after
   * recording its start. The wait is capped at 120 s so nothing can loop forever.
   */
  cmd(opts: { wait?: boolean; fail?: string } = {}): string {
    const d = this.dir;
    const key = '"$CHORUS_NODE_ID.$CHORUS_INSTANCE_ID.$CHORUS_ATTEMPT"';
    return [
      `echo "$CHORUS_NODE_ID $CHORUS_INSTANCE_ID $CHORUS_ATTEMPT" >> ${sq(join(d, 'history'))}`,
      `echo "$CHORUS_NODE_ID $CHORUS_INSTANCE_ID $CHORUS_ATTEMPT $CHORUS_SHARD_INDEX $CHORUS_SHARD_TOTAL" >> ${sq(join(d, 'shards'))}`,
      `echo $$ > ${sq(d)}/pids/${key}`,
      `touch ${sq(d)}/started/${key}`,
      ...(opts.fail ? [`if ${opts.fail}; then exit 1; fi`] : []),
      ...(opts.wait
        ? [`i=0; while [ ! -f ${sq(join(d, 'release'))} ] && [ ! -f ${sq(d)}/release."$CHORUS_NODE_ID" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done`]
        : []),
      'exit 0',
    ].join('; ');
  }

  history(): HistoryLine[] {
    try {
      return parseHistory(readFileSync(this.historyFile, 'utf8'));
    } catch {
      return [];
    }
  }

  /** Raw history text ('' before the first start). */
  historyText(): string {
    try {
      return readFileSync(this.historyFile, 'utf8');
    } catch {
      return '';
    }
  }

  shards(): { nodeId: string; instanceId: string; attempt: number; index: number; total: number }[] {
    let text: string;
    try {
      text = readFileSync(join(this.dir, 'shards'), 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length === 5 && f.every((x) => x !== ''))
      .map(([nodeId, instanceId, attempt, index, total]) => ({
        nodeId: nodeId as string,
        instanceId: instanceId as string,
        attempt: Number(attempt),
        index: Number(index),
        total: Number(total),
      }));
  }

  started(node: string, instanceId: string, attempt = 1): boolean {
    return existsSync(join(this.dir, 'started', `${node}.${instanceId}.${attempt}`));
  }

  /** Waits until each of the nodes has started its attempt of the instance. */
  async waitStarted(nodes: string[], instanceId: string, attempt = 1, timeoutMs = 30_000): Promise<void> {
    await waitFor(() => nodes.every((n) => this.started(n, instanceId, attempt)), {
      timeoutMs,
      intervalMs: 100,
      what: `attempt ${attempt} of ${instanceId} to start on ${nodes.join(', ')} (started: ${this.startedKeys().join(', ') || 'none'})`,
    });
  }

  startedKeys(): string[] {
    try {
      return readdirSync(join(this.dir, 'started'));
    } catch {
      return [];
    }
  }

  /** The process group of a started attempt (tracked, so it is killed when the test ends). */
  async pgid(node: string, instanceId: string, attempt = 1): Promise<number> {
    const pgid = await waitFor(() => readPidFile(join(this.dir, 'pids', `${node}.${instanceId}.${attempt}`)), {
      timeoutMs: 20_000,
      what: `the pid file of ${node} ${instanceId} ${attempt}`,
    });
    trackProcessGroup(pgid);
    return pgid;
  }

  async release(node?: string): Promise<void> {
    await writeFile(join(this.dir, node === undefined ? 'release' : `release.${node}`), '');
  }
}

/** Waits until a process group has no live member. */
export async function waitGroupGone(pgid: number, what: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(() => !isProcessGroupAlive(pgid), { timeoutMs, what: `${what} (process group ${pgid}) to be gone` });
}

export { isProcessAlive, isProcessGroupAlive };

// ---- instances ----------------------------------------------------------------------------

/** `job run NAME --json` on a node: the created instance (not waited for). */
export async function runJob(n: Node, job: string): Promise<InstanceView> {
  return okJson<InstanceView>(n.handle, ['job', 'run', job]);
}

export const subtaskOf = (i: InstanceView, node: string) => {
  const s = i.subtasks.find((x) => x.nodeId === node);
  if (!s) throw new Error(`instance ${i.id} has no subtask for ${node}: ${JSON.stringify(i.subtasks)}`);
  return s;
};

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Polls `instance show ID` on every observer until `accept` holds for each view; returns
 * the views (in observer order).
 */
export async function waitForInstance(
  observers: Node[],
  id: string,
  accept: (i: InstanceView) => boolean,
  opts: { timeoutMs?: number; what?: string } = {},
): Promise<InstanceView[]> {
  let last: InstanceView[] = [];
  try {
    return await waitFor(
      async () => {
        last = await Promise.all(observers.map((o) => showInstance(o, id)));
        return last.every(accept) ? last : null;
      },
      { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 200, what: opts.what ?? `instance ${id} on ${observers.map((o) => o.label).join(', ')}` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast views:\n${last.map((v) => summarize(v)).join('\n')}`, { cause: err });
  }
}

/**
 * Waits until the instance has ended on every observer and all of them hold the same
 * result (the owner's report may arrive after another node's verdict); returns it as
 * `chorus instance show ID --json` prints it on each observer (all equal).
 */
export async function waitForEnd(observers: Node[], id: string, timeoutMs = 30_000): Promise<InstanceView> {
  await waitForInstance(observers, id, (i) => FINISHED.has(i.status), {
    timeoutMs,
    what: `instance ${id} to end on ${observers.map((o) => o.label).join(', ')}`,
  });
  let last: InstanceView[] = [];
  try {
    await waitFor(
      async () => {
        last = await Promise.all(observers.map((o) => showInstance(o, id)));
        return new Set(last.map(resultKey)).size === 1 && last.every((v) => FINISHED.has(v.status));
      },
      { timeoutMs, intervalMs: 250, what: `the observers to agree on the result of ${id}` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast views:\n${last.map((v) => summarize(v)).join('\n')}`, { cause: err });
  }
  // The CLI prints what the API holds.
  const printed = await okJson<InstanceView>((observers[0] as Node).handle, ['instance', 'show', id]);
  expect(resultKey(printed), summarize(printed)).toBe(resultKey(last[0] as InstanceView));
  return printed;
}

/** The instance as a node's API shows it now. */
export function instanceOn(n: Node, id: string): Promise<InstanceView> {
  return showInstance(n, id);
}

/** What must be the same everywhere once an instance has converged. */
export function resultKey(i: InstanceView): string {
  return JSON.stringify([i.status, i.targets, i.subtasks.map((s) => [s.nodeId, s.status, s.reason, s.attempt, s.exitCode, s.history.length])]);
}

export function summarize(i: InstanceView): string {
  return `${i.id} ${i.status} ${i.subtasks.map((s) => `${s.nodeId.slice(-6)}:${s.status}/${s.reason}#${s.attempt}`).join(' ')}`;
}

/** Every instance of a job, as a node lists them (`instance list --job JOB`, through the API). */
export async function instancesOf(n: Node, job: string): Promise<InstanceView[]> {
  return apiGet<InstanceView[]>(n, `/v1/instances?job=${encodeURIComponent(job)}&limit=1000`);
}

/** Runs the checker and expects no violation. */
export function expectChecked(work: Work, instances: InstanceView[], survivors: string[], expectedInstances: string[]): void {
  const violations = checkBroadcasts({
    history: work.history(),
    instances,
    survivors: new Set(survivors),
    expectedInstances,
  });
  expect(violations, `history:\n${work.historyText()}\ninstances:\n${instances.map(summarize).join('\n')}`).toEqual([]);
}

/** History lines of one node for one instance. */
export function runsOf(work: Work, node: string, instanceId: string): number[] {
  return work
    .history()
    .filter((l) => l.nodeId === node && l.instanceId === instanceId)
    .map((l) => l.attempt);
}
