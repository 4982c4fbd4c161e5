// The dashboard's files (index.html, app.js, app.css), built by scripts/build-ui.mjs into
// dist/ui and served at /ui by every daemon. Read once, at the first request. The single
// executable has them built in (scripts/build-binary.mjs replaces this module).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface UiAsset {
  body: Buffer;
  type: string;
}

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

let cache: Map<string, UiAsset> | null = null;

/** Where the built files are: dist/ui next to dist/src (the daemon), or under dist/ from the sources (tests). */
function candidates(): string[] {
  return [new URL('../../ui/', import.meta.url), new URL('../../dist/ui/', import.meta.url)].map((u) => fileURLToPath(u));
}

/** The files by name; empty when the dashboard was not built (`npm run build` builds it). */
export function uiAssets(): Map<string, UiAsset> {
  if (cache) return cache;
  const found = new Map<string, UiAsset>();
  for (const dir of candidates()) {
    try {
      for (const [name, type] of Object.entries(TYPES)) found.set(name, { body: readFileSync(`${dir}${name}`), type });
      break;
    } catch {
      found.clear();
    }
  }
  cache = found;
  return found;
}
