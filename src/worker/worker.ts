// Runs this node's own subtasks, and only those (guarantee 2). Every attempt is
// journalled and fsynced before its command is spawned, and never started twice
// (guarantee 3). A failed attempt is retried here, on its owner, never elsewhere.
import type { NodeObserver } from '../records/observer.js';
import { iso } from '../core/time.js';
import { LogRepeats } from '../core/log.js';
import type { TimerHandle } from '../core/clock.js';
import { coalesced } from '../core/clock.js';
import { InvariantError, invariant } from '../core/assert.js';
import type { ExecutionResult } from '../executor/executor.js';
import { attemptMarks } from '../executor/marks.js';
import { outcomeText } from '../records/outcome-text.js';
import type { AnyRecord, AttemptState, AttemptSummary, FailureReason, InstanceRecord, StepName, StepRecord, SubtaskRecord, TerminalStatus } from '../records/types.js';
import { isTerminal, runnerOf, withSignal } from '../records/types.js';
import type { JournalEnd } from '../store/journal.js';
import type { SubtaskLog } from '../store/output-store.js';
import type { Clock } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { HybridClock } from '../records/hlc.js';
import type { Executor } from '../executor/process-executor.js';
import type { AttemptJournal } from '../store/journal.js';
import type { OutputStore } from '../store/output-store.js';
import { sortedHas, type RecordStore } from '../store/record-store.js';
import type { LiveAttempt, LiveOutputs } from '../output/live.js';

/** The node's parts the worker uses, and who it is. */
export interface WorkerDeps {
  clock: Clock;
  config: ChorusConfig;
  store: RecordStore;
  /** Where an attempt's start is made durable before its command is spawned (guarantee 3). */
  journal: AttemptJournal;
  outputs: OutputStore;
  executor: Executor;
  hlc: HybridClock;
  log: Logger;
  /** Told of a broken invariant. */
  fatal: (err: InvariantError) => void;
  selfId: string;
  commit: (records: AnyRecord[]) => void;
  /** Where running attempts keep their output, readable by followers while they run. */
  live: LiveOutputs;
  observer?: NodeObserver;
  /**
   * Whether a --pre/--post step may start now. A restarted node holds the steps it created as
   * leader before its crash; another leader may have created and run the same step meanwhile,
   * and only a sync with the cluster tells. Default: always.
   */
  stepsMayStart?: () => boolean;
  /**
   * Whether this node may start the pending subtask an instance implies (records/rollout.ts
   * impliesSubtasks) without a record of it: not while a verdict on it may exist that has not
   * reached this node (the instance came by anti-entropy or was on disk at a start; the
   * replicator asks a keeper first). Default: always.
   */
  mayStartImplied?: (instanceId: string) => boolean;
}

export interface AttemptOutcome {
  status: TerminalStatus;
  reason: FailureReason | null;
  exitCode: number | null;
  /** With reason `signal`, the signal's name; else null. */
  signal: string | null;
  startedAtMs: number | null;
  finishedAtMs: number;
}

/** Work this node runs: its subtask of an instance, or a --pre/--post step it runs as leader. */
type Task = SubtaskRecord | StepRecord;

const stepOf = (task: Task): StepName | null => ('step' in task ? task.step : null);
/** The journal's name for a task: the instance id, with `:pre` or `:post` for steps. */
const journalId = (instanceId: string, step: StepName | null) => (step ? `${instanceId}:${step}` : instanceId);

export class Worker {
  /** Instances in which this node's subtask is not yet terminal. */
  private readonly open = new Set<string>();
  /** Open instances whose records changed since the last scan (a scan looks at these only, but at a poll). */
  private readonly dirty = new Set<string>();
  /** Open instances whose task could start but for a free slot (maxConcurrentSubtasks), in the order they began to wait. */
  private readonly waitingForSlot = new Set<string>();
  /** The next scan looks at every open instance (the first one, and each poll). */
  private fullScanDue = true;
  private readonly running = new Map<string, AbortController>();
  private readonly wakeups = new Map<string, TimerHandle>();
  /** Attempts whose start could not be journalled (an operating error): not before this time. */
  private readonly startRetryAtMs = new Map<string, number>();
  private timer: TimerHandle | null = null;
  private stopped = false;

