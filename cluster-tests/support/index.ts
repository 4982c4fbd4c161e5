// The one support of the multi-process tests: import everything from here in a test
// file. The benchmark imports the modules it needs directly, never vitest.ts.
export { EXIT } from '../../src/api/client.js';
export * from './api.js';
export * from './cli.js';
export * from './cluster.js';
export * from './daemon.js';
export {
  REPO_ROOT,
  RUN_JS,
  PROCESS_TAG_VAR,
  isProcessAlive,
  isProcessGroupAlive,
  killTaggedProcesses,
  sharedSwarmKeyFile,
  tempDir,
  trackProcessGroup,
  type ExitInfo,
} from './processes.js';
export * from './vitest.js';
export { StopWaiting, expectStable, waitFor, type WaitOptions } from './wait.js';
export * from './work.js';
