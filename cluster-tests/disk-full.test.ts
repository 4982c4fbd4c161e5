// A daemon whose data directory fills up (issue 27, points 2 and 3), on a real small disk
// (a tmpfs; root only, as CI runs): a write the disk refuses is refused to the client,
// naming the file, and has no effect (nothing run, listed or gossiped); the daemon goes on,
// recovers by itself once space is back, and a kill -9 while the disk is full leaves a data
// directory it starts from with everything it acknowledged.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { InstanceView, JobView } from '../src/api/views.js';
import { readStateRecords } from '../src/store/state-file.js';
import { mountSmallDisk, smallDiskProblem, type SmallDisk } from '../src/testing/small-disk.js';
import { EXIT, expectExit, expectStable, okJson, sq, startDaemon, tempDir, useProcessCleanup, waitFor, type Daemon } from './support/index.js';

useProcessCleanup();

/** More than a page: a record this big cannot slip into the slack of a file's last page on a full disk. */
const PAD = ` #${'x'.repeat(6000)}`;
const REFUSED = /cannot write \S+\/state\.log \(ENOSPC: no space left on device\); nothing was done/;

describe.skipIf(smallDiskProblem !== null)(`a daemon on a full disk${smallDiskProblem ? ` (not run: ${smallDiskProblem})` : ''}`, () => {
  let disk: SmallDisk | null = null;
  afterEach(() => {
    disk?.remove();
    disk = null;
  });

  const jobNames = async (d: Daemon) => (await okJson<JobView[]>(d, ['job', 'list'])).map((j) => j.name).sort();
  const instanceIds = async (d: Daemon) => (await okJson<InstanceView[]>(d, ['instance', 'list'])).map((i) => i.id).sort();

  it('refuses writes it cannot make durable, with no effect; recovers by itself when space is back; starts after a kill -9 on a full disk with everything it acknowledged', async () => {
    disk = mountSmallDisk(2048);
    const marks = await tempDir('chorus-marks-');
    const mark = (name: string) => join(marks, name);
    const d = await startDaemon({ name: 'full', dataDir: join(disk.dir, 'node'), logFile: join(marks, 'daemon.log') });

    expectExit(await d.cli(['job', 'add', 'before', '--cmd', 'true']), EXIT.ok);
    const runJson = async (args: string[]) => {
      const r = await d.cli(['run', '--json', ...args]);
      expectExit(r, EXIT.ok);
      return r.json<InstanceView>();
    };
    const early = await runJson(['--wait', '--', 'true']);
    // A broadcast running while the disk fills up.
    const running = await runJson(['--', `sleep 2; echo ran >> ${sq(mark('running'))}`]);
    disk.fill();

    // Writes the disk refuses: exit 1, the file named, nothing done.
    const add = await d.cli(['job', 'add', 'disk-full', '--cmd', `true${PAD}`]);
    expectExit(add, EXIT.failed);
    expect(add.stderr).toMatch(REFUSED);
    const run = await d.cli(['run', '--', `echo RAN >> ${sq(mark('refused'))}${PAD}`]);
    expectExit(run, EXIT.failed);
    expect(run.stderr).toMatch(REFUSED);
    const runWait = await d.cli(['run', '--wait', '--json', '--', `echo RAN >> ${sq(mark('refused'))}${PAD}`]);
    expectExit(runWait, EXIT.failed);
    expect(runWait.json<{ error: string; message: string }>()).toMatchObject({ error: 'storage-failed', message: expect.stringMatching(REFUSED) as unknown });
    expect(await jobNames(d)).toEqual(['before']);
    expect(await instanceIds(d)).toEqual([early.id, running.id].sort());
    expect(await expectStable(() => existsSync(mark('refused')), { durationMs: 3000, what: 'a refused run never running' })).toBe(false);
    // The running broadcast ran once, and its result is known (in memory: the disk takes it later).
    await waitFor(async () => (await okJson<InstanceView>(d, ['instance', 'show', running.id])).status === 'succeeded', { timeoutMs: 20_000, what: 'the running broadcast to end' });
    expect(readFileSync(mark('running'), 'utf8')).toBe('ran\n');
    expect(d.running).toBe(true);

    // Space is back: the daemon recovers by itself.
    disk.free();
    expectExit(await d.cli(['job', 'add', 'after', '--cmd', 'true']), EXIT.ok);
    await waitFor(async () => (await readStateRecords(d.dataDir)).some((r) => r.kind === 'subtask' && r.record.instanceId === running.id && r.record.status === 'succeeded'), {
      timeoutMs: 20_000,
      what: "the broadcast's result written once space was back",
    });

    // Full again, and killed while full.
    disk.fill();
    const lost = await d.cli(['job', 'add', 'lost', '--cmd', `true${PAD}`]);
    expectExit(lost, EXIT.failed);
    expect(lost.stderr).toMatch(REFUSED);
    d.kill('SIGKILL');
    await waitFor(() => !d.running, { what: 'the daemon to die' });
    disk.free();
    for (const line of readFileSync(join(d.dataDir, 'state.log'), 'utf8').split('\n').filter(Boolean)) expect(() => JSON.parse(line) as unknown).not.toThrow();

    await d.restart();
    expect(await jobNames(d)).toEqual(['after', 'before']);
    expect(await instanceIds(d)).toEqual([early.id, running.id].sort());
    expect((await okJson<InstanceView>(d, ['instance', 'show', running.id])).status).toBe('succeeded');
    expect(readFileSync(mark('running'), 'utf8')).toBe('ran\n');
    expect(existsSync(mark('refused'))).toBe(false);
    expectExit(await d.cli(['run', '--wait', '--', 'true']), EXIT.ok);
    expect(d.logs()).not.toMatch(/is unreadable/);
  });
});
