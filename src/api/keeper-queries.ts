// Any node answers every question as a keeper would (DESIGN.md, guarantee 6). A member that
// is not a keeper holds only its own work, so a question that reads the cluster's work
// (instances and their subtasks, job history, a node's open work, logs, the change feed) goes
// to a keeper in one request, the leader first (it takes every result first), and its
// answer, or its ApiError, comes back as it would from the keeper's own API. A keeper that
// has not caught up with the others since it became one asks them too (node.keeperReady). What every
// member holds (status, members, plans) and the writes that need no view (jobs, runs, drains)
// are answered here. A keeper answers all of it from its own records.
import type { ChorusNode } from '../node/node.js';
import { RpcError } from '../cluster/rpc.js';
import { ApiError, type ChangeKind, type ChangesView, type ControlPlane, type Listing, type LogFollowView, type LogGroup, type LogView, type RunRequest, type StatusView } from './control-plane.js';
import type { ControlService } from './service.js';
import type { FireView, InstanceView, JobView, NodeDetailView, NodeView } from './views.js';
import type { PlanView } from '../scheduler/plan.js';
import type { JobSpec } from '../records/types.js';

/** A question a member asks a keeper: {method, args}. */
export const QUERY = 'query';

/** The questions that read the cluster's work, with the index of their wait (a long poll), if any. */
const ASKED_OF_KEEPERS: Partial<Record<keyof ControlPlane, number | null>> = {
  getNode: null,
  listJobs: null,
  getJob: null,
  jobHistory: null,
  listInstances: null,
  getInstance: null,
  watchInstance: 2,
  watchChanges: 2,
  cancelInstance: null,
  pauseInstance: null,
  logs: null,
  logGroups: null,
  followLogs: 3,
};

/** An ApiError carried across the network in an RpcError's code. */
const API_ERROR = /^api:(\d{3}):(.*)$/;

export interface KeeperQueryCounters {
  /** Questions this node asked a keeper, and those no keeper answered. */
  asked: number;
  unanswered: number;
  /** Questions members asked this node. */
  answered: number;
}

export class KeeperQueries implements ControlPlane {
  readonly counters: KeeperQueryCounters = { asked: 0, unanswered: 0, answered: 0 };

  constructor(
    private readonly local: ControlService,
    private readonly node: ChorusNode,
  ) {
    node.rpc.handle(QUERY, (from, body) => this.onQuery(from, body));
  }

  /** Answers a member's question from this node's records (an ApiError travels in the RpcError's code). */
  private async onQuery(_from: string, body: unknown): Promise<unknown> {
    const { method, args } = (body ?? {}) as { method?: unknown; args?: unknown };
    if (typeof method !== 'string' || !Object.hasOwn(ASKED_OF_KEEPERS, method) || !Array.isArray(args)) throw new Error('malformed query (expected {method, args} of a question a keeper answers)');
    this.counters.answered += 1;
    try {
      const call = this.local[method as keyof ControlPlane] as (...a: unknown[]) => unknown;
      return (await call.apply(this.local, args)) ?? null;
    } catch (err) {
      if (err instanceof ApiError) throw new RpcError(err.message, `api:${err.status}:${err.code}`);
      throw err;
    }
  }

