// Schemas for records that come from outside the process (the network, the data
// file). A record that does not match is rejected before it reaches a merge.
import { z } from 'zod';
import { FAILURE_REASONS, type Amount, type AnyRecord } from './types.js';
import { JOB_NAME_PATTERN, MAX_DURATION_MS, MAX_RETRIES, MAX_TIME_MS, MIN_EVERY_MS } from '../core/limits.js';
import { ScheduleError, validateCron } from './schedule.js';

const MAX_ID = 200;
const MAX_TEXT = 16 * 1024;
const MAX_TARGETS = 10_000;
const MAX_HISTORY = 100;
const MAX_WAVES = 100;
/** A signal's name (`SIGKILL`, `SIGRTMIN+3`): far below this. */
const MAX_SIGNAL_NAME = 32;
export const MAX_NOTIFY = 10;
const AMOUNT_PERCENT = /^(0|[1-9]\d{0,2})%$/;

const id = z.string().min(1).max(MAX_ID);
/** A point in time: every one of them must be showable as a date (see core/limits.ts). */
const ms = z.number().int().nonnegative().max(MAX_TIME_MS);
const duration = (min: number) => z.number().int().min(min).max(MAX_DURATION_MS);
const tags = z.record(z.string().max(MAX_ID), z.string().max(MAX_ID));

export const stampSchema = z.object({ wallMs: ms, counter: z.number().int().nonnegative(), nodeId: id });
/** The writer's signature, checked by signature.ts (a record without a valid one is refused from the network). */
const sig = z.string().max(200);

const cronSchema = z
  .object({ kind: z.literal('cron'), expr: z.string().min(1).max(MAX_ID), tz: z.string().max(MAX_ID).nullable() })
  .superRefine((value, ctx) => {
    try {
      validateCron(value.expr, value.tz);
    } catch (err) {
      if (!(err instanceof ScheduleError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message, path: ['expr'] });
    }
  });

export const scheduleSchema = z.discriminatedUnion('kind', [
  cronSchema,
  z.object({ kind: z.literal('every'), intervalMs: duration(MIN_EVERY_MS) }),
  z.object({ kind: z.literal('at'), atMs: ms }),
]);

/** A count (`min` and up) or a percentage written `"P%"` (`min`-100, whole). */
function amount(min: number) {
  return z.union([
    z.number().int().min(min).max(MAX_TARGETS),
    z.string().regex(AMOUNT_PERCENT, 'a percentage like "10%"').refine((s) => Number(s.slice(0, -1)) >= min && Number(s.slice(0, -1)) <= 100, `a percentage from ${min}% to 100%`),
  ]) as unknown as z.ZodType<Amount>;
}

/** An http(s) URL a webhook is POSTed to. */
export const webhookUrl = z.string().max(2048).refine((value) => {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}, 'an http:// or https:// URL');

export const jobSpecSchema = z.object({
  cmd: z.string().min(1).max(MAX_TEXT),
  type: z.enum(['broadcast', 'standalone']),
  schedule: scheduleSchema.nullable(),
  tags,
  timeoutMs: duration(1).nullable(),
  retries: z.number().int().min(0).max(MAX_RETRIES),
  concurrency: z.enum(['allow', 'forbid']),
  pre: z.string().min(1).max(MAX_TEXT).nullable(),
  post: z.string().min(1).max(MAX_TEXT).nullable(),
  maxParallel: amount(1).optional(),
  waves: z.array(amount(1)).min(1).max(MAX_WAVES).optional(),
  maxFailures: amount(0).optional(),
  minSuccess: amount(1).optional(),
  misfire: z.enum(['skip', 'once', 'all']).optional(),
  misfireWindowMs: duration(1).optional(),
  notify: z.array(webhookUrl).min(1).max(MAX_NOTIFY).optional(),
  notifyOn: z.enum(['failure', 'always']).optional(),
  notifySecretFile: z.string().min(1).max(4096).optional(),
});

export const jobRecordSchema = z
  .object({
    name: id.regex(JOB_NAME_PATTERN, 'not a valid job name'),
    // A tombstone keeps no spec (older versions kept one; still accepted).
    spec: jobSpecSchema.nullable(),
    enabled: z.boolean(),
    deleted: z.boolean(),
    createdAtMs: ms,
    stamp: stampSchema,
    sig,
  })
  .refine((job) => job.deleted || job.spec !== null, { message: 'a job that is not deleted needs a spec', path: ['spec'] });

const subtaskStatus = z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled']);
const reason = z.enum(FAILURE_REASONS).nullable();

const attemptSummarySchema = z.object({
  attempt: z.number().int().positive(),
  status: subtaskStatus,
  reason,
  exitCode: z.number().int().nullable(),
  // Absent unless the command died by a signal (types.ts): never added, so older records keep their signature.
  signal: z.string().min(1).max(MAX_SIGNAL_NAME).optional(),
  startedAtMs: ms.nullable(),
  finishedAtMs: ms.nullable(),
});

