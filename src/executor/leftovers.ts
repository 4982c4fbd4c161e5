// Killing what a crashed daemon left running (Linux /proc): an attempt's command runs in
// its own process group, which outlives a kill -9 of the daemon; a restart that reports
// the attempt `interrupted` must make sure it does not go on.
import { readdirSync, readFileSync } from 'node:fs';
import { processGroupOf } from '../core/proc.js';

/**
 * Kills the process group `pgid` that the journal recorded for an attempt, after checking
 * that its leader still carries all of `vars` (and none of the `absent` keys) in its
 * environment, so a pid reused by an unrelated process is left alone. True when the group
 * was signalled; false when its leader is gone (members may remain: search by environment).
 */
export function killRecordedGroup(pgid: number, vars: Record<string, string>, absent: string[] = []): boolean {
  if (!mayKillGroup(pgid, processGroupOf(process.pid))) return false;
  const env = environOf(pgid);
  if (env === null || !matches(env, vars, absent)) return false;
  return killGroup(pgid);
}

/**
 * For when the journal cannot say which process an attempt was (its spawn entry was lost
 * with a corrupt journal): SIGKILLs the process group of every process whose environment
 * holds all of `vars` and none of the keys in `absent`. Never our own group, never a
 * group id of 1 or less. Returns the groups signalled.
 */
export function killProcessesWithEnv(vars: Record<string, string>, absent: string[] = []): number[] {
  const ownGroup = processGroupOf(process.pid);
  const groups = new Set<number>();
  for (const pid of processIds()) {
    if (pid === process.pid) continue;
    const env = environOf(pid);
    if (env === null || !matches(env, vars, absent)) continue;
    const pgid = processGroupOf(pid);
    if (pgid !== null && mayKillGroup(pgid, ownGroup)) groups.add(pgid);
  }
  return [...groups].filter(killGroup);
}

function mayKillGroup(pgid: number, ownGroup: number | null): boolean {
  return Number.isInteger(pgid) && pgid > 1 && pgid !== ownGroup && pgid !== process.pid;
}

function killGroup(pgid: number): boolean {
  try {
    process.kill(-pgid, 'SIGKILL');
    return true;
  } catch {
    return false; // already gone
  }
}

function processIds(): number[] {
  try {
    return readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .map(Number);
  } catch {
    return []; // no /proc: nothing can be found
  }
}

/** A process's environment as `KEY=VALUE` strings; null when it is gone or not ours to read. */
function environOf(pid: number): Set<string> | null {
  try {
    return new Set(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0'));
  } catch {
    return null;
  }
}

function matches(env: Set<string>, vars: Record<string, string>, absent: string[]): boolean {
  return Object.entries(vars).every(([key, value]) => env.has(`${key}=${value}`)) && !absent.some((key) => hasKey(env, key));
}

function hasKey(env: Set<string>, key: string): boolean {
  for (const entry of env) if (entry.startsWith(`${key}=`)) return true;
  return false;
}
