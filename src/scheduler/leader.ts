// The leader's duties: fire schedules, create instances with their subtasks, and give
// the `node-lost` verdict for subtasks of members that died or left. Every node runs
// this; only the current leader acts. A brief double leader is harmless: scheduled
// instance ids are deterministic and merge into one.
import type { NodeObserver } from '../records/observer.js';
import { fnv1a } from '../records/canonical.js';
import type { Clock } from '../core/clock.js';
import { Ticker } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import type { MembershipView } from '../cluster/view.js';
import { isGone } from '../cluster/view.js';
import { eligibility, noTargetFailure } from './plan.js';
import type { HybridClock } from '../records/hlc.js';
import { randomInstanceId, scheduledInstanceId } from '../records/ids.js';
import { isInstanceFinished } from '../records/status.js';
import { impliesSubtasks, isRolling, nextRelease } from '../records/rollout.js';
import { UNSIGNED } from '../records/signature.js';
import type { AnyRecord, AttemptState, FireRecord, InstanceRecord, InstanceTrigger, JobRecord, JobSpec, SkippedTarget, StepName, StepRecord, SubtaskRecord } from '../records/types.js';
import { isTerminal, liveSpec, withSignal } from '../records/types.js';
import { instanceIdOf, sortedHas, type RecordStore } from '../store/record-store.js';
import { LogRepeats, type Logger } from '../core/log.js';
import { nextFireAfter } from '../records/schedule.js';
import { planFires } from './fires.js';

export interface LeaderDeps {
  clock: Clock;
  config: ChorusConfig;
  store: RecordStore;
  hlc: HybridClock;
  view: MembershipView;
  /** Applies records locally and sends them to the cluster. */
  commit: (records: AnyRecord[]) => void;
  log: Logger;
  /** Id of a manual or ad-hoc instance; the simulator passes a seeded one so a run replays exactly. */
  newInstanceId?: () => string;
  /**
   * Whether this node's state is fresh enough to act on as leader (the node syncs with its
   * peers first when it becomes leader or wakes from a stall). Default: always.
   */
  mayAct?: () => boolean;
  observer?: NodeObserver;
  /** This node's id, for the log's events. */
  selfId?: string;
}

/** A non-leader looks this many idle ticks apart (5 s by default). */
const NON_LEADER_TICKS = 10;

/** An instance with the records that create it, before they are committed. */
export interface PlannedInstance {
  instance: InstanceRecord;
  records: AnyRecord[];
}

export class ConcurrencyForbiddenError extends Error {
  readonly code = 'concurrency-forbid';
}

export class Leader {
  private readonly ticker: Ticker;
  /** Per job: stamp of the definition seen and the next time its schedule is due. */
  private readonly due = new Map<string, { stampKey: string; nextMs: number | null }>();
  private wasLeader = false;
  /**
   * Instances unfinished when last looked at, and instances whose records changed since:
   * a round looks at the changed ones only (a node catching up receives thousands of
   * records of unfinished-looking instances), and at every unfinished one when a member's
   * state changed (its work may be lost) and every leaderIdleTickMs as a safety net.
   */
  private readonly open = new Set<string>();
  private readonly changed = new Set<string>();
  /** Look at every instance (after becoming leader), every open one, or the changed ones only. */
  private sweep: 'all' | 'open' | 'changed' = 'all';
  private nextOpenSweepMs = 0;
  /** Whether the last tick left work that needs the fast tick: an unfinished instance, or a leader not yet allowed to act. */
  private busy = false;

  private readonly repeats: LogRepeats;

  constructor(private readonly deps: LeaderDeps) {
    this.repeats = new LogRepeats(deps.clock);
    this.ticker = new Ticker(deps.clock, () => {
      this.busy = this.act();
    }, () => this.nextTickMs());
    // A finished instance can come back to life too: the owner's own report outranks a
    // node-lost verdict (a thawed pre-step runner that succeeded, say).
    deps.store.onChange((records) => {
      for (const r of records) {
        const id = instanceIdOf(r);
        if (id !== null) this.changed.add(id);
      }
      // A new job, an ended subtask: the leader looks at once rather than at its next tick.
      if (this.wasLeader) this.ticker.soon();
    });
  }

