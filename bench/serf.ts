// HashiCorp serf agents for the benchmarks' anchor: install (Debian's package), start on
// 127.0.0.1 with ports taken from the kernel, ask for members. No measuring here.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { runProcess } from '../cluster-tests/support/cli.js';
import { spawnTracked, type TrackedProcess } from '../cluster-tests/support/processes.js';

export interface Agent {
  name: string;
  bind: string;
  rpc: string;
  proc: TrackedProcess;
}

function serfPath(): string | null {
  const found = spawnSync('sh', ['-c', 'command -v serf'], { encoding: 'utf8' }).stdout.trim();
  return found === '' ? null : found;
}

/** serf, installed from Debian's packages when missing and we may; null (with a note on `log`) when not. */
export function ensureSerf(log: (line: string) => void): string | null {
  const existing = serfPath();
  if (existing) return existing;
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status !== 0) {
    log('serf is not installed and cannot be installed here (needs root and apt-get): no anchor figures');
    return null;
  }
  log('serf is not installed: apt-get install -y serf (Debian package)');
  const install = spawnSync('sh', ['-c', 'apt-get install -y serf || (apt-get update && apt-get install -y serf)'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (install.status !== 0) {
    log(`apt-get install serf failed (exit ${install.status}): no anchor figures`);
    return null;
  }
  return serfPath();
}

export function serfVersion(serf: string): string {
  return spawnSync(serf, ['version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? 'serf';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts one agent (serf needs fixed ports: it advertises them; each is taken from the kernel just before). */
export async function startAgent(serf: string, name: string, join: string | null): Promise<Agent> {
  const bind = `127.0.0.1:${await freePort()}`;
  const rpc = `127.0.0.1:${await freePort()}`;
  const args = ['agent', `-node=${name}`, `-bind=${bind}`, `-rpc-addr=${rpc}`, '-log-level=warn', ...(join ? [`-join=${join}`] : [])];
  return { name, bind, rpc, proc: spawnTracked(serf, args, { kind: 'serf' }) };
}

/** `serf members -status=STATUS` as seen by `agent`: the names listed. */
export async function members(serf: string, agent: Agent, status: string): Promise<Set<string>> {
  const r = await runProcess(serf, ['members', `-rpc-addr=${agent.rpc}`, `-status=${status}`], { timeoutMs: 5000 });
  return new Set(
    r.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.trim().split(/\s+/)[0] as string),
  );
}
