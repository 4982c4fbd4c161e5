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
