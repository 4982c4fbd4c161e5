// The worker's crash recovery against another node's verdict (guarantee 3 with the merge
// rule "the owner's own report outranks node-lost"): an attempt this node journalled as
// started ends with the owner's own report, whatever the record store held at restart.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../core/config.js';
import { silentLogger } from '../core/log.js';
import type { ExecutionRequest, ExecutionResult } from '../executor/executor.js';
import { HybridClock } from '../records/hlc.js';
import type { AnyRecord, InstanceRecord, JobSpec, SubtaskRecord } from '../records/types.js';
import { newSubtask } from '../scheduler/leader.js';
import { Journal } from '../store/journal.js';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import type { Logger } from '../core/log.js';
import { RecordStore } from '../store/record-store.js';
import { FakeClock } from '../testing/fake-clock.js';
import { Worker } from './worker.js';

const SELF = 'n-self';
const LEADER = 'n-leader';
const ID = 'i-0001';

const spec: JobSpec = { cmd: 'true', type: 'broadcast', schedule: null, tags: {}, timeoutMs: null, retries: 2, concurrency: 'allow', pre: null, post: null };

interface Setup {
  clock: FakeClock;
  store: RecordStore;
  journal: Journal;
  worker: Worker;
  runs: ExecutionRequest[];
  /** Resolves the command currently running (the fake executor holds it until then). */
  finishRun: (result: Partial<ExecutionResult>) => void;
}

let dir: string;
const started: Worker[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chorus-worker-'));
});

afterEach(async () => {
  for (const w of started.splice(0)) await w.stop(false);
  await rm(dir, { recursive: true, force: true });
});

function instance(): InstanceRecord {
  return { id: ID, job: 'j', spec, trigger: 'manual', scheduledAtMs: null, createdAtMs: 1000, targets: [LEADER, SELF].sort(), failure: null, cancelRequestedAtMs: null, stamp: { wallMs: 1000, counter: 0, nodeId: LEADER } };
}

function pending(): SubtaskRecord {
  return newSubtask(ID, SELF, { wallMs: 1000, counter: 1, nodeId: LEADER });
}

/** The leader's node-lost verdict on this node's attempt 1. */
function nodeLost(): SubtaskRecord {
  return { ...pending(), status: 'failed', reason: 'node-lost', startedAtMs: 1100, finishedAtMs: 1500, reporter: LEADER, stamp: { wallMs: 1500, counter: 0, nodeId: LEADER } };
}

function setup(log: Logger = silentLogger): Setup {
  const clock = new FakeClock(2000);
  const store = new RecordStore({ dataDir: null, flushDelayMs: 5 });
  const journal = new Journal(join(dir, 'journal.log'));
  journal.open();
  const runs: ExecutionRequest[] = [];
  let finish: ((r: ExecutionResult) => void) | null = null;
  const worker = new Worker({
    clock,
    config: defaultConfig,
    store,
    journal,
    hlc: new HybridClock(clock, SELF),
    selfId: SELF,
    dataDir: null,
    commit: (records: AnyRecord[]) => void store.apply(records),
    log,
    runCommand: (req) => {
      runs.push(req);
      return new Promise<ExecutionResult>((resolve) => {
        finish = resolve;
      });
    },
  });
  const finishRun = (result: Partial<ExecutionResult>) => {
    const base: ExecutionResult = { status: 'succeeded', reason: null, exitCode: 0, signal: null, stdout: '', stderr: '', stdoutDroppedBytes: 0, stderrDroppedBytes: 0, startedAtMs: clock.now(), finishedAtMs: clock.now(), spawnError: null };
    finish?.({ ...base, ...result });
  };
  return { clock, store, journal, worker, runs, finishRun };
}

function start(s: Setup): void {
  started.push(s.worker);
  s.worker.start();
}

