// Cost of an idle cluster against its size, in the in-process simulation (the real core
// on the in-memory network, fake clock): messages and bytes each node sends per second
// of virtual time once the cluster has formed, and how long forming took. It measures;
// it asserts nothing. Run: npm run bench:sim -- [--sizes 10,50,100] [--idle-seconds 30]
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { SimCluster } from '../src/testing/sim-cluster.js';

const { values } = parseArgs({
  options: { sizes: { type: 'string', default: '10,50,100' }, 'idle-seconds': { type: 'string', default: '30' }, seed: { type: 'string', default: '1' }, help: { type: 'boolean', default: false } },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: npm run bench:sim -- [--sizes 10,50,100] [--idle-seconds 30] [--seed 1]\n');
  process.exit(0);
}
const sizes = values.sizes.split(',').map(Number);
const idleMs = Number(values['idle-seconds']) * 1000;
const seed = Number(values.seed);
if (sizes.some((n) => !Number.isInteger(n) || n < 2) || !(idleMs > 0) || !Number.isInteger(seed)) {
  process.stderr.write('sim-scale: --sizes takes whole numbers ≥ 2, --idle-seconds a positive number, --seed a whole number\n');
  process.exit(2);
}

const rows: string[] = [];
/** Nodes join in waves of this many, a virtual second apart, as a fleet rolls out: all at once would queue N² messages. */
const WAVE = 50;
/** Agreement is checked this often (virtual): it compares every node's view, O(N²). */
const CHECK_MS = 250;

async function until(sim: SimCluster, predicate: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const startMs = sim.now();
  while (!predicate()) {
    if (sim.now() - startMs >= timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms of virtual time`);
    await sim.run(CHECK_MS);
  }
  return sim.now() - startMs;
}

for (const size of sizes) {
  const wallStart = performance.now();
  // Every node's timers fire in one run of the fake clock: the loop guards grow with the cluster.
  const sim = new SimCluster({ seed, size: Math.min(size, WAVE), maxTimerFiresPerRun: Math.max(1_000_000, size * size * 1000), maxTimersQueued: Math.max(100_000, size * 1000) });
  try {
    sim.start('seed');
    while (sim.ids().length < size) {
      await sim.run(1000);
      const running = sim.liveIds();
      for (let i = 0; i < WAVE && sim.ids().length < size; i++) sim.addNode(running[i % running.length]);
      if (sim.ids().length % (10 * WAVE) === 0) process.stderr.write(`[sim-scale] ${sim.ids().length} of ${size} nodes joined, ${((performance.now() - wallStart) / 1000).toFixed(0)} s wall\n`);
    }
    const formMs = await until(sim, () => sim.agreed() && sim.liveIds().every((id) => Object.keys(sim.membersSeenBy(id)).length === size), 120_000, `${size} nodes agreeing`);
    const before = sim.net.stats;
    await sim.run(idleMs);
    const after = sim.net.stats;
    const perNodePerS = (d: number) => d / size / (idleMs / 1000);
    const msgs = perNodePerS(after.sent - before.sent);
    const bytes = perNodePerS(after.sentBytes - before.sentBytes);
    // A record written on one node, on every node.
    const writer = sim.ids()[Math.floor(size / 3)] as string;
    const writtenAt = sim.now();
    await sim.addJob(writer, 'bench-record', { cmd: 'sleep:1' });
    const recordMs = sim.now() - writtenAt + (await until(sim, () => sim.liveIds().every((id) => sim.store(id).job('bench-record') !== undefined), 60_000, 'a record reaching every node'));
    // A frozen node (SIGSTOP), dead in every other node's view.
    const frozen = sim.ids()[Math.floor((2 * size) / 3)] as string;
    const falseVerdicts = sim.stats().deadVerdicts; // from the start until now, with every node up
    sim.freeze(frozen);
    const others = sim.liveIds();
    const freezeMs = await until(sim, () => others.every((id) => sim.membersSeenBy(id)[frozen] === 'dead'), 60_000, 'a frozen node dead everywhere');
    const wallS = (performance.now() - wallStart) / 1000;
    rows.push(
      `| ${size} | ${(formMs / 1000).toFixed(1)} s | ${msgs.toFixed(1)} | ${(bytes / 1024).toFixed(1)} KiB | ${recordMs} ms | ${(freezeMs / 1000).toFixed(1)} s | ${falseVerdicts} | ${wallS.toFixed(1)} s |`,
    );
    process.stderr.write(
      `[sim-scale] ${size} nodes: formed in ${formMs} ms virtual, ${msgs.toFixed(1)} msg/node/s, ${(bytes / 1024).toFixed(1)} KiB/node/s, record everywhere in ${recordMs} ms, frozen node dead everywhere in ${freezeMs} ms, ${falseVerdicts} dead verdicts before it, ${wallS.toFixed(1)} s wall\n`,
    );
  } finally {
    sim.dispose();
  }
}
process.stdout.write(
  `\n## chorus simulation: idle cost against cluster size (seed ${seed}, ${idleMs / 1000} s of virtual idle time)\n\n` +
    '| nodes | all agree after the last join (virtual) | idle messages sent per node per s | idle bytes sent per node per s | a record on every node | a frozen node dead everywhere | dead verdicts with every node up | wall time |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n' +
    `${rows.join('\n')}\n`,
);
