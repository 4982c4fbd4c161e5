// The one place that formats jobs, instances and nodes for people: relative times,
// short node ids and tables that fit an 80-column terminal. --json never comes here.
// Whatever came from the cluster (output, node names and tags, commands, messages) leaves
// every formatter escaped (output/escape.ts), and is escaped before it is measured, so a
// job cannot drive the reader's terminal and tables stay aligned.
import type { PlanView } from '../scheduler/plan.js';
import type { FireView } from '../api/views.js';
import type { LogGroup, LogView, StatusView } from '../api/control-plane.js';
import { OWN_TOKEN_ID, type TokenView } from '../api/tokens.js';
import type { SessionView } from '../api/ui-sessions.js';
import type { AttemptView, InstanceSummaryView, InstanceView, JobView, NodeView, StepView, SubtaskView } from '../api/views.js';
import { formatDuration, formatDurationUnits } from '../core/duration.js';
import { relativeTime, shortId } from '../core/human.js';
import { escapeControl } from '../output/escape.js';
import { outcomeText } from '../records/outcome-text.js';
import { formatRollout, formatSubtaskSummary, succeededOfTotal } from '../output/summary.js';

export { formatRollout, formatSubtaskSummary, SUMMARY_MAX_REASONS } from '../output/summary.js';

/** Width every table and view line fits in. */
export const MAX_LINE_WIDTH = 80;
/** After --wait: the output of at most this many nodes is shown, else only where to find it. */
export const TAIL_MAX_NODES = 20;
/** After --wait: per node and stream, at most this many of the last lines... */
export const TAIL_MAX_LINES = 5;
/** ...and at most this many characters. */
export const TAIL_MAX_CHARS = 400;

/** A time in a show-style view: relative, with the exact ISO time after it. */
function timeWithIso(iso: string, nowMs: number): string {
  return `${relativeTime(iso, nowMs)} (${iso})`;
}

/** Code points, which is what a terminal shows for the text chorus prints. */
const widthOf = (text: string) => [...text].length;

/** `text` cut to `width` columns, ending in '…' when it was longer. */
function clip(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  return width <= 0 ? '' : `${chars.slice(0, width - 1).join('')}…`;
}

/** A table cell is one line of inert text: newlines (multi-line commands) show as '↵', a tab as a space. */
const oneLine = (text: string) => escapeControl(text).replace(/\s*\r?\n\s*/g, ' ↵ ').replace(/\t/g, ' ');

/**
 * Which columns give way when a table is too wide, in order: each stage cuts the
 * widest of its columns a character at a time, down to `floor` (never below the
 * column's header). Whatever stage comes last, every column then gives way.
 */
type ShrinkStages = { columns: number[]; floor: number }[];

/** Column widths (of content) that fit `maxWidth` once padding and borders are added. */
function fitWidths(head: string[], rows: string[][], stages: ShrinkStages, maxWidth: number): number[] {
  const widths = head.map((h, i) => Math.max(widthOf(h), ...rows.map((r) => widthOf(r[i] ?? ''))));
  const chrome = head.length * 3 + 1; // '│ ' before each cell, ' ' after it, the last '│'
  let over = widths.reduce((a, b) => a + b, 0) + chrome - maxWidth;
  const shrink = (columns: number[], floorOf: (i: number) => number) => {
    while (over > 0) {
      let widest = -1;
      for (const i of columns) {
        const w = widths[i] as number;
        if (w > floorOf(i) && (widest === -1 || w > (widths[widest] as number))) widest = i;
      }
      if (widest === -1) return;
      widths[widest] = (widths[widest] as number) - 1;
      over -= 1;
    }
  };
  for (const { columns, floor } of stages) shrink(columns, (i) => Math.max(floor, widthOf(head[i] as string)));
  shrink(
    head.map((_h, i) => i),
    () => 1,
  );
  return widths;
}

