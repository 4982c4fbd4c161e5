// A chorus cluster is closed: a daemon without the cluster's swarm key (another key, or
// none given, so it made its own) cannot connect, join or run anything on the others,
// and the refusal is logged with its address. Real daemons, driven through the CLI.
import { existsSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NodeView } from '../src/api/views.js';
import { generateSwarmKey } from '../src/network/swarm-key.js';
import { expectStable, startDaemon, tempDir, useProcessCleanup, waitFor } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 120_000;

describe('closed by default', () => {
  it('a daemon with another key, or without --swarm-key, cannot join, and the member logs the refusal', { timeout: TEST_TIMEOUT_MS }, async () => {
    const member = await startDaemon({ name: 'member' });
    const memberAddr = member.joinAddr;

    const otherKeyDir = await tempDir('chorus-other-key-');
    const otherKey = join(otherKeyDir, 'swarm.key');
    await writeFile(otherKey, generateSwarmKey(), { mode: 0o600 });
    const intruder = await startDaemon({ name: 'intruder', join: [memberAddr], swarmKey: otherKey });
    // No --swarm-key at all: the daemon makes DIR/swarm.key (0600) and uses it, so it is a stranger too.
    const keyless = await startDaemon({ name: 'keyless', join: [memberAddr], swarmKey: null });
    const ownKey = join(keyless.dataDir, 'swarm.key');
    expect(existsSync(ownKey)).toBe(true);
    expect(statSync(ownKey).mode & 0o777).toBe(0o600);
    expect(await readFile(ownKey, 'utf8')).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/);

    await waitFor(
      async () => {
        const refusals = member.logs().match(/refused a connection from \/ip4\/127\.0\.0\.1\/tcp\/\d+: [^"]*/g) ?? [];
        return refusals.length >= 2 ? refusals : null;
      },
      { timeoutMs: 30_000, what: 'the member to log two refused connections with their addresses' },
    );

    // Neither stranger ever becomes a member, on either side.
    const names = await expectStable(
      async () => (await member.cli(['nodes', '--json'])).json<NodeView[]>().map((n) => n.name).sort(),
      { durationMs: 3000, what: 'the members the member knows' },
    );
    expect(names).toEqual(['member']);
    for (const stranger of [intruder, keyless]) {
      const nodes = (await stranger.cli(['nodes', '--json'])).json<NodeView[]>();
      expect(nodes.map((n) => n.nodeId)).toEqual([stranger.nodeId]);
    }

    // A broadcast from the intruder runs on the intruder alone: nothing reaches the member.
    const marks = await tempDir('chorus-marks-');
    const run = await intruder.cli(['run', '--wait', '--json', '--', `touch ${marks}/ran-$CHORUS_NODE_ID`]);
    expect(run.exitCode, run.context).toBe(0);
    expect(existsSync(join(marks, `ran-${intruder.nodeId}`))).toBe(true);
    expect(existsSync(join(marks, `ran-${member.nodeId}`))).toBe(false);
  });
});
