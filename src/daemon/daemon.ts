// One chorus node: wires the store, journal, network, membership, leader, worker and
// control API together, in one place, with a start/stop lifecycle.
import { mkdir, readFile, rm, stat, chmod } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { defaultConfig, type ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import { CHORUS_VERSION } from '../core/version.js';
import { ApiServer } from '../api/server.js';
import { ApiError, type ControlPlane, type Listing, type LogView, type StatusView, type ViewError } from '../api/control-plane.js';
import { instanceView, jobView, type InstanceView, type JobView, type NodeView, iso } from '../api/views.js';
import { Libp2pTransport } from '../network/libp2p-transport.js';
import { loadOrCreatePrivateKey } from '../network/peer-key.js';
import { loadOrCreateSwarmKey, readSwarmKey } from '../network/swarm-key.js';
import { HybridClock } from '../records/hlc.js';
import { ADHOC_JOB } from '../records/ids.js';
import { atProblem, jobNameProblem } from '../core/limits.js';
import { isInstanceFinished } from '../records/status.js';
import type { AnyRecord, InstanceRecord, JobRecord, JobSpec, MemberRecord } from '../records/types.js';
import { liveSpec } from '../records/types.js';
import { DataDirLock } from '../store/lock.js';
import { Journal } from '../store/journal.js';
import { RecordStore } from '../store/record-store.js';
import { writeFileDurable } from '../store/durable-file.js';
import { ChorusNode, LeaderUnreachableError, TOPICS } from './node.js';
import { WriteNotReplicatedError } from '../cluster/replicator.js';
import { RpcError } from '../cluster/rpc.js';
import { dataPaths, type NodeInfo } from './paths.js';
import { versionOf } from '../api/version-of.js';
import { resolveNodeRef } from '../api/node-ref.js';

/** A flag whose value cannot work (the daemon exits 2, naming the flag). */
export class DaemonFlagError extends Error {}

/** --join retries: backoff from 250 ms doubling to 5 s; a still-failing join is logged once a minute. */
const JOIN_RETRY = { joinRetryBaseMs: 250, joinRetryMaxMs: 5000, joinRetryReportMs: 60_000 };

function inUse(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code === 'EADDRINUSE' || /EADDRINUSE/.test(e?.message ?? '');
}

/** Unshowable records remembered for `chorus status`. */
const MAX_VIEW_ERRORS = 50;

export interface DaemonOptions {
  dataDir: string;
  listen: string[];
  join: string[];
  apiHost: string;
  apiPort: number;
  name: string | null;
  tags: Record<string, string>;
  mdns: boolean;
  /** Swarm key file shared by every node; null uses (or creates) DIR/swarm.key. There is no keyless mode. */
  swarmKeyFile: string | null;
  log: Logger;
  config?: Partial<ChorusConfig>;
  clock?: Clock;
}


export class ChorusDaemon implements ControlPlane {
  private readonly startedAtMs: number;
  private readonly watchers = new Map<string, Set<() => void>>();
  /** Records that could not be shown, by kind/key, oldest first (bounded). */
  private readonly viewErrors = new Map<string, ViewError>();
  private apiUrl = '';
  private lock: DataDirLock | null = null;
  private stopping = false;
  private readonly api: ApiServer;

  private constructor(
    private readonly options: DaemonOptions,
    private readonly clock: Clock,
    private readonly store: RecordStore,
    private readonly journal: Journal,
    private readonly transport: Libp2pTransport,
    private readonly node: ChorusNode,
    token: string,
  ) {
    this.startedAtMs = clock.now();
    this.api = new ApiServer(this, token, options.log);
  }

  static async start(options: DaemonOptions): Promise<ChorusDaemon> {
    const config = { ...defaultConfig, ...options.config };
    const clock = options.clock ?? systemClock;
    const paths = dataPaths(options.dataDir);
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    const lock = DataDirLock.acquire(options.dataDir);
    try {
      // We hold the lock, so a node.json here is a crashed daemon's: never let a client trust it.
      await rm(paths.nodeInfo, { force: true });
      const vanished = await vanishedFiles(options.dataDir);
      const store = new RecordStore({ dataDir: options.dataDir, flushDelayMs: config.storeFlushDelayMs });
      await store.load();
      for (const r of store.rejectedOnLoad) {
        options.log.warn(
          { record: r.name, index: r.index, error: r.error, quarantine: store.quarantinePath },
          `${r.name} in ${store.path} is invalid and was set aside in ${store.quarantinePath}: ${r.error}`,
        );
      }
      const journal = new Journal(paths.journal);
      journal.open();
      const privateKey = await loadOrCreatePrivateKey(options.dataDir);
      const swarmKey = await swarmKeyOf(options);
      const transport = await Libp2pTransport.create({
        privateKey,
        listen: options.listen,
        mdns: options.mdns,
        swarmKey,
        topics: TOPICS,
        onConnectionRefused: (remoteAddr, why) => options.log.warn({ remoteAddr, why }, `refused a connection from ${remoteAddr}: ${why}`),
      });
      await transport.start().catch((err: unknown) => {
        throw inUse(err) ? new DaemonFlagError(`--listen ${options.listen.join(' ')}: the address is already in use; pick another port`) : err;
      });
      const nodeId = transport.localId;
      const hlc = new HybridClock(clock, nodeId);
      for (const r of store.all()) hlc.observe(r.record.stamp);
      if (vanished.missing.length > 0) {
        options.log.warn(
          { dataDir: options.dataDir, missing: vanished.missing, remaining: vanished.remaining },
          `${vanished.missing.join(' and ')} vanished from ${options.dataDir} while ${vanished.remaining.join(', ')} remain` +
            (vanished.missing.includes('peer-key') ? `: this node starts with a new identity ${nodeId}` : ': the state is filled in again from the cluster'),
        );
      }
      const oldId = vanished.previousNodeId;
      const oldSelf = oldId !== null && oldId !== nodeId ? store.member(oldId) : undefined;
      if (oldSelf && !oldSelf.left) {
        // Its key is gone, so that identity can never come back: show it as left, not as a
        // second, silently dead row with the same name.
        store.apply([{ kind: 'member', record: { ...oldSelf, left: true, incarnation: oldSelf.incarnation + 1, stamp: hlc.tick() } }]);
        options.log.warn({ oldNodeId: oldId, nodeId }, `the old identity ${oldId} of this data directory is marked left`);
      }
      await writeFileDurable(paths.nodeId, `${nodeId}\n`);
      const previous = store.member(nodeId);
      const self: MemberRecord = {
        nodeId,
        name: options.name ?? hostname(),
        tags: options.tags,
        addrs: transport.addresses(),
        incarnation: (previous?.incarnation ?? 0) + 1,
        left: false,
        stamp: hlc.tick(),
      };
      const log = options.log.child({ node: nodeId.slice(-8) });
      const node = new ChorusNode({ transport, clock, config, store, journal, hlc, self, dataDir: options.dataDir, log, random: Math.random });
      const token = await loadOrCreateToken(paths.token);
      const daemon = new ChorusDaemon(options, clock, store, journal, transport, node, token);
      daemon.lock = lock;
      await daemon.run();
      return daemon;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  private async run(): Promise<void> {
    this.store.onChange((records) => this.notifyWatchers(records));
    this.node.start();
    for (const address of this.options.join) void this.joinThrough(address);
    this.apiUrl = await this.api.listen(this.options.apiHost, this.options.apiPort).catch((err: unknown) => {
      throw inUse(err) ? new DaemonFlagError(`--api ${this.options.apiHost}:${this.options.apiPort}: the address is already in use; pick another port`) : err;
    });
    await this.store.flush();
    const info: NodeInfo = {
      nodeId: this.node.id,
      name: this.selfRecord().name,
      multiaddrs: this.transport.addresses(),
      api: this.apiUrl,
      pid: process.pid,
      version: CHORUS_VERSION,
      startedAt: iso(this.startedAtMs) as string,
    };
    await writeFileDurable(dataPaths(this.options.dataDir).nodeInfo, `${JSON.stringify(info, null, 2)}\n`);
    this.options.log.info({ nodeId: info.nodeId, api: info.api, multiaddrs: info.multiaddrs }, 'chorus daemon ready');
  }

  /**
   * Dials a --join address until it answers (the member may start after us), with backoff;
   * says so at the first failure and then once a minute, not at every try.
   */
  private async joinThrough(address: string): Promise<void> {
    const { joinRetryBaseMs, joinRetryMaxMs, joinRetryReportMs } = JOIN_RETRY;
    let lastReportMs = -Infinity;
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        const peer = await this.transport.dialAddr(address);
        this.options.log.info({ address, peer, attempts: attempt + 1 }, 'joined through member');
        return;
      } catch (err) {
        if (this.stopping) return;
        const nowMs = this.clock.now();
        if (nowMs - lastReportMs >= joinRetryReportMs) {
          lastReportMs = nowMs;
          this.options.log.warn({ address, err: (err as Error).message, attempts: attempt + 1 }, `cannot reach --join ${address} yet; still trying (reported once a minute)`);
        }
        await new Promise<void>((r) => this.clock.setTimer(Math.min(joinRetryBaseMs * 2 ** attempt, joinRetryMaxMs), r));
      }
    }
  }

  private selfRecord(): MemberRecord {
    return this.store.member(this.node.id) as MemberRecord;
  }

  /** Graceful stop: leave the cluster, cancel running attempts, flush state, release the lock. */
  async stop(): Promise<void> {
    this.stopping = true;
    // First, so no client mistakes a stopping daemon for a running one.
    await rm(dataPaths(this.options.dataDir).nodeInfo, { force: true });
    await this.node.leave();
    await this.api.close();
    await this.store.close();
    await this.transport.stop();
    this.journal.close();
    this.lock?.release();
  }

  // ---- ControlPlane -------------------------------------------------------------

  status(): StatusView {
    const members = this.node.membership.members();
    const self = this.selfRecord();
    return {
      nodeId: self.nodeId,
      name: self.name,
      tags: self.tags,
      version: CHORUS_VERSION,
      leader: this.node.membership.leaderId(),
      isLeader: this.node.membership.leaderId() === self.nodeId,
      members: members.length,
      aliveMembers: members.filter((m) => m.state === 'alive').length,
      multiaddrs: this.transport.addresses(),
      api: this.apiUrl,
      dataDir: this.options.dataDir,
      uptimeMs: this.clock.now() - this.startedAtMs,
      runningSubtasks: this.node.worker.runningCount(),
      records: this.store.size(),
      errors: [...this.viewErrors.values()],
      memory: memorySnapshot(),
      counters: {
        ...prefixed('membership', this.node.membership.counters),
        ...prefixed('replication', this.node.replicator.counters),
        ...prefixed('network', this.transport.stats()),
      },
    };
  }

  nodes(): NodeView[] {
    return this.node.membership
      .members()
      .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
      .map((m) => ({ ...m, lastSeen: iso(m.lastSeenMs) }));
  }

  listJobs(): Listing<JobView> {
    const nowMs = this.clock.now();
    const jobs = this.store
      .jobs()
      .filter((j) => !j.deleted)
      .sort((a, b) => a.name.localeCompare(b.name));
    return this.showEach(jobs, (j) => ({ kind: 'job', key: j.name }), (j) => jobView(j, nowMs));
  }

  getJob(name: string): JobView {
    const job = this.liveJob(name);
    return this.showOne({ kind: 'job', key: name }, () => jobView(job, this.clock.now()));
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
    if (!this.viewErrors.has(id)) this.options.log.error({ err, record: id }, `${error.kind} ${error.key} cannot be shown; it is left out of views`);
    this.viewErrors.delete(id);
    this.viewErrors.set(id, error);
    while (this.viewErrors.size > MAX_VIEW_ERRORS) this.viewErrors.delete(this.viewErrors.keys().next().value as string);
    return error;
  }

  private liveJob(name: string): JobRecord {
    const job = this.store.job(name);
    if (!job || job.deleted) throw new ApiError(404, 'unknown-job', `there is no job named "${name}" (see: chorus job list)`);
    return job;
  }

  async putJob(name: string, spec: JobSpec, replace: boolean): Promise<JobView> {
    const badName = jobNameProblem(name);
    if (badName !== null) throw new ApiError(400, 'bad-job-name', badName);
    validateSpec(spec, this.clock.now(), this.node.config.misfireGraceMs);
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
      createdAtMs: keep ? existing.createdAtMs : this.clock.now(),
      stamp: this.node.hlc.tick(),
    };
    await this.commitAcknowledged([{ kind: 'job', record: job }]);
    return jobView(job, this.clock.now());
  }

  async removeJob(name: string): Promise<void> {
    const job = this.liveJob(name);
    await this.commitAcknowledged([{ kind: 'job', record: { ...job, spec: null, deleted: true, stamp: this.node.hlc.tick() } }]);
  }

  async setJobEnabled(name: string, enabled: boolean): Promise<JobView> {
    const job = { ...this.liveJob(name), enabled, stamp: this.node.hlc.tick() };
    await this.commitAcknowledged([{ kind: 'job', record: job }]);
    return jobView(job, this.clock.now());
  }

  async runJob(name: string): Promise<InstanceView> {
    const job = this.liveJob(name);
    return this.viewOf(await this.requestInstance(job.name, liveSpec(job), 'manual'));
  }

  async runAdhoc(spec: JobSpec): Promise<InstanceView> {
    if (spec.schedule !== null) throw new ApiError(400, 'bad-request', 'an ad-hoc run cannot have a schedule');
    return this.viewOf(await this.requestInstance(ADHOC_JOB, spec, 'adhoc'));
  }

  private async requestInstance(job: string, spec: JobSpec, trigger: 'manual' | 'adhoc'): Promise<InstanceRecord> {
    try {
      return await this.node.requestInstance(job, spec, trigger);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'concurrency-forbid') throw new ApiError(409, 'concurrency-forbid', (err as Error).message);
      if (code === 'no-leader') throw new ApiError(503, 'no-leader', (err as Error).message);
      if (err instanceof WriteNotReplicatedError) {
        throw new ApiError(503, 'not-replicated', `the instance was created but no other member confirmed it yet: ${err.message}`);
      }
      // Not retried by the CLI: the leader may have created the instance before the answer was lost.
      if (err instanceof LeaderUnreachableError || err instanceof RpcError) throw new ApiError(503, 'leader-unreachable', err.message);
      throw err;
    }
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
      .sort((a, b) => b.createdAtMs - a.createdAtMs || a.id.localeCompare(b.id))
      .slice(0, filter.limit);
    return this.showEach(instances, (i) => ({ kind: 'instance', key: i.id }), (i) => this.viewOf(i));
  }

  getInstance(id: string): InstanceView {
    const instance = this.instanceRecord(id);
    return this.showOne({ kind: 'instance', key: id }, () => this.viewOf(instance));
  }

  private instanceRecord(id: string): InstanceRecord {
    const instance = this.store.instance(id);
    if (!instance) throw new ApiError(404, 'unknown-instance', `there is no instance with id "${id}" (see: chorus instance list)`);
    return instance;
  }

  async watchInstance(id: string, version: string | null, waitMs: number): Promise<InstanceView> {
    const current = this.getInstance(id);
    if (version === null || versionOf(current) !== version || isInstanceFinished(current.status)) return current;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, waitMs);
      const watchers = this.watchers.get(id) ?? new Set();
      this.watchers.set(id, watchers);
      watchers.add(done);
      function done() {
        clearTimeout(timer);
        watchers.delete(done);
        resolve();
      }
    });
    return this.getInstance(id);
  }

  async cancelInstance(id: string): Promise<InstanceView> {
    const instance = this.instanceRecord(id);
    if (instance.cancelRequestedAtMs === null) {
      const status = this.store.progressOf(instance).status;
      if (!isInstanceFinished(status)) {
        await this.commitAcknowledged([{ kind: 'instance', record: { ...instance, cancelRequestedAtMs: this.clock.now() } }]);
      }
    }
    return this.getInstance(id);
  }

  async logs(id: string, nodeRef: string | null): Promise<LogView[]> {
    const instance = this.instanceRecord(id);
    const stepRunners = Object.values(this.store.stepsOf(id)).map((step) => step?.nodeId);
    const everyNode = [...new Set([...instance.targets, ...stepRunners.filter((n): n is string => n !== undefined)])];
    const candidates = everyNode.map((n) => ({ nodeId: n, name: this.store.member(n)?.name ?? null }));
    const nodeId = nodeRef === null ? null : resolveNodeRef(nodeRef, candidates, `instance ${id}`);
    const nodes = nodeId === null ? everyNode : [nodeId];
    const out: LogView[] = [];
    for (const target of nodes) {
      try {
        const logs = await this.node.logsFrom(target, id);
        out.push(...logs.map(({ instanceId: _i, ...rest }) => rest));
      } catch (err) {
        if (nodeId !== null) throw new ApiError(502, 'logs-unavailable', `cannot fetch logs from node ${target}: ${(err as Error).message}`);
        out.push({ nodeId: target, attempt: 0, stdout: '', stderr: `(logs unavailable: ${(err as Error).message})`, stdoutDroppedBytes: 0, stderrDroppedBytes: 0 });
      }
    }
    return out;
  }

  // ---- internals ------------------------------------------------------------------

  private viewOf(instance: InstanceRecord): InstanceView {
    return instanceView(instance, this.store.subtasksOf(instance.id), this.store.stepsOf(instance.id), (nodeId) => this.store.member(nodeId)?.name ?? null);
  }

  /** Applies records and answers only once they are on disk here and on another member (guarantee 8). */
  private async commitAcknowledged(records: AnyRecord[]): Promise<void> {
    this.node.commit(records);
    try {
      await this.node.acknowledge(records);
    } catch (err) {
      if (err instanceof WriteNotReplicatedError) {
        throw new ApiError(503, 'not-replicated', `the change is saved on this node but no other member confirmed it yet: ${err.message}`);
      }
      throw err;
    }
  }

  private notifyWatchers(records: AnyRecord[]): void {
    for (const r of records) {
      const id = r.kind === 'instance' ? r.record.id : r.kind === 'subtask' ? r.record.instanceId : null;
      if (id === null) continue;
      for (const wake of this.watchers.get(id) ?? []) wake();
    }
  }
}