/** A table of one-line cells in at most `MAX_LINE_WIDTH` columns; long cells end in '…'. */
function table(head: string[], rows: string[][], stages: ShrinkStages): string {
  const cells = rows.map((r) => r.map(oneLine));
  const widths = fitWidths(head, cells, stages, MAX_LINE_WIDTH);
  // Drawn here, not by cli-table3: its layout is quadratic in the rows (5,000 jobs took 2 s to lay out).
  const line = (left: string, fill: string, middle: string, right: string) => `${left}${widths.map((w) => fill.repeat(w + 2)).join(middle)}${right}`;
  const row = (r: string[]) => `│${widths.map((w, i) => ` ${padEnd(clip(r[i] ?? '', w), w)} `).join('│')}│`;
  return [line('┌', '─', '┬', '┐'), row(head), ...cells.map(row), line('└', '─', '┴', '┘')].join('\n');
}

/** `text` padded with spaces to `width` columns (code points, as clip counts them). */
const padEnd = (text: string, width: number) => text + ' '.repeat(Math.max(0, width - widthOf(text)));

/** Words wrapped into lines of at most `width` columns (a longer word is split). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of oneLine(text).split(' ')) {
    if (line !== '' && widthOf(line) + 1 + widthOf(word) > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
    while (widthOf(line) > width) {
      const chars = [...line];
      lines.push(chars.slice(0, width).join(''));
      line = chars.slice(width).join('');
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

function elapsed(startedAt: string | null, finishedAt: string | null, nowMs: number): string {
  if (!startedAt) return '';
  const endMs = finishedAt ? Date.parse(finishedAt) : nowMs;
  return formatDuration(endMs - Date.parse(startedAt));
}

/** A subtask's node as progress lines name it: its name and short id. */
function nodeLabel(s: { nodeId: string; nodeName: string | null }): string {
  return escapeControl(s.nodeName ? `${s.nodeName} ${shortId(s.nodeId)}` : shortId(s.nodeId));
}

/** One `--wait` progress line for a subtask. */
export function formatProgressLine(s: SubtaskView): string {
  return `  ${nodeLabel(s)}: ${outcomeText(s)}${s.attempt > 1 ? ` attempt ${s.attempt}` : ''}`;
}

/**
 * Why a subtask's attempt went up since `seenAttempt` (1 when first seen): one line for
 * each attempt from there that failed and was retried, taken from the subtask's history.
 */
export function formatRetryLines(s: SubtaskView, seenAttempt: number, nowMs: number): string[] {
  return s.history
    .filter((a) => a.attempt >= seenAttempt && a.attempt < s.attempt)
    .map((a) => {
      const next = a.attempt + 1;
      const backoff =
        next === s.attempt && s.status === 'pending' && s.notBefore !== null && Date.parse(s.notBefore) - nowMs >= 1000
          ? ` ${relativeTime(s.notBefore, nowMs)}`
          : '';
      return `  ${nodeLabel(s)}: attempt ${a.attempt} ${outcomeText(a)}, retrying as attempt ${next}${backoff}`;
    });
}

