// Records that tests build again and again, written once.
import { ApiError } from '../api/control-plane.js';
import type { InstanceView, SubtaskView } from '../api/views.js';
import type { JobSpec } from '../records/types.js';

/** A broadcast of `true` with every option at its default (what `job add NAME --cmd true` stores). */
export const BASE_SPEC: Readonly<JobSpec> = Object.freeze({
  cmd: 'true',
  type: 'broadcast',
  schedule: null,
  tags: {},
  timeoutMs: null,
  retries: 0,
  concurrency: 'allow',
  pre: null,
  post: null,
});

/** BASE_SPEC with some fields changed. */
export function jobSpec(overrides: Partial<JobSpec> = {}): JobSpec {
  return { ...BASE_SPEC, tags: {}, ...overrides };
}

/** A succeeded attempt 1 of `nodeId`, as `instance show --json` prints it. */
export function subtaskView(nodeId: string, over: Partial<SubtaskView> = {}): SubtaskView {
  return {
    nodeId,
    nodeName: null,
    shardIndex: 0,
    wave: 1,
    released: true,
    releasedAt: '2026-01-01T00:00:00.000Z',
    attempt: 1,
    status: 'succeeded',
    reason: null,
    exitCode: 0,
    signal: null,
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.000Z',
    notBefore: null,
    history: [],
    ...over,
  };
}

/** A succeeded manual broadcast over `subtasks`, as `instance show --json` prints it. */
export function instanceView(subtasks: SubtaskView[], over: Partial<InstanceView> = {}): InstanceView {
  return {
    id: 'i1',
    job: 'j',
    status: 'succeeded',
    trigger: 'manual',
    cmd: 'x',
    type: 'broadcast',
    scheduledAt: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    startedAt: null,
    finishedAt: null,
    failure: null,
    cancelRequested: false,
    skipped: [],
    targets: subtasks.map((s) => s.nodeId),
    counts: { pending: 0, running: 0, succeeded: subtasks.length, failed: 0, cancelled: 0 },
    paused: false,
    rollout: null,
    notifications: [],
    subtasks,
    pre: null,
    post: null,
    ...over,
  };
}

/** The ApiError that `call` throws or rejects with; anything else fails the test. */
export async function apiErrorOf(call: Promise<unknown> | (() => unknown)): Promise<ApiError> {
  try {
    await (typeof call === 'function' ? call() : call);
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('expected an ApiError');
}
