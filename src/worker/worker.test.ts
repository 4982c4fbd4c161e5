// The worker's crash recovery (guarantee 3) against another node's verdict (the merge
// rule "the owner's own report outranks node-lost") and against a lost or corrupt journal:
// an attempt this node started ends with the owner's own report and never runs again.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { silentLogger } from '../core/log.js';
import type { ExecutionRequest, ExecutionResult } from '../executor/executor.js';
import { HybridClock } from '../records/hlc.js';
import type { AnyRecord, InstanceRecord, JobSpec, StepRecord, SubtaskRecord } from '../records/types.js';
import { newSubtask } from '../scheduler/leader.js';
import { FileJournal } from '../store/journal.js';
import { StorageWriteError } from '../store/durable-file.js';
import { processAlive } from '../core/proc.js';
import { MemoryOutputStore } from '../store/output-store.js';
import { LiveOutputs } from '../output/live.js';
import { processExecutor, type Executor } from '../executor/process-executor.js';
import { RecordStore } from '../store/record-store.js';
import { FakeClock } from '../testing/fake-clock.js';
import { InvariantError } from '../core/assert.js';
import { Worker } from './worker.js';
import { jobSpec } from '../testing/fixtures.js';
import { waitFor } from '../testing/wait.js';

const SELF = 'n-self';
const LEADER = 'n-leader';
const ID = 'i-0001';

const spec: JobSpec = jobSpec({ retries: 2 });

interface Setup {
  clock: FakeClock;
  store: RecordStore;
  journal: FileJournal;
  worker: Worker;
  runs: ExecutionRequest[];
  /** Resolves the command currently running (the fake executor holds it until then). */
  finishRun: (result: Partial<ExecutionResult>) => void;
  /** Invariant errors the worker stopped on. */
  fatals: InvariantError[];
}

let dir: string;
const started: Worker[] = [];
const journals: FileJournal[] = [];
/** Process groups a test spawned, killed after it whatever happened. */
const leftovers: number[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'chorus-worker-'));
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const w of started.splice(0)) await w.stop(false);
  for (const j of journals.splice(0)) j.close();
  for (const pgid of leftovers.splice(0)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await rm(dir, { recursive: true, force: true });
});

function instance(over: Partial<JobSpec> = {}): InstanceRecord {
  return { id: ID, job: 'j', spec: { ...spec, ...over }, trigger: 'manual', scheduledAtMs: null, createdAtMs: 1000, targets: [LEADER, SELF].sort(), failure: null, stamp: { wallMs: 1000, counter: 0, nodeId: LEADER }, sig: '' };
}

function pending(): SubtaskRecord {
  return newSubtask(ID, SELF, { wallMs: 1000, counter: 1, nodeId: LEADER });
}

/** The leader's node-lost verdict on this node's attempt 1. */
function nodeLost(): SubtaskRecord {
  return { ...pending(), status: 'failed', reason: 'node-lost', startedAtMs: 1100, finishedAtMs: 1500, reporter: LEADER, stamp: { wallMs: 1500, counter: 0, nodeId: LEADER } };
}

/**
 * A worker over a fresh store (or the given one: a restart) and the journal file in `dir`.
 * Its commands are held by a fake executor (finishRun ends them), or run by `executor`.
 */
function setup(opts: { log?: Logger; store?: RecordStore; executor?: Executor } = {}): Setup {
  const clock = new FakeClock(2000);
  const store = opts.store ?? RecordStore.inMemory(clock);
  const journal = new FileJournal(journalPath());
  journal.open();
  journals.push(journal);
  const log = opts.log ?? silentLogger;
  const runs: ExecutionRequest[] = [];
  const fatals: InvariantError[] = [];
  let finish: ((r: ExecutionResult) => void) | null = null;
  const worker = new Worker({
    clock,
    config: defaultConfig,
    store,
    journal,
    hlc: new HybridClock(clock, SELF),
    selfId: SELF,
    outputs: new MemoryOutputStore(),
    live: new LiveOutputs(clock),
    commit: (records: AnyRecord[]) => void store.apply(records),
    log,
    fatal: (err) => void fatals.push(err),
    executor: opts.executor ?? {
      run: (req) => {
        runs.push(req);
        return new Promise<ExecutionResult>((resolve) => {
          finish = resolve;
        });
      },
      killLeftover: processExecutor().killLeftover,
    },
  });
  const finishRun = (result: Partial<ExecutionResult>) => {
    const base: ExecutionResult = { status: 'succeeded', reason: null, exitCode: 0, signal: null, stdout: '', stderr: '', stdoutDroppedBytes: 0, stderrDroppedBytes: 0, startedAtMs: clock.now(), finishedAtMs: clock.now(), spawnError: null };
    finish?.({ ...base, ...result });
  };
  return { clock, store, journal, worker, runs, finishRun, fatals };
}

