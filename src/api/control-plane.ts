// What the control API can ask of a node. The daemon implements it; the HTTP server
// only parses, authenticates and maps errors.
import type { PlanView } from '../scheduler/plan.js';
import type { FailureReason, InstanceStatus, JobSpec, StepName, SubtaskStatus } from '../records/types.js';
import type { FireView, InstanceView, JobView, NodeDetailView, NodeView } from './views.js';
import type { CapturedOutput } from '../store/output-store.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** How a client asks for a run: its request id, and how long this try may wait for a busy leader. */
export interface RunRequest {
  /** The client's id for this run; the same id again makes no second instance (ids.ts). */
  requestId: string | null;
  /** How long this try waits for the leader's answer before saying it is busy (the CLI waits longer at each try); default leaderTryMs. */
  leaderWaitMs?: number;
}

export interface StatusView {
  nodeId: string;
  name: string;
  tags: Record<string, string>;
  version: string;
  leader: string | null;
  isLeader: boolean;
  /** The keepers as this node sees them, leader first. */
  keepers: string[];
  isKeeper: boolean;
  members: number;
  aliveMembers: number;
  multiaddrs: string[];
  api: string;
  dataDir: string;
  uptimeMs: number;
  runningSubtasks: number;
  /**
   * How a timeout, a cancel or a stop reaches every process of an attempt: `cgroup` (a cgroup
   * per attempt) or `environment` (its process group, then the processes carrying its CHORUS_*
   * variables); `detail` says where, or why there is no cgroup.
   */
  containment: { kind: 'cgroup' | 'environment'; detail: string };
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

/** A piece of output as it was written, from `GET /v1/instances/ID/logs?follow=1`. */
export interface LogFollowChunk {
  nodeId: string;
  name: string | null;
  /** Set for the output of a --pre or --post step. */
  step: StepName | null;
  attempt: number;
  stream: 'stdout' | 'stderr';
  text: string;
  /** Bytes of the stream before `text` the node no longer held (it keeps the last maxOutputBytes). */
  skippedBytes: number;
}

/** One answer of a follow: what came since the cursor, and the cursor to ask from next. */
export interface LogFollowView {
  instanceId: string;
  status: InstanceStatus;
  chunks: LogFollowChunk[];
  /** Attempts (and steps) read to their end in this answer: a last line without a newline is whole. */
  ended: { nodeId: string; step: StepName | null; attempt: number }[];
  /** Nodes whose output could not be had for this answer, and why. */
  unavailable: { nodeId: string; name: string | null; message: string }[];
  /** Pass it back as `cursor` for what follows. */
  cursor: string;
  /** The instance ended and every followed node's output was delivered. */
  done: boolean;
}

/** Nodes whose last attempt had the same outcome and output (`GET /v1/instances/ID/logs?group=1`). */
export interface LogGroup extends CapturedOutput {
  /** The nodes, by name, with the attempt shown (each one's current attempt). */
  nodes: { nodeId: string; name: string | null; attempt: number }[];
  /** Set for a --pre or --post step's output (steps are never grouped with subtasks). */
  step: StepName | null;
  status: SubtaskStatus;
  reason: FailureReason | null;
  exitCode: number | null;
  signal: string | null;
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

/** Kinds of replicated records a client can follow with `GET /v1/changes` (members have their own watch). */
export const CHANGE_KINDS = ['job', 'instance', 'subtask', 'cancel', 'pause', 'step', 'fire', 'notify'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** What changed on this daemon since a cursor (`GET /v1/changes`). */
export interface ChangesView {
  /** Pass it back to hear of the next change; it names this run of the daemon. */
  cursor: string;
  /** The asked kinds with a record that changed since the cursor; all of them when the cursor is from an earlier run. */
  changed: ChangeKind[];
}

/** Questions that read the cluster's work may be asked of a keeper (keeper-queries.ts): their answers may come later. */
export interface ControlPlane {
  status(): StatusView;
  nodes(): NodeView[];
  /** One member (full id, id suffix or name), with how much unfinished work this node sees it hold. */
  getNode(ref: string): NodeDetailView | Promise<NodeDetailView>;
  /** Drains or undrains a member (it writes its own record): no new instance targets a draining node. */
  drainNode(ref: string, draining: boolean): Promise<NodeDetailView>;
  /** Every job; with `recent` > 0, each with its newest `recent` instances (one pass over the instances for all jobs). */
  listJobs(recent?: number): Listing<JobView> | Promise<Listing<JobView>>;
  getJob(name: string): JobView | Promise<JobView>;
  planJob(name: string): PlanView;
  watchNodes(version: string | null, waitMs: number): Promise<{ version: string; nodes: NodeView[] }>;
  jobHistory(name: string, limit: number): FireView[] | Promise<FireView[]>;
  /**
   * Which of `kinds` changed since `cursor` (null: none yet, answered at once), as soon as one
   * did, or after `waitMs` with none: lets a list (the dashboard's) follow the cluster live.
   */
  watchChanges(cursor: string | null, kinds: readonly ChangeKind[], waitMs: number): Promise<ChangesView>;
  planAdhoc(spec: JobSpec): PlanView;
  /** `requestId`: the client's id for this write; a retry with it gets the first answer, not a second write (or a 409 for an existing job). */
  putJob(name: string, spec: JobSpec, replace: boolean, requestId?: string | null): Promise<JobView>;
  removeJob(name: string): Promise<void>;
  setJobEnabled(name: string, enabled: boolean): Promise<JobView>;
  runJob(name: string, request?: RunRequest): Promise<InstanceView>;
  runAdhoc(spec: JobSpec, request?: RunRequest): Promise<InstanceView>;
  listInstances(filter: { job?: string; limit: number }): Listing<InstanceView> | Promise<Listing<InstanceView>>;
  getInstance(id: string): InstanceView | Promise<InstanceView>;
  /** Resolves with the instance as soon as its view differs from `version`, or after `waitMs`. */
  watchInstance(id: string, version: string | null, waitMs: number): Promise<InstanceView>;
  cancelInstance(id: string): Promise<InstanceView>;
  /** Stops (true) or restarts (false) the release of a rolling instance's subtasks. */
  pauseInstance(id: string, paused: boolean): Promise<InstanceView>;
  logs(id: string, nodeId: string | null): Promise<LogView[]>;
  /** Output since `cursor` ('' = from the start), waiting up to `waitMs` for some (a long poll). */
  followLogs(id: string, nodeId: string | null, cursor: string, waitMs: number): Promise<LogFollowView>;
  /** Each node's current attempt, nodes with the same outcome and output together. */
  logGroups(id: string, nodeId: string | null): Promise<LogGroup[]>;
}
