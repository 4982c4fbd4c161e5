// The control plane as a service: what `chorus` asks of a node (put a job, run it, cancel,
// watch, fetch logs...), over the node and a clock only. The HTTP server is a thin adapter
// over it (server.ts) and the simulator drives the same service, so the API's semantics
// run in simulations exactly as they do behind the daemon's port.
import { randomBytes } from 'node:crypto';
import { isAbsolute } from 'node:path';
import type { Clock } from '../core/clock.js';
import { atProblem, jobNameProblem } from '../core/limits.js';
import type { Logger } from '../core/log.js';
import { CHORUS_VERSION } from '../core/version.js';
import { WriteNotReplicatedError } from '../cluster/replicator.js';
import { RpcError } from '../cluster/rpc.js';
import type { ChorusNode } from '../node/node.js';
import { LeaderUnreachableError } from '../scheduler/run-requests.js';
import { ADHOC_JOB } from '../records/ids.js';
import { isInstanceFinished } from '../records/status.js';
import { UNSIGNED } from '../records/signature.js';
import { canonicalJson } from '../records/canonical.js';
import type { AnyRecord, InstanceRecord, JobRecord, JobSpec } from '../records/types.js';
import { instanceIdOf, liveSpec } from '../records/types.js';
import { ApiError, CHANGE_KINDS, type RunRequest, type ChangeKind, type ChangesView, type ControlPlane, type Listing, type LogFollowView, type LogGroup, type LogView, type StatusView, type ViewError } from './control-plane.js';
import { CursorError, decodeCursor, encodeCursor, type NodeCursor } from '../output/cursor.js';
import { LogFollower } from '../output/follower.js';
import { groupLogs } from './groups.js';
import { Waiters } from '../core/waiters.js';
import { resolveNodeRef } from './node-ref.js';
import { versionOf } from './version-of.js';
import { planOf, type PlanView } from '../scheduler/plan.js';
import { fireView, instanceView, iso, jobView, nodeView, type FireView, type InstanceView, type JobView, type NodeDetailView, type NodeView, type RecentRun } from './views.js';

/** Job writes remembered by request id, so a retried `chorus job add` is answered as the first was. */
const MAX_REMEMBERED_WRITES = 1000;

/** Most bytes of output in one answer of a follow; what is left comes in the next (at once). */
const FOLLOW_ANSWER_BYTES = 1024 * 1024;

/** An answer of a follow while it is put together: what it holds, and how many bytes of output. */
type FollowAnswer = Omit<LogFollowView, 'cursor'> & { bytes: number };

export interface ServiceDeps {
  node: ChorusNode;
  clock: Clock;
  log: Logger;
  /** What only the host knows, for `chorus status`: the API address, the data directory, memory, transport counters, how attempts are killed. */
  host: {
    api: () => string;
    dataDir: string | null;
    memory: () => StatusView['memory'];
    networkCounters: () => object;
    containment: StatusView['containment'];
  };
}

/** The key the members' watchers wait on (instance ids are hex, so it cannot clash). */
const MEMBERS_KEY = 'members:';
/** The key the watchers of record changes (`GET /v1/changes`) wait on. */
const CHANGES_KEY = 'changes:';

export class ControlService implements ControlPlane {
  private readonly startedAtMs: number;
  /** Long polls waiting for a change of an instance (a watch, a follow), by instance id. */
  private readonly watchers: Waiters;
  /** Records that could not be shown, by kind/key, oldest first (bounded). */
  private readonly viewErrors = new Map<string, ViewError>();
  /** The questions for output this daemon has out to the nodes it follows for clients (`instance logs --follow`). */
  private readonly follower: LogFollower;
  /** Names this run of the daemon in change cursors: a cursor of an earlier run counts from another sequence. */
  private readonly runId = randomBytes(6).toString('hex');
  /** Records changed here since the start, and the number of the last change of each kind. */
  private changeSeq = 0;
  private readonly lastChangeOf = new Map<string, number>();

