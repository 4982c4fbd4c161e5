// Holding all of an attempt's processes together, so that a timeout, a cancel or the
// daemon's stop reaches every process the command started, not only its process group
// (which `setsid` leaves). Probed once at the daemon's start: a cgroup per attempt where
// the daemon may make one, else a search for the attempt's CHORUS_* variables.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { anyGroupAlive, processGroupOf } from '../core/proc.js';
import { signalProcessesWithEnv } from './leftovers.js';
import type { AttemptMarks } from './marks.js';

export type KillSignal = 'SIGTERM' | 'SIGKILL';

/** How this daemon holds attempts together; for the start's log line and `chorus status`. */
export interface ContainmentView {
  /** `cgroup`: a cgroup per attempt; `environment`: the process group, then the processes carrying the attempt's variables. */
  kind: 'cgroup' | 'environment';
  /** What a timeout or a cancel kills: where the cgroups are, or why there are none. */
  detail: string;
}

export interface Containment {
  readonly view: ContainmentView;
  /** A home for the processes of one attempt, which runs with these marks (null: an attempt that has none). */
  enclose(marks: AttemptMarks | null): Enclosure;
  /** SIGKILLs what an attempt of an earlier daemon process left in its home (a crash); returns the process groups signalled. */
  killLeftover(marks: AttemptMarks): number[];
  /** Removes what it made that is empty now; at the daemon's stop. */
  close(): void;
}

/** One attempt's home, from before its spawn to after its last process is gone. */
export interface Enclosure {
  /** How to spawn `/bin/sh -c cmd` inside it. */
  spawnArgs(cmd: string): { file: string; args: string[] };
  /**
   * Sends `signal` to every process in it outside the process group of the command's shell
   * `shellPid` (which leads it; the caller signals that group, and a process is not told
   * twice). True when a process was signalled.
   */
  signal(signal: KillSignal, shellPid: number): boolean;
  /** Whether a process of the attempt still runs, the shell's process group `shellPid` included (zombies do not count). */
  occupied(shellPid: number): boolean;
  /** After the attempt: gives back what held it (an empty cgroup is removed; one that still holds processes stays). */
  release(): void;
}

const SHELL = '/bin/sh';

/** Without a cgroup: the attempt's processes are found by their variables; one that cleared its environment escapes. */
export const environmentContainment: Containment = environmentContainmentBecause('not asked for');

function environmentContainmentBecause(why: string): Containment {
  return {
    view: { kind: 'environment', detail: `the attempt's process group, then the processes carrying its CHORUS_* variables (no cgroup: ${why})` },
    enclose: (marks) => new EnvironmentEnclosure(marks),
    killLeftover: () => [], // the process executor searches by variables for every leftover anyway
    close: () => undefined,
  };
}

class EnvironmentEnclosure implements Enclosure {
  /** Process groups found by their variables; occupied while one of them is. */
  private readonly groups = new Set<number>();

  constructor(private readonly marks: AttemptMarks | null) {}

  spawnArgs(cmd: string) {
    return { file: SHELL, args: ['-c', cmd] };
  }

  signal(signal: KillSignal, shellPid: number): boolean {
    if (this.marks === null) return false;
    const hit = signalProcessesWithEnv(this.marks.vars, this.marks.absent, signal, shellPid);
    for (const pgid of hit) this.groups.add(pgid);
    return hit.length > 0;
  }

  occupied(shellPid: number): boolean {
    return anyGroupAlive(new Set([shellPid, ...this.groups]));
  }

  release(): void {}
}

/**
 * The wrapper a command starts in: the shell writes its own pid into the cgroup (so every
 * process it ever forks is born inside), then becomes the command's shell (same pid, same
 * argv[0], same environment). Should the write fail, the command still runs; the
 * enclosure then also searches by variables.
 */
const JOIN_SCRIPT = '{ echo $$ > "$1"; } 2>/dev/null; exec /bin/sh -c "$2"';

/** A cgroup hierarchy this process can make cgroups in, and its own cgroup's directory there. */
interface Hierarchy {
  /** The directory of this process's own cgroup in it: the attempts' cgroups go below, inside its limits. */
  ownDir: string;
  /** What it is, for the view: `cgroup v2`, `cgroup v1, pids`. */
  label: string;
}

/** Tries of an attempt's mkdir: another daemon's sweep may remove our empty base between two of its steps. */
const MKDIR_TRIES = 3;

export class CgroupContainment implements Containment {
  readonly view: ContainmentView;

  constructor(
    /** This node's directory: one cgroup per attempt in it. */
    readonly base: string,
    hierarchy: Hierarchy,
    /** cgroup.kill (cgroup v2, Linux 5.14): the kernel kills every member at once. */
    private readonly hasKillFile: boolean,
  ) {
    this.view = { kind: 'cgroup', detail: `every process of the attempt, by its cgroup in ${base} (${hierarchy.label})` };
  }

