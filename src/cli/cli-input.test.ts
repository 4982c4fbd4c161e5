// CLI cases that need no daemon process: bad input and an unreachable daemon, run
// in-process (src/testing/run-cli.ts) with the same assertions they had as spawned
// processes in cluster-tests/ (single-node.test.ts, input-bounds.test.ts).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../api/client.js';
import { runCli as cli, type CliRun } from '../testing/run-cli.js';
import { tempDirs } from '../testing/temp-dirs.js';

function expectExit(r: CliRun, code: number): void {
  expect(r.exitCode, r.context).toBe(code);
}

const tempDir = tempDirs('chorus-cli-');

describe('--api and --token instead of --data-dir', () => {
  it('--api without a token is bad input (2)', async () => {
    const r = await cli(['status', '--api', 'http://127.0.0.1:9']);
    expectExit(r, EXIT.badInput);
    expect(r.stderr).toMatch(/needs a token/);
  });

  it('--api that is not a URL is 2; --api at a server that is not chorus says so (3)', async () => {
    const notUrl = await cli(['status', '--api', 'http://[::1', '--token', 'x']);
    expectExit(notUrl, EXIT.badInput);
    expect(notUrl.stderr).toMatch(/is not a URL/);

    const other: Server = createServer((_req, res) => res.end('{"hello":"world"}'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (other.address() as AddressInfo).port;
      const r = await cli(['status', '--api', `127.0.0.1:${port}`, '--token', 'x']);
      expectExit(r, EXIT.unreachable);
      expect(r.stderr).toMatch(/is not a chorus daemon/);
    } finally {
      other.close();
    }
  });
});

describe('no daemon', () => {
  it('no daemon ever started in the data directory (no node.json): exit 3', async () => {
    const empty = await tempDir('chorus-empty-');
    const r = await cli(['status'], { dataDir: empty });
    expectExit(r, EXIT.unreachable);
    expect(r.stderr).toMatch(/no chorus daemon is running/);
    expect(r.stderr).toContain('node.json');
    const j = await cli(['job', 'list', '--json'], { dataDir: empty });
    expectExit(j, EXIT.unreachable);
    expect(j.json()).toMatchObject({ exitCode: EXIT.unreachable });
  });
});

describe('chorus daemon flags', () => {
  it('a bad --join address is one line naming the flag, exit 2', async () => {
    const j = await cli(['daemon', '--data-dir', await tempDir('chorus-join-'), '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--join', 'not-an-address']);
    expectExit(j, EXIT.badInput);
    expect(j.stderr).toMatch(/--join not-an-address: not a multiaddr/);
  });

  it.each(['https://127.0.0.1:7410', 'http://127.0.0.1:7410/v1', '127.0.0.1', '127.0.0.1:70000'])('a bad --api (%s) is one line naming the flag, exit 2, before anything starts', async (api) => {
    const dir = await tempDir('chorus-api-');
    const r = await cli(['daemon', '--data-dir', dir, '--api', api, '--listen', '/ip4/127.0.0.1/tcp/0']);
    expectExit(r, EXIT.badInput);
    expect(r.stderr).toContain(`--api ${api}: write it as HOST:PORT`);
  });
});

describe('instance logs flags', () => {
  it('--follow with --group is bad input (2) that says why, before any daemon is asked', async () => {
    const r = await cli(['instance', 'logs', 'abc', '--follow', '--group'], { dataDir: await tempDir('chorus-logs-') });
    expectExit(r, EXIT.badInput);
    expect(r.stderr).toMatch(/--follow and --group cannot be used together/);
  });

  it('--timeout without --follow, or not a duration, is bad input (2) naming the flag', async () => {
    const dataDir = await tempDir('chorus-logs-');
    const alone = await cli(['instance', 'logs', 'abc', '--timeout', '10s'], { dataDir });
    expectExit(alone, EXIT.badInput);
    expect(alone.stderr).toMatch(/--timeout bounds --follow/);
    const bad = await cli(['instance', 'logs', 'abc', '--follow', '--timeout', 'soon'], { dataDir });
    expectExit(bad, EXIT.badInput);
    expect(bad.stderr).toMatch(/--timeout/);
  });
});