  start(): void {
    this.ticker.start(this.deps.config.leaderTickMs);
  }

  stop(): void {
    this.ticker.stop();
  }

  /**
   * The next tick: every leaderTickMs while the leader has work in flight (an unfinished
   * instance, a sync before it may act); otherwise at the next due fire, and at least every
   * leaderIdleTickMs. An idle node thus wakes twice a second instead of twenty times; what
   * happens in between (a record, a membership change) calls tick() itself.
   */
  private nextTickMs(): number {
    const { leaderTickMs, leaderIdleTickMs } = this.deps.config;
    if (this.busy) return leaderTickMs;
    // A member that is not the leader has nothing to do until it becomes one, and it is
    // told at once when it does (membership changes tick it): a rare look is a safety net.
    if (!this.wasLeader) return NON_LEADER_TICKS * leaderIdleTickMs;
    const nowMs = this.deps.clock.now();
    let delayMs = leaderIdleTickMs;
    for (const entry of this.due.values()) if (entry.nextMs !== null) delayMs = Math.min(delayMs, entry.nextMs - nowMs);
    return Math.max(leaderTickMs, delayMs);
  }

  isLeader(): boolean {
    return this.deps.view.leaderId() === this.deps.view.selfId;
  }

  tick(): void {
    this.ticker.run();
  }

  /** One round of the leader's duties; true if it left work in flight. */
  private act(): boolean {
    const leading = this.isLeader();
    if (leading && !this.wasLeader) {
      this.due.clear(); // re-check every schedule for missed fires
      this.sweep = 'all'; // and every instance: a new leader picks up what its predecessor left
    }
    this.wasLeader = leading;
    if (!leading) return false;
    if (this.deps.mayAct && !this.deps.mayAct()) return true;
    this.fireDueSchedules();
    return this.advanceInstances();
  }

  /** Creates an instance now (a scheduled fire) with one subtask per target, and commits it. */
  createInstance(job: string, spec: JobSpec, trigger: InstanceTrigger, fire?: { jobCreatedAtMs: number; atMs: number }): InstanceRecord {
    const planned = this.planInstance(job, spec, trigger, fire);
    this.releasing(planned);
    this.deps.commit(planned.records);
    this.instanceCreated(planned);
    return planned.instance;
  }

  /**
   * An instance and its first records (the subtasks released now, or its --pre step), not
   * yet committed: a run a client asked for is written to disk before anything is applied
   * (node.ts commitDurably), then `instanceCreated` says so. `id`: a run's id derived from
   * its request id (ids.ts), so a retried request finds the instance it made.
   */
  planInstance(job: string, spec: JobSpec, trigger: InstanceTrigger, fire?: { jobCreatedAtMs: number; atMs: number }, id?: string): PlannedInstance {
    const nowMs = this.deps.clock.now();
    id ??= fire ? scheduledInstanceId(job, fire.jobCreatedAtMs, fire.atMs) : (this.deps.newInstanceId ?? randomInstanceId)();
    const { targets, failure, skipped } = this.chooseTargets(id, spec);
    const stamp = this.deps.hlc.tick();
    const instance: InstanceRecord = {
      id,
      job,
      spec,
      trigger,
      scheduledAtMs: fire?.atMs ?? null,
      createdAtMs: nowMs,
      targets,
      failure,
      ...(skipped.length > 0 ? { skipped } : {}),
      stamp,
      sig: UNSIGNED,
    };
    // With a --pre step, the subtasks are created only once it has succeeded; a rolling
    // broadcast releases its first wave (up to --max-parallel) now and the rest as they end;
    // any other releases them all now, implied by the instance (no record of them travels).
    const first: AnyRecord[] =
      spec.pre !== null && targets.length > 0
        ? [{ kind: 'step', record: this.newStep(id, 'pre', stamp, trigger === 'schedule') }]
        : impliesSubtasks(instance)
          ? []
          : nextRelease(spec, targets, new Map(), false).release.map((nodeId) => ({ kind: 'subtask', record: newSubtask(id, nodeId, stamp, nowMs) }));
    return { instance, records: [{ kind: 'instance', record: instance }, ...first] };
  }