  /** Asks the keepers in turn, the leader first; here when this node is one. */
  private async ask<T>(method: keyof ControlPlane, args: unknown[]): Promise<T> {
    const call = this.local[method] as (...a: unknown[]) => T | Promise<T>;
    if (this.node.keeperReady()) return call.apply(this.local, args);
    const waitIndex = ASKED_OF_KEEPERS[method];
    const waitMs = typeof waitIndex === 'number' && typeof args[waitIndex] === 'number' ? (args[waitIndex] as number) : 0;
    const { requestTimeoutMs } = this.node.config;
    const reasons: string[] = [];
    this.counters.asked += 1;
    for (const keeper of this.node.membership.keepers()) {
      if (keeper === this.node.id) continue;
      try {
        return (await this.node.rpc.call(keeper, QUERY, { method, args }, waitMs + requestTimeoutMs, { dial: true })) as T;
      } catch (err) {
        const api = err instanceof RpcError ? API_ERROR.exec(err.code) : null;
        if (api) throw new ApiError(Number(api[1]), api[2] as string, err instanceof Error ? err.message : String(err));
        reasons.push(`${keeper.slice(-8)}: ${(err as Error).message}`);
      }
    }
    this.counters.unanswered += 1;
    // A keeper still catching up answers from its own records rather than not at all.
    if (this.node.replicator.isKeeper()) return call.apply(this.local, args);
    throw new ApiError(503, 'no-keeper', `this node keeps only its own work and no keeper answered the question (${reasons.join('; ') || 'no keeper is known yet'}); try again, or ask another node`);
  }

  status(): StatusView {
    return this.local.status();
  }

  nodes(): NodeView[] {
    return this.local.nodes();
  }

  getNode(ref: string): Promise<NodeDetailView> {
    return this.ask('getNode', [ref]);
  }

  drainNode(ref: string, draining: boolean): Promise<NodeDetailView> {
    return this.local.drainNode(ref, draining);
  }

  listJobs(recent = 0): Promise<Listing<JobView>> {
    return this.ask('listJobs', [recent]);
  }

  getJob(name: string): Promise<JobView> {
    return this.ask('getJob', [name]);
  }

  planJob(name: string): PlanView {
    return this.local.planJob(name);
  }

  watchNodes(version: string | null, waitMs: number): Promise<{ version: string; nodes: NodeView[] }> {
    return this.local.watchNodes(version, waitMs);
  }

  jobHistory(name: string, limit: number): Promise<FireView[]> {
    return this.ask('jobHistory', [name, limit]);
  }

  watchChanges(cursor: string | null, kinds: readonly ChangeKind[], waitMs: number): Promise<ChangesView> {
    return this.ask('watchChanges', [cursor, kinds, waitMs]);
  }

  planAdhoc(spec: JobSpec): PlanView {
    return this.local.planAdhoc(spec);
  }

  putJob(name: string, spec: JobSpec, replace: boolean, requestId?: string | null): Promise<JobView> {
    return this.local.putJob(name, spec, replace, requestId);
  }

  removeJob(name: string): Promise<void> {
    return this.local.removeJob(name);
  }

  setJobEnabled(name: string, enabled: boolean): Promise<JobView> {
    return this.local.setJobEnabled(name, enabled);
  }

  runJob(name: string, request?: RunRequest): Promise<InstanceView> {
    return this.local.runJob(name, request);
  }

  runAdhoc(spec: JobSpec, request?: RunRequest): Promise<InstanceView> {
    return this.local.runAdhoc(spec, request);
  }

  listInstances(filter: { job?: string; limit: number }): Promise<Listing<InstanceView>> {
    return this.ask('listInstances', [filter]);
  }

  getInstance(id: string): Promise<InstanceView> {
    return this.ask('getInstance', [id]);
  }

  watchInstance(id: string, version: string | null, waitMs: number): Promise<InstanceView> {
    return this.ask('watchInstance', [id, version, waitMs]);
  }

  cancelInstance(id: string): Promise<InstanceView> {
    return this.ask('cancelInstance', [id]);
  }

  pauseInstance(id: string, paused: boolean): Promise<InstanceView> {
    return this.ask('pauseInstance', [id, paused]);
  }

  logs(id: string, nodeId: string | null): Promise<LogView[]> {
    return this.ask('logs', [id, nodeId]);
  }

  followLogs(id: string, nodeId: string | null, cursor: string, waitMs: number): Promise<LogFollowView> {
    return this.ask('followLogs', [id, nodeId, cursor, waitMs]);
  }

  logGroups(id: string, nodeId: string | null): Promise<LogGroup[]> {
    return this.ask('logGroups', [id, nodeId]);
  }
}
