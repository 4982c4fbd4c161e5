// The dashboard in the browser: plain DOM, no framework. It talks to the daemon that served
// it with the session cookie `chorus ui` set, through the same /v1 API as the CLI, and
// follows changes with the API's long polls (an answer as soon as something changed: the
// cluster, an instance, or for the lists any change of their records), not by polling. Pages: #/ the cluster, #/jobs, #/jobs/NAME, #/instances,
// #/instances/ID. A read session sees everything and has no buttons that change anything.
import { api, leavePage, Unauthorized, type FireView, type InstanceSummary, type InstanceView, type JobView, type NodeView, type Role, type SubtaskView } from './api.js';
import { button, el, GLYPH, refreshTimes, relative, statusBadge } from './dom.js';
import { cellStatus, Grid } from './grid.js';
import { versionOf } from '../api/version-of.js';
import { shortId } from '../core/human.js';
import { formatRollout, formatSubtaskSummary, succeededOfTotal } from '../output/summary.js';
import { outcomeText } from '../records/outcome-text.js';

const WAIT_MS = 25_000;
/** How often relative times on the page are moved on (text only, no request). */
const TIME_REFRESH_MS = 5_000;
const STATE_SYMBOL: Record<NodeView['state'], string> = { alive: '●', suspect: '◐', dead: '✕', left: '○' };

let role: Role = 'read';
/** Bumped at every page change: a page's loops stop when it is no longer the current one. */
let generation = 0;

const main = () => document.getElementById('main') as HTMLElement;
const current = (g: number) => g === generation;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function fail(err: unknown): void {
  main().replaceChildren(el('p', { class: 'error', role: 'alert' }, (err as Error).message));
}

// ---- cluster --------------------------------------------------------------------------