  enclose(marks: AttemptMarks | null): Enclosure {
    const dir = join(this.base, marks === null ? `run-${randomBytes(6).toString('hex')}` : cgroupName(marks));
    const fallback = new EnvironmentEnclosure(marks);
    if (!makeDir(dir)) return fallback; // cannot happen once probed, unless someone removed ours: still killed by variables
    return new CgroupEnclosure(dir, this.hasKillFile, fallback);
  }

  killLeftover(marks: AttemptMarks): number[] {
    const dir = join(this.base, cgroupName(marks));
    const groups = new Set<number>();
    for (const pid of members(dir)) {
      const pgid = processGroupOf(pid);
      if (pgid !== null) groups.add(pgid);
    }
    signalCgroup(dir, 'SIGKILL', this.hasKillFile, null);
    removeDir(dir); // fails while they die; the next start's sweep takes it
    return [...groups];
  }

  /** Empty attempt cgroups of earlier runs (an attempt that left a background process behind, a crash). */
  sweep(): void {
    for (const name of subdirs(this.base)) removeDir(join(this.base, name));
    // Other nodes' empty homes on this host (daemons that crashed); one in use holds a cgroup and stays.
    const parent = join(this.base, '..');
    for (const name of subdirs(parent)) if (join(parent, name) !== this.base) removeDir(join(parent, name));
  }

  close(): void {
    this.sweep();
    removeDir(this.base);
    removeDir(join(this.base, '..')); // the last daemon out takes the shared `chorus` too
  }
}

class CgroupEnclosure implements Enclosure {
  /** The shell was not in the cgroup at the first signal (the join failed): search by variables too. */
  private outside = false;
  private signalled = false;

  constructor(
    private readonly dir: string,
    private readonly hasKillFile: boolean,
    private readonly fallback: EnvironmentEnclosure,
  ) {}

  spawnArgs(cmd: string) {
    return { file: SHELL, args: ['-c', JOIN_SCRIPT, SHELL, join(this.dir, 'cgroup.procs'), cmd] };
  }

  signal(signal: KillSignal, shellPid: number): boolean {
    if (!this.signalled) {
      this.signalled = true;
      // A shell that just exited is not listed either; the search then only costs a /proc scan.
      this.outside = !members(this.dir).includes(shellPid);
    }
    const inside = signalCgroup(this.dir, signal, this.hasKillFile, shellPid);
    const outside = this.outside && this.fallback.signal(signal, shellPid);
    return inside || outside;
  }

  occupied(shellPid: number): boolean {
    // Every process of the shell's group was born inside, once the shell was.
    return members(this.dir).length > 0 || (this.outside && this.fallback.occupied(shellPid));
  }

  release(): void {
    removeDir(this.dir);
  }
}

