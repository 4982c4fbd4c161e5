// The anchor of the scale work (issue 9): HashiCorp serf (memberlist's SWIM), N agents on
// 127.0.0.1, measured the way the cluster bench measures chorus daemons: time until every
// agent sees N alive, idle CPU and RSS per agent, and kill -9 of one agent -> `failed`
// at every other. It measures; it asserts nothing.
//
//   npm run bench:serf -- [--sizes 5,20,50] [--idle-seconds 20]
//
// Set-up: serf is Debian's package `serf`. When it is missing the benchmark installs it
// (apt-get, as root) and otherwise says why it cannot and exits 0 with no figures.
// Every agent is tracked by the multi-process support and SIGKILLed at the end.
// serf needs fixed ports (it advertises them to the others); each is taken from the
// kernel (listen on port 0, then close) just before the agent starts, on 127.0.0.1 only.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { cleanupAllSync, signalPid } from '../cluster-tests/support/processes.js';
import { ensureSerf, members, serfVersion, startAgent, type Agent } from './serf.js';
import { sleep, waitForOrNull } from '../cluster-tests/support/wait.js';
import { processCpuTicks, processStatusKb } from '../src/core/proc.js';

const log = (line: string) => process.stderr.write(`[serf ${new Date().toISOString().slice(11, 23)}] ${line}\n`);

const { values } = parseArgs({
  options: { sizes: { type: 'string', default: '5,20,50' }, 'idle-seconds': { type: 'string', default: '20' }, help: { type: 'boolean', default: false } },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: npm run bench:serf -- [--sizes 5,20,50] [--idle-seconds 20]\n');
  process.exit(0);
}
const sizes = values.sizes.split(',').map(Number);
const idleSeconds = Number(values['idle-seconds']);
if (sizes.some((n) => !Number.isInteger(n) || n < 2 || n > 200) || !(idleSeconds > 0)) {
  process.stderr.write('serf-anchor: --sizes takes whole numbers from 2 to 200, --idle-seconds a positive number\n');
  process.exit(2);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] as number);
};

async function measure(serf: string, size: number): Promise<string> {
  const agents: Agent[] = [];
  const t0 = performance.now();
  const seed = await startAgent(serf, 's1', null);
  agents.push(seed);
  for (let i = 2; i <= size; i++) agents.push(await startAgent(serf, `s${i}`, seed.bind));
  const lastStart = performance.now();
  const all = new Set(agents.map((a) => a.name));
  const formed = await waitForOrNull(
    async () => {
      for (const a of agents) if ((await members(serf, a, 'alive')).size !== all.size) return false;
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `${size} serf agents to see each other` },
  );
  const formMs = formed ? performance.now() - lastStart : NaN;
  log(`${size} agents started in ${((lastStart - t0) / 1000).toFixed(1)} s; all see all ${formed ? `${formMs.toFixed(0)} ms after the last start` : 'never (60 s)'}`);

  const clk = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  await sleep(3000); // a measurement window: let the join traffic die down
  const before = agents.map((a) => ({ a, ticks: processCpuTicks(a.proc.child.pid as number) ?? 0, t: performance.now() }));
  await sleep(idleSeconds * 1000);
  const cpu = before.map(({ a, ticks, t }) => (((processCpuTicks(a.proc.child.pid as number) ?? ticks) - ticks) / clk / ((performance.now() - t) / 1000)) * 100);
  const rss = agents.map((a) => (processStatusKb(a.proc.child.pid as number, 'VmRSS') ?? 0) / 1024);

  const victim = agents[agents.length - 1] as Agent;
  const observers = agents.slice(0, -1);
  const k0 = performance.now();
  signalPid(victim.proc.child.pid, 'SIGKILL');
  const failed = await waitForOrNull(
    async () => {
      for (const a of observers) if (!(await members(serf, a, 'failed')).has(victim.name)) return false;
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `${victim.name} failed everywhere` },
  );
  const killMs = failed ? performance.now() - k0 : NaN;
  for (const a of agents) signalPid(a.proc.child.pid, 'SIGKILL');
  await Promise.all(agents.map((a) => a.proc.exited));
  const row = `| ${size} | ${formed ? `${(formMs / 1000).toFixed(1)} s` : 'never'} | ${median(cpu).toFixed(2)} % / ${Math.max(...cpu).toFixed(2)} % | ${cpu.reduce((x, y) => x + y, 0).toFixed(1)} % | ${median(rss).toFixed(0)} MB | ${failed ? `${(killMs / 1000).toFixed(1)} s` : 'never'} |`;
  log(row);
  return row;
}

const serf = ensureSerf(log);
if (serf === null) process.exit(0);
const version = serfVersion(serf);
const rows: string[] = [];
try {
  for (const size of sizes) rows.push(await measure(serf, size));
} finally {
  cleanupAllSync();
}
process.stdout.write(
  `\n## ${version}: N agents on 127.0.0.1 (idle window ${idleSeconds} s)\n\n` +
    '| agents | all see all, after the last start | idle CPU per agent (median / max) | all agents | RSS per agent (median) | kill -9 -> `failed` at all others |\n' +
    '|---:|---:|---:|---:|---:|---:|\n' +
    `${rows.join('\n')}\n`,
);