  constructor(private readonly deps: ServiceDeps) {
    this.startedAtMs = deps.clock.now();
    this.watchers = new Waiters(deps.clock);
    deps.node.onMembersChanged(() => this.watchers.wake(MEMBERS_KEY));
    const { node } = deps;
    this.follower = new LogFollower({
      clock: deps.clock,
      ask: (nodeId, instanceId, position, waitMs) => node.outputs.followFrom(nodeId, instanceId, position, waitMs),
      maxPolls: node.config.maxFollowPolls,
      retryMs: node.config.requestTimeoutMs,
      askWaitMs: node.config.followAskWaitMs,
      answerKeptMs: node.config.followAnswerKeptMs,
      settled: (instanceId) => this.watchers.wake(instanceId),
    });
    deps.node.store.onChange((records) => this.notifyWatchers(records));
  }

  async watchChanges(cursorText: string | null, kinds: readonly ChangeKind[], waitMs: number): Promise<ChangesView> {
    const asked = kinds.length > 0 ? kinds : CHANGE_KINDS;
    const since = cursorText === null ? null : this.parseChangeCursor(cursorText);
    const answer = (changed: ChangeKind[]): ChangesView => ({ cursor: `${this.runId}.${this.changeSeq}`, changed });
    if (since === null) return answer([]);
    if (since === 'earlier-run') return answer([...asked]);
    const deadlineMs = this.now() + waitMs;
    for (;;) {
      const changed = asked.filter((kind) => (this.lastChangeOf.get(kind) ?? 0) > since);
      const leftMs = deadlineMs - this.now();
      if (changed.length > 0 || leftMs <= 0) return answer(changed);
      await this.watchers.wait([CHANGES_KEY], leftMs);
    }
  }

  /** The change number of a cursor of this run; 'earlier-run' for a cursor another run of the daemon gave. */
  private parseChangeCursor(text: string): number | 'earlier-run' {
    const m = /^([0-9a-f]{12})\.(\d{1,15})$/.exec(text);
    if (!m) throw new ApiError(400, 'bad-cursor', `cursor ${JSON.stringify(text.slice(0, 40))} is not one this API gives (RUN.NUMBER, from an earlier answer of /v1/changes)`);
    if (m[1] !== this.runId) return 'earlier-run';
    const seq = Number(m[2]);
    if (seq > this.changeSeq) throw new ApiError(400, 'bad-cursor', `cursor ${text} is ahead of this daemon's changes (${this.changeSeq})`);
    return seq;
  }

  private get node(): ChorusNode {
    return this.deps.node;
  }

  private get store() {
    return this.deps.node.store;
  }

  private now(): number {
    return this.deps.clock.now();
  }

  status(): StatusView {
    const { node, host } = this.deps;
    const members = node.membership.members();
    const self = node.selfRecord;
    const leader = node.membership.leaderId();
    return {
      nodeId: self.nodeId,
      name: self.name,
      tags: self.tags,
      version: CHORUS_VERSION,
      leader,
      isLeader: leader === self.nodeId,
      keepers: [...node.membership.keepers()],
      isKeeper: node.membership.isKeeper(),
      members: members.length,
      aliveMembers: members.filter((m) => m.state === 'alive').length,
      multiaddrs: node.transport.addresses(),
      api: host.api(),
      dataDir: host.dataDir ?? '',
      uptimeMs: this.now() - this.startedAtMs,
      runningSubtasks: node.worker.runningCount(),
      containment: host.containment,
      records: this.store.size(),
      errors: [...this.viewErrors.values()],
      memory: host.memory(),
      bounds: [
        ...node.bounds(),
        { name: 'unshowable records remembered', used: this.viewErrors.size, limit: node.config.maxViewErrors, about: 'records that could not be shown, for status; the oldest go first' },
        { name: 'log follow polls', used: this.follower.size, limit: node.config.maxFollowPolls, about: 'questions for output out to the nodes followed for clients (instance logs --follow), or answers waiting for their next request; past it nodes are asked in turns' },
      ],
      counters: {
        ...prefixed('membership', node.membership.counters),
        ...prefixed('replication', node.replicator.counters),
        ...prefixed('network', host.networkCounters()),
      },
    };
  }