/** The cgroup of one attempt, named after it, so a restart finds what a crash left: `INSTANCE[-STEP]-ATTEMPT`. */
function cgroupName(marks: AttemptMarks): string {
  const { CHORUS_INSTANCE_ID: instance, CHORUS_STEP: step, CHORUS_ATTEMPT: attempt } = marks.vars;
  const name = [instance, step, attempt].filter((part) => part !== undefined).join('-');
  // Instance ids are hex and steps are words; anything else must not reach a path.
  return `a-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/**
 * Signals every member outside process group `exceptGroup` (all with SIGKILL through
 * cgroup.kill); true when there was one. A member that forks meanwhile has its child born
 * inside: the caller signals again while occupied().
 */
function signalCgroup(dir: string, signal: KillSignal, hasKillFile: boolean, exceptGroup: number | null): boolean {
  const pids = members(dir).filter((pid) => exceptGroup === null || processGroupOf(pid) !== exceptGroup);
  if (pids.length === 0) return false;
  if (signal === 'SIGKILL' && hasKillFile) {
    try {
      writeFileSync(join(dir, 'cgroup.kill'), '1');
      return true;
    } catch {
      // fall through to one at a time
    }
  }
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone meanwhile
    }
  }
  return true;
}

/** The processes in a cgroup (not zombies: a process leaves its cgroup as it exits); none when it is gone. */
function members(dir: string): number[] {
  try {
    const text = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
    return [...new Set(text.split('\n').filter((line) => line !== '').map(Number))];
  } catch {
    return [];
  }
}

/** Makes an attempt's cgroup, and its parents if a sweep took them. */
function makeDir(dir: string): boolean {
  for (let i = 0; i < MKDIR_TRIES; i++) {
    try {
      makeDirs(dir, 3); // chorus/NODE/ATTEMPT
      return true;
    } catch {
      // a parent removed by another daemon's sweep between two mkdirs: try again
    }
  }
  return false;
}

/**
 * mkdir of `dir` and of at most `levels - 1` parents, one at a time: Node's recursive mkdir
 * never returns where a parent cannot be made and says ENOENT (it does so under /proc).
 */
function makeDirs(dir: string, levels: number): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || levels <= 1) throw err;
    makeDirs(join(dir, '..'), levels - 1);
    mkdirSync(dir);
  }
}

function removeDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // still holds processes (EBUSY) or a child cgroup, or is gone already
  }
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

/** Where to look: /proc/self/mountinfo and /proc/self/cgroup; a test gives its own. */
export interface ProbeSources {
  mountinfo: string;
  selfCgroup: string;
}

function procSources(): ProbeSources | null {
  try {
    return { mountinfo: readFileSync('/proc/self/mountinfo', 'utf8'), selfCgroup: readFileSync('/proc/self/cgroup', 'utf8') };
  } catch {
    return null;
  }
}

/**
 * Finds how to contain this node's attempts: the first cgroup hierarchy (v2, then v1's
 * `pids`, then v1's `freezer`, controllers that change nothing while no limit is set) in
 * which this process may make a cgroup below its own and move a process into it; else the
 * search by variables. Sweeps the node's empty cgroups of earlier runs. Called once, at start.
 */
export function probeContainment(nodeId: string, sources: ProbeSources | null = procSources()): Containment {
  if (sources === null) return environmentContainmentBecause('no /proc/self/mountinfo or /proc/self/cgroup');
  const hierarchies = cgroupHierarchies(sources);
  if (hierarchies.length === 0) return environmentContainmentBecause('no cgroup hierarchy mounted');
  const failures: string[] = [];
  for (const hierarchy of hierarchies) {
    const base = join(hierarchy.ownDir, 'chorus', nodeId.replace(/[^A-Za-z0-9_-]/g, '_'));
    const tried = tryHierarchy(base);
    if (typeof tried === 'string') {
      failures.push(`${hierarchy.label} in ${hierarchy.ownDir}: ${tried}`);
      continue;
    }
    const containment = new CgroupContainment(base, hierarchy, tried.hasKillFile);
    containment.sweep();
    return containment;
  }
  return environmentContainmentBecause(failures.join('; '));
}

/** Makes `base` and a cgroup in it, and moves a shell into that: what every attempt does. A reason when it cannot. */
function tryHierarchy(base: string): { hasKillFile: boolean } | string {
  const probe = join(base, `probe-${process.pid}`);
  try {
    makeDirs(probe, 3); // chorus/NODE/probe-PID
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
  try {
    // In a cgroup filesystem the kernel makes these files with the directory.
    if (!existsSync(join(probe, 'cgroup.procs'))) return 'not a cgroup filesystem';
    const joined = spawnSync(SHELL, ['-c', 'echo $$ > "$1"', SHELL, join(probe, 'cgroup.procs')], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    if (joined.status !== 0) return `cannot move a process into ${probe}: ${String(joined.stderr ?? '').trim() || `exit ${joined.status}`}`;
    return { hasKillFile: existsSync(join(probe, 'cgroup.kill')) };
  } finally {
    removeDir(probe);
    // Made again at the first attempt; one still in use stays.
    removeDir(base);
    removeDir(join(base, '..'));
  }
}

/** The hierarchies worth trying, in order: a cgroup2 mount, then cgroup v1 mounts of `pids` and `freezer`. */
export function cgroupHierarchies({ mountinfo, selfCgroup }: ProbeSources): Hierarchy[] {
  const ownPaths = new Map<string, string>(); // "" for v2, else a v1 controller
  for (const line of selfCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') ownPaths.set('', m[3]!);
    else for (const controller of m[2]!.split(',')) ownPaths.set(controller, m[3]!);
  }
  const found: Hierarchy[] = [];
  const mounts = mountinfo.split('\n').map(parseMount).filter((m) => m !== null);
  for (const mount of mounts.filter((m) => m.fsType === 'cgroup2')) {
    const ownDir = ownDirIn(mount, ownPaths.get(''));
    if (ownDir !== null) found.push({ ownDir, label: 'cgroup v2' });
  }
  for (const controller of ['pids', 'freezer']) {
    for (const mount of mounts.filter((m) => m.fsType === 'cgroup' && m.superOptions.split(',').includes(controller))) {
      const ownDir = ownDirIn(mount, ownPaths.get(controller));
      if (ownDir !== null) found.push({ ownDir, label: `cgroup v1, ${controller}` });
    }
  }
  return found;
}

interface Mount {
  /** The path inside the filesystem that is mounted (a cgroup namespace's root shows as `/`). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

/** One line of /proc/self/mountinfo (proc(5)): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`. */
function parseMount(line: string): Mount | null {
  const [left, right] = line.split(' - ');
  if (left === undefined || right === undefined) return null;
  const fields = left.split(' ');
  const [fsType, , superOptions] = right.split(' ');
  if (fields.length < 5 || fsType === undefined) return null;
  return { root: unescapeMount(fields[3]!), mountPoint: unescapeMount(fields[4]!), fsType, superOptions: superOptions ?? '' };
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeMount(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** This process's cgroup as a directory of `mount`, or null when the mount does not show it. */
function ownDirIn(mount: Mount, ownPath: string | undefined): string | null {
  if (ownPath === undefined) return null;
  const inside = relative(mount.root, ownPath);
  if (inside.startsWith('..')) return null; // mounted from a subtree that does not hold our cgroup
  return join(mount.mountPoint, inside);
}
