// chorus cluster benchmark: starts real daemons on 127.0.0.1 and prints figures.
// It measures; it asserts nothing (the exit code is 0 unless the benchmark itself
// broke). It runs compiled (tsconfig.bench.json -> dist/bench/), through npm so the
// pinned Node 24 is used:
//
//   npm run bench                          # everything, 10 trials, 5 nodes, 300 s soak
//   npm run bench -- --quick               # smoke run: 2 trials, 30 s soak, 10 s idle
//   npm run bench -- --scenarios a,d,g     # only some scenarios (letters or names)
//   npm run bench -- --no-false-dead       # skip the long soak
//   npm run bench -- --help                # all options
//
// Scenarios (targets from issues 2, 3 and 4):
//   a kill        kill -9 of a non-leader -> `dead` at every other member      (<= 1 s)
//   b stop        SIGSTOP of a non-leader -> `dead` at every other member      (<= 3 s)
//   c leader      kill -9 of the leader -> new leader agreed by all survivors   (<= 2 s)
//   d job         PUT /v1/jobs/NAME on one node -> visible on all others       (<= 200 ms)
//   e idle        idle RSS and CPU of every daemon of an idle cluster          (< 100 MB, < 2 %)
//   f false-dead  soak with the cores kept busy: times any member saw another `dead` (0)
//   g broadcast   run -> all started (<= 50 ms median); run -> `succeeded` seen (<= 150 ms)
//   h bcast-kill  kill -9 of a target during a broadcast -> its subtask node-lost at the leader (<= 1.5 s)
//   i xargs       the same 5 trivial commands with `xargs -P 5`, as a baseline
//   j startup     `bin/run.js --version`, `dist/chorus --version`, daemon start -> node.json
//
// Everything it starts goes through the multi-process support (cluster-tests/support)
// and is SIGCONT+SIGKILLed at the end, on Ctrl-C and on errors (including job commands
// the daemons spawned: they carry a marker variable and are found through /proc).
// Results: a markdown table on stdout, raw samples as JSON in bench-results/
// (git-ignored). Progress goes to stderr.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, cleanupAllSync } from '../cluster-tests/support/processes.js';
import { ORDER, Results, SCENARIOS, buildRows, markdown, scanDaemonLogs, type Letter } from './report.js';
import { Bench, SEA, log, type Options } from './scenarios.js';

const HELP = `usage: node dist/bench/cluster-bench.js [options]   (or: npm run bench -- [options])

  --quick                 smoke run: 2 trials, 30 s soak, 10 s idle window   [env BENCH_QUICK=1]
  --trials N              trials per scenario (default 10)                    [env BENCH_TRIALS]
  --nodes N               daemons in the cluster (default 5, 3 to 100)        [env BENCH_NODES]
  --scenarios LIST        comma-separated letters or names (default: all)     [env BENCH_SCENARIOS]
                          ${Object.entries(SCENARIOS)
                            .map(([k, v]) => `${k}=${v}`)
                            .join(' ')}
  --false-dead            add the false-dead soak (f) to an explicit --scenarios list
  --no-false-dead         skip the false-dead soak
  --soak-seconds S        duration of the soak (default 300, quick 30)        [env BENCH_SOAK_SECONDS]
  --burners N             busy-loop processes during the soak (default 2)     [env BENCH_BURNERS]
  --idle-seconds S        CPU measurement window of scenario e (default 30, quick 10) [env BENCH_IDLE_SECONDS]
  --log-level L           daemon --log-level (default info)
  --keep                  keep the temporary data directories (daemon.log of every node)
  --sea                   run the daemons as dist/chorus (single executable) instead of node bin/run.js [env BENCH_SEA=1]
  --help
`;

