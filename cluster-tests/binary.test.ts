// The single executable dist/chorus works alone: copied to an empty directory and run
// with no Node, no node_modules and no NODE_* variables, it answers and runs a daemon.
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execa, type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StopWaiting, waitFor } from './support/index.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const binary = join(repo, 'dist', 'chorus');
// The pinned Node 24 (the system one may be older): runs bin/run.js for comparisons.
const pinnedNode = join(repo, 'node_modules', 'node', 'bin', 'node');
// What a bare host has: no node on PATH, nothing from this process's environment.
let tmp = '';
const hostEnv = (): Record<string, string> => ({ PATH: '/usr/bin:/bin', HOME: tmp });

const BUILD_TIMEOUT = 240_000;
const DAEMON_TEST_TIMEOUT = 150_000;

/** Newest modification time among files under `dir`, skipping `skip` (absolute paths). */
async function newestMtime(dir: string, skip: Set<string>): Promise<number> {
  let newest = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ([...skip].some((s) => path === s || path.startsWith(`${s}/`))) continue;
    newest = Math.max(newest, (await stat(path)).mtimeMs);
  }
  return newest;
}

/**
 * Reuse dist/chorus only when nothing it is made from changed after it: the compiled
 * app, the sources, the build scripts and the dependency set. Anything newer rebuilds.
 */
async function binaryIsFresh(): Promise<boolean> {
  let built: number;
  try {
    built = (await stat(binary)).mtimeMs;
  } catch {
    return false;
  }
  const skip = new Set([binary, join(repo, 'dist', 'sea')]);
  const inputs = await Promise.all([
    newestMtime(join(repo, 'dist'), skip),
    newestMtime(join(repo, 'commands'), skip),
    newestMtime(join(repo, 'src'), skip),
    ...['scripts/build-binary.mjs', 'scripts/sea-entry.mjs', 'package.json', 'package-lock.json'].map(async (f) =>
      (await stat(join(repo, f))).mtimeMs,
    ),
  ]);
  return inputs.every((t) => t < built);
}

