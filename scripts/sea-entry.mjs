// Entry point of the single executable (dist/chorus): scripts/build-binary.mjs bundles
// this file, the compiled commands and every dependency into one CommonJS script.
//
// bin/run.js lets oclif find package.json on disk and import() the command map by
// path. Inside the executable there is no disk package.json, and require()/import()
// only reach Node's builtins, so this entry hands oclif everything in memory: the
// package.json read at build time and the COMMANDS map imported statically (new
// commands arrive through dist/commands/index.js without touching this file).
//
// No top-level await here: the bundle is CommonJS.
import { dirname } from 'node:path';

import { Config, Plugin, flush, handle, run } from '@oclif/core';

import { COMMANDS } from '../dist/commands/index.js';
import pjson from '../package.json' with { type: 'json' };
// The commands of the plugins package.json lists (shell completion), by file: build-binary.mjs.
import PLUGIN_COMMANDS from 'chorus:plugin-commands';

/**
 * Builds the oclif root plugin from memory. The plugin's command cache is filled
 * before load() so the 'explicit' strategy never resolves or imports its target
 * file; the root is the executable's directory, where only user-facing files
 * (theme, plugins) would be looked up, and none of them are required to exist.
 * @returns {Promise<Config>}
 */
async function loadConfig() {
  const root = dirname(process.execPath);
  const rootPjson = structuredClone(pjson);
  // Its plugins are in the command map below: nothing to look for on disk.
  delete rootPjson.oclif.plugins;
  const commands = { ...COMMANDS, ...PLUGIN_COMMANDS };
  const plugin = new Plugin({ isRoot: true, pjson: rootPjson, root, ignoreManifest: true });
  // `commandCache` is private in oclif's typings but is the exact cache that the
  // 'explicit' strategy consults before touching disk (@oclif/core 4, plugin.js).
  // The check below turns a future rename into a loud failure instead of a silent
  // import() of a file that is not there.
  /** @type {any} */ (plugin).commandCache = commands;
  await plugin.load();
  const expected = Object.keys(commands).length;
  if (plugin.commands.length !== expected) {
    throw new Error(
      `chorus executable: oclif loaded ${plugin.commands.length} of ${expected} commands; ` +
        'the in-memory command map was not used (did @oclif/core change?)',
    );
  }
  return Config.load({
    root,
    pjson: plugin.pjson,
    plugins: new Map([[plugin.name, plugin]]),
    // Plugins installed by users live on disk as separate packages: not in a SEA.
    userPlugins: false,
    devPlugins: false,
  });
}

async function main() {
  // Same flow as @oclif/core's execute(), with a prebuilt config instead of a path.
  try {
    const config = await loadConfig();
    await run(process.argv.slice(2), config);
    flush();
  } catch (error) {
    await handle(/** @type {Error} */ (error));
  }
}

void main();
