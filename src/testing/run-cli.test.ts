// The in-process CLI runner: output, exit codes and the process state it borrows.
import { describe, expect, it } from 'vitest';
import { EXIT } from '../api/client.js';
import { CHORUS_VERSION } from '../core/version.js';
import { runCli } from './run-cli.js';

describe('runCli', () => {
  it('captures stdout and exit 0 of a command that succeeds', async () => {
    const r = await runCli(['version', '--json']);
    expect(r.exitCode, r.context).toBe(0);
    expect(r.json()).toEqual({ version: CHORUS_VERSION, node: process.version });
    expect(r.stderr).toBe('');
  });

  it('captures stderr and the exit code of a command that fails, and oclif errors out of non-client commands', async () => {
    const bad = await runCli(['status', '--frobnicate']);
    expect(bad.exitCode, bad.context).toBe(EXIT.badInput);
    expect(bad.stderr).toMatch(/frobnicate/);
    expect(bad.stdout).toBe('');
    const unknown = await runCli(['version', '--frobnicate']);
    expect(unknown.exitCode, unknown.context).not.toBe(0);
    expect(unknown.stderr).toMatch(/frobnicate/);
  });

  it('hides the outer CHORUS_* environment, passes its own, and gives everything back', async () => {
    const before = { write: process.stdout.write, log: console.log, argv: process.argv, exit: process.exit };
    process.env.CHORUS_API = 'http://[::1';
    try {
      // The outer CHORUS_API (not a URL) would make this exit 2; unseen, there is no daemon: 3.
      const r = await runCli(['status'], { dataDir: '/nonexistent/chorus-run-cli' });
      expect(r.exitCode, r.context).toBe(EXIT.unreachable);
      const withEnv = await runCli(['status'], { env: { CHORUS_API: '127.0.0.1:9' } });
      expect(withEnv.exitCode, withEnv.context).toBe(EXIT.badInput);
      expect(withEnv.stderr).toMatch(/needs a token/);
      expect(process.env.CHORUS_API).toBe('http://[::1');
    } finally {
      delete process.env.CHORUS_API;
    }
    expect({ write: process.stdout.write, log: console.log, argv: process.argv, exit: process.exit }).toEqual(before);
  });

  it('runs one command at a time, each with its own output', async () => {
    const [a, b] = await Promise.all([runCli(['version']), runCli(['version', '--json'])]);
    expect(a.stdout).toBe(`chorus ${CHORUS_VERSION} (node ${process.version})\n`);
    expect(b.json()).toMatchObject({ version: CHORUS_VERSION });
  });
});
