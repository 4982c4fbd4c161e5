// What Linux's /proc says about a process: one reader of /proc/PID/stat for the client
// (is the daemon of node.json alive?) and the executor (which group is a leftover in?).
import { existsSync, readdirSync, readFileSync } from 'node:fs';

interface ProcStat {
  /** R, S, D, Z (zombie), X (dead), ... */
  state: string;
  pgid: number;
  /** CPU time so far, user + system, in clock ticks (`getconf CLK_TCK` per second). */
  cpuTicks: number;
}

/** /proc/PID/stat, or null when the process is gone or there is no /proc. */
function procStat(pid: number): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) " (comm may hold spaces and parentheses): state, ppid, pgrp, ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgid = Number(fields[2]);
    // fields[0] is field 3 of proc(5) (state); utime and stime are fields 14 and 15.
    return { state: fields[0] ?? '', pgid: Number.isInteger(pgid) ? pgid : -1, cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** The state letter of a pid (R, S, D, T stopped, Z zombie...), or null when it is gone or there is no /proc. */
export function processState(pid: number): string | null {
  return procStat(pid)?.state ?? null;
}

/** CPU time a process has used (user + system), in clock ticks; null when it is gone. */
export function processCpuTicks(pid: number): number | null {
  return procStat(pid)?.cpuTicks ?? null;
}

/** A `kB` field of /proc/PID/status (VmRSS, VmHWM...) in KiB; null when it is gone or has none. */
export function processStatusKb(pid: number, key: string): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The process group of a pid, or null when it is gone. */
export function processGroupOf(pid: number): number | null {
  const stat = procStat(pid);
  return stat === null || stat.pgid < 0 ? null : stat.pgid;
}

/** Whether a process runs: a zombie (killed, not yet reaped) does not. Without /proc, kill(0) decides. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = procStat(pid);
  if (stat === null) return !existsSync('/proc/self'); // gone between the two looks, or no /proc
  return stat.state !== 'Z' && stat.state !== 'X';
}

/**
 * Whether any process of these process groups runs; a zombie (dead, waiting for its parent
 * to reap it, which an orphan's init may take a while to do) does not. Scans /proc;
 * without it, kill(0) decides, zombies included.
 */
export function anyGroupAlive(pgids: ReadonlySet<number>): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [...pgids].some((pgid) => signalsReach(-pgid));
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat !== null && pgids.has(stat.pgid) && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

function signalsReach(target: number): boolean {
  try {
    process.kill(target, 0);
    return true;
  } catch {
    return false;
  }
}