  /**
   * The members as soon as one of them changed (state, leader, tags, drain, incarnation)
   * since `version`, or after `waitMs` (the dashboard's live view; `lastSeen` alone does not
   * count as a change, or the answer would come at once every time).
   */
  async watchNodes(version: string | null, waitMs: number): Promise<{ version: string; nodes: NodeView[] }> {
    const current = () => {
      const nodes = this.nodes();
      return { version: versionOf(nodes.map(({ lastSeen: _l, lastSeenMs: _m, addrs: _a, ...rest }) => rest)), nodes };
    };
    const now = current();
    if (version === null || now.version !== version) return now;
    await this.watchers.wait([MEMBERS_KEY], waitMs);
    return current();
  }

  nodes(): NodeView[] {
    return this.node.membership
      .members()
      .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
      .map(nodeView);
  }

  getNode(ref: string): NodeDetailView {
    const nodeId = this.resolveMember(ref);
    return this.nodeDetail(nodeId);
  }

  async drainNode(ref: string, draining: boolean): Promise<NodeDetailView> {
    const nodeId = this.resolveMember(ref);
    const member = this.node.membership.members().find((m) => m.nodeId === nodeId);
    if (member && member.state !== 'alive' && nodeId !== this.node.id) {
      throw new ApiError(409, 'node-not-alive', `node ${member.name} (${nodeId}) is ${member.state}: only a live node can record its own drain; it takes no new work while it is not alive anyway`);
    }
    try {
      await this.node.drain(nodeId, draining);
    } catch (err) {
      if (err instanceof RpcError || err instanceof ApiError) throw err;
      throw new ApiError(502, 'node-unreachable', `could not ask node ${member?.name ?? nodeId} to ${draining ? 'drain' : 'undrain'}: ${(err as Error).message}`);
    }
    return this.nodeDetail(nodeId);
  }

  private resolveMember(ref: string): string {
    const candidates = this.node.membership.members().map((m) => ({ nodeId: m.nodeId, name: m.name }));
    return resolveNodeRef(ref, candidates, 'the cluster');
  }

  private nodeDetail(nodeId: string): NodeDetailView {
    const member = this.nodes().find((m) => m.nodeId === nodeId);
    if (!member) throw new ApiError(404, 'unknown-node', `no member ${nodeId}`);
    return { ...member, unfinished: this.node.unfinishedWorkOf(nodeId) };
  }

  listJobs(recent = 0): Listing<JobView> {
    const nowMs = this.now();
    const jobs = this.store
      .jobs()
      .filter((j) => !j.deleted)
      .sort((a, b) => a.name.localeCompare(b.name));
    if (recent <= 0) return this.showEach(jobs, (j) => ({ kind: 'job', key: j.name }), (j) => jobView(j, nowMs));
    const byJob = new Map<string, InstanceRecord[]>();
    for (const i of this.store.instances()) {
      const list = byJob.get(i.job);
      if (list) list.push(i);
      else byJob.set(i.job, [i]);
    }
    const recentOf = (name: string): RecentRun[] =>
      (byJob.get(name) ?? [])
        .sort(newestFirst)
        .slice(0, recent)
        .map((i) => ({ id: i.id, status: this.store.statusOf(i), createdAt: iso(i.createdAtMs) as string }));
    return this.showEach(jobs, (j) => ({ kind: 'job', key: j.name }), (j) => ({ ...jobView(j, nowMs), recent: recentOf(j.name) }));
  }

  /** Every fire of the job's current definition the leaders decided, newest first (bounded by retention). */
  jobHistory(name: string, limit: number): FireView[] {
    const job = this.liveJob(name);
    return this.store
      .fires()
      .filter((f) => f.job === name && f.jobCreatedAtMs === job.createdAtMs)
      .sort((a, b) => b.scheduledAtMs - a.scheduledAtMs)
      .slice(0, limit)
      .map((f) => fireView(f, (nodeId) => this.store.member(nodeId)?.name ?? null));
  }

