import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';

// Three projects; `vitest run` runs them all (`--project NAME` picks one):
//  - unit: the tests of src/ that run in memory, files in parallel;
//  - simulation: the in-process cluster simulations (*.sim.test.ts), files in parallel;
//  - process: cluster-tests/, which start real daemons, after the other two, two files at
//    a time: the daemons mostly wait on timers and the network, so a second file fills the
//    idle core (one at a time: 754 s here with a helper busy, about 600 s quiet; two at a
//    time: 500 s, green);
//  - process-alone: the files that load the machine themselves (25 daemons, 200 concurrent
//    writes) or time a busy leader, one at a time after the rest: paired with the 25-daemon
//    test, a `job list` of the API test took over 20 s.
// "In parallel" is one worker per core (vitest's default leaves one core free, which is a
// single worker on a 2-core machine: 37 s for unit + simulation here, 26 s with two).
// The group orders are 1 and 2, not 0 and 1:
// vitest moves order-0 projects that end up with one worker to the very end of the run.
const FIRST = 1;
const LAST = 2;
const ALONE = 3;
/** Process tests that run by themselves (see above). */
const ALONE_FILES = ['cluster-tests/fleet.test.ts', 'cluster-tests/api-abuse.test.ts', 'cluster-tests/busy-leader.test.ts'];

export default defineConfig({
  test: {
    maxWorkers: Math.max(2, availableParallelism()),
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'src/**/*.sim.test.ts'],
          sequence: { groupOrder: FIRST },
        },
      },
      {
        extends: true,
        test: {
          name: 'simulation',
          include: ['src/**/*.sim.test.ts'],
          sequence: { groupOrder: FIRST },
        },
      },
      {
        extends: true,
        test: {
          name: 'process',
          include: ['cluster-tests/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...ALONE_FILES],
          fileParallelism: true,
          sequence: { groupOrder: LAST },
          // The cluster tests run the built CLI: fail at once, clearly, when dist/ is missing.
          globalSetup: ['cluster-tests/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'process-alone',
          include: ALONE_FILES,
          fileParallelism: false,
          sequence: { groupOrder: ALONE },
          globalSetup: ['cluster-tests/global-setup.ts'],
        },
      },
    ],
  },
});
