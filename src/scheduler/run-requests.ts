// A run asked for on any node (`chorus job run`, `chorus run`) is made by the leader: here
// when this node leads, else forwarded to it over RPC. The request id the CLI sends (the
// same on each of its retries) derives the instance's id, so a request tried again, even
// on another leader, makes one instance. Guarantee 8: the run is on disk on the leader and
// on the asking member before the client hears of it.
import type { Clock } from '../core/clock.js';
import { withTimeout } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Transport } from '../core/transport.js';
import type { Membership } from '../cluster/membership.js';
import { WriteNotReplicatedError, type Replicator } from '../cluster/replicator.js';
import { RpcError, type Rpc } from '../cluster/rpc.js';
import { canonicalJson } from '../records/canonical.js';
import { isRequestId, requestedInstanceId } from '../records/ids.js';
import type { AnyRecord, InstanceRecord, InstanceTrigger, JobSpec } from '../records/types.js';
import { instanceRecordSchema, jobSpecSchema } from '../records/validate.js';
import { StorageWriteError } from '../store/durable-file.js';
import type { RecordStore } from '../store/record-store.js';
import type { Leader } from './leader.js';

/** The RPC a member sends the leader to make a run. */
export const RUN = 'run';

/** The leader did not answer a forwarded request: `leader-busy` (alive) or `leader-lost` (gone; another leads next). */
export class LeaderUnreachableError extends Error {
  constructor(
    message: string,
    readonly code: 'leader-busy' | 'leader-lost' = 'leader-busy',
  ) {
    super(message);
  }
}

/** A run's request id that names another run, or one whose instance retention removed. */
export class RequestIdReusedError extends Error {
  readonly code = 'request-id-reused';
}

export class NotLeaderError extends Error {
  readonly code = 'no-leader';
}

export interface RunRequestsDeps {
  clock: Clock;
  config: Pick<ChorusConfig, 'leaderTryMs'>;
  store: RecordStore;
  transport: Pick<Transport, 'localId' | 'connectedPeers'>;
  rpc: Rpc;
  membership: Pick<Membership, 'leaderId' | 'stateOf' | 'members'>;
  replicator: Pick<Replicator, 'verifyRecords' | 'replicateTo'>;
  leader: Pick<Leader, 'assertMayStart' | 'planInstance' | 'releasing' | 'instanceCreated'>;
  log: Logger;
  /** Signs, writes to disk and only then applies and sends (a write that fails has no effect). */
  commitDurably: (records: AnyRecord[]) => Promise<AnyRecord[]>;
  /** Resolves once the records are on disk here and on one other alive member (guarantee 8). */
  acknowledge: (records: AnyRecord[], flush: boolean) => Promise<void>;
}

interface LeaderWatcher {
  leaderId: string;
  promise: Promise<never>;
  reject: (err: Error) => void;
}

export class RunRequests {
  /** Runs being made here for a request id: a retry that arrives meanwhile waits for the same instance. */
  private readonly inFlight = new Map<string, Promise<InstanceRecord>>();
  /** Forwarded runs waiting on a leader, each told when that leader stops leading; one entry per run in flight, removed when it ends. */
  private readonly leaderWatchers = new Set<LeaderWatcher>();

  constructor(private readonly deps: RunRequestsDeps) {
    deps.rpc.handle(RUN, (from, body) => this.onRunRequest(from, body));
  }

  private get selfId(): string {
    return this.deps.transport.localId;
  }

