// `chorus job apply`: the jobs of the files made so in the cluster, one request per job
// that differs (a spec that changed is one acknowledged write, as `job add --replace`).
import { ClientError, EXIT, type ChorusClient } from '../api/client.js';
import type { JobView } from '../api/views.js';
import { ADHOC_JOB } from '../records/ids.js';
import { escapeControl } from '../output/escape.js';
import { changedFields, onlyEnabledChanged, type DesiredJob } from './job-file.js';

export type ApplyAction = 'created' | 'updated' | 'unchanged' | 'deleted' | 'failed';

export interface ApplyResult {
  name: string;
  action: ApplyAction;
  /** For `updated`: the keys that changed, in the file's words. */
  fields: string[];
  /** For `failed`: why. */
  error?: string;
  /** From the file (null for a pruned job). */
  file: string | null;
}

export async function applyJobs(client: ChorusClient, desired: DesiredJob[], options: { prune: boolean; dryRun: boolean }): Promise<{ results: ApplyResult[]; exitCode: number }> {
  const current = new Map((await client.request<JobView[]>('GET', '/v1/jobs')).map((j) => [j.name, j]));
  const results: ApplyResult[] = [];
  let exitCode: number = EXIT.ok;
  const path = (name: string) => `/v1/jobs/${encodeURIComponent(name)}`;
  const attempt = async (result: Omit<ApplyResult, 'error'>, work: () => Promise<void>) => {
    try {
      if (!options.dryRun) await work();
      results.push(result);
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      // Bad input outranks any other failure in the exit code; unreachable stops everything.
      if (err.exitCode === EXIT.unreachable) throw err;
      if (exitCode !== EXIT.badInput) exitCode = err.exitCode;
      results.push({ ...result, action: 'failed', error: err.message });
    }
  };
  for (const job of [...desired].sort((a, b) => a.name.localeCompare(b.name))) {
    const existing = current.get(job.name);
    if (!existing) {
      await attempt({ name: job.name, action: 'created', fields: [], file: job.file }, async () => {
        await client.request('PUT', path(job.name), { spec: job.spec, replace: false });
        if (!job.enabled) await client.request('POST', `${path(job.name)}/disable`);
      });
      continue;
    }
    const fields = changedFields(existing, job);
    if (fields.length === 0) {
      results.push({ name: job.name, action: 'unchanged', fields, file: job.file });
      continue;
    }
    await attempt({ name: job.name, action: 'updated', fields, file: job.file }, async () => {
      if (!onlyEnabledChanged(fields)) await client.request('PUT', path(job.name), { spec: job.spec, replace: true });
      if (fields.includes('enabled')) await client.request('POST', `${path(job.name)}/${job.enabled ? 'enable' : 'disable'}`);
    });
  }
  if (options.prune) {
    const wanted = new Set(desired.map((j) => j.name));
    for (const name of [...current.keys()].sort()) {
      if (wanted.has(name) || name === ADHOC_JOB) continue;
      await attempt({ name, action: 'deleted', fields: [], file: null }, async () => {
        await client.request('DELETE', path(name));
      });
    }
  }
  return { results, exitCode };
}

export function formatApply(results: ApplyResult[], dryRun: boolean): string {
  const width = Math.max(...results.map((r) => r.action.length), 9);
  const lines = results.map((r) => {
    const detail = r.action === 'updated' ? ` (${r.fields.join(', ')})` : r.action === 'failed' ? `: ${r.error ?? ''}` : '';
    return `${r.action.padEnd(width)}  ${r.name}${detail}`;
  });
  const counts = (['created', 'updated', 'unchanged', 'deleted', 'failed'] as const).map((a) => [a, results.filter((r) => r.action === a).length] as const).filter(([, n]) => n > 0);
  const summary = counts.map(([a, n]) => `${n} ${a}`).join(', ') || 'no jobs';
  // A failure's message comes from the daemon.
  return escapeControl([...lines, dryRun ? `dry run: nothing was changed (${summary} if applied)` : summary].join('\n'));
}
