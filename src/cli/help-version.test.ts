// `chorus help`, `chorus version` and the EXAMPLES of every command, run in-process
// through oclif with the command map in memory, the way the single executable runs.
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../commands/index.js';
import { CHORUS_VERSION } from '../core/version.js';
import { runCli } from '../testing/run-cli.js';

/** Runs `chorus ARGV...` in this process and returns what it printed on stdout. */
const chorus = async (argv: string[]): Promise<string> => (await runCli(argv)).stdout;

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
