// A node's output of the instances it ran, for whoever reads it: `instance logs` asks the
// node that ran a subtask for its saved logs; `instance logs --follow` asks for what follows
// a position, and waits (a long poll over RPC) until there is some or nothing more can come.
import type { Clock } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import type { Rpc } from '../cluster/rpc.js';
import { isInstanceFinished } from '../records/status.js';
import type { AnyRecord, StepName } from '../records/types.js';
import { instanceIdOf, isTerminal, runnerOf } from '../records/types.js';
import type { OutputStore, SubtaskLog } from '../store/output-store.js';
import type { RecordStore } from '../store/record-store.js';
import {
  LOGS_FOLLOW,
  followRequestSchema,
  ownerFollowReplySchema,
  partOf,
  readFrom,
  savedPart,
  type FollowPosition,
  type FollowRequest,
  type OwnerFollowReply,
} from './follow.js';
import { liveParts, type LiveOutputs } from './live.js';

/** The RPC that reads a node's saved logs of an instance. */
export const LOGS = 'logs';

export interface OutputServerDeps {
  clock: Clock;
  config: Pick<ChorusConfig, 'followBatchMs' | 'followReplyBytes' | 'requestTimeoutMs' | 'syncPageBytes'>;
  store: RecordStore;
  outputs: OutputStore;
  /** Output of the attempts running here, as it is written. */
  live: LiveOutputs;
  rpc: Rpc;
  selfId: string;
}

export class OutputServer {
  constructor(private readonly deps: OutputServerDeps) {
    const { rpc, store, live } = deps;
    rpc.handle(LOGS_FOLLOW, (_from, body) => this.followOwn(followRequestSchema.parse(body)));
    rpc.handle(LOGS, async (_from, body) => boundedLogs(await deps.outputs.read(String((body as { instanceId?: unknown })?.instanceId)), deps.config.syncPageBytes));
    // A follower waiting here for an instance's output also waits for this node's work in it
    // to change (a retry, a step) and for the instance's end; not for every other node's news.
    store.onChange((records: AnyRecord[]) => {
      if (live.waiters.size === 0) return;
      for (const r of records) {
        const id = instanceIdOf(r);
        if (id === null) continue;
        const mine = (r.kind === 'subtask' || r.kind === 'step') && runnerOf(r.record) === deps.selfId;
        if (mine || r.kind === 'instance' || this.isFinished(id)) live.waiters.wake(id);
      }
    });
  }

  /** Output of a subtask, read on the node that ran it. */
  async logsFrom(nodeId: string, instanceId: string): Promise<SubtaskLog[]> {
    if (nodeId === this.deps.selfId) return this.deps.outputs.read(instanceId);
    return (await this.deps.rpc.call(nodeId, LOGS, { instanceId }, this.deps.config.requestTimeoutMs, { dial: true, bulk: true })) as SubtaskLog[];
  }

  /** What follows `position` in a node's output of an instance (this one's, or asked of it), waiting up to `waitMs` for some. */
  async followFrom(nodeId: string, instanceId: string, position: FollowPosition, waitMs: number): Promise<OwnerFollowReply> {
    const request: FollowRequest = { instanceId, position, waitMs };
    if (nodeId === this.deps.selfId) return this.followOwn(request);
    const reply = await this.deps.rpc.call(nodeId, LOGS_FOLLOW, request, waitMs + this.deps.config.requestTimeoutMs, { dial: true });
    return ownerFollowReplySchema.parse(reply);
  }

  /**
   * This node's output of an instance after `position`. Answers at once when there is some,
   * when a part ended, or when nothing more can come (the instance ended and nothing of it
   * runs here); else waits for output or a change of the instance, up to `waitMs`.
   */
  async followOwn({ instanceId, position, waitMs }: FollowRequest): Promise<OwnerFollowReply> {
    const { clock, config, live } = this.deps;
    const deadline = clock.now() + waitMs;
    for (;;) {
      const reply = await this.ownOutputFrom(instanceId, position);
      const leftMs = deadline - clock.now();
      if (reply.chunks.length > 0 || reply.ended.length > 0 || (reply.complete && this.isFinished(instanceId)) || leftMs <= 0) return reply;
      await live.waiters.wait([instanceId], leftMs);
      // Lines written together travel together.
      const batchMs = Math.min(config.followBatchMs, deadline - clock.now());
      if (batchMs > 0) await new Promise<void>((resolve) => clock.setTimer(batchMs, resolve));
    }
  }

  private async ownOutputFrom(instanceId: string, position: FollowPosition): Promise<OwnerFollowReply> {
    const { store, live, selfId } = this.deps;
    const running = live.of(instanceId);
    const runningParts = new Set(running.map((l) => partOf(l.step, l.attempt)));
    // The saved logs are read only when the follower is not in the running attempt.
    const saved = runningParts.has(position.part) ? [] : (await this.deps.outputs.read(instanceId)).filter((log) => !runningParts.has(partOf(log.step ?? null, log.attempt)));
    const parts = [...liveParts(running), ...saved.map(savedPart)];
    const read = readFrom(parts, position, this.deps.config.followReplyBytes);
    const instance = store.instance(instanceId);
    const subtask = store.subtask(instanceId, selfId);
    const steps = Object.values(store.stepsOf(instanceId)).filter((step) => step?.runnerNodeId === selfId);
    // A target whose subtask is not there yet has all of it to come.
    const target = instance !== undefined && store.targetsOf(instance).includes(selfId);
    const tasksEnded = (subtask ? isTerminal(subtask.status) : !target) && steps.every((step) => step && isTerminal(step.status));
    const readAll = parts.every((p) => p.part < read.position.part);
    return { ...read, complete: live.of(instanceId).length === 0 && readAll && tasksEnded, steps: steps.map((step) => step?.step as StepName) };
  }

  private isFinished(instanceId: string): boolean {
    const instance = this.deps.store.instance(instanceId);
    return instance !== undefined && isInstanceFinished(this.deps.store.statusOf(instance));
  }
}

/**
 * The logs of an instance on this node, newest attempts first to fit `maxBytes` (a reply
 * must stay under the message limit however many retries there were); an attempt left
 * out is listed with no output and a note that says so.
 */
export function boundedLogs(logs: SubtaskLog[], maxBytes: number): SubtaskLog[] {
  let size = 0;
  const kept = new Set<SubtaskLog>();
  for (const log of [...logs].reverse()) {
    const bytes = JSON.stringify(log).length;
    if (size + bytes > maxBytes) break;
    kept.add(log);
    size += bytes;
  }
  return logs.map((log) =>
    kept.has(log)
      ? log
      : {
          ...log,
          stdout: '',
          stderr: `(output of attempt ${log.step ?? log.attempt} not sent: with the later attempts it exceeds the ${maxBytes}-byte reply limit)`,
          stdoutDroppedBytes: log.stdoutDroppedBytes + Buffer.byteLength(log.stdout),
          stderrDroppedBytes: log.stderrDroppedBytes + Buffer.byteLength(log.stderr),
        },
  );
}
