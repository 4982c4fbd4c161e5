// Builds dist/chorus, a Node single executable application (SEA): the whole app bundled
// into one CommonJS script and injected into a copy of the pinned Node binary.
// Run through `npm run build:binary` (which compiles dist/ first). Nothing is downloaded.
//
// Options (for experiments; the defaults are what the project ships):
//   --entry FILE   script to bundle instead of scripts/sea-entry.mjs
//   --out FILE     executable to write instead of dist/chorus
//   --no-code-cache  skip V8 code cache (smaller blob, slower start)
import { spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { chmod, copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import * as esbuild from 'esbuild';
import postject from 'postject';

const started = performance.now();
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    entry: { type: 'string', default: join(root, 'scripts', 'sea-entry.mjs') },
    out: { type: 'string', default: join(root, 'dist', 'chorus') },
    'no-code-cache': { type: 'boolean', default: false },
  },
});
const out = resolve(opts.out);
const work = join(dirname(out), 'sea');
const bundlePath = join(work, 'chorus.cjs');
const blobPath = join(work, 'sea-prep.blob');
const configPath = join(work, 'sea-config.json');
// The blob (and its code cache) must be made by the very binary it is injected into,
// so this is both the tool and the base executable, never the Node that runs us.
const nodeBinary = join(root, 'node_modules', 'node', 'bin', 'node');
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

// Modules that dependencies require only on paths the executable never takes; each
// is replaced by a module that throws, which those callers already catch.
const STUBS = {
  // @oclif/core reads tsconfig.json with it in development mode only (ts-node
  // support); bundled it would be 9.5 MB of dead weight.
  typescript: 'oclif development mode (ts-node)',
};

const step = (label) => {
  const t = performance.now();
  return () => console.error(`  ${label}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
};
const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

if (process.platform === 'win32') throw new Error('build-binary: Windows executables are not supported by this script');
await mkdir(work, { recursive: true });

// 1. One CommonJS bundle. ESM-only dependencies (libp2p, execa, lowdb...) are
//    converted; `import.meta` does not exist in CommonJS, so esbuild would turn it
//    into `{}` — instead every use points at the executable itself, the only file the
//    program really has. A SEA's require() reaches builtins only, so anything left
//    external that is not a builtin is a build error, found here and not on a host.
let done = step('bundle');
const importMetaBanner = [
  'var __chorus_import_meta_filename = process.execPath;',
  'var __chorus_import_meta_dirname = require("node:path").dirname(process.execPath);',
  'var __chorus_import_meta_url = require("node:url").pathToFileURL(process.execPath).href;',
].join('\n');
const result = await esbuild.build({
  entryPoints: [resolve(opts.entry)],
  outfile: bundlePath,
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  // Whitespace and syntax only: renaming identifiers would change constructor and
  // function names that libraries and oclif print or compare.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  banner: { js: importMetaBanner },
  define: {
    'import.meta.url': '__chorus_import_meta_url',
    'import.meta.filename': '__chorus_import_meta_filename',
    'import.meta.dirname': '__chorus_import_meta_dirname',
  },
  plugins: [stubPlugin(STUBS), pluginCommands(), uiAssetsPlugin()],
  metafile: true,
  logLevel: 'warning',
  logOverride: {
    // Expected: oclif's module loader keeps import(path)/require(path) for plugins,
    // which the entry never reaches (it hands oclif the command map in memory).
    'unsupported-dynamic-import': 'silent',
    'unsupported-require-call': 'silent',
  },
});
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
const leftovers = new Set();
for (const [file, input] of Object.entries(result.metafile.inputs)) {
  for (const imp of input.imports) {
    if (!imp.external || builtins.has(imp.path)) continue;
    // require.resolve() of an optional peer (fdir probing for picomatch) only
    // answers "not installed" in the executable; it loads nothing.
    if (imp.kind === 'require-resolve') continue;
    leftovers.add(`${imp.path} (${imp.kind} in ${file})`);
  }
}
if (leftovers.size > 0) {
  throw new Error(`build-binary: not bundled, and a SEA cannot load them:\n  ${[...leftovers].join('\n  ')}`);
}
const bundleSize = (await stat(bundlePath)).size;
done();

// 2. The preparation blob.
done = step('sea blob');
const seaConfig = {
  main: bundlePath,
  output: blobPath,
  disableExperimentalSEAWarning: true,
  // Compiled at build time so start-up skips parsing the multi-megabyte bundle. Its
  // one cost: the main script cannot call import(), which the bundle never does.
  useCodeCache: !opts['no-code-cache'],
  // A small young generation: an idle daemon then stays well under 100 MB resident.
  execArgv: ['--max-semi-space-size=1'],
};
await writeFile(configPath, `${JSON.stringify(seaConfig, null, 2)}\n`);
run(nodeBinary, ['--experimental-sea-config', configPath]);
done();

// 3. Copy the pinned Node and inject the blob. Unlink first: overwriting a binary
//    that is running (a daemon from the last build) fails with ETXTBSY.
done = step('inject');
await rm(out, { force: true });
await copyFile(nodeBinary, out);
await chmod(out, 0o755);
if (process.platform === 'darwin') run('codesign', ['--remove-signature', out]);
// On Linux postject prints "warning: Can't find string offset for section name
// '.note.100'" a few times: expected (Node's SEA docs show the same), not an error.
await postject.inject(out, 'NODE_SEA_BLOB', await readFile(blobPath), {
  sentinelFuse: SEA_FUSE,
  machoSegmentName: process.platform === 'darwin' ? 'NODE_SEA' : undefined,
});
if (process.platform === 'darwin') run('codesign', ['--sign', '-', out]);
await chmod(out, 0o755);
done();

// 4. Smoke test with an empty environment: a broken bundle fails the build, not a host.
//    (Experimental entries from --entry are not chorus and are left to the caller.)
if (resolve(opts.entry) === join(root, 'scripts', 'sea-entry.mjs')) {
  const { version } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
  const check = spawnSync(out, ['--version'], { env: { PATH: '/usr/bin:/bin' }, encoding: 'utf8' });
  if (check.status !== 0 || !check.stdout.startsWith(`chorus/${version} `)) {
    throw new Error(`build-binary: ${out} --version failed (exit ${check.status}):\n${check.stdout}${check.stderr}`);
  }
}

const size = (await stat(out)).size;
console.error(
  `build-binary: ${relative(process.cwd(), out) || out} ${mb(size)} ` +
    `(bundle ${mb(bundleSize)}, node ${mb((await stat(nodeBinary)).size)}) ` +
    `in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);

/**
 * `chorus:plugin-commands`: the commands of the oclif plugins package.json lists
 * (@oclif/plugin-autocomplete), imported by file. bin/run.js lets oclif load a plugin from
 * node_modules; the executable has no node_modules, and the plugin's package exports none
 * of its command files, so they are found here, by path, and put in the command map.
 */
function pluginCommands() {
  return {
    name: 'chorus-plugin-commands',
    setup(build) {
      build.onResolve({ filter: /^chorus:plugin-commands$/ }, (args) => ({ path: args.path, namespace: 'chorus-plugin-commands' }));
      build.onLoad({ filter: /.*/, namespace: 'chorus-plugin-commands' }, async () => {
        const pjson = JSON.parse(await readFile(resolve('package.json'), 'utf8'));
        const lines = [];
        const entries = [];
        for (const name of pjson.oclif?.plugins ?? []) {
          const dir = resolve('node_modules', name);
          const plugin = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
          const commandsDir = join(dir, plugin.oclif.commands);
          for (const file of await listJs(commandsDir)) {
            const id = relative(commandsDir, file).replace(/\.js$/, '').replace(/\/index$/, '').split('/').join(':');
            const local = `C${entries.length}`;
            lines.push(`import ${local} from ${JSON.stringify(file)};`);
            entries.push(`${JSON.stringify(id)}: ${local}`);
          }
        }
        return { contents: `${lines.join('\n')}\nexport default { ${entries.join(', ')} };\n`, loader: 'js', resolveDir: process.cwd() };
      });
    },
  };
}

async function listJs(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listJs(path)));
    else if (entry.name.endsWith('.js')) out.push(path);
  }
  return out.sort();
}

