// Builds the dashboard (src/ui) into dist/ui: one minified script, its stylesheet and the
// page. No framework, no CDN: the files are served by the daemon at /ui (src/api/ui-assets.ts)
// and built into dist/chorus. Run by `npm run build`; prints the sizes (gzipped too).
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src', 'ui');
const out = join(root, 'dist', 'ui');
await mkdir(out, { recursive: true });
await esbuild.build({
  entryPoints: [join(src, 'app.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2022',
  platform: 'browser',
  legalComments: 'none',
  logLevel: 'warning',
});
await copyFile(join(src, 'index.html'), join(out, 'index.html'));
await copyFile(join(src, 'app.css'), join(out, 'app.css'));
let total = 0;
const sizes = [];
for (const name of ['index.html', 'app.js', 'app.css']) {
  const body = await readFile(join(out, name));
  const gz = gzipSync(body).length;
  total += gz;
  sizes.push(`${name} ${body.length} B (${gz} gzipped)`);
}
console.log(`dashboard: ${sizes.join(', ')}; ${total} B gzipped in all`);