export function formatInstance(view: InstanceView, nowMs = Date.now()): string {
  const trigger = view.scheduledAt ? `${view.trigger} (due ${view.scheduledAt})` : view.trigger;
  const lines = [
    `instance ${view.id}  ${view.status.toUpperCase()}  job ${view.job}`,
    `  command:  ${view.cmd}`,
    `  trigger:  ${trigger}`,
    `  created:  ${timeWithIso(view.createdAt, nowMs)}`,
  ].map((line) => clip(oneLine(line), MAX_LINE_WIDTH));
  if (view.finishedAt) lines.push(`  finished: ${timeWithIso(view.finishedAt, nowMs)}`);
  if (view.failure) lines.push(`  failure:  ${wrap(view.failure, MAX_LINE_WIDTH - 12).join(`\n${' '.repeat(12)}`)}`);
  const skipped = formatSkipped(view);
  if (skipped) lines.push(`  skipped:  ${wrap(skipped, MAX_LINE_WIDTH - 12).join(`\n${' '.repeat(12)}`)}`);
  for (const [name, step] of [['pre', view.pre], ['post', view.post]] as const) {
    if (!step) continue;
    lines.push(clip(oneLine(`  ${name} step: ${outcomeText(step)}${step.nodeId ? ` on ${shortId(step.nodeId)}` : ''}  [${step.cmd}]`), MAX_LINE_WIDTH));
  }
  if (view.cancelRequested) lines.push('  cancel requested');
  const rollout = formatRollout(view);
  if (rollout) lines.push(`  rollout:  ${wrap(rollout, MAX_LINE_WIDTH - 12).join(`\n${' '.repeat(12)}`)}`);
  for (const n of view.notifications ?? []) {
    const state = n.status === 'delivered' ? `delivered${n.deliveredAt ? ` ${relativeTime(n.deliveredAt, nowMs)}` : ''}` : n.status === 'failed' ? `failed after ${n.attempts} tries (${n.lastError ?? '?'})` : `pending${n.attempts > 0 ? `, ${n.attempts} tries so far (${n.lastError ?? '?'})` : ''}`;
    lines.push(clip(oneLine(`  webhook:  ${n.url}: ${state}`), MAX_LINE_WIDTH));
  }
  lines.push(`  ${formatSubtaskSummary(view.subtasks)}`);
  if (view.subtasks.length > 0) {
    const waves = (view.rollout?.waveSizes.length ?? 1) > 1;
    const rows = view.subtasks.map((s) => [
      shortId(s.nodeId),
      s.nodeName ?? '',
      ...(waves ? [String(s.wave)] : []),
      s.status,
      String(s.attempt),
      // How the process ended: its exit code, or the signal that killed it.
      s.exitCode !== null ? String(s.exitCode) : (s.signal ?? ''),
      s.reason ?? (s.status === 'pending' && !s.released ? 'not released' : ''),
      elapsed(s.startedAt, s.finishedAt, nowMs),
    ]);
    const header = ['NODE', 'NAME', ...(waves ? ['WAVE'] : []), 'STATUS', 'ATTEMPT', 'EXIT', 'REASON', 'TIME'];
    lines.push(table(header, rows, [{ columns: [1], floor: 4 }]));
  }
  return lines.join('\n');
}

/** `chorus job history NAME`: every decided fire, newest first. */
export function formatHistory(fires: FireView[], nowMs = Date.now()): string {
  if (fires.length === 0) return 'no fires decided yet (a job without a schedule never fires; run it with chorus job run)';
  // The due time to the second, in UTC, without the year (a history holds the newest 200 fires at most); --json has it whole.
  const due = (iso: string) => `${iso.slice(5, 10)} ${iso.slice(11, 19)}Z`;
  const rows = fires.map((f) => [due(f.scheduledAt), f.outcome, f.reason ?? '', f.instanceId ?? '', f.leaderName ?? shortId(f.leader)]);
  const newest = fires[0] as FireView;
  return `${table(['DUE (UTC)', 'OUTCOME', 'REASON', 'INSTANCE', 'LEADER'], rows, [{ columns: [4], floor: 6 }])}\n${fires.length} fire(s), the newest due ${relativeTime(newest.scheduledAt, nowMs)}`;
}

/** `chorus job plan` / `chorus run --plan`: the targets now, their waves, and who is left out and why. */
export function formatPlan(plan: PlanView): string {
  const what = escapeControl(plan.job === null ? `run of ${plan.cmd}` : `job ${plan.job}`);
  const lines: string[] = [];
  if (plan.failure) lines.push(`plan for ${what}: nothing would run: ${escapeControl(plan.failure)}`);
  else if (plan.type === 'standalone') lines.push(`plan for ${what}: one of ${plan.targets.length} eligible node(s), the least busy when it runs`);
  else {
    const waves = plan.waveSizes.length > 1 ? ` in ${plan.waveSizes.length} waves of ${plan.waveSizes.join(', ')}` : '';
    const parallel = plan.parallelLimit !== null ? `, at most ${plan.parallelLimit} at once` : '';
    lines.push(`plan for ${what}: ${plan.targets.length} node(s)${waves}${parallel} (nothing was run)`);
  }
  const tagText = (tags: Record<string, string>) => Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(',');
  if (plan.targets.length > 0) {
    const rows = plan.targets.map((t) => [String(t.shardIndex), shortId(t.nodeId), t.name, t.state, ...(plan.type === 'broadcast' ? [String(t.wave)] : []), tagText(t.tags)]);
    lines.push(table(['SHARD', 'NODE', 'NAME', 'STATE', ...(plan.type === 'broadcast' ? ['WAVE'] : []), 'TAGS'], rows, [{ columns: [plan.type === 'broadcast' ? 5 : 4], floor: 12 }]));
  }
  if (plan.leftOut.length > 0) {
    lines.push(`left out (${plan.leftOut.length}):`);
    const rows = plan.leftOut.map((l) => [shortId(l.nodeId), l.name, l.state, l.reason, l.detail, tagText(l.tags)]);
    lines.push(table(['NODE', 'NAME', 'STATE', 'REASON', 'DETAIL', 'TAGS'], rows, [{ columns: [4, 5], floor: 12 }]));
  }
  return lines.join('\n');
}

