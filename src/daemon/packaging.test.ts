// The files of packaging/: the example config is one the daemon takes, and the systemd
// unit passes `systemd-analyze verify` (with ExecStart pointed at an executable that exists
// here, since dist/chorus is not installed in /usr/local/bin on a test machine).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../testing/run-cli.js';
import { layerFromToml, resolveSettings } from './settings.js';

const unit = readFileSync(join(REPO_ROOT, 'packaging', 'chorus.service'), 'utf8');

describe('packaging', () => {
  it('packaging/chorus.toml is a valid config file', () => {
    const path = join(REPO_ROOT, 'packaging', 'chorus.toml');
    const { settings, sources } = resolveSettings({ flags: {}, env: {}, file: layerFromToml(readFileSync(path, 'utf8'), path) });
    expect(settings).toMatchObject({ listen: ['/ip4/0.0.0.0/tcp/7400'], api: '127.0.0.1:7410', logLevel: 'info' });
    // Every top-level key is outside the tables (a key after [tags] would be a tag).
    expect(settings.tags).toEqual({});
    expect(settings.tuning).toEqual({});
    expect(sources).toMatchObject({ listen: 'file', api: 'file', 'log-level': 'file' });
  });

  it('packaging/chorus.service: its own user, a state directory, restart on failure, SIGTERM, limits, reload by SIGHUP', () => {
    const directives = new Map<string, string>();
    for (const line of unit.split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
      if (m) directives.set(m[1] as string, m[2] as string);
    }
    expect(Object.fromEntries(directives)).toMatchObject({
      User: 'chorus',
      StateDirectory: 'chorus',
      Restart: 'on-failure',
      KillSignal: 'SIGTERM',
      ExecStart: '/usr/local/bin/chorus daemon --config /etc/chorus/chorus.toml',
      ExecReload: '/bin/kill -HUP $MAINPID',
      Environment: 'CHORUS_DATA_DIR=/var/lib/chorus',
      RestartPreventExitStatus: '2',
    });
    expect(directives.get('LimitNOFILE')).toMatch(/^\d+$/);
  });

  const analyze = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
  it(`systemd-analyze verify passes on the unit (${analyze.status === 0 ? 'systemd-analyze is here' : 'no systemd-analyze on this machine: the check says so and passes'})`, async () => {
    if (analyze.status !== 0) {
      console.warn('systemd-analyze is not installed here: packaging/chorus.service was not verified by systemd');
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'chorus-unit-'));
    try {
      const path = join(dir, 'chorus.service');
      await writeFile(path, unit.replace('ExecStart=/usr/local/bin/chorus', `ExecStart=${join(REPO_ROOT, 'bin', 'chorus')}`));
      const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
      expect(r.status).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