const attemptFields = {
  ...attemptSummarySchema.shape,
  notBeforeMs: ms.nullable(),
  history: z.array(attemptSummarySchema).max(MAX_HISTORY),
  reporter: id,
  stamp: stampSchema,
  sig,
};

export const subtaskRecordSchema = z.object({ instanceId: id, nodeId: id, ...attemptFields, releasedAtMs: ms.optional() });

/** A step written before steps had their own type named its runner `nodeId`: read it as `runnerNodeId`. */
function legacyStep(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || 'runnerNodeId' in value || !('nodeId' in value)) return value;
  const { nodeId, ...rest } = value as Record<string, unknown>;
  return { ...rest, runnerNodeId: nodeId };
}

export const stepRecordSchema = z.preprocess(legacyStep, z.object({ instanceId: id, step: z.enum(['pre', 'post']), runnerNodeId: id, ...attemptFields }));

export const instanceRecordSchema = z.object({
  id,
  job: id,
  spec: jobSpecSchema,
  trigger: z.enum(['manual', 'schedule', 'adhoc']),
  scheduledAtMs: ms.nullable(),
  createdAtMs: ms,
  targets: z.array(id).max(MAX_TARGETS),
  failure: z.string().max(MAX_TEXT).nullable(),
  skipped: z.array(z.object({ nodeId: id, reason: z.literal('draining') })).max(MAX_TARGETS).optional(),
  stamp: stampSchema,
  sig,
});

export const cancelRecordSchema = z.object({ instanceId: id, requestedAtMs: ms, stamp: stampSchema, sig });

export const fireRecordSchema = z.object({
  job: id,
  jobCreatedAtMs: ms,
  scheduledAtMs: ms,
  outcome: z.enum(['created', 'skipped', 'caught-up', 'missed']),
  reason: z.enum(['disabled', 'forbid-overlap', 'no-eligible-node', 'backlog', 'past-misfire-window', 'coalesced']).nullable(),
  instanceId: id.nullable(),
  leader: id,
  decidedAtMs: ms,
  stamp: stampSchema,
  sig,
});

export const notifyRecordSchema = z.object({
  instanceId: id,
  index: z.number().int().min(0).max(MAX_NOTIFY - 1),
  url: webhookUrl,
  runner: id,
  generation: z.number().int().positive(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int().nonnegative(),
  lastError: z.string().max(MAX_ID * 5).nullable(),
  firstTryAtMs: ms.nullable(),
  nextTryAtMs: ms.nullable(),
  deliveredAtMs: ms.nullable(),
  stamp: stampSchema,
  sig,
});

export const pauseRecordSchema = z.object({ instanceId: id, paused: z.boolean(), stamp: stampSchema, sig });

export const memberRecordSchema = z.object({
  nodeId: id,
  name: z.string().max(MAX_ID),
  tags,
  addrs: z.array(z.string().max(1000)).max(64),
  incarnation: z.number().int().nonnegative(),
  left: z.boolean(),
  draining: z.boolean().optional(),
  stamp: stampSchema,
  sig,
});

export const anyRecordSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('job'), record: jobRecordSchema }),
  z.object({ kind: z.literal('instance'), record: instanceRecordSchema }),
  z.object({ kind: z.literal('cancel'), record: cancelRecordSchema }),
  z.object({ kind: z.literal('subtask'), record: subtaskRecordSchema }),
  z.object({ kind: z.literal('step'), record: stepRecordSchema }),
  z.object({ kind: z.literal('member'), record: memberRecordSchema }),
  z.object({ kind: z.literal('pause'), record: pauseRecordSchema }),
  z.object({ kind: z.literal('fire'), record: fireRecordSchema }),
  z.object({ kind: z.literal('notify'), record: notifyRecordSchema }),
]);

export type ParseResult = { ok: true; record: AnyRecord } | { ok: false; error: string };

/**
 * `legacyUnsigned`: a record of a state file written before records were signed has no
 * `sig`; it is read with an empty one (the daemon signs again what it wrote itself, and
 * sets the rest aside: see assemble.ts). From the network, a record without a valid
 * signature is refused (signature.ts).
 */
export function parseRecord(value: unknown, options: { legacyUnsigned?: boolean } = {}): ParseResult {
  const parsed = anyRecordSchema.safeParse(options.legacyUnsigned === true ? withEmptySig(value) : value);
  if (!parsed.success) return { ok: false, error: z.prettifyError(parsed.error) };
  return { ok: true, record: parsed.data as AnyRecord };
}

function withEmptySig(value: unknown): unknown {
  const r = value as { record?: unknown } | null;
  if (typeof r !== 'object' || r === null || typeof r.record !== 'object' || r.record === null || 'sig' in r.record) return value;
  return { ...r, record: { ...r.record, sig: '' } };
}
