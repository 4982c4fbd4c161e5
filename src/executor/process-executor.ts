// What a node needs to run commands: start one attempt, and kill what an attempt of a
// crashed process left behind. The daemon uses real processes (execa, /proc, cgroups); the
// simulator passes a fake that runs in virtual time.
import { environmentContainment, type Containment } from './containment.js';
import { runCommand, type ExecutionRequest, type ExecutionResult } from './executor.js';
import { killProcessesWithEnv, killRecordedGroup } from './leftovers.js';
import type { AttemptMarks } from './marks.js';

/** An attempt a previous process started, as far as it can be found again. */
export interface Leftover extends AttemptMarks {
  /** The process group the journal recorded for it, when it did. */
  recordedGroup: number | undefined;
}

export interface Executor {
  run(request: ExecutionRequest): Promise<ExecutionResult>;
  /** Kills what is left of the attempt; returns the process groups signalled. */
  killLeftover(leftover: Leftover): number[];
}

/**
 * Real processes, held together by `containment` (probed at the daemon's start). A leftover
 * is killed in its cgroup when there is one, then by the group the journal recorded
 * (checked against its environment, so a reused pid is left alone) or else by a /proc scan
 * for its variables.
 */
export function processExecutor(containment: Containment = environmentContainment): Executor {
  return {
    run: (request) => runCommand({ ...request, containment }),
    killLeftover({ vars, absent, recordedGroup }) {
      const inCgroup = containment.killLeftover({ vars, absent });
      const rest = recordedGroup !== undefined && killRecordedGroup(recordedGroup, vars, absent) ? [recordedGroup] : killProcessesWithEnv(vars, absent);
      return [...new Set([...inCgroup, ...rest])];
    },
  };
}
