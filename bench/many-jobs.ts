// One daemon holding many jobs (issue 27 point 8): how long `chorus job list` takes as a
// table and as JSON, and how long the daemon takes to start again on that data directory
// (spawn to node.json, and to its first answer). It measures; it asserts nothing.
//
//   npm run bench:jobs -- [--jobs 5000] [--trials 3]
//
// Jobs are a mix, as a fleet has them: a third every hour, a third on a cron, a third manual.
// Every process it starts is killed at the end, on Ctrl-C and on errors.
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { apiCall } from '../cluster-tests/support/api.js';
import { cli } from '../cluster-tests/support/cli.js';
import { startDaemon } from '../cluster-tests/support/daemon.js';
import { cleanupAllSync } from '../cluster-tests/support/processes.js';
import { jobSpec } from '../src/testing/fixtures.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '5000' }, trials: { type: 'string', default: '3' } }, strict: true });
const jobs = Number(values.jobs);
const trials = Number(values.trials);
if (!Number.isInteger(jobs) || jobs < 1 || !Number.isInteger(trials) || trials < 1) {
  process.stderr.write('usage: npm run bench:jobs -- [--jobs 5000] [--trials 3]\n');
  process.exit(2);
}
const log = (line: string) => process.stderr.write(`[jobs ${new Date().toISOString().slice(11, 23)}] ${line}\n`);
process.on('SIGINT', () => process.exit(130));
process.on('exit', () => cleanupAllSync());
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;

const daemon = await startDaemon({ logLevel: 'warn' });
log(`adding ${jobs} jobs to ${daemon.dataDir}`);
const addStartedMs = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next < jobs) {
      const i = next++;
      const schedule = i % 3 === 0 ? { kind: 'every', intervalMs: 3_600_000 } : i % 3 === 1 ? { kind: 'cron', expr: `${i % 60} ${i % 24} * * *`, tz: null } : null;
      await apiCall(daemon, 'PUT', `/v1/jobs/job-${String(i).padStart(5, '0')}`, { spec: jobSpec({ cmd: `echo ${i}`, schedule: schedule as never }) });
    }
  }),
);
log(`added in ${((performance.now() - addStartedMs) / 1000).toFixed(1)} s`);

const timed = async (args: string[]): Promise<number> => {
  const r = await cli(args, { dataDir: daemon.dataDir, timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new Error(`chorus ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr.slice(0, 500)}`);
  return r.ms;
};
const table: number[] = [];
const json: number[] = [];
const version: number[] = [];
for (let t = 0; t < trials; t++) {
  version.push(await timed(['status']));
  table.push(await timed(['job', 'list']));
  json.push(await timed(['job', 'list', '--json']));
}
const readyMs: number[] = [];
const answerMs: number[] = [];
for (let t = 0; t < trials; t++) {
  await daemon.stop();
  const startedMs = performance.now();
  await daemon.restart();
  readyMs.push(daemon.readyMs);
  await apiCall(daemon, 'GET', '/v1/status');
  answerMs.push(performance.now() - startedMs);
}
await daemon.stop();
const fmt = (xs: number[]) => `median ${Math.round(median(xs))} ms (${xs.map((x) => Math.round(x)).join(', ')})`;
process.stdout.write(
  [
    `${jobs} jobs, ${trials} trials`,
    `chorus status (CLI start-up and a small answer): ${fmt(version)}`,
    `chorus job list (table): ${fmt(table)}`,
    `chorus job list --json: ${fmt(json)}`,
    `daemon start on that data directory, spawn to node.json: ${fmt(readyMs)}`,
    `daemon start, spawn to its first answer: ${fmt(answerMs)}`,
  ].join('\n') + '\n',
);
process.exit(0);