function start(s: Setup): void {
  started.push(s.worker);
  s.worker.start();
}

const journalPath = () => join(dir, 'journal.log');

/**
 * A detached `sleep` standing for the command a crashed daemon left running, with the
 * variables the executor gives an attempt (`env` adds to or overrides them).
 */
function leftoverProcess(attempt: number, env: Record<string, string> = {}): number {
  const child = spawn('/bin/sh', ['-c', 'sleep 30'], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, CHORUS_INSTANCE_ID: ID, CHORUS_NODE_ID: SELF, CHORUS_ATTEMPT: String(attempt), ...env },
  });
  child.unref();
  leftovers.push(child.pid as number);
  return child.pid as number;
}

interface LogLine {
  level: number;
  msg: string;
  journal?: string;
  unreadableLines?: number;
}

/** A logger that keeps what it was given, to check what an operator would read. */
function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { log, lines };
}

/** This node's own subtask, as the records show it once its attempt was journalled and spawned. */
function runningSubtask(): SubtaskRecord {
  return { ...pending(), status: 'running', startedAtMs: 1100, reporter: SELF, stamp: { wallMs: 1100, counter: 0, nodeId: SELF } };
}


describe('worker recovery after a crash', () => {
  it('a started attempt whose records were not on disk yet: the leftover is killed at start, and interrupted is reported once the record arrives', async () => {
    const s = setup();
    const pid = leftoverProcess(1); // killed after the test, whatever happens
    s.journal.recordStart(ID, 1, 1100);
    s.journal.recordSpawn(ID, 1, pid);
    start(s); // the store knows nothing of the instance
    await waitFor(() => !processAlive(pid), 'the leftover process group to be killed');
    expect(s.journal.endOf(ID, 1)).toMatchObject({ status: 'failed', reason: 'interrupted' });

    // Anti-entropy brings the instance, with the leader's verdict on our attempt.
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: nodeLost() }]);
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 2);
    expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, reporter: SELF });
    expect(s.runs).toEqual([]); // never started again (retries are allowed, but not after interrupted)
  });

  it('a started attempt the store already holds as node-lost (the verdict came before the crash): recovered as interrupted, leftover killed', async () => {
    const s = setup();
    const pid = leftoverProcess(1); // killed after the test, whatever happens
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: nodeLost() }]);
    s.journal.recordStart(ID, 1, 1100);
    s.journal.recordSpawn(ID, 1, pid);
    start(s);
    await waitFor(() => !processAlive(pid), 'the leftover process group to be killed');
    await s.clock.advanceAsync(defaultConfig.workerTickMs);
    expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, reporter: SELF });
    expect(s.runs).toEqual([]);
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
    await waitFor(() => s.store.subtask(ID, SELF)?.status === 'succeeded', 'the owner\'s result');
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

});

