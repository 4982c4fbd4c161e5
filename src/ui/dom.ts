// Small DOM helpers: elements, relative times with the exact time on hover, status glyphs.
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string | undefined> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) if (value !== undefined) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/** "12s ago" / "in 3m", with the exact time on hover. */
export function relative(iso: string | null, nowMs = Date.now()): HTMLElement {
  if (iso === null) return el('span', {}, '—');
  const delta = Math.round((nowMs - Date.parse(iso)) / 1000);
  const s = Math.abs(delta);
  const amount = s < 2 ? '' : s < 60 ? `${s}s` : s < 3600 ? `${Math.round(s / 60)}m` : s < 86_400 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86_400)}d`;
  const text = amount === '' ? 'now' : delta >= 0 ? `${amount} ago` : `in ${amount}`;
  return el('time', { datetime: iso, title: new Date(iso).toLocaleString() }, text);
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