function memorySnapshot(): StatusView['memory'] {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external };
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

/**
 * Files a data directory had and lost: state.json or peer-key gone while the journal,
 * logs or token of an earlier start remain (a restore gone wrong, a careless cleanup).
 */
async function vanishedFiles(dataDir: string): Promise<{ missing: string[]; remaining: string[]; previousNodeId: string | null }> {
  const paths = dataPaths(dataDir);
  const has = async (path: string) => stat(path).then(() => true, () => false);
  const previousNodeId = await readFile(paths.nodeId, 'utf8').then((t) => t.trim() || null, () => null);
  const remaining: string[] = [];
  for (const [name, path] of [['journal.log', paths.journal], ['logs/', paths.logs], ['api-token', paths.token], ['node-id', paths.nodeId]] as const) {
    if (await has(path)) remaining.push(name);
  }
  const missing: string[] = [];
  if (remaining.length > 0) {
    if (!(await has(paths.state))) missing.push('state.json');
    if (!(await has(paths.peerKey))) missing.push('peer-key');
  }
  return { missing, remaining, previousNodeId };
}

/** The swarm key: the --swarm-key file, or DIR/swarm.key (created on the first start). */
async function swarmKeyOf(options: DaemonOptions): Promise<Uint8Array> {
  if (options.swarmKeyFile !== null) return readSwarmKey(options.swarmKeyFile);
  const path = dataPaths(options.dataDir).swarmKey;
  const { key, created } = await loadOrCreateSwarmKey(path);
  if (created) {
    options.log.info({ swarmKey: path }, `created the swarm key ${path}; start every other node with --swarm-key pointing at a copy of it`);
  }
  return key;
}

async function loadOrCreateToken(path: string): Promise<string> {
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if ((await stat(path)).mode & 0o077) await chmod(path, 0o600);
    if (token.length >= 32) return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('hex');
  await writeFileDurable(path, `${token}\n`, 0o600);
  return token;
}