function renderCluster(nodes: NodeView[]): HTMLElement {
  const counts = new Map<string, number>();
  for (const n of nodes) counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
  const leader = nodes.find((n) => n.leader);
  const summary = `${nodes.length} member(s): ${[...counts].map(([state, n]) => `${n} ${state}`).join(', ')}; leader ${leader ? leader.name : 'none'}`;
  const rows = nodes.map((n) =>
    el(
      'tr',
      { 'data-node': n.nodeId, 'data-state': n.state },
      el('td', { 'data-label': 'Name' }, n.name),
      el('td', { class: 'id', 'data-label': 'Node', title: n.nodeId }, shortId(n.nodeId)),
      el('td', { class: `state state-${n.state}`, 'data-label': 'State' }, `${STATE_SYMBOL[n.state]} ${n.state}`, ...(n.suspicion ? [suspicionNote(n.suspicion)] : [])),
      el('td', { 'data-label': 'Leader' }, n.leader ? '★ leader' : ''),
      el('td', { 'data-label': 'Draining' }, n.draining ? '⏸ draining' : ''),
      el('td', { 'data-label': 'Tags' }, ...Object.entries(n.tags).map(([k, v]) => el('span', { class: 'tag' }, `${k}=${v}`))),
      el('td', { 'data-label': 'Incarnation' }, String(n.incarnation)),
      el('td', { 'data-label': 'Last heard' }, relative(n.lastSeen, Date.now(), false)),
      el(
        'td',
        { 'data-label': 'Actions' },
        ...(role === 'operate' && n.state === 'alive'
          ? [button(n.draining ? 'Undrain' : 'Drain', () => api(`/v1/nodes/${encodeURIComponent(n.nodeId)}/${n.draining ? 'undrain' : 'drain'}`, { method: 'POST', body: {} }), { 'data-action': 'drain' })]
          : []),
      ),
    ),
  );
  return el(
    'table',
    {},
    el('caption', { class: 'summary' }, summary),
    el('thead', {}, el('tr', {}, ...['Name', 'Node', 'State', 'Leader', 'Draining', 'Tags', 'Incarnation', 'Last heard', ''].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...rows),
  );
}

/** Why and until when the serving daemon suspects a member: since, confirmations from others, the verdict's time. */
function suspicionNote(s: NonNullable<NodeView['suspicion']>): HTMLElement {
  return el(
    'span',
    { class: 'suspicion' },
    ' since ',
    relative(s.since),
    s.verified ? ` · ${s.confirmations} of ${s.expectedConfirmations} confirmations · dead ` : ' · known from records only · dead ',
    relative(s.deadAt),
    ' unless it answers',
  );
}

/** The failure detector as the serving daemon sees it (SWIM with Lifeguard's local health). */
function detectorLine(status: { name: string; counters: Record<string, number> }): HTMLElement {
  const c = (k: string) => status.counters[`membership.${k}`] ?? 0;
  return el(
    'p',
    { class: 'summary', id: 'detector' },
    `Failure detector at ${status.name}: ${c('probesSent')} probes (${c('indirectProbes')} indirect), ${c('suspicions')} suspicions, ${c('refutations')} refuted, ${c('deadVerdicts')} dead verdicts, ${c('stallsDetected')} own stalls; local health ${c('awareness') === 0 ? 'good' : `degraded (${c('awareness')}: probe timeouts lengthened)`}`,
  );
}

async function clusterPage(g: number): Promise<void> {
  let version: string | null = null;
  while (current(g)) {
    const answer: { version: string; nodes: NodeView[] } = await api(`/v1/nodes?watch=1&waitMs=${WAIT_MS}${version ? `&version=${version}` : ''}`);
    const status = await api<{ name: string; counters: Record<string, number> }>('/v1/status');
    if (!current(g)) return;
    main().replaceChildren(el('h1', {}, 'Cluster'), renderCluster(answer.nodes), detectorLine(status));
    version = answer.version;
  }
}

// ---- following lists ------------------------------------------------------------------

/** At most one reload of a list a second, however busy the cluster. */
const MIN_RELOAD_GAP_MS = 1_000;

/**
 * Loads a list page, then again each time a record of `kinds` changes on the daemon (the
 * `/v1/changes` long poll; at the latest every WAIT_MS, which also moves relative times on).
 */
async function followChanges(g: number, kinds: string, load: () => Promise<void>): Promise<void> {
  let cursor = (await api<{ cursor: string }>(`/v1/changes?kinds=${kinds}`)).cursor;
  while (current(g)) {
    const loadedAt = Date.now();
    await load();
    if (!current(g)) return;
    cursor = (await api<{ cursor: string }>(`/v1/changes?kinds=${kinds}&cursor=${encodeURIComponent(cursor)}&waitMs=${WAIT_MS}`)).cursor;
    await sleep(Math.max(0, loadedAt + MIN_RELOAD_GAP_MS - Date.now()));
  }
}

// ---- jobs -----------------------------------------------------------------------------

function strip(instances: readonly { id: string; status: string; createdAt: string }[]): HTMLElement {
  return el('span', { class: 'strip', 'aria-label': 'last outcomes, newest first' }, ...instances.map((i) => el('a', { href: `#/instances/${i.id}`, class: `badge st-${i.status}`, title: `${i.status}, ${new Date(i.createdAt).toLocaleString()}` }, GLYPH[i.status] ?? '?')));
}

async function jobsPage(g: number): Promise<void> {
  await followChanges(g, 'job,instance,subtask,cancel', async () => {
    const jobs = await api<JobView[]>('/v1/jobs?recent=10'); // each job with its last 10 runs, in one answer
    if (!current(g)) return;
    const rows = jobs.map((j) =>
      el(
        'tr',
        { 'data-job': j.name },
        el('td', { 'data-label': 'Job' }, el('a', { href: `#/jobs/${encodeURIComponent(j.name)}` }, j.name)),
        el('td', { 'data-label': 'Schedule' }, j.scheduleText ?? 'manual'),
        el('td', { 'data-label': 'Next fire' }, j.enabled ? relative(j.nextRunAt) : el('span', {}, '⏸ disabled')),
        el('td', { 'data-label': 'Last runs' }, strip(j.recent ?? [])),
        el('td', { class: 'cmd', 'data-label': 'Command' }, j.cmd),
        el(
          'td',
          { 'data-label': 'Actions' },
          ...(role === 'operate'
            ? [
                button('Run', async () => {
                  const v = await api<InstanceView>(`/v1/jobs/${encodeURIComponent(j.name)}/run`, { method: 'POST', body: {} });
                  location.hash = `#/instances/${v.id}`;
                }, { 'data-action': 'run' }),
                button(j.enabled ? 'Disable' : 'Enable', () => api(`/v1/jobs/${encodeURIComponent(j.name)}/${j.enabled ? 'disable' : 'enable'}`, { method: 'POST', body: {} })),
              ]
            : []),
        ),
      ),
    );
    main().replaceChildren(
      el('h1', {}, 'Jobs'),
      jobs.length === 0
        ? el('p', {}, 'No jobs yet (chorus job add NAME --cmd CMD).')
        : el('table', {}, el('thead', {}, el('tr', {}, ...['Job', 'Schedule', 'Next fire', 'Last runs', 'Command', ''].map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, ...rows)),
    );
  });
}

async function jobPage(g: number, name: string): Promise<void> {
  await followChanges(g, 'fire,instance,subtask,cancel', async () => {
    const [history, recent] = await Promise.all([api<FireView[]>(`/v1/jobs/${encodeURIComponent(name)}/history?limit=100`), api<InstanceSummary[]>(`/v1/instances?job=${encodeURIComponent(name)}&limit=20&summary=1`)]);
    if (!current(g)) return;
    const fires = history.map((f) =>
      el(
        'tr',
        {},
        el('td', { 'data-label': 'Due' }, relative(f.scheduledAt)),
        el('td', { 'data-label': 'Outcome' }, el('span', { class: `badge fire-${f.outcome}` }, f.outcome)),
        el('td', { 'data-label': 'Reason' }, f.reason ?? ''),
        el('td', { class: 'id', 'data-label': 'Instance' }, f.instanceId ? el('a', { href: `#/instances/${f.instanceId}` }, f.instanceId) : ''),
        el('td', { 'data-label': 'Leader' }, f.leaderName ?? shortId(f.leader)),
      ),
    );
    main().replaceChildren(
      el('h1', {}, `Job ${name}`),
      el('p', {}, 'Last runs: ', strip(recent)),
      el('h2', {}, 'Fire history'),
      history.length === 0 ? el('p', {}, 'No fire decided yet (a job without a schedule never fires).') : el('table', {}, el('thead', {}, el('tr', {}, ...['Due', 'Outcome', 'Reason', 'Instance', 'Leader'].map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, ...fires)),
    );
  });
}

// ---- instances ------------------------------------------------------------------------

async function instancesPage(g: number): Promise<void> {
  await followChanges(g, 'instance,subtask,cancel', async () => {
    const list = await api<InstanceSummary[]>('/v1/instances?limit=50&summary=1'); // no per-node parts: counts only
    if (!current(g)) return;
    const rows = list.map((i) =>
      el(
        'tr',
        { 'data-instance': i.id },
        el('td', { class: 'id', 'data-label': 'Instance' }, el('a', { href: `#/instances/${i.id}` }, i.id)),
        el('td', { 'data-label': 'Job' }, i.job),
        el('td', { 'data-label': 'Status' }, statusBadge(i.status)),
        el('td', { 'data-label': 'Created' }, relative(i.createdAt)),
        el('td', { 'data-label': 'Nodes' }, `${succeededOfTotal(i.counts)} ok`),
      ),
    );
    main().replaceChildren(el('h1', {}, 'Instances'), el('table', {}, el('thead', {}, el('tr', {}, ...['Instance', 'Job', 'Status', 'Created', 'Nodes'].map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, ...rows)));
  });
}

async function followOutput(g: number, instanceId: string, s: SubtaskView, pre: HTMLElement, title: HTMLElement): Promise<void> {
  const mine = ++followRound;
  title.textContent = `Live output of ${s.nodeName ?? shortId(s.nodeId)}`;
  pre.textContent = '';
  let cursor = '';
  while (current(g) && mine === followRound) {
    const answer: { chunks: { stream: string; text: string; attempt: number }[]; cursor: string; done: boolean } = await api(`/v1/instances/${instanceId}/logs?follow=1&node=${encodeURIComponent(s.nodeId)}&waitMs=${WAIT_MS}&cursor=${encodeURIComponent(cursor)}`);
    if (!current(g) || mine !== followRound) return;
    for (const c of answer.chunks) pre.append(c.stream === 'stderr' ? el('span', { class: 'stderr' }, c.text) : c.text);
    cursor = answer.cursor;
    if (answer.done) return;
  }
}
let followRound = 0;

async function instancePage(g: number, id: string): Promise<void> {
  const head = el('div', {});
  const grid = new Grid((s) => void followOutput(g, id, s, out, outTitle).catch(fail));
  const cellsList = el('ol', { class: 'sr-only', 'aria-label': 'subtasks' });
  const outTitle = el('h2', {}, 'Live output (pick a node in the grid)');
  const out = el('pre', { class: 'output', 'aria-live': 'off' });
  const groups = el('div', {});
  const legend = el('p', { class: 'legend' }, ...['succeeded', 'failed', 'cancelled', 'running', 'pending', 'unreleased'].map((st) => el('span', { class: `badge st-${st}` }, `${GLYPH[st]} ${st === 'unreleased' ? 'not released' : st}`)));
  main().replaceChildren(head, grid.canvas, legend, grid.live, cellsList, outTitle, out, el('h2', {}, 'Grouped outputs'), groups);
  let version: string | null = null;
  let laidOut = 0;
  let grouped = false;
  while (current(g)) {
    const v: InstanceView = await api(`/v1/instances/${id}?waitMs=${version ? WAIT_MS : 0}${version ? `&version=${version}` : ''}`);
    if (!current(g)) return;
    const finished = v.status === 'succeeded' || v.status === 'failed' || v.status === 'cancelled';
    const actions: HTMLElement[] = [];
    if (role === 'operate' && !finished) {
      actions.push(button('Cancel', () => api(`/v1/instances/${id}/cancel`, { method: 'POST', body: {} }), { 'data-action': 'cancel' }));
      if (v.rollout) actions.push(button(v.paused ? 'Resume' : 'Pause', () => api(`/v1/instances/${id}/${v.paused ? 'resume' : 'pause'}`, { method: 'POST', body: {} }), { 'data-action': 'pause' }));
    }
    head.replaceChildren(
      el('h1', {}, `Instance ${v.id} `, statusBadge(v.status)),
      el('p', { class: 'summary' }, `job ${v.job} · ${v.trigger} · created `, relative(v.createdAt), ` · ${v.cmd}`),
      el('p', { id: 'counts' }, formatSubtaskSummary(v.subtasks)),
      ...(v.failure ? [el('p', { class: 'error' }, v.failure)] : []),
      ...(formatRollout(v) ? [el('p', { id: 'rollout' }, `Rollout: ${formatRollout(v)}`)] : []),
      ...v.notifications.map((n) => el('p', {}, `Webhook ${n.url}: ${n.status}${n.attempts > 0 ? `, ${n.attempts} tries` : ''}${n.lastError ? ` (${n.lastError})` : ''}`)),
      el('div', { class: 'actions' }, ...actions),
    );
    const width = Math.min(main().clientWidth || 800, 1200);
    if (laidOut !== v.subtasks.length) {
      grid.layout(v.subtasks, width);
      laidOut = v.subtasks.length;
      cellsList.replaceChildren(...v.subtasks.map((s) => el('li', { 'data-node': s.nodeId }, '')));
    } else grid.update(v.subtasks);
    v.subtasks.forEach((s, i) => {
      const li = cellsList.children[i] as HTMLElement | undefined;
      const status = cellStatus(s);
      if (li && li.dataset.status !== `${status}/${s.reason ?? ''}`) {
        li.dataset.status = `${status}/${s.reason ?? ''}`;
        li.textContent = grid.describe(s);
      }
    });
    if (finished && !grouped) {
      grouped = true;
      const list = await api<{ nodes: { name: string | null; nodeId: string }[]; status: string; reason: string | null; exitCode: number | null; signal: string | null; stdout: string; stderr: string }[]>(`/v1/instances/${id}/logs?group=1`);
      groups.replaceChildren(
        ...list.map((grp) =>
          el('section', { class: 'group' }, el('h3', {}, `${grp.nodes.map((n) => n.name ?? shortId(n.nodeId)).join(', ')} (${grp.nodes.length})${grp.status !== 'succeeded' ? ` ${outcomeText(grp)}` : ''}`), el('pre', { class: 'output' }, grp.stdout, ...(grp.stderr ? [el('span', { class: 'stderr' }, grp.stderr)] : []))),
        ),
      );
    }
    if (finished) return;
    version = versionOf(v);
  }
}

// ---- shell ----------------------------------------------------------------------------

function route(): void {
  leavePage();
  const g = ++generation;
  const hash = location.hash.replace(/^#/, '') || '/';
  const [, page, arg] = hash.split('/');
  for (const a of document.querySelectorAll('nav a')) a.removeAttribute('aria-current');
  document.querySelector(`nav a[data-page="${page || 'cluster'}"]`)?.setAttribute('aria-current', 'page');
  const run =
    page === 'jobs' && arg ? jobPage(g, decodeURIComponent(arg)) : page === 'jobs' ? jobsPage(g) : page === 'instances' && arg ? instancePage(g, arg) : page === 'instances' ? instancesPage(g) : clusterPage(g);
  run.catch(async (err: unknown) => {
    if (!current(g)) return;
    fail(err);
    if (err instanceof Unauthorized) return;
    await sleep(2_000);
    if (current(g)) route();
  });
  main().focus({ preventScroll: true });
}

async function start(): Promise<void> {
  try {
    const me = await api<{ role: Role; name: string }>('/v1/whoami');
    role = me.role;
    const who = document.getElementById('me');
    if (who) who.textContent = `${me.name} · ${role === 'operate' ? 'operate' : 'read only'}`;
  } catch (err) {
    return fail(err);
  }
  window.addEventListener('hashchange', route);
  // Relative times ("12s ago", "dead in 3s") move on between answers, from the page's clock.
  setInterval(() => refreshTimes(document), TIME_REFRESH_MS);
  route();
}

void start();