describe('worker recovery when the journal was lost or corrupted', () => {
  it('a corrupt journal: a subtask the records show running is reported interrupted, never runs again, its processes are killed, and the journal is named', async () => {
    // 16 lines of random bytes (no newline inside a line).
    const garbage = Array.from({ length: 16 }, () => Buffer.from(randomBytes(200).map((b) => (b === 0x0a ? 0x20 : b))));
    await writeFile(journalPath(), Buffer.concat(garbage.flatMap((line) => [line, Buffer.from('\n')])));
    const { log, lines } = capturingLogger();
    const s = setup({ log });
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: runningSubtask() }]);
    const subtask = leftoverProcess(1);
    const preStep = leftoverProcess(1, { CHORUS_STEP: 'pre' }); // the same instance's --pre: not this subtask
    const otherNode = leftoverProcess(1, { CHORUS_NODE_ID: LEADER }); // another daemon's on this host
    const otherAttempt = leftoverProcess(2);

    start(s);
    await waitFor(() => !processAlive(subtask), 'the orphaned process group to be killed');
    expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, reporter: SELF, startedAtMs: 1100 });
    expect(s.journal.hasStarted(ID, 1)).toBe(true);
    expect(s.journal.endOf(ID, 1)).toMatchObject({ status: 'failed', reason: 'interrupted' });
    expect([processAlive(preStep), processAlive(otherNode), processAlive(otherAttempt)]).toEqual([true, true, true]);

    const unreadable = lines.find((l) => l.unreadableLines !== undefined && l.level === 40);
    expect(unreadable).toMatchObject({ journal: journalPath(), unreadableLines: 16 });
    expect(unreadable?.msg).toBe(`the journal ${journalPath()} has 16 line(s) that could not be read; they were skipped, so attempts they recorded are unknown to it`);
    const recovered = lines.find((l) => l.msg.includes('has no record of it'));
    expect(recovered?.msg).toContain(journalPath());
    expect(recovered?.msg).toContain('16 unreadable line(s)');

    await s.clock.advanceAsync(defaultConfig.workerTickMs * 4);
    expect(s.runs).toEqual([]); // retries are allowed, but an interrupted attempt is never run again
  });

  it('an empty journal: a --pre step the records show running on this node is reported interrupted and stays so across another restart', async () => {
    await writeFile(journalPath(), '');
    const withPre: InstanceRecord = { ...instance(), spec: { ...spec, pre: 'prepare' } };
    const { nodeId: runnerNodeId, ...attempt } = runningSubtask();
    const step: StepRecord = { ...attempt, runnerNodeId, step: 'pre' };
    const store = RecordStore.inMemory(new FakeClock(2000));
    store.apply([{ kind: 'instance', record: withPre }, { kind: 'step', record: step }]);
    const stepProcess = leftoverProcess(1, { CHORUS_STEP: 'pre' });
    const subtaskProcess = leftoverProcess(1); // no CHORUS_STEP: this node's subtask, not the step
    const postProcess = leftoverProcess(1, { CHORUS_STEP: 'post' });

    const s = setup({ store });
    start(s);
    await waitFor(() => !processAlive(stepProcess), 'the --pre step\'s process group to be killed');
    expect(store.step(ID, 'pre')).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, reporter: SELF, runnerNodeId: SELF });
    expect([processAlive(subtaskProcess), processAlive(postProcess)]).toEqual([true, true]);
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 4);
    expect(s.runs).toEqual([]);

    // The next restart finds the attempt journalled as started and ended: nothing to run.
    await s.worker.stop(false);
    s.journal.close();
    const again = setup({ store });
    expect(again.journal.skippedLines).toBe(0);
    expect(again.journal.hasStarted(`${ID}:pre`, 1)).toBe(true);
    start(again);
    await again.clock.advanceAsync(defaultConfig.workerTickMs * 4);
    expect(again.runs).toEqual([]);
    expect(store.step(ID, 'pre')).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1 });
  });

  it('a missing journal: a running subtask is recovered, with nothing left to kill and no warning about unreadable lines', async () => {
    const { log, lines } = capturingLogger();
    const s = setup({ log });
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: runningSubtask() }]);
    start(s);
    expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, reporter: SELF });
    expect(lines.some((l) => l.unreadableLines !== undefined && l.msg.includes('could not be read'))).toBe(false);
    expect(lines.some((l) => l.msg.includes('has no record of it'))).toBe(true);
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 4);
    expect(s.runs).toEqual([]);
  });

  it('a torn last line is reported as such, with the journal\'s path', () => {
    const { log, lines } = capturingLogger();
    const first = new FileJournal(journalPath());
    first.open();
    first.recordStart('i-other', 1, 1000);
    first.close();
    appendFileSync(journalPath(), '{"type":"end","instanceId":"i-oth'); // a crash in the middle of a write
    const s = setup({ log });
    start(s);
    const warning = lines.find((l) => l.unreadableLines === 1);
    expect(warning?.msg).toBe(`the last line of the journal ${journalPath()} was torn (a crash in the middle of a write); 1 line could not be read and was skipped`);
  });
});