  /**
   * Creates an instance on the leader (here, or by asking it) and returns it once known here.
   * A leader that does not answer in time is told apart: alive (busy), or gone (the next
   * leader takes the request); the client tries again with the same id until its deadline.
   */
  async request(job: string, spec: JobSpec, trigger: InstanceTrigger, requestId: string | null = null, leaderWaitMs = this.deps.config.leaderTryMs): Promise<InstanceRecord> {
    const { membership, store } = this.deps;
    const leaderId = membership.leaderId();
    if (leaderId === null) throw new NotLeaderError('no leader yet: no member is confirmed alive to lead (a node back after a full stop waits to hear from the others); try again in a moment');
    if (leaderId === this.selfId) {
      const instance = await this.createOnce(job, spec, trigger, requestId);
      await this.deps.acknowledge(recordsOf(store, instance), false); // on disk here; and on one other member (guarantee 8)
      return instance;
    }
    const records = await this.askLeader(leaderId, { job, spec, trigger, requestId }, leaderWaitMs);
    // Guarantee 8: on the leader's disk, and on this node's before the client hears of it: two nodes.
    try {
      await store.applyDurably(records.all);
    } catch (err) {
      if (!(err instanceof StorageWriteError)) throw err;
      // This disk refused it, but the leader made the run (it may be running): another member must hold it instead.
      store.apply(records.all);
      const others = membership.members().filter((m) => m.nodeId !== this.selfId && m.nodeId !== leaderId && m.state === 'alive').map((m) => m.nodeId);
      const connected = new Set(this.deps.transport.connectedPeers());
      await this.deps.replicator.replicateTo(others.filter((id) => connected.has(id)), records.all).catch((notReplicated: unknown) => {
        throw new WriteNotReplicatedError(`the leader ${leaderId} made the run and holds it on its disk, but this node ${err.message} and no other member confirmed it: ${(notReplicated as Error).message}`);
      });
    }
    return store.instance(records.instanceId) as InstanceRecord;
  }

  /** The leader stopped leading, or another leads: forwarded runs waiting on the old one are told at once. */
  leaderChanged(leader: string | null): void {
    for (const watcher of this.leaderWatchers) {
      if (watcher.leaderId === leader) continue;
      this.leaderWatchers.delete(watcher);
      watcher.reject(new Error(`${watcher.leaderId} is no longer the leader`));
    }
  }

  /** Asks the leader to make the run; its answer is checked like any record from the network. */
  private async askLeader(leaderId: string, request: { job: string; spec: JobSpec; trigger: InstanceTrigger; requestId: string | null }, waitMs: number): Promise<{ all: AnyRecord[]; instanceId: string }> {
    let reply: { records?: unknown };
    const replaced = this.watchLeader(leaderId);
    try {
      // A leader busy making the run (its own acknowledged write waits for another member)
      // answers late: the client is told so and tries again with the same request id, which
      // joins the run in flight on the leader rather than making another.
      // A leader declared dead meanwhile is not waited for: the client asks again at once, and
      // the next leader makes the same instance (its id comes from the request id; the old
      // leader, if it was only frozen, makes that same one).
      const asked = this.deps.rpc.call(leaderId, RUN, request, waitMs, { dial: true });
      reply = (await withTimeout(this.deps.clock, Promise.race([asked, replaced.promise]), waitMs, `request to ${leaderId} timed out after ${waitMs} ms`)) as { records?: unknown };
    } catch (err) {
      if (err instanceof RpcError) throw err; // the leader answered with an error (it carries a code)
      throw this.leaderSilence(leaderId, waitMs, err as Error);
    } finally {
      this.leaderWatchers.delete(replaced);
    }
    const parsed = instanceRecordSchema.safeParse((reply.records as { record?: unknown }[] | undefined)?.[0]?.record);
    if (!parsed.success) throw new Error(`the leader ${leaderId} answered without an instance`);
    // The leader's own signature on what it created.
    const all = this.deps.replicator.verifyRecords(leaderId, reply.records);
    if (!all.some((r) => r.kind === 'instance' && r.record.id === parsed.data.id)) throw new Error(`the leader ${leaderId} answered with an instance it did not sign`);
    return { all, instanceId: parsed.data.id };
  }

  /** Why the leader did not answer a forwarded request: gone (another will lead), or alive and busy. */
  private leaderSilence(leaderId: string, waitMs: number, err: Error): LeaderUnreachableError {
    const now = this.deps.membership.leaderId();
    const state = this.deps.membership.stateOf(leaderId);
    const gone = state === 'dead' || state === 'left' || state === undefined;
    if (now !== leaderId || gone) {
      return new LeaderUnreachableError(`the leader ${leaderId} did not answer (${err.message}) and is ${state ?? 'unknown'} now${now !== null && now !== leaderId ? `; ${now} leads` : ''}: the next leader takes the request`, 'leader-lost');
    }
    return new LeaderUnreachableError(`the leader ${leaderId} is ${state} but did not answer within ${waitMs} ms (busy): ${err.message}`, 'leader-busy');
  }

