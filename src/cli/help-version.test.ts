// `chorus help`, `chorus version` and the EXAMPLES of every command, run in-process
// through oclif with the command map in memory, the way the single executable runs.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Config, Plugin, run } from '@oclif/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { COMMANDS } from '../../commands/index.js';
import { CHORUS_VERSION } from '../core/version.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The oclif config of scripts/sea-entry.mjs: package.json and COMMANDS from memory. */
async function loadConfig(): Promise<Config> {
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as ConstructorParameters<typeof Plugin>[0]['pjson'];
  const plugin = new Plugin({ isRoot: true, pjson, root, ignoreManifest: true });
  (plugin as unknown as { commandCache: unknown }).commandCache = COMMANDS;
  await plugin.load();
  return Config.load({ root, pjson: plugin.pjson, plugins: new Map([[plugin.name, plugin]]), userPlugins: false, devPlugins: false });
}

/** Runs `chorus ARGV...` in this process and returns what it printed on stdout. */
async function chorus(argv: string[]): Promise<string> {
  const printed: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed.push(String(chunk));
    return true;
  });
  // oclif's help prints through console.log.
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    printed.push(`${args.map(String).join(' ')}\n`);
  });
  await run(argv, await loadConfig());
  vi.restoreAllMocks();
  return printed.join('');
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('chorus version', () => {
  it('prints the compiled-in version', async () => {
    expect(await chorus(['version'])).toBe(`chorus ${CHORUS_VERSION} (node ${process.version})\n`);
  });

  it('prints one JSON document with --json', async () => {
    expect(JSON.parse(await chorus(['version', '--json']))).toEqual({ version: CHORUS_VERSION, node: process.version });
  });
});

describe('chorus help', () => {
  it('with no command shows the root help, listing the topics and commands', async () => {
    const out = await chorus(['help']);
    expect(out).toMatch(/^USAGE\n {2}\$ chorus \[COMMAND\]$/m);
    expect(out).toMatch(/^TOPICS$/m);
    for (const command of ['daemon', 'help', 'keygen', 'run', 'status', 'version']) expect(out).toMatch(new RegExp(`^ {2}${command} `, 'm'));
  });

  it('help job add shows that command, as job add --help does', async () => {
    const out = await chorus(['help', 'job', 'add']);
    expect(out).toMatch(/\$ chorus job add NAME --cmd <value>/);
    expect(out).toMatch(/^EXAMPLES$/m);
    expect(out).toBe(await chorus(['job', 'add', '--help']));
  });

  it('help help shows the help command itself', async () => {
    expect(await chorus(['help', 'help'])).toMatch(/\$ chorus help \[COMMAND\.\.\.\]/);
  });

  it('help on a topic lists its commands', async () => {
    const out = await chorus(['help', 'instance']);
    expect(out).toMatch(/^ {2}instance wait /m);
  });
});

describe('command help', () => {
  it.each(Object.keys(COMMANDS).map((id) => [id.replaceAll(':', ' ')]))('chorus help %s has an EXAMPLES section', async (command) => {
    const out = await chorus(['help', ...command.split(' ')]);
    expect(out).toMatch(/^EXAMPLES\n {2}\$ chorus /m);
  });

  it('chorus run --help shows the command after --', async () => {
    const out = await chorus(['run', '--help']);
    expect(out).toMatch(/^USAGE\n {2}\$ chorus run \[--tag KEY=VALUE\]\.\.\. .*-- CMD \[ARG\]\.\.\.$/ms);
  });
});