  /** Errors of a full or failing disk, once a minute per kind: they come at every attempt while it lasts. */
  private readonly repeats: LogRepeats;

  constructor(private readonly deps: WorkerDeps) {
    this.repeats = new LogRepeats(deps.clock);
  }

  /** The fields every subtask or step event in the log carries. */
  private event(instanceId: string, step: StepName | null, attempt: number | null, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const job = this.deps.store.instance(instanceId)?.job ?? null;
    return { job, instanceId, nodeId: this.deps.selfId, attempt, ...(step ? { step } : {}), ...extra };
  }

  /** Reconciles the journal with the store (crash recovery), then starts running subtasks. */
  start(): void {
    const { journal, log } = this.deps;
    const problem = journal.readProblem();
    if (problem !== null) log.warn({ journal: journal.path, unreadableLines: journal.skippedLines, tornLastLine: journal.tornLastLine }, problem);
    this.recoverFromJournal();
    this.recoverUnjournalled();
    for (const instance of this.deps.store.instances()) this.track(instance.id);
    this.deps.store.onChange((records) => this.onChange(records));
    this.queueScan();
  }

  /** Stops starting new attempts. Running ones are cancelled only if `cancelRunning`. */
  async stop(cancelRunning: boolean): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    for (const w of this.wakeups.values()) w.cancel();
    if (cancelRunning) for (const abort of this.running.values()) abort.abort();
    const { killGraceMs, workerStopSlackMs, workerStopPollMs } = this.deps.config;
    const deadline = this.deps.clock.now() + killGraceMs + workerStopSlackMs;
    // Poll on the injected clock: with a fake clock, real timers would let virtual time run on unseen.
    while (this.running.size > 0 && this.deps.clock.now() < deadline) await new Promise<void>((r) => this.deps.clock.setTimer(workerStopPollMs, r));
  }

  runningCount(): number {
    return this.running.size;
  }

  private onChange(records: AnyRecord[]): void {
    let relevant = false;
    const touch = (instanceId: string) => {
      this.dirty.add(instanceId);
      relevant = true;
    };
    for (const r of records) {
      if ((r.kind === 'subtask' || r.kind === 'step') && runnerOf(r.record) === this.deps.selfId && this.track(r.record.instanceId)) touch(r.record.instanceId);
      if (r.kind === 'instance' && sortedHas(r.record.targets, this.deps.selfId) && this.track(r.record.id)) touch(r.record.id);
      if (r.kind === 'cancel' && this.open.has(r.record.instanceId)) touch(r.record.instanceId);
    }
    if (relevant) this.queueScan();
  }

  private track(instanceId: string): boolean {
    if (this.tasksOf(instanceId).some((t) => this.needsOwner(t))) {
      this.open.add(instanceId);
      return true;
    }
    this.close(instanceId);
    return false;
  }

  /** Nothing left for this node to do in the instance. */
  private close(instanceId: string): void {
    this.open.delete(instanceId);
    this.waitingForSlot.delete(instanceId);
  }

  /**
   * Whether this node still has something to do for its own task: run it, or report how
   * an attempt it started ended. Another node's verdict (`node-lost`) on an attempt this
   * node started is not the end of it: the owner's own report replaces it (it knows what
   * really happened), whether the attempt is still running here or was cut by a crash.
   */
  private needsOwner(task: Task): boolean {
    if (!isTerminal(task.status)) return true;
    if (task.reporter === this.deps.selfId) return false;
    return this.deps.journal.hasStarted(journalId(task.instanceId, stepOf(task)), task.attempt);
  }

  /** Instances whose own subtask may have come to be startable: looked at again (their implied subtask was confirmed). */
  recheck(instanceIds: Iterable<string>): void {
    let any = false;
    for (const id of instanceIds) {
      if (!this.track(id)) continue;
      this.dirty.add(id);
      any = true;
    }
    if (any) this.queueScan();
  }

  /** This node's own tasks in an instance (guarantee 2: nothing owned by another node); its subtask may be implied by the instance. */
  private tasksOf(instanceId: string): Task[] {
    const { store, selfId } = this.deps;
    const tasks: Task[] = [];
    const instance = store.instance(instanceId);
    const subtask = instance ? store.subtaskOrImplied(instance, selfId) : store.subtask(instanceId, selfId);
    if (subtask) tasks.push(subtask);
    for (const step of [store.step(instanceId, 'pre'), store.step(instanceId, 'post')]) if (step?.runnerNodeId === selfId) tasks.push(step);
    return tasks;
  }

  private currentTask(instanceId: string, step: StepName | null): Task | undefined {
    const { store, selfId } = this.deps;
    if (step) return store.step(instanceId, step);
    const instance = store.instance(instanceId);
    return instance ? store.subtaskOrImplied(instance, selfId) : store.subtask(instanceId, selfId);
  }

  private readonly queueScan = coalesced(() => this.scan());

  /**
   * One look at what may have changed: the open instances whose records changed since the
   * last look (or every open one, at a poll), then, while slots are free, those waiting for
   * one, oldest first. Looking at every open instance at every change made a backlog of
   * pending work (100 jobs firing every second on a slow host) cost O(backlog) per record:
   * the worker took the whole core and the API stopped answering.
   */
  private scan(): void {
    if (this.stopped) return;
    try {
      const ids = this.fullScanDue ? [...this.open] : [...this.dirty].filter((id) => this.open.has(id));
      this.fullScanDue = false;
      this.dirty.clear();
      this.scanInstances(ids);
      for (const id of this.waitingForSlot) {
        if (this.running.size >= this.deps.config.maxConcurrentSubtasks) break;
        this.scanInstances([id]);
      }
    } catch (err) {
      if (!(err instanceof InvariantError)) throw err;
      this.stopped = true;
      this.deps.fatal(err);
    }
    this.armPoll();
  }

  /**
   * The safety net: while this node has open work, it looks again every workerTickMs
   * besides reacting to changes (a start that could not be journalled is retried so). With
   * none, no timer runs; the next relevant record schedules a scan.
   */
  private armPoll(): void {
    if (this.stopped || this.open.size === 0 || this.timer !== null) return;
    this.timer = this.deps.clock.setTimer(this.deps.config.workerTickMs, () => {
      this.timer = null;
      this.fullScanDue = true;
      this.scan();
    });
  }

  private scanInstances(instanceIds: Iterable<string>): void {
    for (const instanceId of instanceIds) {
      const instance = this.deps.store.instance(instanceId);
      if (!instance) continue;
      const tasks = this.tasksOf(instanceId);
      if (!tasks.some((t) => this.needsOwner(t))) this.close(instanceId);
      for (const task of tasks) {
        try {
          this.consider(instance, task);
        } catch (err) {
          if (err instanceof InvariantError) throw err;
          // An operating error (the journal's disk): this task is looked at again at the next
          // poll (the open set keeps it), the others go on.
          this.repeats.log(this.deps.log, 'error', 'task', this.event(instanceId, stepOf(task), task.attempt, { err }), `cannot handle ${journalId(instanceId, stepOf(task))} attempt ${task.attempt} now; tried again in ${this.deps.config.workerTickMs} ms: ${(err as Error).message}`);
        }
      }
    }
  }

  private consider(instance: InstanceRecord, subtask: Task): void {
    if (!this.needsOwner(subtask)) return;
    invariant(runnerOf(subtask) === this.deps.selfId, 2, () => `asked to run ${instance.id}, which is ${runnerOf(subtask)}'s`);
    const id = journalId(instance.id, stepOf(subtask));
    const key = `${id}#${subtask.attempt}`;
    const cancelled = this.deps.store.cancelOf(instance.id) !== undefined;
    if (this.running.has(key)) {
      if (cancelled) this.running.get(key)?.abort();
      return;
    }
    if (this.deps.journal.hasStarted(id, subtask.attempt)) {
      // Started before, but the process is not ours any more: a crash or a lost result.
      this.recoverAttempt(instance, subtask);
      return;
    }
    if (subtask.status !== 'pending') return; // running elsewhere? only after a restart, handled above
    // Implied, not written: started only once no verdict on it can be on its way (the poll and recheck() look again).
    if (stepOf(subtask) === null && this.deps.store.subtask(instance.id, this.deps.selfId) === undefined && this.deps.mayStartImplied?.(instance.id) === false) return;
    if (cancelled) return this.report(subtask, this.ownerTerminal(subtask, cancelledOutcome(this.deps.clock.now())));
    const waitMs = (subtask.notBeforeMs ?? 0) - this.deps.clock.now();
    if (waitMs > 0) return this.wakeUpIn(instance.id, key, waitMs);
    const retryInMs = (this.startRetryAtMs.get(key) ?? 0) - this.deps.clock.now();
    if (retryInMs > 0) return this.wakeUpIn(instance.id, key, retryInMs);
    if (stepOf(subtask) !== null && this.deps.stepsMayStart && !this.deps.stepsMayStart()) return this.wakeUpIn(instance.id, key, this.deps.config.stepGatePollMs);
    if (this.running.size >= this.deps.config.maxConcurrentSubtasks) {
      this.waitingForSlot.add(instance.id); // looked at again, in this order, as slots free up
      return;
    }
    this.waitingForSlot.delete(instance.id);
    void this.execute(instance, subtask, key);
  }

  private wakeUpIn(instanceId: string, key: string, waitMs: number): void {
    if (this.wakeups.has(key)) return;
    this.wakeups.set(
      key,
      this.deps.clock.setTimer(waitMs, () => {
        this.wakeups.delete(key);
        this.dirty.add(instanceId);
        this.queueScan();
      }),
    );
  }

  private async execute(instance: InstanceRecord, subtask: Task, key: string): Promise<void> {
    const { clock, journal, selfId, log } = this.deps;
    const step = stepOf(subtask);
    const id = journalId(instance.id, step);
    const abort = new AbortController();
    this.running.set(key, abort);
    let live: LiveAttempt | null = null;
    try {
      const startedAtMs = clock.now();
      try {
        journal.recordStart(id, subtask.attempt, startedAtMs); // durable before the spawn
      } catch (err) {
        if (err instanceof InvariantError) throw err;
        // Nothing ran: the attempt stays pending and is tried again a worker tick later
        // (not at the next scan, which comes at once: a full disk must not spin the loop).
        this.startRetryAtMs.set(key, clock.now() + this.deps.config.workerTickMs);
        this.repeats.log(log, 'error', 'journal-start', this.event(instance.id, step, subtask.attempt, { err, journal: journal.path }), `cannot journal the start of ${id} attempt ${subtask.attempt}; not started, tried again in ${this.deps.config.workerTickMs} ms: ${(err as Error).message}`);
        return;
      }
      this.startRetryAtMs.delete(key);
      this.report(subtask, { ...subtask, status: 'running', startedAtMs, reporter: selfId, stamp: this.deps.hlc.tick() });
      log.info(this.event(instance.id, step, subtask.attempt), step ? `${step} step started` : 'subtask started');
      const targets = this.deps.store.targetsOf(instance);
      const shardIndex = targets.indexOf(selfId);
      live = this.deps.live.begin(instance.id, step, subtask.attempt, this.deps.config.maxOutputBytes);
      const result = await this.deps.executor.run({
        cmd: (step ? instance.spec[step] : instance.spec.cmd) ?? 'true',
        stdin: step === 'post' ? this.postInput(instance) : undefined,
        env: {
          ...this.attemptVars(instance.id, step, subtask.attempt),
          CHORUS_JOB: instance.job,
          CHORUS_SHARD_INDEX: String(shardIndex),
          CHORUS_SHARD_TOTAL: String(targets.length),
        },
        timeoutMs: instance.spec.timeoutMs,
        maxOutputBytes: this.deps.config.maxOutputBytes,
        output: live.output,
        killGraceMs: this.deps.config.killGraceMs,
        pipeDrainGraceMs: this.deps.config.pipeDrainGraceMs,
        signal: abort.signal,
        onSpawn: (pid) => journal.recordSpawn(id, subtask.attempt, pid),
      });
      // What the saved log adds to stderr, followers read live too: the same bytes either way.
      if (result.spawnError) live.output.push('stderr', Buffer.from(spawnErrorLine(result.spawnError)));
      this.deps.live.end(live);
      await this.saveLog(instance.id, step, subtask.attempt, result);
      // Stopped by our own shutdown, not by a cancel: the attempt was interrupted.
      const interrupted = this.stopped && result.status === 'cancelled' && !this.deps.store.cancelOf(instance.id);
      const outcome = interrupted
        ? { ...outcomeOf(result, startedAtMs, clock.now()), status: 'failed' as const, reason: 'interrupted' as const }
        : outcomeOf(result, startedAtMs, clock.now());
      this.journalEnd(instance.id, step, subtask.attempt, outcome);
      this.finishAttempt(instance.id, step, subtask.attempt, outcome);
    } catch (err) {
      if (err instanceof InvariantError) {
        this.stopped = true;
        this.deps.fatal(err);
      } else {
        // An operating error (the journal's disk, say) after the start: the record stays
        // `running`; a restart reports it interrupted, and it is never started again.
        this.deps.log.error(this.event(instance.id, step, subtask.attempt, { err }), `subtask execution failed: ${(err as Error).message}`);
      }
    } finally {
      if (live) this.deps.live.remove(live);
      this.running.delete(key);
      this.queueScan();
    }
  }

  /**
   * Journals how an attempt ended. The end is there for crash recovery only: when the disk
   * refuses it, the result is still reported (and written to the state by the store, which
   * retries), and a restart before that reports the attempt `interrupted` (never runs it again).
   */
  private journalEnd(instanceId: string, step: StepName | null, attempt: number, outcome: AttemptOutcome): void {
    const { journal, log } = this.deps;
    try {
      journal.recordEnd({ instanceId: journalId(instanceId, step), attempt, atMs: outcome.finishedAtMs, ...outcome });
    } catch (err) {
      if (err instanceof InvariantError) throw err;
      this.repeats.log(log, 'error', 'journal-end', this.event(instanceId, step, attempt, { err, journal: journal.path }), `cannot journal the end of ${journalId(instanceId, step)} attempt ${attempt} (reported anyway): ${(err as Error).message}`);
    }
  }

  /** What a --post step reads on stdin: the instance and every node's result. */
  private postInput(instance: InstanceRecord): string {
    const results = this.deps.store.targetsOf(instance).map((nodeId) => {
      const s = this.deps.store.subtask(instance.id, nodeId);
      return { nodeId, status: s?.status ?? 'pending', attempt: s?.attempt ?? 1, exitCode: s?.exitCode ?? null, signal: s?.signal ?? null, reason: s?.reason ?? null, startedAt: iso(s?.startedAtMs), finishedAt: iso(s?.finishedAtMs) };
    });
    return `${JSON.stringify({ instanceId: instance.id, job: instance.job, results })}\n`;
  }

  /** Records an attempt's end: terminal, or a new pending attempt on this node if retries remain. */
  private finishAttempt(instanceId: string, step: StepName | null, attempt: number, outcome: AttemptOutcome): void {
    const instance = this.deps.store.instance(instanceId);
    const current = this.currentTask(instanceId, step);
    // Gone (retention) or already moved on: nothing left to report.
    if (!instance || !current || current.attempt !== attempt) return;
    if (step !== null && runnerOf(current) !== this.deps.selfId) {
      // Two leaders created this step at once and the merge chose the other runner after
      // this one had started it: its result stays in the journal and the log, not in the record.
      this.deps.log.warn(this.event(instanceId, step, attempt, { runner: runnerOf(current) }), `the ${step} step of ${instanceId} is now run by ${runnerOf(current)}; this node's result is not reported`);
      return;
    }
    invariant(runnerOf(current) === this.deps.selfId, 1, () => `a result of ${this.deps.selfId} for ${instanceId} found the subtask of ${runnerOf(current)}`);
    const final = this.ownerTerminal(current, outcome);
    const retriable = step === null && outcome.status === 'failed' && RETRIED_REASONS.has(outcome.reason);
    const mayRetry = retriable && attempt <= instance.spec.retries && !this.deps.store.cancelOf(instanceId) && !this.stopped;
    this.deps.log.info(
      this.event(instanceId, step, attempt, { status: outcome.status, reason: outcome.reason, exitCode: outcome.exitCode, signal: outcome.signal, durationMs: outcome.startedAtMs === null ? null : outcome.finishedAtMs - outcome.startedAtMs, retry: mayRetry }),
      `${step ? `${step} step` : 'subtask'} ${outcomeText(outcome)}${mayRetry ? '; retried' : ''}`,
    );
    this.deps.observer?.attemptEnded?.({
      job: instance.job,
      step,
      status: outcome.status,
      reason: outcome.reason,
      durationMs: outcome.startedAtMs === null ? null : outcome.finishedAtMs - outcome.startedAtMs,
      retried: mayRetry,
    });
    if (!mayRetry) return this.report(current, final);
    const backoffMs = Math.min(this.deps.config.retryBackoffBaseMs * 2 ** (attempt - 1), this.deps.config.retryBackoffMaxMs);
    const history = [...current.history, summary(final)].slice(-this.deps.config.maxAttemptHistory);
    this.report(current, {
      ...withSignal(current, null),
      attempt: attempt + 1,
      status: 'pending',
      reason: null,
      exitCode: null,
      startedAtMs: null,
      finishedAtMs: null,
      notBeforeMs: outcome.finishedAtMs + backoffMs,
      history,
      reporter: this.deps.selfId,
      stamp: this.deps.hlc.tick(),
    });
  }

  /** After a restart: a started attempt either has a journalled end (re-apply it) or was interrupted. */
  private recoverAttempt(instance: InstanceRecord, subtask: Task): void {
    const step = stepOf(subtask);
    const id = journalId(instance.id, step);
    const end = this.deps.journal.endOf(id, subtask.attempt);
    if (end) return this.finishAttempt(instance.id, step, subtask.attempt, outcomeFromJournal(end));
    const nowMs = this.deps.clock.now();
    const startedAtMs = subtask.startedAtMs ?? nowMs;
    const outcome: AttemptOutcome = { status: 'failed', reason: 'interrupted', exitCode: null, signal: null, startedAtMs, finishedAtMs: nowMs };
    this.journalEnd(instance.id, step, subtask.attempt, outcome);
    this.killLeftovers(instance.id, step, subtask.attempt);
    this.deps.log.warn(this.event(instance.id, step, subtask.attempt, { status: 'failed', reason: 'interrupted' }), 'attempt interrupted by a restart; not run again');
    this.report(subtask, this.ownerTerminal(subtask, outcome));
  }

  private recoverFromJournal(): void {
    for (const start of this.deps.journal.unfinished()) {
      if (!isTaskJournalId(start.instanceId)) continue; // a webhook delivery's entry (scheduler/notifier.ts)
      const [instanceId, step] = splitJournalId(start.instanceId);
      const instance = this.deps.store.instance(instanceId);
      const task = this.currentTask(instanceId, step);
      if (instance && task && runnerOf(task) === this.deps.selfId && task.attempt === start.attempt && this.needsOwner(task)) {
        this.recoverAttempt(instance, task);
        continue;
      }
      // The state file may not hold the instance yet (it is written in batches; only the
      // journal is fsynced before the spawn), or may hold it in a form that does not need us.
      // Either way the previous process is gone, so the attempt was interrupted: journal the
      // end and kill what it left running now; the report follows once the record is here.
      const nowMs = this.deps.clock.now();
      this.journalEnd(instanceId, step, start.attempt, { status: 'failed', reason: 'interrupted', exitCode: null, signal: null, startedAtMs: start.atMs, finishedAtMs: nowMs });
      this.killLeftovers(instanceId, step, start.attempt);
      this.deps.log.warn(this.event(instanceId, step, start.attempt, { status: 'failed', reason: 'interrupted' }), 'attempt interrupted by a restart; not run again');
    }
    for (const end of this.deps.journal.finished()) {
      if (!isTaskJournalId(end.instanceId)) continue;
      const [instanceId, step] = splitJournalId(end.instanceId);
      const task = this.currentTask(instanceId, step);
      if (task && runnerOf(task) === this.deps.selfId && task.attempt === end.attempt && this.needsOwner(task)) {
        this.finishAttempt(instanceId, step, end.attempt, outcomeFromJournal(end));
      }
    }
  }

  /**
   * Own tasks the records show `running` that the journal has no start for. Only the owner
   * writes `running`, and only after journalling the start, so the journal lost it (it was
   * corrupted or replaced): the attempt ran here before the restart. It is journalled as
   * started and ended first, so it can never start again (guarantee 3), then whatever of it
   * can be found is killed and it is reported interrupted.
   */
  private recoverUnjournalled(): void {
    const { store, journal, clock, log } = this.deps;
    for (const instance of store.instances()) {
      for (const task of this.tasksOf(instance.id)) {
        const step = stepOf(task);
        const id = journalId(instance.id, step);
        if (task.status !== 'running' || journal.hasStarted(id, task.attempt)) continue;
        const nowMs = clock.now();
        const outcome: AttemptOutcome = { status: 'failed', reason: 'interrupted', exitCode: null, signal: null, startedAtMs: task.startedAtMs ?? nowMs, finishedAtMs: nowMs };
        try {
          journal.recordStart(id, task.attempt, outcome.startedAtMs ?? nowMs);
        } catch (err) {
          if (err instanceof InvariantError) throw err;
          // Not journalled: the record says `running`, which never starts again either (consider()).
          log.error(this.event(instance.id, step, task.attempt, { err }), `cannot journal attempt ${task.attempt} of ${id} as started: ${(err as Error).message}`);
        }
        this.journalEnd(instance.id, step, task.attempt, outcome);
        const killed = this.killLeftovers(instance.id, step, task.attempt);
        log.warn(
          this.event(instance.id, step, task.attempt, { status: 'failed', reason: 'interrupted', journal: journal.path, unreadableLines: journal.skippedLines, killedGroups: killed }),
          `attempt ${task.attempt} of ${id} was running before the restart, but the journal ${journal.path} (${journal.skippedLines} unreadable line(s)) has no record of it; ` +
            `reported interrupted, not run again${killed.length > 0 ? `; killed process group(s) ${killed.join(', ')}` : ''}`,
        );
        this.report(task, this.ownerTerminal(task, outcome));
      }
    }
  }

  /**
   * Kills what an attempt of the previous process left running (its process group outlives
   * a kill -9 of the daemon). The journal's spawn entry names the group; without one (a
   * crash before it was written, a lost journal), the processes are found by the CHORUS_*
   * variables the attempt was started with. Returns the groups killed.
   */
  private killLeftovers(instanceId: string, step: StepName | null, attempt: number): number[] {
    const marks = attemptMarks(this.attemptVars(instanceId, step, attempt));
    invariant(marks !== null, null, `attempt ${attempt} of ${journalId(instanceId, step)} has no marks to be found by`);
    const recordedGroup = this.deps.journal.spawnOf(journalId(instanceId, step), attempt);
    const killed = this.deps.executor.killLeftover({ ...marks, recordedGroup });
    if (killed.length > 0) this.deps.log.warn(this.event(instanceId, step, attempt, { killedGroups: killed }), 'killed the process group(s) a crash left running');
    return killed;
  }

  /** The variables that name an attempt's processes: in its environment, and searched for when it must be killed. */
  private attemptVars(instanceId: string, step: StepName | null, attempt: number): Record<string, string> {
    return { ...(step ? { CHORUS_STEP: step } : {}), CHORUS_INSTANCE_ID: instanceId, CHORUS_NODE_ID: this.deps.selfId, CHORUS_ATTEMPT: String(attempt) };
  }

  private ownerTerminal<T extends Task>(subtask: T, outcome: AttemptOutcome): T {
    return {
      ...withSignal(subtask, outcome.signal),
      status: outcome.status,
      reason: outcome.reason,
      exitCode: outcome.exitCode,
      startedAtMs: outcome.startedAtMs,
      finishedAtMs: outcome.finishedAtMs,
      notBeforeMs: null,
      reporter: this.deps.selfId,
      stamp: this.deps.hlc.tick(),
    };
  }

  private report(previous: Task, next: Task): void {
    invariant(stepOf(next) === stepOf(previous), null, () => `a step and a subtask of ${previous.instanceId} mixed up`);
    invariant(runnerOf(next) === runnerOf(previous), 1, () => `the ${stepOf(previous) ?? 'subtask'} of ${runnerOf(previous)} in ${previous.instanceId} rewritten as ${runnerOf(next)}'s`);
    this.deps.commit([{ kind: 'step' in next ? 'step' : 'subtask', record: next } as AnyRecord]);
  }

  private async saveLog(instanceId: string, step: StepName | null, attempt: number, result: ExecutionResult): Promise<void> {
    const log: SubtaskLog = {
      instanceId,
      nodeId: this.deps.selfId,
      ...(step ? { step } : {}),
      attempt,
      stdout: result.stdout,
      stderr: result.spawnError ? `${result.stderr}${spawnErrorLine(result.spawnError)}` : result.stderr,
      stdoutDroppedBytes: result.stdoutDroppedBytes,
      stderrDroppedBytes: result.stderrDroppedBytes,
    };
    try {
      await this.deps.outputs.save(log);
    } catch (err) {
      // A full disk loses the output, not the result: the attempt is still reported.
      this.deps.log.error(this.event(instanceId, step, attempt, { err }), `cannot save the output of ${journalId(instanceId, step)} attempt ${attempt}: ${(err as Error).message}`);
    }
  }
}