  /** The nodes a run of the job would target now, and the members left out (nothing is run). */
  planJob(name: string): PlanView {
    return planOf(name, liveSpec(this.liveJob(name)), this.node.membership.members());
  }

  /** The plan of an ad-hoc run (`chorus run --plan`). */
  planAdhoc(spec: JobSpec): PlanView {
    validateSpec(spec, this.now(), this.node.config.misfireGraceMs);
    return planOf(null, spec, this.node.membership.members());
  }

  getJob(name: string): JobView {
    const job = this.liveJob(name);
    return this.showOne({ kind: 'job', key: name }, () => jobView(job, this.now()));
  }

  async putJob(name: string, spec: JobSpec, replace: boolean, requestId: string | null = null): Promise<JobView> {
    const badName = jobNameProblem(name);
    if (badName !== null) throw new ApiError(400, 'bad-job-name', badName);
    validateSpec(spec, this.now(), this.node.config.misfireGraceMs);
    await this.checkSecretFile(spec);
    if (requestId === null) return this.writeJob(name, spec, replace);
    const request = canonicalJson({ name, spec, replace });
    const earlier = this.jobWrites.get(requestId);
    if (earlier) {
      if (earlier.request !== request) throw new ApiError(409, 'request-id-reused', `the request id ${requestId} was used for another job write; use a new one`);
      return earlier.answer; // the same write again (its answer was lost): answered as the first time
    }
    const answer = this.writeJob(name, spec, replace);
    this.jobWrites.set(requestId, { request, answer });
    answer.catch(() => this.jobWrites.delete(requestId)); // a write that failed did nothing: it may be tried again
    while (this.jobWrites.size > MAX_REMEMBERED_WRITES) this.jobWrites.delete(this.jobWrites.keys().next().value as string);
    return answer;
  }

  /** Job writes answered for a request id, newest last (bounded): a retry gets the same answer. */
  private readonly jobWrites = new Map<string, { request: string; answer: Promise<JobView> }>();

  private async writeJob(name: string, spec: JobSpec, replace: boolean): Promise<JobView> {
    const existing = this.store.job(name);
    if (existing && !existing.deleted && !replace) {
      throw new ApiError(409, 'job-exists', `a job named "${name}" already exists; remove it first or add with --replace`);
    }
    const keep = existing && !existing.deleted;
    const job: JobRecord = {
      name,
      spec,
      enabled: keep ? existing.enabled : true,
      deleted: false,
      createdAtMs: keep ? existing.createdAtMs : this.now(),
      stamp: this.node.hlc.tick(),
      sig: UNSIGNED,
    };
    await this.commitAcknowledged([{ kind: 'job', record: job }]);
    return jobView(job, this.now());
  }

  async removeJob(name: string): Promise<void> {
    const job = this.liveJob(name);
    await this.commitAcknowledged([{ kind: 'job', record: { ...job, spec: null, deleted: true, stamp: this.node.hlc.tick() } }]);
  }

  async setJobEnabled(name: string, enabled: boolean): Promise<JobView> {
    const job = { ...this.liveJob(name), enabled, stamp: this.node.hlc.tick() };
    await this.commitAcknowledged([{ kind: 'job', record: job }]);
    return jobView(job, this.now());
  }

  async runJob(name: string, request: RunRequest = { requestId: null }): Promise<InstanceView> {
    const job = this.liveJob(name);
    return this.viewOf(await this.requestInstance(job.name, liveSpec(job), 'manual', request));
  }

  async runAdhoc(spec: JobSpec, request: RunRequest = { requestId: null }): Promise<InstanceView> {
    if (spec.schedule !== null) throw new ApiError(400, 'bad-request', 'an ad-hoc run cannot have a schedule');
    await this.checkSecretFile(spec);
    return this.viewOf(await this.requestInstance(ADHOC_JOB, spec, 'adhoc', request));
  }

