// A stopping daemon always exits: a graceful stop that overruns its deadline ends the process
// anyway, and the exit itself cannot hang on a thread that never comes back.
import type { ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';

/** Room for closing the API, the store and the network on top of the waits stopDeadlineMs names. */
const STOP_SLACK_MS = 10_000;
/**
 * How long the exit waits for requests out on the thread pool to come back before it kills:
 * a busy daemon stops with file writes still out (output logs, retention's deletions) that
 * come back in a second or two on a slow disk; only one that never does is worth a SIGKILL
 * (and a stop that then does not exit 0).
 */
export const POOL_DRAIN_MS = 5000;
const POOL_POLL_MS = 10;

/**
 * How long a graceful stop may take before the daemon exits anyway: the worker's wait for its
 * attempts to end (killGraceMs + workerStopSlackMs), the leave's pushes to the peers (a
 * request timeout, twice for slack), then the rest. 20 s with the defaults, under the 30 s that
 * packaging/chorus.service gives (TimeoutStopSec) before systemd's own SIGKILL.
 */
export function stopDeadlineMs(config: Pick<ChorusConfig, 'killGraceMs' | 'workerStopSlackMs' | 'requestTimeoutMs'>): number {
  return config.killGraceMs + config.workerStopSlackMs + 2 * config.requestTimeoutMs + STOP_SLACK_MS;
}

/** Pending requests (as process.getActiveResourcesInfo names them) served by libuv's thread pool. */
const THREAD_POOL_REQUEST = /^(FSReq|GetAddrInfoReqWrap|GetNameInfoReqWrap)/;

export interface ProcessExits {
  /** process.getActiveResourcesInfo(). */
  pending: () => string[];
  exit: (code: number) => void;
  /** SIGKILL to this very process. */
  killSelf: () => void;
  nowMs: () => number;
  sleep: (ms: number) => Promise<void>;
}

const processExits: ProcessExits = {
  pending: () => process.getActiveResourcesInfo(),
  exit: (code) => process.exit(code),
  killSelf: () => process.kill(process.pid, 'SIGKILL'),
  nowMs: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * Exits with `code` once no request is out on the thread pool; SIGKILL when one is still out
 * after POOL_DRAIN_MS. exit() joins the pool's threads, so one stuck in a system call (a read
 * of a FIFO no one writes, a dead NFS mount) would hold the exit forever, the daemon having
 * logged "stopped". Resolves (only with fake exits) with how it ended the process.
 */
export async function exitProcess(code: number, log: Logger, exits: ProcessExits = processExits): Promise<'exit' | 'kill'> {
  const poolRequests = () => exits.pending().filter((r) => THREAD_POOL_REQUEST.test(r));
  const untilMs = exits.nowMs() + POOL_DRAIN_MS;
  while (poolRequests().length > 0 && exits.nowMs() < untilMs) await exits.sleep(POOL_POLL_MS);
  const stuck = poolRequests();
  if (stuck.length > 0) {
    log.fatal({ pending: stuck }, `requests on the thread pool did not come back in ${POOL_DRAIN_MS} ms (exit would wait for them forever); ending with SIGKILL`);
    exits.killSelf();
    return 'kill';
  }
  exits.exit(code);
  return 'exit';
}