/**
 * How output lines name nodes: the name when no other followed node has it, else the name
 * and the short id; the short id for a node without a name.
 */
export function nodeLabels(nodes: readonly { nodeId: string; name: string | null }[]): Map<string, string> {
  const seen = new Map<string, number>();
  const unique = [...new Map(nodes.map((n) => [n.nodeId, n])).values()];
  for (const n of unique) if (n.name !== null) seen.set(n.name, (seen.get(n.name) ?? 0) + 1);
  const labelOf = (n: { nodeId: string; name: string | null }) => (n.name === null ? shortId(n.nodeId) : seen.get(n.name) === 1 ? n.name : `${n.name}(${shortId(n.nodeId)})`);
  return new Map(unique.map((n) => [n.nodeId, escapeControl(labelOf(n))]));
}

/** A node as a line of output names it: its label, `#N` for an attempt after the first, `[pre]`/`[post]` for a step. */
export function outputLabel(label: string, step: 'pre' | 'post' | null, attempt: number): string {
  return step !== null ? `${label}[${step}]` : attempt > 1 ? `${label}#${attempt}` : label;
}

/**
 * `instance logs --group`: each group under a header naming its nodes, like `dshbak -c`:
 * "---- web-1,web-2,web-3 (3) ----", with the outcome when it is not a success; stdout,
 * then stderr after "--- stderr ---".
 */
export function formatLogGroups(groups: readonly LogGroup[]): string {
  if (groups.length === 0) return 'no output recorded for that instance';
  const labels = nodeLabels(groups.flatMap((g) => g.nodes));
  const out: string[] = [];
  for (const g of groups) {
    const nodes = g.nodes.map((n) => outputLabel(labels.get(n.nodeId) as string, null, n.attempt));
    const outcome = g.status === 'succeeded' ? '' : ` ${outcomeText(g)}`;
    out.push(g.step ? `---- ${g.step} step: ${nodes.join(',')}${outcome} ----` : `---- ${nodes.join(',')} (${nodes.length})${outcome} ----`);
    const body = formatStreams(g);
    out.push(...(body.length > 0 ? body : ['(no output)']));
  }
  return escapeControl(out.join('\n'));
}

/** stdout, then stderr under "--- stderr ---", each with a note of the bytes dropped before what was kept. */
function formatStreams(log: Pick<LogView, 'stdout' | 'stderr' | 'stdoutDroppedBytes' | 'stderrDroppedBytes'>): string[] {
  const out: string[] = [];
  if (log.stdoutDroppedBytes > 0) out.push(`[first ${log.stdoutDroppedBytes} bytes of stdout dropped]`);
  if (log.stdout) out.push(log.stdout.replace(/\n$/, ''));
  if (log.stderr || log.stderrDroppedBytes > 0) {
    out.push('--- stderr ---');
    if (log.stderrDroppedBytes > 0) out.push(`[first ${log.stderrDroppedBytes} bytes of stderr dropped]`);
    if (log.stderr) out.push(log.stderr.replace(/\n$/, ''));
  }
  return out;
}

/** The members an instance left out, and why: "2 draining: web-3 (…a1b2c3d4e5f6), web-4 (…)"; '' when none. */
export function formatSkipped(view: Pick<InstanceView, 'skipped'>): string {
  const skipped = view.skipped ?? [];
  if (skipped.length === 0) return '';
  return escapeControl(`${skipped.length} draining: ${skipped.map((s) => `${s.nodeName ?? '?'} (${shortId(s.nodeId)})`).join(', ')}`);
}