function die(message: string): never {
  process.stderr.write(`cluster-bench: ${message}\n`);
  process.exit(2);
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      trials: { type: 'string' },
      nodes: { type: 'string' },
      scenarios: { type: 'string' },
      'false-dead': { type: 'boolean', default: false },
      'no-false-dead': { type: 'boolean', default: false },
      'soak-seconds': { type: 'string' },
      burners: { type: 'string' },
      'idle-seconds': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      keep: { type: 'boolean', default: false },
      sea: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const env = process.env;
  const quick = values.quick || env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  const int = (name: string, raw: string | undefined, fallback: number, min: number, max: number): number => {
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) die(`--${name} must be an integer from ${min} to ${max}, not "${raw}"`);
    return n;
  };
  const trials = int('trials', values.trials ?? env.BENCH_TRIALS, quick ? 2 : 10, 1, 1000);
  const nodes = int('nodes', values.nodes ?? env.BENCH_NODES, 5, 3, 100);
  const soakSeconds = int('soak-seconds', values['soak-seconds'] ?? env.BENCH_SOAK_SECONDS, quick ? 30 : 300, 1, 24 * 3600);
  const burners = int('burners', values.burners ?? env.BENCH_BURNERS, 2, 0, 64);
  const idleSeconds = int('idle-seconds', values['idle-seconds'] ?? env.BENCH_IDLE_SECONDS, quick ? 10 : 30, 1, 3600);
  const letters = Object.keys(SCENARIOS) as Letter[];
  let selected: Set<Letter>;
  const list = values.scenarios ?? env.BENCH_SCENARIOS;
  if (list) {
    selected = new Set();
    for (const word of list.split(',').map((w) => w.trim()).filter(Boolean)) {
      const key = letters.find((k) => k === word || SCENARIOS[k] === word);
      if (!key) die(`unknown scenario "${word}"; use ${Object.entries(SCENARIOS).map(([k, v]) => `${k}|${v}`).join(', ')}`);
      selected.add(key);
    }
    if (values['false-dead']) selected.add('f');
  } else {
    selected = new Set(letters);
  }
  if (values['no-false-dead']) selected.delete('f');
  const sea = values.sea || env.BENCH_SEA === '1';
  if (sea && !existsSync(SEA)) die('--sea: there is no dist/chorus; build it with npm run build:binary');
  return { quick, trials, nodes, soakSeconds, burners, idleSeconds, selected, logLevel: values['log-level'], keep: values.keep, sea };
}

let bench: Bench | null = null;
let cleanedUp = false;

/** Synchronous: usable from 'exit' and signal handlers. Idempotent. */
function cleanupSync(): void {
  if (cleanedUp) return;
  cleanedUp = true;
  cleanupAllSync({
    keepDirs: bench?.keepDirs ?? false,
    onKept: (paths) => process.stderr.write(`[bench] kept data directories (daemon.log per node): ${paths.join(' ')}\n`),
  });
}

function keepAndCleanUp(): void {
  if (bench) bench.keepDirs = true;
  cleanupSync();
}

