// `chorus daemon --config FILE`: a real daemon takes its settings from a TOML file (flags
// win over it), SIGHUP applies new tags and log level live and names what needs a restart,
// a broken file on SIGHUP changes nothing, and a bad file at start is exit 2 before
// anything is opened.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { NodeView } from '../src/api/views.js';
import { EXIT, cli, expectExit, startDaemon, tempDir, useProcessCleanup, waitFor, type Daemon } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 120_000;

const configText = (tags: string, extra = '') => `
name = "from-file"
log-level = "warn"
${extra}
[tags]
${tags}

[tuning]
retain-records = 5000
`;

describe('chorus daemon --config', () => {
  let d: Daemon;
  afterAll(() => d?.kill('SIGKILL'));

  it('takes its settings from the file, flags first; SIGHUP applies tags and names what needs a restart', { timeout: TEST_TIMEOUT_MS }, async () => {
    const dir = await tempDir('chorus-config-');
    const file = join(dir, 'chorus.toml');
    await writeFile(file, configText('role = "web"'));
    // The helper passes --log-level debug, --api, --listen and --data-dir: those flags win over the file.
    d = await startDaemon({ extraArgs: ['--config', file] });
    const self = async () => (await d.json<NodeView[]>(['nodes'])).find((n) => n.nodeId === d.nodeId) as NodeView;
    expect(await self()).toMatchObject({ name: 'from-file', tags: { role: 'web' } });
    const printed = await cli(['daemon', '--config', file, '--log-level', 'debug', '--print-config']);
    expectExit(printed, EXIT.ok);
    expect(printed.stdout).toMatch(/^log-level = "debug"$/m);
    expect(printed.stdout).toMatch(/^retain-records = 5000$/m);
    expect(printed.stdout).toMatch(/# from flags: log-level/);

    await writeFile(file, configText('role = "db"\nzone = "a"', 'mdns = true'));
    d.kill('SIGHUP');
    await waitFor(async () => JSON.stringify((await self()).tags) === JSON.stringify({ role: 'db', zone: 'a' }), { timeoutMs: 20_000, what: 'the new tags in chorus nodes' });
    await waitFor(() => /restart needed to apply mdns/.test(d.logs()), { timeoutMs: 10_000, what: 'the restart-needed line' });
    expect(d.logs()).toMatch(/SIGHUP: config re-read; applied tags/);

    // A broken file on SIGHUP: logged, nothing changes, the daemon goes on.
    await writeFile(file, 'name = "unterminated\n');
    d.kill('SIGHUP');
    await waitFor(() => /SIGHUP: the config was not applied: .*chorus\.toml:1:\d+: not valid TOML/.test(d.logs()), { timeoutMs: 10_000, what: 'the refused reload in the log' });
    expect(d.running).toBe(true);
    expect((await self()).tags).toEqual({ role: 'db', zone: 'a' });
  });

  it('a bad file at start: exit 2 naming the file and the key, and no daemon', { timeout: TEST_TIMEOUT_MS }, async () => {
    const dir = await tempDir('chorus-config-bad-');
    const file = join(dir, 'bad.toml');
    await writeFile(file, '[tuning]\nprobe-timeout = "5s"\n');
    const dataDir = join(dir, 'data');
    const r = await cli(['daemon', '--config', file, '--data-dir', dataDir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0']);
    expectExit(r, EXIT.badInput);
    expect(r.stderr).toContain(`${file}: tuning.probe-timeout (5000) must be less than tuning.probe-interval (1000)`);
    expect(existsSync(dataDir)).toBe(false);
    await writeFile(file, 'listen = "/ip4/127.0.0.1/tcp/0"\nlisten-port = 7400\n');
    const unknown = await cli(['daemon', '--config', file, '--data-dir', dataDir]);
    expectExit(unknown, EXIT.badInput);
    expect(unknown.stderr).toContain(`${file}: unknown key "listen-port" (allowed: data-dir, listen, join, api, name, tags, mdns, swarm-key, log-level, log-format, metrics, tls-cert, tls-key, insecure-api, tuning)`);
  });
});
