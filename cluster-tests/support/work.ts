// Broadcast evidence: a job command that leaves a trace of every start in a shared
// folder, and polling of every observer's own view of an instance. No vitest here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InstanceView, SubtaskView } from '../../src/api/views.js';
import { parseHistory, type HistoryLine } from '../../src/testing/checker.js';
import { instanceOn } from './api.js';
import { sq } from './cli.js';
import { readPidFile, type Daemon } from './daemon.js';
import { isProcessGroupAlive, tempDir, trackProcessGroup } from './processes.js';
import { waitFor } from './wait.js';

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
    return parseHistory(this.historyText());
  }

  /** Raw history text ('' before the first start). */
  historyText(): string {
    return readOr(this.historyFile, '');
  }

  shards(): { nodeId: string; instanceId: string; attempt: number; index: number; total: number }[] {
    return readOr(join(this.dir, 'shards'), '')
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
    return jobProcessGroup(join(this.dir, 'pids', `${node}.${instanceId}.${attempt}`), `the pid file of ${node} ${instanceId} ${attempt}`);
  }

  async release(node?: string): Promise<void> {
    await writeFile(join(this.dir, node === undefined ? 'release' : `release.${node}`), '');
  }
}

/** History lines of one node for one instance: the attempts it started. */
export function runsOf(work: Work, node: string, instanceId: string): number[] {
  return work
    .history()
    .filter((l) => l.nodeId === node && l.instanceId === instanceId)
    .map((l) => l.attempt);
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** Waits for the pid file a job wrote (`echo $$ > FILE`) and makes sure its group dies with the test. */
export async function jobProcessGroup(pidFile: string, what = `the job to write ${pidFile}`, timeoutMs = 20_000): Promise<number> {
  const pgid = await waitFor(() => readPidFile(pidFile), { timeoutMs, what });
  trackProcessGroup(pgid);
  return pgid;
}

/** Waits until a process group has no live member. */
export async function waitGroupGone(pgid: number, what: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(() => !isProcessGroupAlive(pgid), { timeoutMs, what: `${what} (process group ${pgid}) to be gone` });
}

// ---- instances --------------------------------------------------------------------------

export function subtaskOf(i: InstanceView, node: string): SubtaskView {
  const s = i.subtasks.find((x) => x.nodeId === node);
  if (!s) throw new Error(`instance ${i.id} has no subtask for ${node}: ${JSON.stringify(i.subtasks)}`);
  return s;
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

export const isFinished = (i: InstanceView): boolean => FINISHED.has(i.status);

/** What must be the same everywhere once an instance has converged. */
export function resultKey(i: InstanceView): string {
  return JSON.stringify([i.status, i.targets, i.subtasks.map((s) => [s.nodeId, s.status, s.reason, s.attempt, s.exitCode, s.history.length])]);
}

export function summarize(i: InstanceView): string {
  return `${i.id} ${i.status} ${i.subtasks.map((s) => `${s.nodeId.slice(-6)}:${s.status}/${s.reason}#${s.attempt}`).join(' ')}`;
}

/** Polls the instance on every observer until `accept` holds for the views; returns them (in observer order). */
async function pollViews(
  observers: Daemon[],
  id: string,
  accept: (views: InstanceView[]) => boolean,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string },
): Promise<InstanceView[]> {
  let last: InstanceView[] = [];
  try {
    return await waitFor(
      async () => {
        last = await Promise.all(observers.map((o) => instanceOn(o, id)));
        return accept(last) ? last : null;
      },
      { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: opts.intervalMs ?? 200, what: opts.what ?? `instance ${id} on ${observers.map((o) => o.label).join(', ')}` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast views:\n${last.map((v) => summarize(v)).join('\n')}`, { cause: err });
  }
}

/** Polls the instance on every observer until `accept` holds for each view; returns the views (in observer order). */
export function waitForInstance(
  observers: Daemon[],
  id: string,
  accept: (i: InstanceView) => boolean,
  opts: { timeoutMs?: number; what?: string } = {},
): Promise<InstanceView[]> {
  return pollViews(observers, id, (views) => views.every(accept), opts);
}

/**
 * Waits until the instance has ended on every observer and all of them hold the same
 * result (the owner's report may arrive after another node's verdict); returns the views.
 */
export async function waitForConverged(observers: Daemon[], id: string, timeoutMs = 30_000): Promise<InstanceView[]> {
  await waitForInstance(observers, id, isFinished, { timeoutMs, what: `instance ${id} to end on ${observers.map((o) => o.label).join(', ')}` });
  return pollViews(observers, id, (views) => new Set(views.map(resultKey)).size === 1 && views.every(isFinished), {
    timeoutMs,
    intervalMs: 250,
    what: `the observers to agree on the result of ${id}`,
  });
}