process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\n[bench] ${sig}: killing everything this benchmark started\n`);
    if (bench && sig !== 'SIGINT') bench.keepDirs = true;
    cleanupSync();
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  process.stderr.write(`[bench] uncaught: ${err?.stack ?? err}\n`);
  keepAndCleanUp();
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`[bench] unhandled rejection: ${(err as Error)?.stack ?? err}\n`);
  keepAndCleanUp();
  process.exit(1);
});

async function main(): Promise<void> {
  const opts = parseOptions();
  if (!existsSync(join(REPO_ROOT, 'dist', 'commands'))) die('dist/ is missing: run `npm run build` first (npm run bench does)');
  const results = new Results();
  const b = (bench = new Bench(opts, results));

  const startedAt = new Date();
  const load0 = loadavg();
  const selected = ORDER.filter((k) => opts.selected.has(k));
  log(
    `chorus cluster bench: ${opts.nodes} ${opts.sea ? 'dist/chorus' : 'node bin/run.js'} daemons, ${opts.trials} trials, scenarios ${selected.map((k) => `${k}(${SCENARIOS[k]})`).join(' ')}` +
      `${opts.quick ? ', quick' : ''}; ${cpus().length} CPUs, load ${load0.map((l) => l.toFixed(2)).join(' ')}; node ${process.version}`,
  );

  const errors: string[] = [];
  const failed = async (letter: Letter, what: string, err: unknown) => {
    const msg = `${what}: ${(err as Error)?.message ?? err}`;
    results.bucket(letter).errors.push(msg);
    errors.push(msg);
    log(what === letter ? `error in ${letter}: ${(err as Error)?.stack ?? err}` : `error: ${msg}`);
    b.keepDirs = true;
    await b.ensureCluster();
  };
  const runScenario = async (letter: Letter, fn: () => Promise<void>) => {
    log(`--- ${letter} ${SCENARIOS[letter]} ---`);
    const t0 = performance.now();
    try {
      await fn();
    } catch (err) {
      await failed(letter, letter, err);
    }
    results.bucket(letter).extra.elapsedSeconds = (performance.now() - t0) / 1000;
  };
  const perTrial = (letter: Letter, fn: (trial: number) => Promise<void>) => async () => {
    for (let t = 0; t < opts.trials; t++) {
      try {
        await fn(t);
      } catch (err) {
        await failed(letter, `${letter} trial ${t + 1}`, err);
      }
    }
  };

  const has = (k: Letter) => opts.selected.has(k);
  if (has('j')) await runScenario('j', () => b.startup());
  const needCluster = selected.some((k) => k !== 'j' && k !== 'i') || has('j');
  if (needCluster) {
    log(`starting ${opts.nodes} daemons`);
    await b.startCluster();
  }
  if (has('e')) await runScenario('e', () => b.idle());
  if (has('d')) await runScenario('d', perTrial('d', (t) => b.job(t)));
  if (has('a')) await runScenario('a', perTrial('a', (t) => b.kill9(t)));
  if (has('b')) await runScenario('b', perTrial('b', (t) => b.stop(t)));
  if (has('c')) await runScenario('c', perTrial('c', (t) => b.leaderKill(t)));
  if (has('g') || has('i')) await runScenario(has('g') ? 'g' : 'i', () => b.broadcast(has('g'), has('i')));
  if (has('h')) await runScenario('h', perTrial('h', (t) => b.broadcastKill(t)));
  if (has('f')) await runScenario('f', () => b.falseDead());

  const daemonLogs = scanDaemonLogs(b.roots);
  // Stop everything before writing the report, so the figures are final.
  cleanupSync();

  const rows = buildRows(results);
  const table = markdown(rows);
  const outDir = join(REPO_ROOT, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const outFile = join(outDir, `cluster-bench-${stamp}.json`);
  let gitHead: string | null = null;
  try {
    gitHead = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).stdout.trim() || null;
  } catch {
    // not a git checkout
  }
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: { ...opts, selected: [...opts.selected] },
    environment: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, loadavgStart: load0, loadavgEnd: loadavg(), gitHead },
    summary: rows,
    scenarios: Object.fromEntries(Object.entries(results.byScenario).map(([k, v]) => [`${k} ${SCENARIOS[k as Letter]}`, v])),
    daemonStartupMs: results.startupMs,
    daemonLogs,
    errors,
  };
  writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
  const out = (text: string) => process.stdout.write(text);
  out(
    `\n## chorus cluster bench (${opts.nodes} ${opts.sea ? 'dist/chorus' : 'node bin/run.js'} daemons, ${opts.trials} trials${opts.quick ? ', quick' : ''}, load ${load0.map((l) => l.toFixed(2)).join(' ')} -> ${loadavg().map((l) => l.toFixed(2)).join(' ')})\n\n${table}\n\n`,
  );
  out('p90 is nearest-rank; "failed trials" timed out or failed and are left out of the statistics; "meets" compares the median (max for e and f) with the target, and fails when any trial failed.\n');
  const logLine = Object.entries(daemonLogs.byLevel)
    .map(([lvl, n]) => `${n} ${lvl}`)
    .join(', ');
  out(`\ndaemon logs: ${logLine || 'nothing at warn or above'}${daemonLogs.top.length ? '; most frequent:' : ''}\n`);
  for (const t of daemonLogs.top) out(`- ${t.count}× ${t.level}: ${t.msg}\n`);
  if (errors.length) out(`\nerrors (${errors.length}):\n${errors.map((e) => `- ${e}`).join('\n')}\n`);
  out(`\nraw results: ${outFile}\n`);
}

main().then(
  () => {
    cleanupSync();
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`[bench] failed: ${(err as Error)?.stack ?? err}\n`);
    keepAndCleanUp();
    process.exit(1);
  },
);