  /** A promise that rejects once `leaderId` is no longer the leader (declared dead, left, or another leads); the caller removes the watcher when done. */
  private watchLeader(leaderId: string): LeaderWatcher {
    let reject: (err: Error) => void = () => {};
    const promise = new Promise<never>((_, rej) => (reject = rej));
    promise.catch(() => {}); // raced by its caller, which may have its answer first
    const watcher = { leaderId, promise, reject };
    this.leaderWatchers.add(watcher);
    return watcher;
  }

  /**
   * Creates the run once (on disk here, applied, sent), or finds it: a request id asked again
   * finds the instance it made, and one asked while it is being made waits for it.
   */
  private createOnce(job: string, spec: JobSpec, trigger: InstanceTrigger, requestId: string | null): Promise<InstanceRecord> {
    if (requestId === null) return this.create(job, spec, trigger, undefined);
    const id = requestedInstanceId(job, requestId);
    const inFlight = this.inFlight.get(id);
    if (inFlight) return inFlight;
    const created = this.create(job, spec, trigger, id).finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, created);
    return created;
  }

  private async create(job: string, spec: JobSpec, trigger: InstanceTrigger, id: string | undefined): Promise<InstanceRecord> {
    const { store, leader } = this.deps;
    const earlier = id === undefined ? undefined : store.instance(id);
    if (earlier) {
      // The same request again (the answer was lost, or the client timed out): the instance it made, acknowledged anew.
      if (earlier.job !== job || canonicalJson(earlier.spec) !== canonicalJson(spec)) throw new RequestIdReusedError(`the request id was used for another run (instance ${earlier.id} of ${earlier.job}); use a new one`);
      return earlier;
    }
    if (id !== undefined && store.wasPruned(id)) throw new RequestIdReusedError(`the request id was already run (instance ${id}), and its instance removed since by retention; use a new one`);
    // `forbid` is checked here, where the instance is created, for local and forwarded runs alike.
    const storedJob = store.job(job);
    if (storedJob && !storedJob.deleted && trigger === 'manual') leader.assertMayStart(storedJob);
    const planned = leader.planInstance(job, spec, trigger, undefined, id);
    leader.releasing(planned);
    await this.deps.commitDurably(planned.records); // nothing is applied or sent when the disk refuses it
    leader.instanceCreated(planned);
    return planned.instance;
  }

  private async onRunRequest(from: string, body: unknown): Promise<unknown> {
    const { job, spec, trigger, requestId } = (body ?? {}) as { job?: unknown; spec?: unknown; trigger?: unknown; requestId?: unknown };
    const parsedSpec = jobSpecSchema.safeParse(spec);
    if (typeof job !== 'string' || !parsedSpec.success || (trigger !== 'manual' && trigger !== 'adhoc') || (requestId !== undefined && requestId !== null && !isRequestId(requestId))) {
      throw new Error('malformed run request');
    }
    const leaderId = this.deps.membership.leaderId();
    if (leaderId !== this.selfId) throw new NotLeaderError(`not the leader (${leaderId ?? 'none'} is)`);
    let instance: InstanceRecord;
    try {
      // On disk here; the member that asked writes it to its own disk before its client hears
      // of it: two nodes (guarantee 8), with no third one to wait for on a busy cluster.
      instance = await this.createOnce(job, parsedSpec.data as JobSpec, trigger, typeof requestId === 'string' ? requestId : null);
    } catch (err) {
      if (err instanceof StorageWriteError) throw new RpcError(`the leader ${this.selfId} ${err.message}; nothing was done`, 'storage-failed');
      throw err;
    }
    this.deps.log.debug({ from, instance: instance.id }, 'run requested by a member');
    // The instance alone (its subtasks follow by gossip): a reply that stays small however many targets it has.
    return { records: [this.deps.store.get(`instance:${instance.id}`)] };
  }
}

/** An instance with its subtasks and steps, as records. */
function recordsOf(store: RecordStore, instance: InstanceRecord): AnyRecord[] {
  const records: AnyRecord[] = [{ kind: 'instance', record: instance }];
  for (const subtask of store.subtasksOf(instance.id).values()) records.push({ kind: 'subtask', record: subtask });
  for (const step of Object.values(store.stepsOf(instance.id))) if (step) records.push({ kind: 'step', record: step });
  return records;
}