describe('broken invariants stop the worker, naming the guarantee', () => {
  it('a second start of one attempt (the journal already holds it): nothing runs, the worker reports guarantee 3 and starts nothing more', async () => {
    const s = setup();
    s.journal.recordStart(ID, 1, 1100);
    // A bug that makes the worker think the attempt never started: the journal's own check must catch it.
    s.journal.hasStarted = () => false;
    s.journal.unfinished = () => [];
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: pending() }]);
    start(s);
    await waitFor(() => s.fatals.length > 0, 'the worker to report the broken invariant');
    expect(s.fatals[0]?.guarantee).toBe(3);
    expect(s.fatals[0]?.message).toMatch(/guarantee 3: at most once per attempt.*attempt 1 of i-0001 was already started/);
    expect(s.runs).toEqual([]);
    s.store.apply([{ kind: 'instance', record: { ...instance(), id: 'i-0002' } }, { kind: 'subtask', record: { ...pending(), instanceId: 'i-0002' } }]);
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 4);
    expect(s.runs).toEqual([]);
  });

  it('a report that would change a subtask\'s node id is refused (guarantee 1)', async () => {
    const s = setup();
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: pending() }]);
    const report = (s.worker as unknown as { report: (previous: SubtaskRecord, next: SubtaskRecord) => void }).report.bind(s.worker);
    expect(() => report(pending(), { ...pending(), nodeId: LEADER })).toThrow(/guarantee 1: a subtask belongs to one node forever/);
  });
});

describe('operating errors', () => {
  it('a start that cannot be journalled (a full disk) is not run, logged, and tried again a worker tick later, without spinning', async () => {
    const { log, lines } = capturingLogger();
    const s = setup({ log });
    const recordStart = s.journal.recordStart.bind(s.journal);
    let calls = 0;
    s.journal.recordStart = (id, attempt, atMs) => {
      calls += 1;
      if (calls === 1) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      recordStart(id, attempt, atMs);
    };
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: pending() }]);
    start(s);
    // A retry at every scan would be a microtask loop that never lets this macrotask run.
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(1);
    expect(s.runs).toEqual([]);
    expect(s.store.subtask(ID, SELF)?.status).toBe('pending');
    expect(lines.some((l) => l.level === 50 && /cannot journal the start of i-0001 attempt 1; not started/.test(l.msg))).toBe(true);
    await s.clock.advanceAsync(defaultConfig.workerTickMs);
    await waitFor(() => s.runs.length === 1, 'the retried start');
    expect(calls).toBe(2);
    expect(s.store.subtask(ID, SELF)?.status).toBe('running');
    s.finishRun({});
    await waitFor(() => s.store.subtask(ID, SELF)?.status === 'succeeded', 'the retried attempt to end');
  });
});

describe('a journal the disk refuses (a full disk)', () => {
  const full = () => new StorageWriteError(journalPath(), Object.assign(new Error('no space'), { code: 'ENOSPC' }));

  it('the end of an attempt it cannot journal is reported anyway, and nothing is thrown out of the worker', async () => {
    const s = setup();
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: pending() }]);
    vi.spyOn(s.journal, 'recordEnd').mockImplementation(() => {
      throw full();
    });
    start(s);
    await waitFor(() => s.runs.length === 1, 'the attempt to start');
    s.finishRun({ status: 'succeeded', exitCode: 0 });
    await waitFor(() => s.store.subtask(ID, SELF)?.status === 'succeeded', 'the result to be reported');
    expect(s.fatals).toEqual([]);
  });

  it('an interrupted attempt found at start whose end it cannot journal is reported interrupted, not a crash (the crash loop of issue 27)', async () => {
    const s = setup();
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: runningSubtask() }]);
    s.journal.recordStart(ID, 1, 1100);
    vi.spyOn(s.journal, 'recordEnd').mockImplementation(() => {
      throw full();
    });
    start(s);
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 2);
    expect(s.store.subtask(ID, SELF)).toMatchObject({ status: 'failed', reason: 'interrupted', reporter: SELF });
    expect(s.runs).toEqual([]);
    expect(s.fatals).toEqual([]);
  });

  it('a start it cannot journal is not run, and is tried again once the disk takes it', async () => {
    const s = setup();
    s.store.apply([{ kind: 'instance', record: instance() }, { kind: 'subtask', record: pending() }]);
    const recordStart = vi.spyOn(s.journal, 'recordStart').mockImplementation(() => {
      throw full();
    });
    start(s);
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 3);
    expect(s.runs).toEqual([]);
    expect(s.store.subtask(ID, SELF)?.status).toBe('pending');
    recordStart.mockRestore();
    await s.clock.advanceAsync(defaultConfig.workerTickMs * 2);
    await waitFor(() => s.runs.length === 1, 'the attempt to start once the journal takes it');
    expect(s.journal.hasStarted(ID, 1)).toBe(true);
    s.finishRun({ status: 'succeeded', exitCode: 0 });
    await waitFor(() => s.store.subtask(ID, SELF)?.status === 'succeeded', 'the result');
  });
});