/** The API tokens of a daemon (`chorus token list`). */
/** `chorus token list`: the tokens, then the live dashboard sessions and the token that made each. */
export function formatTokens(tokens: TokenView[], sessions: SessionView[], nowMs = Date.now()): string {
  const tokenPart =
    tokens.length === 0
      ? "no tokens besides the daemon's own (DIR/api-token, role operate)"
      : table(['ID', 'ROLE', 'NAME', 'CREATED'], tokens.map((t) => [t.id, t.role, t.name ?? '', t.createdAt ? relativeTime(t.createdAt, nowMs) : '']), [{ columns: [2], floor: 8 }]);
  if (sessions.length === 0) return `${tokenPart}\nno dashboard sessions`;
  const madeWith = (s: SessionView) => (s.tokenId === OWN_TOKEN_ID ? "daemon (the daemon's own)" : `${s.tokenId}${s.tokenName ? ` (${s.tokenName})` : ''}`);
  const sessionRows = sessions.map((s) => [s.id, s.role, madeWith(s), relativeTime(s.createdAt, nowMs), relativeTime(s.expiresAt, nowMs)]);
  return `${tokenPart}\ndashboard sessions (end one with chorus token revoke ID):\n${table(['ID', 'ROLE', 'TOKEN', 'CREATED', 'EXPIRES'], sessionRows, [{ columns: [2], floor: 12 }])}`;
}

/** `chorus instance list`: a row per instance, from summaries (the counts are enough). */
export function formatInstanceList(views: InstanceSummaryView[], nowMs = Date.now()): string {
  if (views.length === 0) return 'no instances';
  const rows = views.map((v) => [v.id, v.job, v.status, v.trigger, relativeTime(v.createdAt, nowMs), succeededOfTotal(v.counts)]);
  return table(['ID', 'JOB', 'STATUS', 'TRIGGER', 'CREATED', 'OK/NODES'], rows, [{ columns: [1], floor: 4 }]);
}

export function formatJob(job: JobView, nowMs = Date.now()): string {
  const lines = [
    `job ${job.name}${job.enabled ? '' : ' (disabled)'}`,
    `  command:     ${job.cmd}`,
    `  type:        ${job.type}`,
    `  schedule:    ${job.scheduleText ?? 'manual (chorus job run)'}`,
  ];
  if (job.nextRunAt) lines.push(`  next run:    ${timeWithIso(job.nextRunAt, nowMs)}`);
  const tags = Object.entries(job.tags).map(([k, v]) => `${k}=${v}`);
  lines.push(`  tags:        ${tags.length ? tags.join(', ') : '(every node)'}`);
  lines.push(`  timeout:     ${job.timeoutMs === null ? 'none' : formatDurationUnits(job.timeoutMs)}`);
  lines.push(`  retries:     ${job.retries}`, `  concurrency: ${job.concurrency}`);
  if (job.pre) lines.push(`  pre:         ${job.pre}`);
  if (job.post) lines.push(`  post:        ${job.post}`);
  const spec = job.spec;
  if (spec.maxParallel !== undefined) lines.push(`  max-parallel: ${spec.maxParallel}`);
  if (spec.waves !== undefined) lines.push(`  waves:       ${spec.waves.join(',')}`);
  if (spec.maxFailures !== undefined) lines.push(`  max-failures: ${spec.maxFailures}`);
  if (spec.minSuccess !== undefined) lines.push(`  min-success: ${spec.minSuccess}`);
  for (const url of spec.notify ?? []) lines.push(`  notify:      ${url} (on ${spec.notifyOn ?? 'failure'}${spec.notifySecretFile ? `, signed with ${spec.notifySecretFile}` : ''})`);
  if (spec.misfire !== undefined || spec.misfireWindowMs !== undefined) {
    const window = spec.misfireWindowMs !== undefined ? ` within ${formatDurationUnits(spec.misfireWindowMs)}` : '';
    lines.push(`  misfire:     ${spec.misfire ?? 'once'}${window}`);
  }
  return escapeControl(lines.join('\n'));
}