  /** Tells the observer of the subtasks an instance releases, before its records are committed (the simulation's checker counts releases). */
  releasing({ instance, records }: PlannedInstance): void {
    const released = impliesSubtasks(instance) ? instance.targets : records.flatMap((r) => (r.kind === 'subtask' ? [r.record.nodeId] : []));
    this.deps.observer?.subtasksReleased?.(instance.id, released);
  }

  /** Tells the observer and the log of an instance whose records were committed. */
  instanceCreated({ instance }: PlannedInstance): void {
    const { job, id, trigger, targets, failure, skipped = [] } = instance;
    this.deps.observer?.instanceCreated?.({ job, trigger, targets: targets.length, skipped: skipped.length });
    this.deps.log.info(
      { job, instanceId: id, nodeId: this.deps.selfId ?? null, attempt: null, trigger, targets: targets.length, failure, skipped: skipped.length > 0 ? skipped.map((s) => s.nodeId) : undefined },
      failure ? `instance created: ${failure}` : 'instance created',
    );
  }

  /** Refuses a run of a `forbid` job while another instance of it is unfinished. */
  assertMayStart(job: JobRecord): void {
    if (liveSpec(job).concurrency !== 'forbid') return;
    const running = this.unfinishedInstanceOf(job.name);
    if (running) {
      throw new ConcurrencyForbiddenError(
        `job ${job.name} is still running (instance ${running.id}) and its concurrency is forbid; wait for it or cancel it`,
      );
    }
  }

  private unfinishedInstanceOf(jobName: string): InstanceRecord | undefined {
    const [first] = this.deps.store.unfinishedOf(jobName);
    return first === undefined ? undefined : this.deps.store.instance(first);
  }

  /** Alive members that match the job's tags, less the draining ones (which the instance records as skipped) and the suspect ones (plan.ts). */
  private chooseTargets(instanceId: string, spec: JobSpec): { targets: string[]; failure: string | null; skipped: SkippedTarget[] } {
    const { eligible: members, leftOut } = eligibility(this.deps.view.members(), spec);
    const eligible = members.map((m) => m.nodeId);
    const skipped: SkippedTarget[] = leftOut.filter((l) => l.reason === 'draining').map((l) => ({ nodeId: l.member.nodeId, reason: 'draining' as const }));
    if (eligible.length === 0) return { targets: [], failure: noTargetFailure(spec, skipped.length), skipped };
    if (spec.type === 'broadcast') return { targets: eligible, failure: null, skipped };
    return { targets: [this.leastBusy(instanceId, eligible)], failure: null, skipped };
  }

