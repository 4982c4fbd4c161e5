// Finding what a crashed daemon left running when the journal cannot say (it was lost
// or corrupted): every process whose environment names the attempt, by /proc (Linux).
import { readdirSync, readFileSync } from 'node:fs';

/**
 * SIGKILLs the process group of every process whose environment holds all of `vars`
 * (e.g. CHORUS_INSTANCE_ID, CHORUS_NODE_ID, CHORUS_ATTEMPT). Returns the groups killed.
 * and none of the `absent` keys. Never our own group, never a group id of 1 or less.
 */
export function killProcessesWithEnv(vars: Record<string, string>, absent: string[] = []): number[] {
  const wanted = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
  const ownGroup = groupOf(process.pid);
  const groups = new Set<number>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return []; // no /proc: nothing can be found
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue; // gone, or not ours to read
    }
    const env = new Set(environ.split('\0'));
    if (!wanted.every((w) => env.has(w))) continue;
    if (absent.some((key) => [...env].some((kv) => kv.startsWith(`${key}=`)))) continue;
    const pgid = groupOf(pid);
    if (pgid !== null && pgid > 1 && pgid !== ownGroup) groups.add(pgid);
  }
  const killed: number[] = [];
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
      killed.push(pgid);
    } catch {
      // already gone
    }
  }
  return killed;
}

/** The process group of a pid, from /proc/PID/stat (field 5, after the parenthesised name). */
function groupOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgid = Number(fields[2]);
    return Number.isInteger(pgid) ? pgid : null;
  } catch {
    return null;
  }
}