  listInstances(filter: { job?: string; limit: number }): Listing<InstanceView> {
    if (filter.job !== undefined && filter.job !== ADHOC_JOB) {
      const job = this.store.job(filter.job);
      const hasInstances = this.store.instances().some((i) => i.job === filter.job);
      if (!job && !hasInstances) throw new ApiError(404, 'unknown-job', `there is no job named "${filter.job}" (see: chorus job list)`);
    }
    const instances = this.store
      .instances()
      .filter((i) => filter.job === undefined || i.job === filter.job)
      .sort(newestFirst)
      .slice(0, filter.limit);
    return this.showEach(instances, (i) => ({ kind: 'instance', key: i.id }), (i) => this.viewOf(i));
  }

  getInstance(id: string): InstanceView {
    const instance = this.instanceRecord(id);
    return this.showOne({ kind: 'instance', key: id }, () => this.viewOf(instance));
  }

  async watchInstance(id: string, version: string | null, waitMs: number): Promise<InstanceView> {
    const current = this.getInstance(id);
    if (version === null || versionOf(current) !== version || isInstanceFinished(current.status)) return current;
    await this.watchers.wait([id], waitMs);
    return this.getInstance(id);
  }

  /** Instances someone is waiting on right now (a watch or a follow; no key is kept without a waiter). */
  watchedInstances(): number {
    return this.watchers.size;
  }

  async cancelInstance(id: string): Promise<InstanceView> {
    const instance = this.instanceRecord(id);
    if (!this.store.cancelOf(id)) {
      const status = this.store.statusOf(instance);
      if (!isInstanceFinished(status)) {
        await this.commitAcknowledged([{ kind: 'cancel', record: { instanceId: id, requestedAtMs: this.now(), stamp: this.node.hlc.tick(), sig: UNSIGNED } }]);
      }
    }
    return this.getInstance(id);
  }

  async pauseInstance(id: string, paused: boolean): Promise<InstanceView> {
    const instance = this.instanceRecord(id);
    if (this.store.pausedOf(id) === paused) return this.getInstance(id);
    const verb = paused ? 'pause' : 'resume';
    if (isInstanceFinished(this.store.statusOf(instance))) throw new ApiError(409, 'instance-ended', `instance ${id} has ended: there is nothing to ${verb}`);
    const targets = this.store.targetsOf(instance);
    if (paused && this.store.subtasksOf(id).size >= targets.length) {
      throw new ApiError(409, 'nothing-to-pause', `every subtask of instance ${id} is already released, so there is nothing to hold back: pause stops the release of a rolling broadcast's subtasks (--max-parallel, --waves); use chorus instance cancel to stop running work`);
    }
    await this.commitAcknowledged([{ kind: 'pause', record: { instanceId: id, paused, stamp: this.node.hlc.tick(), sig: UNSIGNED } }]);
    return this.getInstance(id);
  }

  async logs(id: string, nodeRef: string | null): Promise<LogView[]> {
    const instance = this.instanceRecord(id);
    const everyNode = this.outputNodes(instance);
    const nodeId = this.outputNode(id, everyNode, nodeRef);
    const nodes = nodeId === null ? everyNode : [nodeId];
    const out: LogView[] = [];
    for (const target of nodes) {
      try {
        const logs = await this.node.outputs.logsFrom(target, id);
        out.push(...logs.map(({ instanceId: _i, ...rest }) => rest));
      } catch (err) {
        if (nodeId !== null) throw new ApiError(502, 'logs-unavailable', `cannot fetch logs from node ${target}: ${(err as Error).message}`);
        out.push({ nodeId: target, attempt: 0, stdout: '', stderr: `(logs unavailable: ${(err as Error).message})`, stdoutDroppedBytes: 0, stderrDroppedBytes: 0 });
      }
    }
    return out;
  }