  /** A standalone job goes to the eligible node with the fewest unfinished subtasks. */
  private leastBusy(instanceId: string, eligible: string[]): string {
    const { store } = this.deps;
    const load = new Map(eligible.map((id) => [id, 0]));
    for (const instance of store.instances()) {
      const subtasks = store.subtasksOf(instance.id);
      for (const [nodeId, subtask] of subtasks) {
        if (!isTerminal(subtask.status) && load.has(nodeId)) load.set(nodeId, (load.get(nodeId) ?? 0) + 1);
      }
      // The pending subtasks an unfinished instance implies (no record until their owner starts them).
      if (!impliesSubtasks(instance) || subtasks.size >= instance.targets.length || isInstanceFinished(store.statusOf(instance))) continue;
      for (const nodeId of eligible) if (!subtasks.has(nodeId) && sortedHas(instance.targets, nodeId)) load.set(nodeId, (load.get(nodeId) ?? 0) + 1);
    }
    const spread = (id: string) => fnv1a(`${instanceId}/${id}`);
    return [...eligible].sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || spread(a) - spread(b))[0] as string;
  }

  private fireDueSchedules(): void {
    const nowMs = this.deps.clock.now();
    const fires: AnyRecord[] = [];
    for (const job of this.deps.store.jobs()) {
      if (job.deleted || job.spec === null || job.spec.schedule === null) {
        this.due.delete(job.name);
        continue;
      }
      const stampKey = `${job.stamp.wallMs}.${job.stamp.counter}.${job.stamp.nodeId}`;
      let entry = this.due.get(job.name);
      if (!entry || entry.stampKey !== stampKey) {
        entry = { stampKey, nextMs: nowMs }; // check at once for a missed fire
        this.due.set(job.name, entry);
      }
      if (entry.nextMs === null || entry.nextMs > nowMs) continue;
      fires.push(...this.decideFires(job, nowMs));
      entry.nextMs = nextFireAfter(job.spec.schedule, job.createdAtMs, nowMs);
    }
    if (fires.length > 0) this.deps.commit(fires);
  }

  /**
   * Decides every due fire of the job not decided yet (scheduler/fires.ts): creates the
   * instances that run and records each decision as a fire record (`chorus job history`),
   * whatever it was: created, caught up, skipped (disabled, forbid-overlap, no eligible
   * node) or missed (past the misfire window, or coalesced into a later fire).
   */
  private decideFires(job: JobRecord, nowMs: number): AnyRecord[] {
    const spec = liveSpec(job);
    const schedule = spec.schedule;
    if (schedule === null) return [];
    const { store, config } = this.deps;
    const plans = planFires({
      schedule,
      originMs: job.createdAtMs,
      lastDecidedMs: store.lastFireOf(job.name, job.createdAtMs),
      nowMs,
      enabled: job.enabled,
      policy: spec.misfire ?? 'once',
      windowMs: spec.misfireWindowMs ?? config.misfireGraceMs,
      onTimeMs: config.fireOnTimeMs,
      limit: config.retainInstancesPerJob,
    });
    const out: AnyRecord[] = [];
    const selfId = this.deps.view.selfId;
    for (const plan of plans) {
      const atMs = plan.scheduledAtMs;
      const decided = (outcome: FireRecord['outcome'], reason: FireRecord['reason'], instanceId: string | null = null, running?: string): void => {
        const record: FireRecord = { job: job.name, jobCreatedAtMs: job.createdAtMs, scheduledAtMs: atMs, outcome, reason, instanceId, leader: selfId, decidedAtMs: nowMs, stamp: this.deps.hlc.tick(), sig: UNSIGNED };
        out.push({ kind: 'fire', record });
        if (outcome === 'skipped' || outcome === 'missed') {
          // Once a minute per job and kind: a restart with many missed fires, or a disabled job due every second, says so in one line a minute.
          const fields = { job: job.name, instanceId, nodeId: this.deps.selfId ?? null, attempt: null, scheduledAt: new Date(atMs).toISOString(), outcome, reason, running };
          this.repeats.log(this.deps.log, 'warn', `${job.name}\0${outcome}\0${reason}`, fields, `fire ${outcome}: ${reason}`);
        }
      };
      if (plan.action === 'skip-disabled') decided('skipped', 'disabled');
      else if (plan.action === 'miss-window') decided('missed', 'past-misfire-window');
      else if (plan.action === 'miss-coalesced') decided('missed', 'coalesced');
      else {
        const ran = plan.late ? 'caught-up' : 'created';
        const id = scheduledInstanceId(job.name, job.createdAtMs, atMs);
        const running = spec.concurrency === 'forbid' ? this.unfinishedInstanceOf(job.name) : undefined;
        if (store.instance(id)) decided(ran, null, id); // another leader created it (its fire record is on its way)
        else if (running) decided('skipped', 'forbid-overlap', null, running.id);
        // Fires faster than the cluster runs them: a backlog that only grows would take memory without bound.
        else if (store.unfinishedOf(job.name).size >= config.maxUnfinishedPerJob) decided('skipped', 'backlog');
        else if (eligibility(this.deps.view.members(), spec).eligible.length === 0) decided('skipped', 'no-eligible-node');
        else decided(ran, null, this.createInstance(job.name, spec, 'schedule', { jobCreatedAtMs: job.createdAtMs, atMs }).id);
      }
    }
    return out;
  }

  /**
   * Moves unfinished instances on: subtasks after a successful --pre step, the --post step
   * once every subtask ended, and the `node-lost` verdict for work whose owner died or
   * left. A new leader does the same for instances its predecessor created.
   */
  private advanceInstances(): boolean {
    const { store, clock, config } = this.deps;
    const nowMs = clock.now();
    if (this.sweep === 'changed' && nowMs >= this.nextOpenSweepMs) this.sweep = 'open';
    const ids = this.sweep === 'all' ? store.instances().map((i) => i.id) : this.sweep === 'open' ? [...this.open, ...this.changed] : [...this.changed];
    if (this.sweep !== 'changed') this.nextOpenSweepMs = nowMs + config.leaderIdleTickMs;
    this.sweep = 'changed';
    this.changed.clear();
    const writes: AnyRecord[] = [];
    for (const id of ids) {
      const instance = store.instance(id);
      if (!instance || isInstanceFinished(store.statusOf(instance))) {
        this.open.delete(id); // until one of its records changes (see constructor)
        continue;
      }
      this.open.add(id);
      writes.push(...this.lostWork(instance), ...this.nextSteps(instance));
    }
    if (writes.length > 0) this.deps.commit(writes);
    return this.open.size > 0;
  }

  /** A member's state changed: every unfinished instance is looked at again (its work may be lost). */
  membershipChanged(): void {
    if (this.sweep === 'changed') this.sweep = 'open';
  }

  /** Verdicts for the work of members now gone: walks the gone members (few), not the instance's targets (maybe thousands). */
  private lostWork(instance: InstanceRecord): AnyRecord[] {
    const { store, view } = this.deps;
    const lost: AnyRecord[] = [];
    const subtasks = store.subtasksOf(instance.id);
    const preDone = instance.spec.pre === null || store.step(instance.id, 'pre')?.status === 'succeeded';
    for (const nodeId of preDone ? view.goneMembers() : []) {
      const subtask = subtasks.get(nodeId);
      const isTarget = subtask !== undefined || sortedHas(instance.targets, nodeId);
      if (!isTarget || (subtask && isTerminal(subtask.status))) continue;
      lost.push({ kind: 'subtask', record: this.nodeLost(subtask ?? newSubtask(instance.id, nodeId, this.deps.hlc.tick())) });
      this.deps.log.warn({ job: instance.job, instanceId: instance.id, nodeId, attempt: subtask?.attempt ?? 1, status: 'failed', reason: 'node-lost' }, 'subtask node-lost');
    }
    for (const step of Object.values(store.stepsOf(instance.id))) {
      if (!step || isTerminal(step.status) || !isGone(view.stateOf(step.runnerNodeId))) continue;
      lost.push({ kind: 'step', record: this.nodeLost(step) });
      this.deps.log.warn({ job: instance.job, instanceId: instance.id, nodeId: step.runnerNodeId, attempt: step.attempt, step: step.step, status: 'failed', reason: 'node-lost' }, 'step node-lost');
    }
    return lost;
  }

  private nextSteps(instance: InstanceRecord): AnyRecord[] {
    const { store } = this.deps;
    const subtasks = store.subtasksOf(instance.id);
    const preDone = instance.spec.pre === null || store.step(instance.id, 'pre')?.status === 'succeeded';
    const targets = store.targetsOf(instance);
    // An instance that releases every subtask at its creation implies their pending records (records/rollout.ts).
    if (preDone && subtasks.size < targets.length && !impliesSubtasks(instance)) {
      // A cancelled rollout releases nothing more: what it never released ends cancelled (its owners never heard of it).
      if (store.cancelOf(instance.id)) return this.cancelUnreleased(instance, targets.filter((t) => !subtasks.has(t)));
      const { release, abort } = nextRelease(instance.spec, targets, subtasks, store.pausedOf(instance.id));
      if (release.length > 0 || abort.length > 0) return this.releaseOrAbort(instance, release, abort);
    }
    const { ended, total } = store.endedOf(instance);
    const allEnded = total > 0 && ended === total;
    if (instance.spec.post !== null && allEnded && !store.cancelOf(instance.id) && !store.step(instance.id, 'post')) {
      return [{ kind: 'step', record: this.newStep(instance.id, 'post', this.deps.hlc.tick(), true) }];
    }
    return [];
  }

  private cancelUnreleased(instance: InstanceRecord, unreleased: string[]): AnyRecord[] {
    const nowMs = this.deps.clock.now();
    const stamp = this.deps.hlc.tick();
    return unreleased.map((nodeId): AnyRecord => ({ kind: 'subtask', record: { ...newSubtask(instance.id, nodeId, stamp), status: 'cancelled', reason: 'cancelled', finishedAtMs: nowMs } }));
  }

  /** Releases subtasks to their owners (their first record) or ends unreleased ones `aborted` (the failure budget is spent). */
  private releaseOrAbort(instance: InstanceRecord, release: string[], abort: string[]): AnyRecord[] {
    const nowMs = this.deps.clock.now();
    const stamp = this.deps.hlc.tick();
    const event = { job: instance.job, instanceId: instance.id, nodeId: this.deps.selfId ?? null, attempt: null };
    if (release.length > 0) {
      this.deps.observer?.subtasksReleased?.(instance.id, release);
      if (isRolling(instance.spec)) this.deps.log.info({ ...event, released: release.length }, 'subtasks released');
    }
    if (abort.length > 0) this.deps.log.warn({ ...event, aborted: abort.length, status: 'failed' }, 'rollout stopped: more subtasks failed than --max-failures allows; unreleased subtasks aborted');
    return [
      ...release.map((nodeId): AnyRecord => ({ kind: 'subtask', record: newSubtask(instance.id, nodeId, stamp, nowMs) })),
      ...abort.map((nodeId): AnyRecord => ({ kind: 'subtask', record: abortedSubtask(instance.id, nodeId, stamp, nowMs) })),
    ];
  }

  /**
   * A step this leader will run. When another leader may create the same step at the same
   * moment (a post step; the pre step of a scheduled fire), it waits stepSettleMs before
   * starting, so the two records merge first and only the one runner they agree on starts.
   */
  private newStep(instanceId: string, step: StepName, stamp: SubtaskRecord['stamp'], settle: boolean): StepRecord {
    const record: StepRecord = { instanceId, step, runnerNodeId: this.deps.view.selfId, ...firstAttempt(stamp) };
    if (settle) record.notBeforeMs = this.deps.clock.now() + this.deps.config.stepSettleMs;
    return record;
  }

  private nodeLost<T extends AttemptState>(task: T): T {
    return {
      ...withSignal(task, null),
      status: 'failed',
      reason: 'node-lost',
      exitCode: null,
      finishedAtMs: this.deps.clock.now(),
      notBeforeMs: null,
      reporter: this.deps.view.selfId,
      stamp: this.deps.hlc.tick(),
    };
  }
}

/** A subtask's first record; `releasedAtMs` is set when the leader releases it to its owner (not for a node-lost verdict on an unreleased one). */
export function newSubtask(instanceId: string, nodeId: string, stamp: SubtaskRecord['stamp'], releasedAtMs?: number): SubtaskRecord {
  return { instanceId, nodeId, ...firstAttempt(stamp), ...(releasedAtMs !== undefined ? { releasedAtMs } : {}) };
}

/** A subtask the rollout never released, ended because the failure budget was spent. */
export function abortedSubtask(instanceId: string, nodeId: string, stamp: SubtaskRecord['stamp'], nowMs: number): SubtaskRecord {
  return { instanceId, nodeId, ...firstAttempt(stamp), status: 'cancelled', reason: 'aborted', finishedAtMs: nowMs };
}

/** Attempt 1, pending, written by the stamp's node (the leader). */
export function firstAttempt(stamp: SubtaskRecord['stamp']): AttemptState {
  return {
    attempt: 1,
    status: 'pending',
    reason: null,
    exitCode: null,
    startedAtMs: null,
    finishedAtMs: null,
    notBeforeMs: null,
    history: [],
    reporter: stamp.nodeId,
    stamp,
    sig: UNSIGNED,
  };
}