/**
 * The dashboard's files (dist/ui, built by `npm run build`) inside the executable: the
 * module that reads them from disk (src/api/ui-assets.ts) is replaced by one that holds them.
 */
function uiAssetsPlugin() {
  return {
    name: 'chorus:ui-assets',
    setup(build) {
      build.onResolve({ filter: /[/\\]?ui-assets\.js$/ }, (args) => ({ path: args.path, namespace: 'chorus-ui-assets' }));
      build.onLoad({ filter: /.*/, namespace: 'chorus-ui-assets' }, async () => {
        const dir = join(root, 'dist', 'ui');
        const types = { 'index.html': 'text/html; charset=utf-8', 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };
        const files = {};
        for (const [name, type] of Object.entries(types)) files[name] = { type, b64: (await readFile(join(dir, name))).toString('base64') };
        return {
          loader: 'js',
          contents: `const files = ${JSON.stringify(files)};\nlet cache = null;\nexport function uiAssets() {\n  cache ??= new Map(Object.entries(files).map(([name, f]) => [name, { body: Buffer.from(f.b64, 'base64'), type: f.type }]));\n  return cache;\n}\n`,
        };
      });
    },
  };
}

function stubPlugin(stubs) {
  const filter = new RegExp(`^(${Object.keys(stubs).join('|')})$`);
  return {
    name: 'chorus-stubs',
    setup(build) {
      build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'chorus-stub' }));
      build.onLoad({ filter: /.*/, namespace: 'chorus-stub' }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`${args.path} is not in the chorus executable (only used by ${stubs[args.path]})`)});`,
        loader: 'js',
      }));
    },
  };
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`build-binary: ${cmd} ${args.join(' ')} exited ${r.status}`);
}