/** A detached `sleep` standing for the command a crashed daemon left running. */
function leftoverProcess(attempt: number, extraEnv: Record<string, string> = {}): number {
  const child = spawn('/bin/sh', ['-c', 'sleep 30'], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, CHORUS_INSTANCE_ID: ID, CHORUS_ATTEMPT: String(attempt), ...extraEnv },
  });
  child.unref();
  return child.pid as number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('worker recovery after a crash', () => {
  it('a started attempt whose records were not on disk yet: the leftover is killed at start, and interrupted is reported once the record arrives', async () => {
    const s = setup();
    const pid = leftoverProcess(1);
    try {
      s.journal.recordStart(ID, 1, 1100);
      s.journal.recordSpawn(ID, 1, pid);
      start(s); // the store knows nothing of the instance
      await until(() => !alive(pid), 'the leftover process group to be killed');
      expect(s.journal.endOf(ID, 1)).toMatchObject({ status: 'failed', reason: 'interrupted' });

      // Anti-entropy brings the instance, with the leader's verdict on our attempt.
      s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: nodeLost() }]);
      await s.clock.advanceAsync(defaultConfig.workerTickMs * 2);
      expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, reporter: SELF });
      expect(s.runs).toEqual([]); // never started again (retries are allowed, but not after interrupted)
    } finally {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  it('a started attempt the store already holds as node-lost (the verdict came before the crash): recovered as interrupted, leftover killed', async () => {
    const s = setup();
    const pid = leftoverProcess(1);
    try {
      s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: nodeLost() }]);
      s.journal.recordStart(ID, 1, 1100);
      s.journal.recordSpawn(ID, 1, pid);
      start(s);
      await until(() => !alive(pid), 'the leftover process group to be killed');
      await s.clock.advanceAsync(defaultConfig.workerTickMs);
      expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, reporter: SELF });
      expect(s.runs).toEqual([]);
    } finally {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  it('a node-lost verdict that arrives while the attempt still runs here is replaced by the owner\'s result', async () => {
    const s = setup();
    start(s);
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: pending() }]);
    await s.clock.advanceAsync(defaultConfig.workerTickMs);
    expect(s.runs).toHaveLength(1);
    expect(s.store.subtask(ID, SELF)?.status).toBe('running');

    s.store.apply([{ kind: 'subtask', record: { ...nodeLost(), stamp: { wallMs: 999_999, counter: 0, nodeId: LEADER } } }]);
    expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'node-lost' });
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 2);
    expect(s.runs).toHaveLength(1); // the verdict neither stops nor restarts it

    s.finishRun({ status: 'succeeded', exitCode: 0 });
    await until(() => s.store.subtask(ID, SELF)?.status === 'succeeded', 'the owner\'s result');
    expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'succeeded', reason: null, attempt: 1, reporter: SELF });
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 2);
    expect(s.runs).toHaveLength(1);
  });

  it('another node\'s verdict on an attempt this node never started is left alone', async () => {
    const s = setup();
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: nodeLost() }]);
    start(s);
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 2);
    expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'node-lost', reporter: LEADER });
    expect(s.runs).toEqual([]);
    expect(s.journal.hasStarted(ID, 1)).toBe(false);
  });

  it('a corrupt journal: a subtask the records show running is reported interrupted, what is left of it is killed, and the journal is named', async () => {
    await writeFile(join(dir, 'journal.log'), randomBytes(4096));
    const lines: { msg: string; journal?: string; unreadableLines?: number }[] = [];
    const s = setup(pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) }));
    const running: SubtaskRecord = { ...pending(), status: 'running', startedAtMs: 1100, reporter: SELF, stamp: { wallMs: 1100, counter: 0, nodeId: SELF } };
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: running }]);
    const pid = leftoverProcess(1, { CHORUS_NODE_ID: SELF });
    try {
      start(s);
      await until(() => !alive(pid), 'the orphaned process group to be killed');
      expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, reporter: SELF });
      expect(s.journal.hasStarted(ID, 1)).toBe(true);
      const unreadable = lines.find((l) => l.unreadableLines !== undefined);
      expect(unreadable?.journal).toBe(join(dir, 'journal.log'));
      expect(unreadable?.unreadableLines).toBeGreaterThan(0);
      expect(unreadable?.msg).toMatch(/journal .* has \d+ line\(s\) that could not be read/);
      expect(lines.some((l) => /has no record of it; reported interrupted, killed process group/.test(l.msg))).toBe(true);
      await s.clock.advanceAsync(defaultConfig.workerTickMs * 2);
      expect(s.runs).toEqual([]); // never started again
    } finally {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
});
