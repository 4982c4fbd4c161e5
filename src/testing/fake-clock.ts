// Virtual time for in-process simulations: timers fire only when a test moves time
// forward, in (due time, insertion order) order, so a seeded run replays exactly.
//
// Async code: a timer callback that resolves a promise only queues microtasks. The
// `...Async` methods let the real event loop drain them (setImmediate, which Node runs
// only after the microtask queue is empty) after *every* timer fire, before looking at
// the next timer. So a whole promise chain set off by one delivery settles at the
// virtual instant of that delivery, and any timer it schedules is seen in the right
// place. The sync methods (`advance`, `runUntil`, `runNext`) do not settle; use them
// only for code without promises.

import type { Clock, TimerHandle } from '../core/clock.js';

export interface FakeClockOptions {
  /**
   * Event-loop turns awaited after each fire in the async methods. One is enough for
   * promise chains; raise it only if code under test itself uses setImmediate.
   */
  settleTurns?: number;
  /** One run firing more timers than this throws: almost always a timer re-arming itself at 0 ms. */
  maxFiresPerRun?: number;
  /** More queued timers than this is a leak, not a workload. */
  maxTimers?: number;
}

const DEFAULTS: Required<FakeClockOptions> = {
  settleTurns: 1,
  maxFiresPerRun: 1_000_000,
  maxTimers: 100_000,
};

/** Timer bookkeeping shared by a FakeClock and the views onto it. */
interface ViewState {
  frozen: boolean;
  stopped: boolean;
  /** Timers of this view not yet fired or cancelled (queued or held). */
  live: Set<TimerEntry>;
  /** Timers that came due while frozen, in the order they came due. */
  held: TimerEntry[];
}

interface TimerEntry {
  dueMs: number;
  seq: number;
  fn: () => void;
  view: ViewState | null;
  state: 'queued' | 'held' | 'done';
}

const NOOP_HANDLE: TimerHandle = { cancel() {} };

export class FakeClock implements Clock {
  private nowMs: number;
  private seq = 0;
  private queuedCount = 0;
  private running = false;
  private readonly queue = new TimerQueue();
  private readonly options: Required<FakeClockOptions>;

  constructor(startMs = 0, options: FakeClockOptions = {}) {
    this.nowMs = startMs;
    this.options = { ...DEFAULTS, ...options };
  }

  now(): number {
    return this.nowMs;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    return this.schedule(delayMs, fn, null);
  }

  /**
   * A node's own clock: now() shifted by `offsetMs` (settable later to model a clock
   * jump), timers on the shared timeline that can be frozen, thawed and stopped.
   */
  view(offsetMs = 0): ClockView {
    return new ClockView(this, offsetMs, {
      schedule: (delayMs, fn, view) => this.schedule(delayMs, fn, view),
      cancel: (entry) => this.cancel(entry),
      requeue: (entries) => this.requeue(entries),
    });
  }

  /** Timers queued and able to fire (excludes ones held by a frozen view). */
  pending(): number {
    return this.queuedCount;
  }

  /** Due time of the next queued timer, if any. */
  nextDueMs(): number | undefined {
    return this.peekQueued()?.dueMs;
  }

  /** Moves time to the next timer and fires it. False if none fired (none queued, or it was frozen). */
  runNext(): boolean {
    return this.exclusive(() => {
      const entry = this.popDue(Infinity);
      if (entry) this.fire(entry);
      return entry !== undefined;
    });
  }

  /** Fires everything due within `ms`, synchronously. Returns the number fired. */
  advance(ms: number): number {
    assertDuration(ms, 'advance');
    return this.runUntil(this.nowMs + ms);
  }

  /** Fires everything due up to the absolute time `targetMs`, synchronously. */
  runUntil(targetMs: number): number {
    return this.exclusive(() => {
      let fires = 0;
      for (let entry = this.popDue(targetMs); entry; entry = this.popDue(targetMs)) {
        this.fire(entry);
        fires = this.countFire(fires);
      }
      this.nowMs = Math.max(this.nowMs, targetMs);
      return fires;
    });
  }