describe('how a command ended is the reason its attempt gives (real processes)', () => {
  /** The real executor, with its processes' groups killed after the test whatever happened. */
  const realExecutor = (): Executor => {
    const real = processExecutor();
    return { ...real, run: (req) => real.run({ ...req, onSpawn: (pid) => (leftovers.push(pid), req.onSpawn?.(pid)) }) };
  };
  // Before the outer afterEach stops the workers: a test that failed midway leaves a sleep the stop would wait for.
  afterEach(() => {
    for (const pgid of leftovers) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  /** The pid a command wrote to `file` (`echo $$ > file; exec sleep 30`: the sleep's own pid). */
  const pidIn = async (file: string) => {
    await waitFor(async () => /^\d+\n$/.test(await readFile(file, 'utf8').catch(() => '')), `the command to write ${file}`);
    return Number(await readFile(file, 'utf8'));
  };

  it('a kill -9 the daemon did not send: failed, reason signal, signal SIGKILL, and retried like an exit-code failure', async () => {
    const { log, lines } = capturingLogger();
    const s = setup({ executor: realExecutor(), log });
    s.store.apply([{ kind: 'instance', record: instance({ cmd: `echo $$ > ${dir}/pid-$CHORUS_ATTEMPT; exec sleep 30`, retries: 1 }) }, { kind: 'subtask', record: pending() }]);
    start(s);

    process.kill(await pidIn(join(dir, 'pid-1')), 'SIGKILL');
    await waitFor(() => s.store.subtask(ID, SELF)?.attempt === 2, 'the retry');
    const retry = s.store.subtask(ID, SELF);
    expect(retry).toMatchObject({ status: 'pending', reason: null, exitCode: null });
    expect(retry).not.toHaveProperty('signal');
    expect(retry?.history).toEqual([expect.objectContaining({ attempt: 1, status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGKILL' })]);

    await s.clock.advanceAsync(defaultConfig.retryBackoffMaxMs); // the backoff, on the worker's clock
    process.kill(await pidIn(join(dir, 'pid-2')), 'SIGKILL');
    await waitFor(() => s.store.subtask(ID, SELF)?.status === 'failed', 'the last attempt to end');
    expect(s.store.subtask(ID, SELF)).toMatchObject({ attempt: 2, status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGKILL', reporter: SELF });
    expect(s.journal.endOf(ID, 2)).toMatchObject({ status: 'failed', reason: 'signal', signal: 'SIGKILL' });
    // The log says it as the CLI does (records/outcome-text.ts), and carries the signal as a field.
    expect(lines.filter((l) => l.msg.startsWith('subtask failed'))).toEqual([
      expect.objectContaining({ msg: 'subtask failed (signal SIGKILL); retried', attempt: 1, reason: 'signal', exitCode: null, signal: 'SIGKILL', retry: true }),
      expect.objectContaining({ msg: 'subtask failed (signal SIGKILL)', attempt: 2, reason: 'signal', exitCode: null, signal: 'SIGKILL', retry: false }),
    ]);
  });

  it("a timeout is still timeout, though the executor's own SIGTERM ended it", async () => {
    const s = setup({ executor: realExecutor() });
    s.store.apply([{ kind: 'instance', record: instance({ cmd: 'exec sleep 30', timeoutMs: 200, retries: 0 }) }, { kind: 'subtask', record: pending() }]);
    start(s);
    await waitFor(() => s.store.subtask(ID, SELF)?.status === 'failed', 'the timeout');
    const ended = s.store.subtask(ID, SELF);
    expect(ended).toMatchObject({ status: 'failed', reason: 'timeout', exitCode: null });
    expect(ended).not.toHaveProperty('signal');
  });

  it('a cancel is still cancelled', async () => {
    const s = setup({ executor: realExecutor() });
    s.store.apply([{ kind: 'instance', record: instance({ cmd: `echo $$ > ${dir}/pid-$CHORUS_ATTEMPT; exec sleep 30` }) }, { kind: 'subtask', record: pending() }]);
    start(s);
    await pidIn(join(dir, 'pid-1'));
    s.store.apply([{ kind: 'cancel', record: { instanceId: ID, requestedAtMs: s.clock.now(), stamp: { wallMs: s.clock.now(), counter: 0, nodeId: LEADER }, sig: '' } }]);
    await waitFor(() => s.store.subtask(ID, SELF)?.status === 'cancelled', 'the cancel');
    const ended = s.store.subtask(ID, SELF);
    expect(ended).toMatchObject({ status: 'cancelled', reason: 'cancelled', exitCode: null });
    expect(ended).not.toHaveProperty('signal');
  });
});