  async logGroups(id: string, nodeRef: string | null): Promise<LogGroup[]> {
    const instance = this.instanceRecord(id);
    const only = this.outputNode(id, this.outputNodes(instance), nodeRef);
    const logs = await this.logs(id, only);
    return groupLogs(this.getInstance(id), logs, { only, nameOf: (nodeId) => this.store.member(nodeId)?.name ?? null });
  }

  async followLogs(id: string, nodeRef: string | null, cursorText: string, waitMs: number): Promise<LogFollowView> {
    const instance = this.instanceRecord(id);
    const nodes = this.outputNodes(instance);
    const only = this.outputNode(id, nodes, nodeRef);
    let cursors: NodeCursor[];
    try {
      cursors = decodeCursor(cursorText, nodes.length);
    } catch (err) {
      if (!(err instanceof CursorError)) throw err;
      throw new ApiError(400, 'bad-cursor', `${err.message}: pass back the cursor of the previous answer as it was, or none to start`);
    }
    const followed = nodes.map((nodeId, index) => ({ nodeId, cursor: cursors[index] as NodeCursor })).filter((n) => only === null || n.nodeId === only);
    const answer: FollowAnswer = { instanceId: id, status: this.store.statusOf(instance), chunks: [], ended: [], unavailable: [], done: false, bytes: 0 };
    const startedAtMs = this.now();
    const deadline = startedAtMs + waitMs;
    let firstNewsAtMs: number | null = null;
    for (;;) {
      const { news, asking } = this.followStep(instance, followed, answer, startedAtMs);
      if (news) firstNewsAtMs ??= this.now();
      // Once there is news, the answers about to come join it (an instance that ended: all at once).
      const answerAtMs = firstNewsAtMs === null ? deadline : Math.min(deadline, firstNewsAtMs + this.node.config.followGatherMs);
      const leftMs = answerAtMs - this.now();
      if (answer.done || leftMs <= 0 || (firstNewsAtMs !== null && asking === 0)) {
        const { bytes: _bytes, ...view } = answer;
        return { ...view, cursor: encodeCursor(cursors) };
      }
      const retryAtMs = this.follower.nextRetryAtMs(id);
      await this.watchers.wait([id], Math.min(leftMs, retryAtMs === null ? Infinity : Math.max(0, retryAtMs - this.now())));
    }
  }

  /**
   * One look at every followed node: takes the answers that came (within the answer's
   * budget), asks the nodes not asked yet, and marks done the nodes with nothing more to
   * come. `news`: something for the client; `asking`: questions still out.
   */
  private followStep(instance: InstanceRecord, followed: { nodeId: string; cursor: NodeCursor }[], answer: FollowAnswer, requestedAtMs: number): { news: boolean; asking: number } {
    const id = instance.id;
    answer.status = this.store.statusOf(instance);
    const finished = isInstanceFinished(answer.status);
    let news = false;
    let asking = 0;
    for (const { nodeId, cursor } of followed) {
      if (cursor.done) continue;
      if (finished && this.outputOver(id, nodeId, cursor)) {
        cursor.done = news = true;
        continue;
      }
      const poll = answer.bytes < FOLLOW_ANSWER_BYTES ? this.follower.pollFor(id, nodeId, cursor.position) : null;
      if (poll === null) continue;
      if (poll.state === 'asking') {
        asking += 1;
        continue;
      }
      const name = this.store.member(nodeId)?.name ?? null;
      if (poll.state === 'failed') {
        if (!answer.unavailable.some((u) => u.nodeId === nodeId)) answer.unavailable.push({ nodeId, name, message: poll.error ?? 'no answer' });
        // Told at once when it failed during this request (the node is asked again after requestTimeoutMs).
        if (poll.settledAtMs >= requestedAtMs) news = true;
        // Its work ended with the instance, and what it printed cannot be had: nothing more will come.
        if (finished) cursor.done = true;
        continue;
      }
      const reply = this.follower.take(poll);
      for (const chunk of reply.chunks) {
        answer.chunks.push({ nodeId, name, ...chunk });
        answer.bytes += Buffer.byteLength(chunk.text);
      }
      answer.ended.push(...reply.ended.map((e) => ({ nodeId, ...e })));
      Object.assign(cursor, { position: reply.position, complete: reply.complete, steps: reply.steps });
      if (finished && this.outputOver(id, nodeId, cursor)) cursor.done = true;
      news ||= reply.chunks.length > 0 || reply.ended.length > 0 || cursor.done;
    }
    answer.done = followed.every((n) => n.cursor.done);
    return { news, asking };
  }

