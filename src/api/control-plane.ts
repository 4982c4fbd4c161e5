// What the control API can ask of a node. The daemon implements it; the HTTP server
// only parses, authenticates and maps errors.
import type { PlanView } from '../scheduler/plan.js';
import type { JobSpec } from '../records/types.js';
import type { FireView, InstanceView, JobView, NodeDetailView, NodeView } from './views.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface StatusView {
  nodeId: string;
  name: string;
  tags: Record<string, string>;
  version: string;
  leader: string | null;
  isLeader: boolean;
  members: number;
  aliveMembers: number;
  multiaddrs: string[];
  api: string;
  dataDir: string;
  uptimeMs: number;
  runningSubtasks: number;
  records: number;
  /** Counters of the membership, replication and network layers (dropped, rejected, stalls...). */
  counters: Record<string, number>;
  /** Records this node holds but cannot show (newest last, bounded); see the log for each. */
  errors: ViewError[];
  memory: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number; externalBytes: number };
  /** Every bounded store, queue and cache of this node: what it holds now and its limit. */
  bounds: BoundView[];
}

/** One bound: `used` may exceed `limit` only where the text says what happens then (unfinished work is never pruned). */
export interface BoundView {
  name: string;
  used: number;
  limit: number;
  /** What the bound holds and what happens at the limit. */
  about: string;
}

export interface LogView {
  nodeId: string;
  step?: 'pre' | 'post';
  attempt: number;
  stdout: string;
  stderr: string;
  stdoutDroppedBytes: number;
  stderrDroppedBytes: number;
}

/** A record that cannot be shown: named, so one bad record never hides the rest. */
export interface ViewError {
  kind: 'job' | 'instance';
  key: string;
  message: string;
}

/** A listing and the records it had to leave out (sent as the X-Chorus-Errors header). */
export interface Listing<T> {
  items: T[];
  errors: ViewError[];
}

export interface ControlPlane {
  status(): StatusView;
  nodes(): NodeView[];
  /** One member (full id, id suffix or name), with how much unfinished work this node sees it hold. */
  getNode(ref: string): NodeDetailView;
  /** Drains or undrains a member (it writes its own record): no new instance targets a draining node. */
  drainNode(ref: string, draining: boolean): Promise<NodeDetailView>;
  listJobs(): Listing<JobView>;
  getJob(name: string): JobView;
  planJob(name: string): PlanView;
  jobHistory(name: string, limit: number): FireView[];
  planAdhoc(spec: JobSpec): PlanView;
  putJob(name: string, spec: JobSpec, replace: boolean): Promise<JobView>;
  removeJob(name: string): Promise<void>;
  setJobEnabled(name: string, enabled: boolean): Promise<JobView>;
  runJob(name: string): Promise<InstanceView>;
  runAdhoc(spec: JobSpec): Promise<InstanceView>;
  listInstances(filter: { job?: string; limit: number }): Listing<InstanceView>;
  getInstance(id: string): InstanceView;
  /** Resolves with the instance as soon as its view differs from `version`, or after `waitMs`. */
  watchInstance(id: string, version: string | null, waitMs: number): Promise<InstanceView>;
  cancelInstance(id: string): Promise<InstanceView>;
  /** Stops (true) or restarts (false) the release of a rolling instance's subtasks. */
  pauseInstance(id: string, paused: boolean): Promise<InstanceView>;
  logs(id: string, nodeId: string | null): Promise<LogView[]>;
}