export function formatJobList(jobs: JobView[], nowMs = Date.now()): string {
  if (jobs.length === 0) return 'no jobs (add one with: chorus job add NAME --cmd CMD)';
  const nextRun = (j: JobView) => (!j.enabled ? 'disabled' : j.nextRunAt ? relativeTime(j.nextRunAt, nowMs) : '');
  const rows = jobs.map((j) => [j.name, j.type, j.scheduleText ?? 'manual', nextRun(j), j.cmd]);
  // The command gives way first (job show has it whole), then the name and schedule.
  return table(['NAME', 'TYPE', 'SCHEDULE', 'NEXT RUN', 'COMMAND'], rows, [
    { columns: [4], floor: 24 },
    { columns: [0, 2, 4], floor: 8 },
  ]);
}

export function formatNodes(nodes: NodeView[], nowMs = Date.now()): string {
  const rows = nodes.map((n) => [
    shortId(n.nodeId),
    n.name,
    n.state,
    n.leader ? 'leader' : n.keeper ? 'keeper' : '',
    n.draining ? 'yes' : '',
    Object.entries(n.tags).map(([k, v]) => `${k}=${v}`).join(','),
    n.lastSeen ? relativeTime(n.lastSeen, nowMs) : '',
  ]);
  const shown = table(['ID', 'NAME', 'STATE', 'ROLE', 'DRAINING', 'TAGS', 'LAST SEEN'], rows, [
    { columns: [5], floor: 16 },
    { columns: [1, 5], floor: 4 },
  ]);
  // The failure detector's view of each suspect: when this node declares it dead unless it answers.
  const suspects = nodes.flatMap((n) => {
    const s = n.suspicion;
    if (!s) return [];
    const why = s.verified ? `${s.confirmations} of ${s.expectedConfirmations} confirmation(s) from other members` : 'known from records only';
    return [escapeControl(`${n.name} (${shortId(n.nodeId)}) suspect since ${relativeTime(s.since, nowMs)}: dead ${relativeTime(s.deadAt, nowMs)} unless it answers (${why})`)];
  });
  return [shown, ...suspects].join('\n');
}

export function formatStatus(s: StatusView): string {
  const lines = [
    `node ${shortId(s.nodeId)} (${s.name})${s.isLeader ? ', leader' : ''}`,
    // The one place the whole id is shown to people: it is what --join addresses carry.
    `  id:       ${s.nodeId}`,
    `  version:  ${s.version}`,
    `  leader:   ${s.leader === null ? 'none yet' : shortId(s.leader)}`,
    `  keepers:  ${s.keepers.length === 0 ? 'none yet' : s.keepers.map(shortId).join(' ')}${s.isKeeper ? ' (this node keeps the whole state)' : ' (this node keeps its own work; queries go to a keeper)'}`,
    `  members:  ${s.aliveMembers} alive of ${s.members}`,
    `  running:  ${s.runningSubtasks} subtask(s)`,
    `  kills:    ${s.containment.detail}`,
    `  api:      ${s.api}`,
    `  listen:   ${s.multiaddrs.join(' ')}`,
    `  data:     ${s.dataDir}`,
    `  uptime:   ${formatDuration(s.uptimeMs)}`,
    `  memory:   ${mib(s.memory.rssBytes)} resident, ${mib(s.memory.heapUsedBytes)} heap`,
    ...(s.bounds.length > 0 ? ['  bounds:', ...formatBounds(s.bounds)] : []),
  ];
  return escapeControl(lines.join('\n'));
}

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;

/** One line per bound: its name, what it holds of its limit, and a mark where it is exceeded (unfinished work is never pruned). */
function formatBounds(bounds: StatusView['bounds']): string[] {
  const nameWidth = Math.max(...bounds.map((b) => b.name.length));
  const usedWidth = Math.max(...bounds.map((b) => String(b.used).length));
  return bounds.map((b) => `    ${b.name.padEnd(nameWidth)}  ${String(b.used).padStart(usedWidth)} of ${b.limit}${b.used > b.limit ? '  (over the limit)' : ''}`);
}

