// A fleet in the in-process simulation (the real core on the in-memory network, fake
// clock), per size: joining in waves, idle traffic per node once the joins' news has
// spread, a record reaching every node, a broadcast to every node (checked by the
// broadcast checker), a crash and a freeze detected everywhere, and a partition and its
// heal, all under message loss. It measures; only the checker's violations fail it.
// Run: npm run bench:sim -- [--sizes 10,100,1000] [--idle-seconds 20] [--loss 0.01] [--no-partition]
import { parseArgs } from 'node:util';
import { runFleet, type FleetFigures } from '../src/testing/fleet-scenario.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,100,1000' },
    'idle-seconds': { type: 'string', default: '20' },
    loss: { type: 'string', default: '0.01' },
    seed: { type: 'string', default: '1' },
    'no-partition': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write('usage: npm run bench:sim -- [--sizes 10,100,1000] [--idle-seconds 20] [--loss 0.01] [--seed 1] [--no-partition]\n');
  process.exit(0);
}
const sizes = values.sizes.split(',').map(Number);
const idleMs = Number(values['idle-seconds']) * 1000;
const seed = Number(values.seed);
const lossRate = Number(values.loss);
if (sizes.some((n) => !Number.isInteger(n) || n < 4) || !(idleMs > 0) || !Number.isInteger(seed) || !(lossRate >= 0 && lossRate < 1)) {
  process.stderr.write('sim-scale: --sizes takes whole numbers ≥ 4, --idle-seconds a positive number, --loss a share in [0, 1), --seed a whole number\n');
  process.exit(2);
}

const rows: FleetFigures[] = [];
let failed = false;
for (const size of sizes) {
  const f = await runFleet({ size, seed, lossRate, idleMs, partition: !values['no-partition'], progress: (line) => process.stderr.write(`[sim-scale ${size}] ${line}\n`) });
  rows.push(f);
  if (f.violations.length > 0) {
    failed = true;
    process.stderr.write(`[sim-scale ${size}] the checker found ${f.violations.length} violation(s):\n${f.violations.slice(0, 20).join('\n')}\n`);
  }
}
const s = (ms: number | null) => (ms === null ? '—' : ms < 10_000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);
process.stdout.write(
  `\n## chorus simulation: a fleet against its size (seed ${seed}, ${(lossRate * 100).toFixed(1)} % of messages lost, ${idleMs / 1000} s of virtual idle time)\n\n` +
    '| nodes | all agree after the last join | joins\' news spread | idle messages sent per node per s | idle bytes sent per node per s | a record on every node | broadcast to all: succeeded at the leader / everywhere | broadcast: gossip deltas received / records checked per member (median, most) | records checked per keeper | checker | kill -9 → dead everywhere | SIGSTOP → dead everywhere | partition: each half sees the other dead / healed | dead verdicts with every node up | wall time |\n' +
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n' +
    rows
      .map(
        (f) =>
          `| ${f.size} | ${s(f.formMs)} | ${s(f.settleMs)} | ${f.idleMessagesPerNodePerS.toFixed(1)} | ${(f.idleBytesPerNodePerS / 1024).toFixed(2)} KiB | ${s(f.recordMs)} | ${s(f.broadcastMs)} / ${s(f.broadcastEverywhereMs)} (${f.broadcastTargets} subtasks) | ${f.memberDeltas.median} (${f.memberDeltas.max}) / ${f.memberChecked.median} (${f.memberChecked.max}) | ${f.keeperChecked} | ${f.violations.length === 0 ? 'no violation' : `${f.violations.length} violations`} | ${s(f.crashDeadMs)} | ${s(f.freezeDeadMs)} | ${s(f.partitionMs)} / ${s(f.healMs)} | ${f.falseDeadVerdicts} | ${f.wallS.toFixed(0)} s |`,
      )
      .join('\n') +
    '\n',
);
process.exit(failed ? 1 : 0);
