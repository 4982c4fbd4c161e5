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
for (const size of sizes) {
  const wallStart = performance.now();
  // Every node's timers fire in one run of the fake clock: the loop guard grows with the cluster.
  const sim = new SimCluster({ seed, size, maxTimerFiresPerRun: Math.max(1_000_000, size * size * 1000) });
  try {
    sim.start('seed');
    const formMs = await sim.until(() => sim.agreed() && sim.liveIds().every((id) => Object.keys(sim.membersSeenBy(id)).length === size), 120_000, `${size} nodes agreeing`);
    const before = sim.net.stats;
    await sim.run(idleMs);
    const after = sim.net.stats;
    const perNodePerS = (d: number) => d / size / (idleMs / 1000);
    const msgs = perNodePerS(after.sent - before.sent);
    const bytes = perNodePerS(after.sentBytes - before.sentBytes);
    const wallS = (performance.now() - wallStart) / 1000;
    rows.push(`| ${size} | ${(formMs / 1000).toFixed(1)} s | ${msgs.toFixed(1)} | ${(bytes / 1024).toFixed(1)} KiB | ${wallS.toFixed(1)} s |`);
    process.stderr.write(`[sim-scale] ${size} nodes: formed in ${formMs} ms virtual, ${msgs.toFixed(1)} msg/node/s, ${(bytes / 1024).toFixed(1)} KiB/node/s, ${wallS.toFixed(1)} s wall\n`);
  } finally {
    sim.dispose();
  }
}
process.stdout.write(
  `\n## chorus simulation: idle cost against cluster size (seed ${seed}, ${idleMs / 1000} s of virtual idle time)\n\n` +
    '| nodes | all agree (virtual) | messages sent per node per s | bytes sent per node per s | wall time |\n|---:|---:|---:|---:|---:|\n' +
    `${rows.join('\n')}\n`,
);