  /** Lets pending promise chains run to completion without moving virtual time. */
  async settle(): Promise<void> {
    for (let i = 0; i < this.options.settleTurns; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** runNext with promise chains settled before and after the fire. */
  async runNextAsync(): Promise<boolean> {
    return this.exclusiveAsync(async () => {
      await this.settle();
      const entry = this.popDue(Infinity);
      if (entry) this.fire(entry);
      await this.settle();
      return entry !== undefined;
    });
  }

  /**
   * Moves time forward by `ms`, firing timers one at a time and settling promises
   * after each. With `stepMs`, time also stops (and settles) at least every `stepMs`
   * even where no timer is due, for code that reads now() in async continuations.
   */
  async advanceAsync(ms: number, stepMs = Infinity): Promise<number> {
    assertDuration(ms, 'advanceAsync');
    return this.runUntilAsync(this.nowMs + ms, stepMs);
  }

  /** advanceAsync to the absolute time `targetMs`. */
  async runUntilAsync(targetMs: number, stepMs = Infinity): Promise<number> {
    if (!(stepMs > 0)) throw new Error(`stepMs must be > 0, got ${stepMs}`);
    return this.exclusiveAsync(async () => {
      await this.settle();
      let fires = 0;
      do {
        const stepEndMs = Math.min(targetMs, this.nowMs + stepMs);
        fires = await this.fireUntilAsync(stepEndMs, fires);
        this.nowMs = Math.max(this.nowMs, stepEndMs);
        await this.settle();
      } while (this.nowMs < targetMs);
      return fires;
    });
  }

  /**
   * Runs timers (settling after each) until `predicate` holds; throws if it still
   * does not after `timeoutMs` of virtual time. Returns the virtual ms it took.
   */
  async waitFor(predicate: () => boolean, timeoutMs: number, what = 'condition'): Promise<number> {
    assertDuration(timeoutMs, 'waitFor');
    return this.exclusiveAsync(async () => {
      const startMs = this.nowMs;
      const deadlineMs = startMs + timeoutMs;
      await this.settle();
      let fires = 0;
      while (!predicate()) {
        if (this.nowMs >= deadlineMs) {
          throw new Error(`${what} not met within ${timeoutMs} ms of virtual time`);
        }
        fires = await this.stepTowardAsync(deadlineMs, fires);
      }
      return this.nowMs - startMs;
    });
  }

  private async fireUntilAsync(limitMs: number, fires: number): Promise<number> {
    for (let entry = this.popDue(limitMs); entry; entry = this.popDue(limitMs)) {
      this.fire(entry);
      fires = this.countFire(fires);
      await this.settle();
    }
    return fires;
  }

  /** Fires one timer due by `deadlineMs`, or jumps to the deadline if none is. */
  private async stepTowardAsync(deadlineMs: number, fires: number): Promise<number> {
    const entry = this.popDue(deadlineMs);
    if (entry) {
      this.fire(entry);
      fires = this.countFire(fires);
    } else {
      this.nowMs = Math.max(this.nowMs, deadlineMs);
    }
    await this.settle();
    return fires;
  }

  private schedule(delayMs: number, fn: () => void, view: ViewState | null): TimerHandle {
    if (!Number.isFinite(delayMs)) throw new Error(`timer delayMs must be finite, got ${delayMs}`);
    if (view?.stopped) return NOOP_HANDLE;
    if (this.queuedCount >= this.options.maxTimers) {
      throw new Error(`more than ${this.options.maxTimers} timers queued: a timer leak`);
    }
    const entry: TimerEntry = {
      dueMs: this.nowMs + Math.max(0, delayMs),
      seq: this.seq++,
      fn,
      view,
      state: 'queued',
    };
    this.queue.push(entry);
    this.queuedCount++;
    view?.live.add(entry);
    return { cancel: () => this.cancel(entry) };
  }

  private cancel(entry: TimerEntry): void {
    if (entry.state === 'queued') this.queuedCount--;
    entry.state = 'done';
    entry.view?.live.delete(entry);
  }

  /** Thawed timers are overdue: they go back at `now`, in the order they came due. */
  private requeue(entries: TimerEntry[]): void {
    for (const entry of entries) {
      if (entry.state !== 'held') continue;
      entry.dueMs = this.nowMs;
      entry.seq = this.seq++;
      entry.state = 'queued';
      this.queue.push(entry);
      this.queuedCount++;
    }
  }

  /**
   * Takes the next live timer due by `limitMs` and moves time to it. A timer of a
   * frozen view is parked with its view instead; the loop goes on to the next.
   */
  private popDue(limitMs: number): TimerEntry | undefined {
    for (let entry = this.peekQueued(); entry && entry.dueMs <= limitMs; entry = this.peekQueued()) {
      this.queue.pop();
      this.queuedCount--;
      this.nowMs = Math.max(this.nowMs, entry.dueMs);
      if (entry.view?.frozen) {
        entry.state = 'held';
        entry.view.held.push(entry);
        continue;
      }
      entry.state = 'done';
      entry.view?.live.delete(entry);
      return entry;
    }
    return undefined;
  }

  /** The earliest queued timer, dropping cancelled ones off the top. */
  private peekQueued(): TimerEntry | undefined {
    let top = this.queue.peek();
    while (top && top.state !== 'queued') {
      this.queue.pop();
      top = this.queue.peek();
    }
    return top;
  }

  private fire(entry: TimerEntry): void {
    entry.fn();
  }

  private countFire(fires: number): number {
    if (fires + 1 > this.options.maxFiresPerRun) {
      throw new Error(`more than ${this.options.maxFiresPerRun} timers fired in one run: a timer loop?`);
    }
    return fires + 1;
  }

  // Moving time from inside a timer (or two async runs at once) would interleave
  // fires in an order no real event loop produces; that is a test bug.
  private exclusive<T>(run: () => T): T {
    this.enter();
    try {
      return run();
    } finally {
      this.running = false;
    }
  }

  private async exclusiveAsync<T>(run: () => Promise<T>): Promise<T> {
    this.enter();
    try {
      return await run();
    } finally {
      this.running = false;
    }
  }

  private enter(): void {
    if (this.running) throw new Error('FakeClock is already running timers: do not move time from a timer or run two advances at once');
    this.running = true;
  }
}

interface ViewHost {
  schedule(delayMs: number, fn: () => void, view: ViewState): TimerHandle;
  cancel(entry: TimerEntry): void;
  requeue(entries: TimerEntry[]): void;
}

/**
 * One node's clock on the shared timeline. freeze() models a stopped process
 * (SIGSTOP, a long GC pause): its timers do not fire, then all fire late at thaw().
 * stop() models a dead process: its timers are dropped and new ones never fire.
 */
export class ClockView implements Clock {
  private readonly state: ViewState = { frozen: false, stopped: false, live: new Set(), held: [] };

  constructor(
    private readonly base: FakeClock,
    /** Added to the shared time; change it to make this node's clock jump. */
    public offsetMs: number,
    private readonly host: ViewHost,
  ) {}

  now(): number {
    return this.base.now() + this.offsetMs;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    return this.host.schedule(delayMs, fn, this.state);
  }

  get frozen(): boolean {
    return this.state.frozen;
  }

  get stopped(): boolean {
    return this.state.stopped;
  }

  /** Timers of this view not yet fired or cancelled, held ones included. */
  pending(): number {
    return this.state.live.size;
  }

  freeze(): void {
    this.state.frozen = true;
  }

  /** Timers that came due while frozen are queued at the current time, in the order they came due. */
  thaw(): void {
    if (!this.state.frozen) return;
    this.state.frozen = false;
    const held = this.state.held;
    this.state.held = [];
    this.host.requeue(held);
  }

  stop(): void {
    this.state.stopped = true;
    for (const entry of [...this.state.live]) this.host.cancel(entry);
    this.state.held = [];
  }
}

/** Binary min-heap on (dueMs, seq); cancelled entries are removed lazily by the clock. */
class TimerQueue {
  private readonly heap: TimerEntry[] = [];

  peek(): TimerEntry | undefined {
    return this.heap[0];
  }

  push(entry: TimerEntry): void {
    this.heap.push(entry);
    this.siftUp(this.heap.length - 1);
  }

  pop(): TimerEntry | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top !== last && last) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < this.heap.length && this.less(left, smallest)) smallest = left;
      if (right < this.heap.length && this.less(right, smallest)) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a] as TimerEntry;
    const y = this.heap[b] as TimerEntry;
    return x.dueMs !== y.dueMs ? x.dueMs < y.dueMs : x.seq < y.seq;
  }

  private swap(a: number, b: number): void {
    [this.heap[a], this.heap[b]] = [this.heap[b] as TimerEntry, this.heap[a] as TimerEntry];
  }
}

function assertDuration(ms: number, where: string): void {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`${where}: ms must be a finite number >= 0, got ${ms}`);
}