/** Why a command could not start, as its saved stderr ends. */
const spawnErrorLine = (spawnError: string) => `${spawnError}\n`;

/** Failures a retry may mend (--retries); the others (the node's own stop, a verdict, a cancel) are final. */
const RETRIED_REASONS: ReadonlySet<FailureReason | null> = new Set<FailureReason>(['exit-code', 'signal', 'timeout', 'spawn-failed']);

/**
 * How an attempt ended, from how its command ended. The signal is kept only when it is the
 * reason (one the executor did not send): after a timeout or a cancel it is our own kill.
 */
function outcomeOf(result: ExecutionResult, startedAtMs: number, finishedAtMs: number): AttemptOutcome {
  const signal = result.reason === 'signal' ? result.signal : null;
  return { status: result.status, reason: result.reason, exitCode: result.exitCode, signal, startedAtMs, finishedAtMs };
}

function cancelledOutcome(nowMs: number): AttemptOutcome {
  return { status: 'cancelled', reason: 'cancelled', exitCode: null, signal: null, startedAtMs: null, finishedAtMs: nowMs };
}

function summary(s: AttemptState): AttemptSummary {
  return withSignal({ attempt: s.attempt, status: s.status, reason: s.reason, exitCode: s.exitCode, startedAtMs: s.startedAtMs, finishedAtMs: s.finishedAtMs }, s.signal ?? null);
}

function outcomeFromJournal(end: JournalEnd): AttemptOutcome {
  return { status: end.status, reason: end.reason, exitCode: end.exitCode, signal: end.signal ?? null, startedAtMs: end.startedAtMs, finishedAtMs: end.atMs };
}

/** Journal ids of subtasks (INSTANCE) and steps (INSTANCE:pre|post); others belong to other parts (INSTANCE:notify-N). */
function isTaskJournalId(id: string): boolean {
  const suffix = id.split(':')[1];
  return suffix === undefined || suffix === 'pre' || suffix === 'post';
}

function splitJournalId(id: string): [string, StepName | null] {
  const [instanceId, step] = id.split(':');
  return [instanceId as string, step === 'pre' || step === 'post' ? step : null];
}