describe.skipIf(process.platform === 'win32')('single executable (dist/chorus)', () => {
  let chorus = '';
  let daemon: ResultPromise | undefined;
  let daemonOutput = '';

  beforeAll(async () => {
    if (!(await binaryIsFresh())) {
      await execa('npm', ['run', 'build:binary'], {
        cwd: repo,
        // npm puts node_modules/.bin first on PATH, so the build runs on the pinned Node.
        stdio: ['ignore', 'inherit', 'inherit'],
        timeout: BUILD_TIMEOUT - 10_000,
      });
    }
    tmp = await mkdtemp(join(tmpdir(), 'chorus-sea-'));
    // The executable alone, as it would be copied to a host.
    chorus = join(tmp, 'chorus');
    await copyFile(binary, chorus);
  }, BUILD_TIMEOUT);

  afterEach(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGKILL');
      await daemon.catch(() => undefined);
    }
    daemon = undefined;
  });

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const sea = (args: string[], timeout = 30_000) =>
    execa(chorus, args, { cwd: tmp, env: hostEnv(), extendEnv: false, reject: false, timeout });

  it('prints its version with no Node around', async () => {
    const { version } = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as { version: string };
    const result = await sea(['--version']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^chorus/${version.replaceAll('.', '\\.')} \\S+ node-v24\\.`));
  });

  it('knows every command that bin/run.js knows, with the same help', async () => {
    // The command ids as the source build sees them (dist/commands/index.js).
    const list = await execa(
      pinnedNode,
      ['--input-type=module', '-e', "const m = await import('./dist/commands/index.js'); console.log(JSON.stringify(Object.keys(m.COMMANDS)))"],
      { cwd: repo },
    );
    const ids = JSON.parse(list.stdout) as string[];
    expect(ids.length).toBeGreaterThan(0);
    for (const argv of [['--help'], ...ids.map((id) => [...id.split(':'), '--help'])]) {
      const fromSea = await sea(argv);
      const fromSource = await execa(pinnedNode, [join(repo, 'bin', 'run.js'), ...argv], {
        cwd: tmp,
        env: hostEnv(),
        extendEnv: false,
        reject: false,
      });
      expect(fromSea.exitCode, `chorus ${argv.join(' ')}: ${fromSea.stderr}`).toBe(0);
      expect(fromSea.stdout, `chorus ${argv.join(' ')}`).toBe(fromSource.stdout);
    }
  });

  it('completes commands in bash, from the executable and from bin/run.js alike (oclif\'s autocomplete plugin)', async () => {
    const complete = async (runner: string[], line: string) => {
      const script = await execa(runner[0] as string, [...runner.slice(1), 'autocomplete', 'script', 'bash'], { cwd: tmp, env: hostEnv(), extendEnv: false, reject: false });
      expect(script.exitCode, script.stderr).toBe(0);
      expect(script.stdout).toContain(`CHORUS_AC_BASH_SETUP_PATH=${tmp}/.cache/chorus/autocomplete/bash_setup`);
      const words = line.split(' ');
      const bash = await execa(
        'bash',
        ['-c', `${script.stdout.trim()}\nCOMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; COMP_LINE="${line}"; COMP_POINT=${line.length}; _chorus_autocomplete; echo "\${COMPREPLY[*]}"`],
        { cwd: tmp, env: hostEnv(), extendEnv: false, reject: false },
      );
      expect(bash.exitCode, bash.stderr).toBe(0);
      return bash.stdout.trim().split(/\s+/);
    };
    for (const runner of [[chorus], [pinnedNode, join(repo, 'bin', 'run.js')]]) {
      await rm(join(tmp, '.cache'), { recursive: true, force: true });
      // Building the cache is what `autocomplete bash` does first; `script` then names it.
      const setup = await execa(runner[0] as string, [...runner.slice(1), 'autocomplete', 'bash'], { cwd: tmp, env: hostEnv(), extendEnv: false, reject: false });
      expect(setup.exitCode, setup.stderr).toBe(0);
      expect(await complete(runner, 'chorus job ap')).toEqual(['apply']);
      expect(await complete(runner, 'chorus no')).toEqual(expect.arrayContaining(['node', 'nodes']));
    }
  });

  it(
    'runs a daemon and a broadcast on it',
    async () => {
      const dataDir = join(tmp, 'data');
      await mkdir(dataDir, { recursive: true });
      daemon = execa(
        chorus,
        ['daemon', '--data-dir', dataDir, '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'],
        { cwd: tmp, env: hostEnv(), extendEnv: false, reject: false, all: true },
      );
      daemon.all?.on('data', (chunk: Buffer) => {
        // Kept (bounded) for the failure message: the only clue when a bundled
        // dependency breaks at run time.
        daemonOutput = (daemonOutput + chunk.toString()).slice(-20_000);
      });
      const running = daemon;

      const node = await waitFor(
        async () => {
          if (running.exitCode !== null || running.signalCode !== null) {
            throw new StopWaiting(`daemon exited early (${running.exitCode ?? running.signalCode}):\n${daemonOutput}`);
          }
          try {
            return JSON.parse(await readFile(join(dataDir, 'node.json'), 'utf8')) as { nodeId: string };
          } catch {
            return undefined; // not there yet, or half written
          }
        },
        { timeoutMs: 60_000, what: 'daemon to write node.json' },
      );

      const result = await sea(['run', '--data-dir', dataDir, '--wait', '--json', '--', 'echo', 'hello-from-sea'], 60_000);
      const context = `exit ${result.exitCode}\nstdout: ${result.stdout}\nstderr: ${result.stderr}\ndaemon:\n${daemonOutput}`;
      expect(result.exitCode, context).toBe(0);
      const instance = JSON.parse(result.stdout) as {
        status: string;
        subtasks: { nodeId: string; status: string }[];
      };
      expect(instance.status, context).toBe('succeeded');
      expect(instance.subtasks.map((s) => [s.nodeId, s.status])).toEqual([[node.nodeId, 'succeeded']]);

      // The dashboard's files are inside the executable: a login URL from `chorus ui`, and the page behind it.
      const ui = await sea(['ui', '--data-dir', dataDir, '--json'], 30_000);
      expect(ui.exitCode, ui.stderr).toBe(0);
      const login = await fetch((JSON.parse(ui.stdout) as { url: string }).url, { redirect: 'manual' });
      expect(login.status).toBe(303);
      const api = new URL((JSON.parse(ui.stdout) as { url: string }).url).origin;
      for (const [file, type] of [['', 'text/html'], ['app.js', 'text/javascript'], ['app.css', 'text/css']]) {
        const res = await fetch(`${api}/ui/${file}`);
        expect(res.status, `/ui/${file}`).toBe(200);
        expect(res.headers.get('content-type')).toContain(type);
        expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(100);
      }

      // SIGTERM leaves gracefully with exit 0, signal handling included in the SEA.
      running.kill('SIGTERM');
      const stopped = await Promise.race([
        running,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000).unref()),
      ]);
      expect(stopped?.exitCode, `daemon did not exit 0 on SIGTERM:\n${daemonOutput}`).toBe(0);
    },
    DAEMON_TEST_TIMEOUT,
  );
});
