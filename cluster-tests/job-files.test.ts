// `chorus job apply -f FILE|DIR` and `chorus job export` against a real daemon: a directory
// applied twice (the second time every job is unchanged), a change shown by field, a dry
// run that changes nothing, --prune, and an export applied back unchanged.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobView } from '../src/api/views.js';
import type { ApplyResult } from '../src/cli/job-apply.js';
import { EXIT, expectExit, startDaemon, tempDir, useProcessCleanup } from './support/index.js';

useProcessCleanup();

const TEST_TIMEOUT_MS = 120_000;

describe('job files', () => {
  it('apply a directory twice, change one field, dry-run, prune, export and re-apply', { timeout: TEST_TIMEOUT_MS }, async () => {
    const d = await startDaemon({ name: 'job-files' });
    const dir = await tempDir('chorus-jobs-');
    const jobs = join(dir, 'jobs');
    await mkdir(jobs);
    await writeFile(join(jobs, 'a.toml'), '[jobs.backup]\ncmd = "echo backup"\ntype = "standalone"\ncron = "0 3 * * *"\ntimeout = "30m"\nretries = 2\n\n[jobs.tick]\ncmd = "date"\nevery = "5m"\n');
    await writeFile(join(jobs, 'b.json'), JSON.stringify({ jobs: { rotate: { cmd: 'echo rotate', cron: '0 * * * *', enabled: false, tags: { role: 'web' } } } }));
    await writeFile(join(jobs, 'README.md'), 'not a job file: ignored\n');
    const apply = async (...args: string[]) => {
      const r = await d.cli(['job', 'apply', ...args, '--json']);
      return { r, jobs: r.exitCode === 0 ? r.json<{ dryRun: boolean; jobs: ApplyResult[] }>().jobs.map((j) => [j.name, j.action, ...j.fields].join(' ')) : [] };
    };

    const first = await apply('-f', jobs);
    expectExit(first.r, EXIT.ok);
    expect(first.jobs).toEqual(['backup created', 'rotate created', 'tick created']);
    const listed = (await d.json<JobView[]>(['job', 'list'])).map((j) => [j.name, j.enabled, j.scheduleText]);
    expect(listed).toEqual([
      ['backup', true, 'cron "0 3 * * *"'],
      ['rotate', false, 'cron "0 * * * *"'],
      ['tick', true, 'every 5m'],
    ]);
    expect((await apply('-f', jobs)).jobs).toEqual(['backup unchanged', 'rotate unchanged', 'tick unchanged']);

    await writeFile(join(jobs, 'a.toml'), '[jobs.backup]\ncmd = "echo backup v2"\ntype = "standalone"\ncron = "0 4 * * *"\ntimeout = "30m"\nretries = 2\n\n[jobs.tick]\ncmd = "date"\nevery = "5m"\n');
    expect((await apply('-f', jobs, '--dry-run')).jobs).toEqual(['backup updated cmd schedule', 'rotate unchanged', 'tick unchanged']);
    expect((await d.json<JobView>(['job', 'show', 'backup'])).cmd).toBe('echo backup');
    expect((await apply('-f', jobs)).jobs).toEqual(['backup updated cmd schedule', 'rotate unchanged', 'tick unchanged']);
    expect((await d.json<JobView>(['job', 'show', 'backup'])).cmd).toBe('echo backup v2');

    expectExit(await d.cli(['job', 'add', 'stray', '--cmd', 'true']), EXIT.ok);
    const human = await d.cli(['job', 'apply', '-f', jobs, '--prune']);
    expectExit(human, EXIT.ok);
    expect(human.stdout).toMatch(/^deleted\s+stray$/m);
    expect(human.stdout).toMatch(/^3 unchanged, 1 deleted$/m);

    for (const format of ['toml', 'json']) {
      const exported = await d.cli(['job', 'export', '--format', format]);
      expectExit(exported, EXIT.ok);
      const file = join(dir, `export.${format}`);
      await writeFile(file, exported.stdout);
      expect((await apply('-f', file)).jobs).toEqual(['backup unchanged', 'rotate unchanged', 'tick unchanged']);
    }

    // A bad file: exit 2 with its line, and nothing applied.
    await writeFile(join(dir, 'bad.toml'), '[jobs.broken]\ncmd = "x"\nretries = -1\n');
    const bad = await d.cli(['job', 'apply', '-f', join(dir, 'bad.toml')]);
    expectExit(bad, EXIT.badInput);
    expect(bad.stderr).toContain(`${join(dir, 'bad.toml')}:3: jobs.broken.retries: must be >= 0`);
    expect((await d.json<JobView[]>(['job', 'list'])).map((j) => j.name)).toEqual(['backup', 'rotate', 'tick']);
  });
});