  /** Once the instance ended: the node said nothing more was there, after every step it runs had been created. */
  private outputOver(instanceId: string, nodeId: string, cursor: NodeCursor): boolean {
    if (!cursor.complete) return false;
    const steps = this.store.stepsOf(instanceId);
    return (['pre', 'post'] as const).every((step) => steps[step]?.runnerNodeId !== nodeId || cursor.steps.includes(step));
  }

  /** Every node that may hold output of the instance: its targets, then the runners of its steps; this order only grows. */
  private outputNodes(instance: InstanceRecord): string[] {
    const runners = [this.store.step(instance.id, 'pre')?.runnerNodeId, this.store.step(instance.id, 'post')?.runnerNodeId];
    return [...new Set([...this.store.targetsOf(instance), ...runners.filter((n): n is string => n !== undefined)])];
  }

  /** The node `--node` names among them (full id, id suffix or name), or null without one. */
  private outputNode(instanceId: string, nodes: string[], nodeRef: string | null): string | null {
    if (nodeRef === null) return null;
    return resolveNodeRef(nodeRef, nodes.map((n) => ({ nodeId: n, name: this.store.member(n)?.name ?? null })), `instance ${instanceId}`);
  }

  // ---- internals ------------------------------------------------------------------

  /**
   * The spec's --notify-secret-file, read here as the delivering node will read it: a file that
   * cannot serve as a key is refused when the job is added, not found out at its first delivery.
   * Only this host is checked; the leader of the day reads its own copy.
   */
  private async checkSecretFile(spec: JobSpec): Promise<void> {
    const file = spec.notifySecretFile;
    if (file === undefined) return;
    const where = `It is read on the node that delivers (the leader), so every node that may lead needs it; this check ran on ${this.node.selfRecord.name}.`;
    if (!isAbsolute(file)) throw new ApiError(400, 'bad-secret-file', `--notify-secret-file ${file}: give an absolute path. ${where}`);
    try {
      await this.node.notifier.checkSecretFile(file);
    } catch (err) {
      throw new ApiError(400, 'bad-secret-file', `${(err as Error).message} ${where}`);
    }
  }

  private async requestInstance(job: string, spec: JobSpec, trigger: 'manual' | 'adhoc', request: RunRequest): Promise<InstanceRecord> {
    try {
      return await this.node.runs.request(job, spec, trigger, request.requestId, request.leaderWaitMs);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const message = (err as Error).message;
      if (code === 'concurrency-forbid') throw new ApiError(409, 'concurrency-forbid', message);
      if (code === 'request-id-reused') throw new ApiError(409, 'request-id-reused', message);
      if (code === 'storage-failed') throw new ApiError(507, 'storage-failed', message);
      // A client with a request id tries these again (the same id makes the same instance):
      // no leader yet, the leader changed, or it is alive but did not answer in time.
      if (code === 'no-leader') throw new ApiError(503, 'no-leader', message);
      if (err instanceof LeaderUnreachableError) throw new ApiError(503, err.code, message);
      if (err instanceof WriteNotReplicatedError) {
        throw new ApiError(503, 'not-replicated', `the instance was created but no other member confirmed it yet: ${err.message}`);
      }
      if (err instanceof RpcError) throw new ApiError(503, 'leader-unreachable', message);
      throw err;
    }
  }

