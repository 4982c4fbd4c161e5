// The one place that formats jobs, instances and nodes for people.
import Table from 'cli-table3';
import type { LogView, StatusView } from '../api/control-plane.js';
import type { InstanceView, JobView, NodeView, SubtaskView } from '../api/views.js';
import { formatDuration } from '../core/duration.js';

const shortId = (nodeId: string) => (nodeId.length > 16 ? `…${nodeId.slice(-12)}` : nodeId);

function table(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
}

function elapsed(startedAt: string | null, finishedAt: string | null): string {
  if (!startedAt) return '';
  const endMs = finishedAt ? Date.parse(finishedAt) : Date.now();
  return formatDuration(endMs - Date.parse(startedAt));
}

export function subtaskOutcome(s: SubtaskView): string {
  const parts: string[] = [s.status];
  if (s.reason) parts.push(`(${s.reason}${s.reason === 'exit-code' && s.exitCode !== null ? ` ${s.exitCode}` : ''})`);
  return parts.join(' ');
}

export function formatInstance(view: InstanceView): string {
  const lines = [
    `instance ${view.id}  job ${view.job}  ${view.status.toUpperCase()}`,
    `  command: ${view.cmd}`,
    `  created: ${view.createdAt} (${view.trigger}${view.scheduledAt ? `, scheduled for ${view.scheduledAt}` : ''})` +
      (view.finishedAt ? `  finished: ${view.finishedAt}` : ''),
  ];
  if (view.failure) lines.push(`  failure: ${view.failure}`);
  for (const [name, step] of [['pre', view.pre], ['post', view.post]] as const) {
    if (!step) continue;
    const outcome = `${step.status}${step.reason ? ` (${step.reason}${step.exitCode !== null ? ` ${step.exitCode}` : ''})` : ''}`;
    lines.push(`  ${name} step: ${outcome}${step.nodeId ? ` on ${shortId(step.nodeId)}` : ''}  [${step.cmd}]`);
  }
  if (view.cancelRequested) lines.push('  cancel requested');
  if (view.subtasks.length > 0) {
    const t = table(['NODE', 'NAME', 'STATUS', 'ATTEMPT', 'EXIT', 'REASON', 'TIME']);
    for (const s of view.subtasks) {
      t.push([shortId(s.nodeId), s.nodeName ?? '', s.status, String(s.attempt), s.exitCode ?? '', s.reason ?? '', elapsed(s.startedAt, s.finishedAt)]);
    }
    lines.push(t.toString());
  }
  const c = view.counts;
  lines.push(`  ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled, ${c.running} running, ${c.pending} pending`);
  return lines.join('\n');
}

export function formatInstanceList(views: InstanceView[]): string {
  if (views.length === 0) return 'no instances';
  const t = table(['ID', 'JOB', 'STATUS', 'TRIGGER', 'CREATED', 'NODES (ok/all)']);
  for (const v of views) t.push([v.id, v.job, v.status, v.trigger, v.createdAt, `${v.counts.succeeded}/${v.subtasks.length}`]);
  return t.toString();
}

export function formatJob(job: JobView): string {
  const lines = [
    `job ${job.name}${job.enabled ? '' : ' (disabled)'}`,
    `  command:     ${job.cmd}`,
    `  type:        ${job.type}`,
    `  schedule:    ${job.scheduleText ?? 'manual (chorus job run)'}`,
  ];
  if (job.nextRunAt) lines.push(`  next run:    ${job.nextRunAt}`);
  const tags = Object.entries(job.tags).map(([k, v]) => `${k}=${v}`);
  lines.push(`  tags:        ${tags.length ? tags.join(', ') : '(every node)'}`);
  lines.push(`  timeout:     ${job.timeoutMs === null ? 'none' : formatDuration(job.timeoutMs)}`);
  lines.push(`  retries:     ${job.retries}`, `  concurrency: ${job.concurrency}`);
  if (job.pre) lines.push(`  pre:         ${job.pre}`);
  if (job.post) lines.push(`  post:        ${job.post}`);
  return lines.join('\n');
}

export function formatJobList(jobs: JobView[]): string {
  if (jobs.length === 0) return 'no jobs (add one with: chorus job add NAME --cmd CMD)';
  const t = table(['NAME', 'TYPE', 'SCHEDULE', 'NEXT RUN', 'ENABLED', 'COMMAND']);
  for (const j of jobs) t.push([j.name, j.type, j.scheduleText ?? 'manual', j.nextRunAt ?? '', j.enabled ? 'yes' : 'no', j.cmd]);
  return t.toString();
}

export function formatNodes(nodes: NodeView[]): string {
  const t = table(['ID', 'NAME', 'STATE', 'LEADER', 'TAGS', 'LAST SEEN']);
  for (const n of nodes) {
    const tags = Object.entries(n.tags).map(([k, v]) => `${k}=${v}`).join(',');
    t.push([n.nodeId, n.name, n.state, n.leader ? 'yes' : '', tags, n.lastSeen ?? '']);
  }
  return t.toString();
}

export function formatStatus(s: StatusView): string {
  return [
    `node ${s.nodeId} (${s.name})${s.isLeader ? ', leader' : ''}`,
    `  version:  ${s.version}`,
    `  leader:   ${s.leader ?? 'none yet'}`,
    `  members:  ${s.aliveMembers} alive of ${s.members}`,
    `  running:  ${s.runningSubtasks} subtask(s)`,
    `  api:      ${s.api}`,
    `  listen:   ${s.multiaddrs.join(' ')}`,
    `  data:     ${s.dataDir}`,
    `  uptime:   ${formatDuration(s.uptimeMs)}`,
  ].join('\n');
}

export function formatLogs(logs: LogView[]): string {
  if (logs.length === 0) return 'no output recorded on this node for that instance';
  const out: string[] = [];
  for (const log of logs) {
    out.push(log.step ? `==> ${log.step} step on node ${log.nodeId} <==` : `==> node ${log.nodeId} attempt ${log.attempt} <==`);
    if (log.stdoutDroppedBytes > 0) out.push(`[first ${log.stdoutDroppedBytes} bytes of stdout dropped]`);
    if (log.stdout) out.push(log.stdout.replace(/\n$/, ''));
    if (log.stderr) {
      out.push('--- stderr ---');
      if (log.stderrDroppedBytes > 0) out.push(`[first ${log.stderrDroppedBytes} bytes of stderr dropped]`);
      out.push(log.stderr.replace(/\n$/, ''));
    }
  }
  return out.join('\n');
}
