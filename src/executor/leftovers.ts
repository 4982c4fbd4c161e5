// Finding an attempt's processes by the CHORUS_* variables they were started with (Linux
// /proc): what a crashed daemon left running (its process group outlives a kill -9 of the
// daemon), and, where there is no cgroup, what a timed-out or cancelled command started
// outside its process group (`setsid`).
import { readdirSync, readFileSync } from 'node:fs';
import { invariant } from '../core/assert.js';
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
  return signalGroup(pgid, 'SIGKILL');
}

/**
 * For when the journal cannot say which process an attempt was (its spawn entry was lost
 * with a corrupt journal): SIGKILLs the process group of every process whose environment
 * holds all of `vars` and none of the keys in `absent`. Never our own group, never a
 * group id of 1 or less. Returns the groups signalled.
 */
export function killProcessesWithEnv(vars: Record<string, string>, absent: string[] = []): number[] {
  return signalProcessesWithEnv(vars, absent, 'SIGKILL');
}

/** killProcessesWithEnv with another signal (SIGTERM first, on a timeout or a cancel), and never to `exceptGroup` (signalled by the caller). */
export function signalProcessesWithEnv(vars: Record<string, string>, absent: string[], signal: 'SIGTERM' | 'SIGKILL', exceptGroup?: number): number[] {
  invariant(Object.keys(vars).length > 0, null, 'a search for an attempt\'s processes without variables would match every process');
  const ownGroup = processGroupOf(process.pid);
  const groups = new Set<number>();
  for (const pid of processIds()) {
    if (pid === process.pid) continue;
    const env = environOf(pid);
    if (env === null || !matches(env, vars, absent)) continue;
    const pgid = processGroupOf(pid);
    if (pgid !== null && pgid !== exceptGroup && mayKillGroup(pgid, ownGroup)) groups.add(pgid);
  }
  return [...groups].filter((pgid) => signalGroup(pgid, signal));
}

function mayKillGroup(pgid: number, ownGroup: number | null): boolean {
  return Number.isInteger(pgid) && pgid > 1 && pgid !== ownGroup && pgid !== process.pid;
}

function signalGroup(pgid: number, signal: 'SIGTERM' | 'SIGKILL'): boolean {
  try {
    process.kill(-pgid, signal);
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