  /** Views of every record that can be shown; each one that cannot is named, logged and left out. */
  private showEach<R, V>(records: R[], keyOf: (r: R) => Omit<ViewError, 'message'>, view: (r: R) => V): Listing<V> {
    const listing: Listing<V> = { items: [], errors: [] };
    for (const record of records) {
      try {
        listing.items.push(view(record));
      } catch (err) {
        listing.errors.push(this.unshowable(keyOf(record), err));
      }
    }
    return listing;
  }

  private showOne<V>(key: Omit<ViewError, 'message'>, view: () => V): V {
    try {
      return view();
    } catch (err) {
      const error = this.unshowable(key, err);
      throw new ApiError(500, 'unshowable-record', `${error.kind} ${error.key} cannot be shown: ${error.message}`);
    }
  }

  private unshowable(key: Omit<ViewError, 'message'>, err: unknown): ViewError {
    const error: ViewError = { ...key, message: (err as Error).message ?? String(err) };
    const id = `${error.kind}/${error.key}`;
    if (!this.viewErrors.has(id)) this.deps.log.error({ err, record: id }, `${error.kind} ${error.key} cannot be shown; it is left out of views`);
    this.viewErrors.delete(id);
    this.viewErrors.set(id, error);
    while (this.viewErrors.size > this.node.config.maxViewErrors) this.viewErrors.delete(this.viewErrors.keys().next().value as string);
    return error;
  }

  private liveJob(name: string): JobRecord {
    const job = this.store.job(name);
    if (!job || job.deleted) throw new ApiError(404, 'unknown-job', `there is no job named "${name}" (see: chorus job list)`);
    return job;
  }

  private instanceRecord(id: string): InstanceRecord {
    const instance = this.store.instance(id);
    if (!instance) throw new ApiError(404, 'unknown-instance', `there is no instance with id "${id}" (see: chorus instance list)`);
    return instance;
  }

  private viewOf(instance: InstanceRecord): InstanceView {
    return instanceView(instance, this.store.factsOf(instance), (nodeId) => this.store.member(nodeId)?.name ?? null);
  }

  /**
   * Writes records to disk, then applies them, and answers only once they are on disk here
   * and on another member (guarantee 8). A disk that refuses them fails the request with
   * nothing applied (StorageWriteError, HTTP 507 in server.ts).
   */
  private async commitAcknowledged(records: AnyRecord[]): Promise<void> {
    await this.node.commitDurably(records);
    try {
      await this.node.acknowledge(records, false);
    } catch (err) {
      if (err instanceof WriteNotReplicatedError) {
        throw new ApiError(503, 'not-replicated', `the change is saved on this node but no other member confirmed it yet: ${err.message}`);
      }
      throw err;
    }
  }

  private notifyWatchers(records: AnyRecord[]): void {
    for (const r of records) this.lastChangeOf.set(r.kind, ++this.changeSeq);
    if (this.watchers.size === 0) return;
    if (records.some((r) => r.kind !== 'member')) this.watchers.wake(CHANGES_KEY);
    for (const r of records) {
      const id = instanceIdOf(r);
      if (id !== null) this.watchers.wake(id);
    }
  }
}

/** Instances newest first (ties by id, so every node lists them alike). */
function newestFirst(a: InstanceRecord, b: InstanceRecord): number {
  return b.createdAtMs - a.createdAtMs || a.id.localeCompare(b.id);
}

function prefixed(prefix: string, counters: object): Record<string, number> {
  return Object.fromEntries(Object.entries(counters).map(([k, v]) => [`${prefix}.${k}`, Number(v)]));
}

/** What the record schema cannot know: the bounds that depend on now (see core/limits.ts). */
function validateSpec(spec: JobSpec, nowMs: number, misfireWindowMs: number): void {
  if (spec.schedule?.kind !== 'at') return;
  const problem = atProblem(spec.schedule.atMs, nowMs, misfireWindowMs);
  if (problem !== null) throw new ApiError(400, 'bad-request', `schedule.atMs ${spec.schedule.atMs} (${iso(spec.schedule.atMs)}): ${problem}`);
}
