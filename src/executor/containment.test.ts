// How the daemon chooses what holds an attempt's processes together: the cgroup
// hierarchies it reads from /proc, and the fallback to the search by variables where it may
// make no cgroup. The kills themselves are tested in executor.test.ts.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cgroupHierarchies, probeContainment } from './containment.js';
import { attemptMarks } from './marks.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'chorus-containment-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A /proc/self/mountinfo line. */
const mount = (root: string, mountPoint: string, fsType: string, superOptions: string) =>
  `40 30 0:37 ${root} ${mountPoint} rw,nosuid,nodev,noexec,relatime shared:9 - ${fsType} cgroup ${superOptions}`;

describe('cgroupHierarchies', () => {
  it('lists a cgroup2 mount first, then cgroup v1 pids and freezer, each at this process\'s own cgroup', () => {
    const mountinfo = [
      mount('/', '/sys/fs/cgroup/cpu', 'cgroup', 'rw,cpu'),
      mount('/', '/sys/fs/cgroup/freezer', 'cgroup', 'rw,freezer'),
      mount('/', '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'),
      mount('/', '/sys/fs/cgroup/unified', 'cgroup2', 'rw,nsdelegate'),
      '22 1 0:21 / /proc rw - proc proc rw',
    ].join('\n');
    const selfCgroup = ['6:freezer:/', '8:pids:/system.slice/chorus.service', '1:cpu:/', '0::/system.slice/chorus.service'].join('\n');
    expect(cgroupHierarchies({ mountinfo, selfCgroup })).toEqual([
      { ownDir: '/sys/fs/cgroup/unified/system.slice/chorus.service', label: 'cgroup v2' },
      { ownDir: '/sys/fs/cgroup/pids/system.slice/chorus.service', label: 'cgroup v1, pids' },
      { ownDir: '/sys/fs/cgroup/freezer', label: 'cgroup v1, freezer' },
    ]);
  });

  it('maps a mount of a subtree (a container\'s view), and leaves out one that does not hold our cgroup', () => {
    const mountinfo = [mount('/docker/abc', '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'), mount('/elsewhere', '/mnt/cg\\040two', 'cgroup2', 'rw')].join('\n');
    const selfCgroup = '3:pids:/docker/abc/jobs\n0::/docker/abc';
    expect(cgroupHierarchies({ mountinfo, selfCgroup })).toEqual([{ ownDir: '/sys/fs/cgroup/pids/jobs', label: 'cgroup v1, pids' }]);
  });
});

describe('probeContainment', () => {
  it('falls back to the search by variables where no cgroup is mounted', () => {
    const containment = probeContainment('n-test', { mountinfo: '22 1 0:21 / /proc rw - proc proc rw', selfCgroup: '0::/' });
    expect(containment.view).toEqual({ kind: 'environment', detail: expect.stringContaining('no cgroup: no cgroup hierarchy mounted') });
  });

  it('falls back, saying why, where a directory is not a cgroup or may not be written', () => {
    // A plain directory posing as a cgroup2 mount: mkdir works, but the kernel makes no cgroup.procs in it.
    const containment = probeContainment('n-test', { mountinfo: mount('/', dir, 'cgroup2', 'rw'), selfCgroup: '0::/' });
    expect(containment.view.kind).toBe('environment');
    expect(containment.view.detail).toContain(`cgroup v2 in ${dir}: not a cgroup filesystem`);
    expect(readdirSync(dir)).toEqual([]); // what it tried is not left behind
    // One where no directory can be made (/proc: ENOENT).
    const proc = probeContainment('n-test', { mountinfo: mount('/', '/proc/self', 'cgroup2', 'rw'), selfCgroup: '0::/' });
    expect(proc.view.detail).toContain('cgroup v2 in /proc/self: ENOENT');
  });

  it('needs nothing from the environment containment: an attempt there is found by its marks', () => {
    expect(attemptMarks({ CHORUS_INSTANCE_ID: 'i', CHORUS_NODE_ID: 'n', CHORUS_ATTEMPT: '2' })).toEqual({
      vars: { CHORUS_INSTANCE_ID: 'i', CHORUS_NODE_ID: 'n', CHORUS_ATTEMPT: '2' },
      absent: ['CHORUS_STEP'],
    });
    expect(attemptMarks({ CHORUS_INSTANCE_ID: 'i', CHORUS_NODE_ID: 'n', CHORUS_ATTEMPT: '1', CHORUS_STEP: 'pre', CHORUS_JOB: 'j' })).toEqual({
      vars: { CHORUS_INSTANCE_ID: 'i', CHORUS_NODE_ID: 'n', CHORUS_ATTEMPT: '1', CHORUS_STEP: 'pre' },
      absent: [],
    });
    // Without them a search would match every process: none is made.
    expect(attemptMarks({ CHORUS_INSTANCE_ID: 'i', CHORUS_NODE_ID: 'n' })).toBeNull();
    expect(attemptMarks({})).toBeNull();
  });
});
