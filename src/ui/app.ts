// The dashboard in the browser: plain DOM, no framework. It talks to the daemon that served
// it with the session cookie `chorus ui` set, through the same /v1 API as the CLI, and
// follows changes with the API's long polls (an answer as soon as something changed), not
// by polling every second.

interface NodeView {
  nodeId: string;
  name: string;
  tags: Record<string, string>;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  leader: boolean;
  draining: boolean;
  incarnation: number;
  lastSeen: string | null;
}

interface StatusView {
  nodeId: string;
  name: string;
  role?: string;
}

const WAIT_MS = 25_000;
/** State is never shown by colour alone: a symbol and the word. */
const STATE_SYMBOL: Record<NodeView['state'], string> = { alive: '●', suspect: '◐', dead: '✕', left: '○' };

class Unauthorized extends Error {}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (res.status === 401) throw new Unauthorized('this browser is not logged in (or the daemon restarted): run chorus ui again');
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { message?: string };
    throw new Error(body.message ?? `HTTP ${res.status}`);
  }
  return (await res.json()) as T;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<Record<string, string>> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) if (value !== undefined) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/** "12s ago", with the exact time on hover. */
function relative(iso: string | null, nowMs = Date.now()): HTMLElement {
  if (iso === null) return el('span', {}, '—');
  const s = Math.round((nowMs - Date.parse(iso)) / 1000);
  const text = s < 2 ? 'now' : s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : s < 86_400 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86_400)}d ago`;
  return el('time', { datetime: iso, title: new Date(iso).toLocaleString() }, text);
}

function clusterPage(main: HTMLElement, nodes: NodeView[]): void {
  const counts = new Map<string, number>();
  for (const n of nodes) counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
  const leader = nodes.find((n) => n.leader);
  const summary = `${nodes.length} member(s): ${[...counts].map(([state, n]) => `${n} ${state}`).join(', ')}; leader ${leader ? leader.name : 'none'}`;
  const rows = nodes.map((n) =>
    el(
      'tr',
      { 'data-node': n.nodeId, 'data-state': n.state },
      el('td', { 'data-label': 'Name' }, n.name),
      el('td', { class: 'id', 'data-label': 'Node', title: n.nodeId }, `…${n.nodeId.slice(-12)}`),
      el('td', { class: `state state-${n.state}`, 'data-label': 'State' }, `${STATE_SYMBOL[n.state]} ${n.state}`),
      el('td', { 'data-label': 'Leader' }, n.leader ? '★ leader' : ''),
      el('td', { 'data-label': 'Draining' }, n.draining ? '⏸ draining' : ''),
      el('td', { 'data-label': 'Tags' }, ...Object.entries(n.tags).map(([k, v]) => el('span', { class: 'tag' }, `${k}=${v}`))),
      el('td', { 'data-label': 'Incarnation' }, String(n.incarnation)),
      el('td', { 'data-label': 'Last heard' }, relative(n.lastSeen)),
    ),
  );
  const table = el(
    'table',
    {},
    el('caption', { class: 'summary' }, summary),
    el('thead', {}, el('tr', {}, ...['Name', 'Node', 'State', 'Leader', 'Draining', 'Tags', 'Incarnation', 'Last heard'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...rows),
  );
  main.replaceChildren(el('h1', {}, 'Cluster'), table);
}

async function followCluster(main: HTMLElement): Promise<void> {
  let version: string | null = null;
  for (;;) {
    try {
      const answer: { version: string; nodes: NodeView[] } = await api(`/v1/nodes?watch=1&waitMs=${WAIT_MS}${version ? `&version=${version}` : ''}`);
      if (answer.version !== version) clusterPage(main, answer.nodes);
      version = answer.version;
    } catch (err) {
      main.replaceChildren(el('p', { class: 'error', role: 'alert' }, (err as Error).message));
      if (err instanceof Unauthorized) return;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

async function start(): Promise<void> {
  const main = document.getElementById('main') as HTMLElement;
  try {
    const me = await api<StatusView>('/v1/status');
    const who = document.getElementById('me');
    if (who) who.textContent = `served by ${me.name}`;
  } catch (err) {
    main.replaceChildren(el('p', { class: 'error', role: 'alert' }, (err as Error).message));
    return;
  }
  await followCluster(main);
}

void start();
