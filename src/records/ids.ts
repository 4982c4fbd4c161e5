// Instance ids. A scheduled fire's id is derived from (job, its creation, fire time),
// so two leaders that fire the same schedule create the same instance (guarantee 7).
import { createHash, randomBytes } from 'node:crypto';

export function scheduledInstanceId(jobName: string, jobCreatedAtMs: number, fireAtMs: number): string {
  return createHash('sha256').update(`${jobName}\0${jobCreatedAtMs}\0${fireAtMs}`).digest('hex').slice(0, 16);
}

export function randomInstanceId(): string {
  return randomBytes(8).toString('hex');
}

export { JOB_NAME_PATTERN } from '../core/limits.js';
export const ADHOC_JOB = '(ad hoc)';

/** A client's request id: what `chorus run --idempotency-key` takes, and what the CLI makes (hex). */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{8,128}$/;

export function isRequestId(value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID_PATTERN.test(value);
}

/**
 * The id of a run asked for with a request id: derived from it (and the job), so a request
 * tried again, on this leader or the next, creates the same instance, which merges into one.
 */
export function requestedInstanceId(jobName: string, requestId: string): string {
  return createHash('sha256').update(`run\0${jobName}\0${requestId}`).digest('hex').slice(0, 16);
}

export function newRequestId(): string {
  return randomBytes(16).toString('hex');
}