export function formatLogs(logs: LogView[]): string {
  if (logs.length === 0) return 'no output recorded on this node for that instance';
  const out: string[] = [];
  for (const log of logs) {
    out.push(log.step ? `==> ${log.step} step on node ${shortId(log.nodeId)} <==` : `==> node ${shortId(log.nodeId)} attempt ${log.attempt} <==`);
    out.push(...formatStreams(log));
  }
  return escapeControl(out.join('\n'));
}

/** The last lines of one stream, escaped and within the tail limits, and whether anything was left out. */
function tailOf(text: string, droppedBytes: number): { lines: string[]; cut: boolean } {
  // Escaped before it is cut, so the limit bounds what is printed; a line's ending CR goes.
  const all = escapeControl(text.replace(/\r\n/g, '\n')).replace(/\n+$/, '');
  if (all === '') return { lines: [], cut: droppedBytes > 0 };
  const lines = all.split('\n');
  let kept = lines.slice(-TAIL_MAX_LINES).join('\n');
  let cut = droppedBytes > 0 || lines.length > TAIL_MAX_LINES;
  if (widthOf(kept) > TAIL_MAX_CHARS) {
    kept = `…${[...kept].slice(-(TAIL_MAX_CHARS - 1)).join('')}`;
    cut = true;
  }
  return { lines: kept.split('\n'), cut };
}

/** The log of a node's current attempt (or its newest one), not of a pre/post step. */
function logOfAttempt(logs: LogView[], nodeId: string, attempt: number, step?: 'pre' | 'post'): LogView | undefined {
  const mine = logs.filter((l) => l.nodeId === nodeId && (l.step ?? undefined) === step);
  return mine.find((l) => l.attempt === attempt) ?? mine.sort((a, b) => b.attempt - a.attempt)[0];
}

/**
 * What `--wait` shows once an instance ended: per node, the last few lines of stdout
 * (and of stderr when the attempt failed). `logs` is null when they could not be
 * fetched; then, and for more than `TAIL_MAX_NODES` nodes, only where to see it all.
 */
export function formatOutputTail(view: InstanceView, logs: LogView[] | null): string[] {
  const seeAll = escapeControl(`see the output with: chorus instance logs ${view.id}`);
  if (logs === null || view.subtasks.length > TAIL_MAX_NODES) return [seeAll];
  const stepPart = (name: 'pre' | 'post', step: StepView | null) =>
    step?.nodeId ? [{ label: `${name} step on ${shortId(step.nodeId)}`, outcome: step, log: logOfAttempt(logs, step.nodeId, step.attempt, name) }] : [];
  // In the order they ran: the pre step, the subtasks, the post step.
  const parts = [
    ...stepPart('pre', view.pre),
    ...view.subtasks.map((s) => ({ label: nodeLabel(s), outcome: s as AttemptView, log: logOfAttempt(logs, s.nodeId, s.attempt) })),
    ...stepPart('post', view.post),
  ];
  if (parts.length === 0) return [];
  const out = [`output of instance ${view.id} (last lines per node):`];
  let anyCut = false;
  for (const { label, outcome, log } of parts) {
    out.push(`  ${label}: ${outcomeText(outcome)}`);
    const stdout = tailOf(log?.stdout ?? '', log?.stdoutDroppedBytes ?? 0);
    // A log of attempt 0 is the daemon saying it could not reach that node for it.
    const showStderr = outcome.status === 'failed' || log?.attempt === 0;
    const stderr = showStderr ? tailOf(log?.stderr ?? '', log?.stderrDroppedBytes ?? 0) : { lines: [], cut: false };
    anyCut ||= stdout.cut || stderr.cut;
    if (stdout.lines.length === 0 && stderr.lines.length === 0) out.push('    (no output)');
    out.push(...stdout.lines.map((l) => `    ${l}`));
    if (stderr.lines.length > 0) out.push('    stderr:', ...stderr.lines.map((l) => `    ${l}`));
  }
  if (anyCut) out.push(`some output was cut; ${seeAll}`);
  return out.map(escapeControl);
}

