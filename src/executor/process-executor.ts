// What a node needs to run commands: start one attempt, and kill what an attempt of a
// crashed process left behind. The daemon uses real processes (execa, /proc); the
// simulator passes a fake that runs in virtual time.
import { runCommand, type ExecutionRequest, type ExecutionResult } from './executor.js';
import { killProcessesWithEnv, killRecordedGroup } from './leftovers.js';

/** An attempt a previous process started, as far as it can be found again. */
export interface Leftover {
  /** Variables the attempt's command was started with (CHORUS_INSTANCE_ID, ...). */
  vars: Record<string, string>;
  /** Variables it was started without (a subtask has no CHORUS_STEP). */
  absent: string[];
  /** The process group the journal recorded for it, when it did. */
  recordedGroup: number | undefined;
}

export interface Executor {
  run(request: ExecutionRequest): Promise<ExecutionResult>;
  /** Kills what is left of the attempt; returns the process groups signalled. */
  killLeftover(leftover: Leftover): number[];
}

/**
 * Real processes. A leftover is found by the group the journal recorded (checked against
 * its environment, so a reused pid is left alone) or else by a /proc scan for its variables.
 */
export const processExecutor: Executor = {
  run: runCommand,
  killLeftover({ vars, absent, recordedGroup }) {
    if (recordedGroup !== undefined && killRecordedGroup(recordedGroup, vars, absent)) return [recordedGroup];
    return killProcessesWithEnv(vars, absent);
  },
};
