// The cluster tests run the built CLI (bin/run.js loads dist/). `npm test` builds first;
// a bare `npx vitest run` on a fresh clone would otherwise fail in confusing ways.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const entry = join(repo, 'dist', 'commands', 'index.js');
  if (!existsSync(entry)) {
    throw new Error(`${entry} is missing: run \`npm run build\` first (\`npm test\` does it for you). The tests run the built CLI, bin/run.js.`);
  }
}
