// Small DOM helpers: elements, relative times with the exact time on hover, status glyphs.
import { relativeTime } from '../core/human.js';

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string | undefined> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) if (value !== undefined) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/**
 * "12s ago" / "in 3m", with the exact time on hover; `refreshTimes` keeps it true as time
 * passes, unless `ticks` is false: a time as of the last answer (a live member's "last
 * heard", which the daemon renews every second without the page hearing of it).
 */
export function relative(iso: string | null, nowMs = Date.now(), ticks = true): HTMLElement {
  if (iso === null) return el('span', {}, '—');
  return el('time', { datetime: iso, title: new Date(iso).toLocaleString(), ...(ticks ? {} : { 'data-as-of-answer': '' }) }, relativeTime(iso, nowMs));
}

/** Moves every relative time on the page on to now (no request: the page's own clock). */
export function refreshTimes(root: ParentNode, nowMs = Date.now()): void {
  for (const t of root.querySelectorAll('time[datetime]:not([data-as-of-answer])')) {
    const text = relativeTime(t.getAttribute('datetime') as string, nowMs);
    if (t.textContent !== text) t.textContent = text;
  }
}

/** Status is never colour alone: each has a glyph, shown with its word. */
export const GLYPH: Record<string, string> = { succeeded: '✓', failed: '✕', cancelled: '⊘', running: '●', pending: '○', unreleased: '·' };

export function statusBadge(status: string): HTMLElement {
  return el('span', { class: `badge st-${status}` }, `${GLYPH[status] ?? ''} ${status}`);
}

export function button(label: string, onClick: () => Promise<unknown>, attrs: Record<string, string> = {}): HTMLButtonElement {
  const b = el('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', () => {
    b.disabled = true;
    onClick()
      .catch((err: unknown) => alert((err as Error).message))
      .finally(() => {
        b.disabled = false;
      });
  });
  return b;
}
