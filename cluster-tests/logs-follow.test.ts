// `chorus instance logs --follow` and `--group` against three real daemons: each node's
// first line is printed while its command still runs (it sleeps before the second), each
// line once, and the follow exits when the instance ended, with the exit code of `instance
// wait`; identical outputs of the three nodes are one group; --timeout stops a follow with 124.
import { describe, expect, it } from 'vitest';
import type { LogGroup } from '../src/api/control-plane.js';
import type { InstanceView } from '../src/api/views.js';
import { EXIT, expectExit, instanceOn, spawnCli, startCluster, useProcessCleanup, waitFor, waitForAgreement, type ArrivedLine } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 180_000;
/** Long enough for the follow to start (a CLI start on a busy 2-core machine) before the command's second line. */
const SLEEP_S = 4;

describe('chorus instance logs --follow and --group', () => {
  it('prints every node\'s lines as they are written, once each, exits with the instance; --group makes three identical outputs one group', { timeout: TEST_TIMEOUT_MS }, async () => {
    const daemons = await startCluster({ prefix: 'web-', count: 3 });
    const [a, b] = daemons as [NonNullable<(typeof daemons)[0]>, NonNullable<(typeof daemons)[1]>];
    await waitForAgreement({ alive: daemons, stableMs: 500, what: 'three daemons agreeing' });
    const names = ['web-1', 'web-2', 'web-3'];

    const run = await a.cli(['run', '--json', '--', `echo one; sleep ${SLEEP_S}; echo two`]);
    expectExit(run, EXIT.ok);
    const id = run.json<InstanceView>().id;

    // Followed through another member than the one that took the run.
    const follow = spawnCli(['instance', 'logs', id, '--follow'], { dataDir: b.dataDir });
    const statusWhenFirstLine: Promise<string>[] = [];
    follow.onLine((line) => {
      if (line.text.endsWith('| one')) statusWhenFirstLine.push(instanceOn(b, id).then((v) => v.status));
    });
    const exit = await follow.exited;
    expect(exit.exitCode, follow.stderr()).toBe(EXIT.ok);
    const ended = await instanceOn(b, id);
    expect(ended.status).toBe('succeeded');

    // Each node's two lines, once each, "one" before "two", after the node's name.
    const lineOf = (name: string, text: string): ArrivedLine[] => follow.lines.filter((l) => new RegExp(`^${name} +\\| ${text}$`).test(l.text));
    expect(follow.lines.map((l) => l.text).sort(), follow.stderr()).toEqual(names.flatMap((n) => [`${n} | one`, `${n} | two`]).sort());
    for (const name of names) {
      const [one, two] = [lineOf(name, 'one'), lineOf(name, 'two')];
      expect([one.length, two.length], name).toEqual([1, 1]);
      expect((one[0] as ArrivedLine).atMs, name).toBeLessThanOrEqual((two[0] as ArrivedLine).atMs);
    }
    // The "one" lines came while the commands ran: before any subtask ended, and the instance was running then.
    const firstEndMs = Math.min(...ended.subtasks.map((s) => Date.parse(s.finishedAt as string)));
    for (const name of names) expect((lineOf(name, 'one')[0] as ArrivedLine).atMs, `${name}'s first line`).toBeLessThan(firstEndMs);
    expect(await Promise.all(statusWhenFirstLine)).toEqual(['running', 'running', 'running']);
    // It ended once the instance had: after the last subtask's end.
    const lastEndMs = Math.max(...ended.subtasks.map((s) => Date.parse(s.finishedAt as string)));
    expect(Math.max(...follow.lines.map((l) => l.atMs))).toBeGreaterThanOrEqual(lastEndMs);

    // Three identical outputs: one group naming the three nodes.
    const grouped = await a.cli(['instance', 'logs', id, '--group']);
    expectExit(grouped, EXIT.ok);
    expect(grouped.stdout).toBe('---- web-1,web-2,web-3 (3) ----\none\ntwo\n');
    const groups = await a.json<LogGroup[]>(['instance', 'logs', id, '--group']);
    expect(groups).toHaveLength(1);
    expect(groups[0]).toMatchObject({ step: null, status: 'succeeded', exitCode: 0, stdout: 'one\ntwo\n', stderr: '' });
    expect(groups[0]?.nodes.map((n) => n.name)).toEqual(names);

    // Once it ended, --follow prints it all and exits at once; --json gives a line per line.
    const again = await a.cli(['instance', 'logs', id, '--follow', '--json']);
    expectExit(again, EXIT.ok);
    const objects = again.stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; stream: string; attempt: number; text: string });
    expect(objects.map((o) => `${o.name} ${o.stream} ${o.attempt} ${o.text}`).sort()).toEqual(names.flatMap((n) => [`${n} stdout 1 one`, `${n} stdout 1 two`]).sort());

    // A failed instance: exit 1, as instance wait; --node narrows to one node.
    const failing = await a.cli(['run', '--json', '--', 'echo bad >&2; exit 3']);
    const failedId = failing.json<InstanceView>().id;
    const failed = await b.cli(['instance', 'logs', failedId, '--follow', '--node', 'web-3']);
    expectExit(failed, EXIT.failed);
    expect(failed.stdout).toBe('web-3 ! bad\n');
    await waitFor(async () => (await instanceOn(a, failedId)).status === 'failed', { timeoutMs: 10_000, what: 'the failed instance seen ended' });

    // --timeout: what came by then is printed, a line still without its newline included, and exit 124.
    const slow = await a.cli(['run', '--json', '--', 'echo first; printf partial; sleep 60']);
    expectExit(slow, EXIT.ok);
    const slowId = slow.json<InstanceView>().id;
    await waitFor(async () => (await instanceOn(a, slowId)).subtasks.every((t) => t.status === 'running'), { timeoutMs: 30_000, what: 'every node running the command' });
    const bounded = await b.cli(['instance', 'logs', slowId, '--follow', '--timeout', '5s', '--node', 'web-2']);
    expectExit(bounded, EXIT.timedOut);
    expect(bounded.stdout).toBe('web-2 | first\nweb-2 | partial\n');
    expect(bounded.stderr).toMatch(new RegExp(`timed out following; instance ${slowId} is still running`));
    expectExit(await a.cli(['instance', 'cancel', slowId]), EXIT.ok);

    // An unknown instance: the usual not-found error.
    const unknown = await a.cli(['instance', 'logs', 'no-such-instance', '--follow']);
    expectExit(unknown, EXIT.badInput);
    expect(unknown.stderr).toMatch(/there is no instance with id "no-such-instance"/);
  });
});
