// Multi-process tests of the gossip cluster: 3 to 6 real `chorus daemon` processes on
// 127.0.0.1 (port 0), joined with `--join <multiaddr from node.json>`, driven through
// the CLI (nodes, status, job, run, instance); membership agreement is polled through the
// API (what `nodes --json` prints, without a Node start per probe). They check membership agreement,
// failure detection and leader failover after kill -9, graceful leave, catch-up of a
// node that was away, a late joiner, broadcasts across members, acknowledged writes
// (guarantee 8) and a --join target that comes up late.
//
// One five-node cluster is shared by most tests (started in beforeAll). A test that
// kills or stops a member leaves it down; the next block's beforeAll restarts it on
// the same data directory with the same flags (heal), so that daemon lives on with the
// file. Waits are conditions polled with a deadline; nothing asserts on timings.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LogView, StatusView } from '../src/api/control-plane.js';
import type { InstanceView, JobView, NodeView } from '../src/api/views.js';
import {
  EXIT,
  byId,
  expectExit,
  expectStable,
  heal,
  logsOf,
  okJson,
  others,
  sq,
  startCluster,
  startDaemon,
  tempDir,
  trace,
  useProcessCleanup,
  waitFor,
  waitForAgreement,
  type Daemon,
} from './support/index.js';

useProcessCleanup();

// Each test polls several conditions with deadlines of 10-30 s; on a loaded 2-core machine
// their sum can pass vitest's default 60 s, so tests and hooks get a larger budget. A
// healthy run takes a fraction of it (see the durations vitest prints).
const TEST_TIMEOUT_MS = 180_000;
const HOOK_TIMEOUT_MS = 180_000;

/** `status --json` of a member, through the CLI. */
const statusOf = (m: Daemon) => m.json<StatusView>(['status']);

/** A job as `job list --json` shows it, minus what the reader computes from its own clock. */
type JobState = Omit<JobView, 'nextRunAt'>;

/**
 * `job list --json` of a member (through the CLI), without `nextRunAt`: that one is computed
 * from the reader's clock (it moves when a schedule boundary passes), not replicated state.
 */
async function jobsOf(m: Daemon): Promise<JobState[]> {
  return (await m.json<JobView[]>(['job', 'list'])).map(({ nextRunAt: _next, ...rest }) => rest);
}

/** Names of the jobs a member lists. */
async function jobNamesOf(m: Daemon): Promise<string[]> {
  return (await jobsOf(m)).map((j) => j.name).sort();
}

/** Waits until every given member lists exactly the same jobs (whole views, as JSON, minus nextRunAt). */
async function waitForSameJobs(members: Daemon[], what: string, timeoutMs = 20_000): Promise<JobState[]> {
  trace(`waiting: ${what}`);
  return waitFor(
    async () => {
      const lists = await Promise.all(members.map((m) => jobsOf(m)));
      const first = JSON.stringify(lists[0]);
      const differ = members.filter((_, i) => JSON.stringify(lists[i]) !== first);
      if (differ.length > 0) throw new Error(`job lists differ: ${members.map((m, i) => `${m.label}=[${(lists[i] ?? []).map((j) => `${j.name}${j.enabled ? '' : '(off)'}`).join(',')}]`).join(' ')}`);
      return lists[0] as JobState[];
    },
    { timeoutMs, intervalMs: 300, what },
  );
}

describe('five daemons joined through one seed', () => {
  let members: Daemon[];
  /** The leader all members agreed on last. */
  let leaderId: string;

  const leader = () => byId(members, leaderId);
  /** Before a block: restarts the members an earlier test left down and waits for them to agree. */
  const healFirst = () =>
    beforeAll(async () => {
      leaderId = (await heal(members)).leader;
    }, HOOK_TIMEOUT_MS);
  const nonLeaders = () => others(members, leader());

  beforeAll(async () => {
    members = await startCluster({ prefix: 'n', count: 5 });
  }, HOOK_TIMEOUT_MS);

  it('every member sees the same five alive members and the same single leader', async () => {
    const ids = members.map((m) => m.nodeId);
    expect(new Set(ids).size).toBe(5);

    const agreed = await waitForAgreement({ alive: members, timeoutMs: 30_000, what: 'all five members to agree' });
    leaderId = agreed.leader;
    for (const view of agreed.views.values()) {
      expect(view.map((n) => n.nodeId).sort()).toEqual([...ids].sort());
      expect(view.every((n) => n.state === 'alive')).toBe(true);
      // Names travel with the member records.
      for (const m of members) expect(view.find((n) => n.nodeId === m.nodeId)?.name).toBe(m.label);
    }

    // status --json tells the same story, each from its own point of view.
    await waitFor(
      async () => {
        const statuses = await Promise.all(members.map((m) => statusOf(m)));
        statuses.forEach((s, i) => {
          const m = members[i] as Daemon;
          if (s.nodeId !== m.nodeId) throw new Error(`${m.label}: status names ${s.nodeId}`);
          if (s.leader !== leaderId || s.isLeader !== (m.nodeId === leaderId)) throw new Error(`${m.label}: leader ${s.leader}, isLeader ${s.isLeader}`);
          if (s.members !== 5 || s.aliveMembers !== 5) throw new Error(`${m.label}: members ${s.members}, alive ${s.aliveMembers}`);
        });
        return true;
      },
      { timeoutMs: 15_000, intervalMs: 300, what: 'status --json of every member to agree' },
    );
  }, TEST_TIMEOUT_MS);

  it('run --wait on a non-leader runs once on every member; logs come from every node, fetched by a third member', async () => {
    const agreed = await waitForAgreement({ alive: members, allowOthersGone: true });
    leaderId = agreed.leader;
    const [issuer, third] = nonLeaders() as [Daemon, Daemon];
    expect(issuer.nodeId).not.toBe(leaderId);

    const r = await issuer.cli(['run', '--wait', '--timeout', '30s', '--json', '--', 'sh', '-c', 'echo $CHORUS_NODE_ID'], { timeoutMs: 60_000 });
    expectExit(r, EXIT.ok);
    const instance = r.json<InstanceView>();
    const ids = members.map((m) => m.nodeId).sort();
    expect(instance.status, r.context).toBe('succeeded');
    expect([...instance.targets].sort()).toEqual(ids);
    expect(instance.subtasks.map((s) => s.nodeId).sort()).toEqual(ids);
    for (const s of instance.subtasks) {
      expect(s, r.context).toMatchObject({ status: 'succeeded', exitCode: 0, reason: null, attempt: 1 });
    }

    // Every member learns the outcome.
    await waitFor(
      async () => {
        const views = await Promise.all(members.map((m) => m.json<InstanceView>(['instance', 'show', instance.id])));
        return views.every((v) => v.status === 'succeeded' && v.subtasks.length === 5);
      },
      { timeoutMs: 20_000, intervalMs: 300, what: `every member to show instance ${instance.id} succeeded` },
    );

    expect(third.nodeId).not.toBe(issuer.nodeId);
    expect(third.nodeId).not.toBe(leaderId);
    const logs = await okJson<LogView[]>(third, ['instance', 'logs', instance.id]);
    expect(logs.map((l) => l.nodeId).sort(), JSON.stringify(logs)).toEqual(ids);
    for (const log of logs) {
      expect(log, JSON.stringify(logs)).toMatchObject({ attempt: 1, stdout: `${log.nodeId}\n`, stderr: '' });
    }
    // One node's logs on their own, fetched remotely too.
    const oneLog = await okJson<LogView[]>(third, ['instance', 'logs', instance.id, '--node', issuer.nodeId]);
    expect(oneLog).toEqual([expect.objectContaining({ nodeId: issuer.nodeId, stdout: `${issuer.nodeId}\n` })]);
  }, TEST_TIMEOUT_MS);

  it('an acknowledged job add survives an immediate kill -9 of the member that accepted it (guarantee 8)', async () => {
    const agreed = await waitForAgreement({ alive: members, allowOthersGone: true });
    leaderId = agreed.leader;
    const victim = nonLeaders()[1] as Daemon;

    const r = await victim.cli(['job', 'add', 'acked', '--cmd', 'echo acked', '--json']);
    victim.kill('SIGKILL');
    expectExit(r, EXIT.ok);
    expect(r.json<JobView>()).toMatchObject({ name: 'acked', cmd: 'echo acked' });
    expect(await victim.waitForExit()).toEqual({ exitCode: null, signal: 'SIGKILL' });

    const survivors = others(members, victim);
    await waitFor(
      async () => {
        const lists = await Promise.all(survivors.map((m) => jobsOf(m)));
        return lists.every((list) => list.some((j) => j.name === 'acked' && j.cmd === 'echo acked'));
      },
      { timeoutMs: 20_000, intervalMs: 300, what: 'every surviving member to list the acknowledged job "acked"' },
    );
    // And the survivors notice the crash.
    await waitForAgreement({ observers: survivors, alive: survivors, gone: [{ daemon: victim, state: 'dead' }], allowOthersGone: true, timeoutMs: 15_000 });
  }, TEST_TIMEOUT_MS);

  describe('a late joiner', () => {
    healFirst();

    it('started after jobs were added, it gets every job', async () => {
      const [a, b, c] = members as [Daemon, Daemon, Daemon];
      await okJson(a, ['job', 'add', 'late-every', '--cmd', 'echo every', '--every', '1h']);
      await okJson(b, ['job', 'add', 'late-cron', '--cmd', 'echo cron', '--cron', '0 3 * * *', '--tz', 'Europe/Paris', '--tag', 'role=none']);
      await okJson(c, ['job', 'add', 'late-standalone', '--cmd', 'echo one', '--type', 'standalone', '--retries', '2', '--timeout', '5s']);
      await okJson(a, ['job', 'add', 'late-gone', '--cmd', 'true']);
      await okJson(b, ['job', 'disable', 'late-standalone']);
      await okJson(c, ['job', 'rm', 'late-gone']);
      const expected = await waitForSameJobs(members, 'the five members to hold the same jobs');
      const names = expected.map((j) => j.name);
      expect(names).toEqual(expect.arrayContaining(['acked', 'late-every', 'late-cron', 'late-standalone']));
      expect(names).not.toContain('late-gone');

      // Joins through a member other than the seed: any member's address works.
      const late = await startDaemon({ name: 'late', join: [(members[3] as Daemon).joinAddr] });
      await waitForSameJobs([...members, late], 'the late joiner to hold the same jobs as everyone');
      const lateJobs = await jobsOf(late);
      expect(lateJobs).toEqual(expected);
      expect(lateJobs.find((j) => j.name === 'late-standalone')).toMatchObject({ enabled: false, type: 'standalone', retries: 2, timeoutMs: 5000 });

      // It is a full member: everyone sees it alive, and it sees everyone.
      await waitForAgreement({ alive: [...members, late], allowOthersGone: true, timeoutMs: 30_000 });
      expect(await late.stop(), late.logs()).toEqual({ exitCode: 0, signal: null });
      await waitForAgreement({ alive: members, gone: [{ daemon: late, state: 'left' }], allowOthersGone: true, timeoutMs: 15_000 });
    }, TEST_TIMEOUT_MS);
  });

  describe('a member away while jobs change', () => {
    healFirst();

    it('stopped with SIGTERM, then restarted, it catches up: added jobs present, removed ones absent', async () => {
      const away = nonLeaders()[2] as Daemon;
      const [p, q] = others(members, away) as [Daemon, Daemon];
      await okJson(p, ['job', 'add', 'cu-keep', '--cmd', 'echo keep']);
      await okJson(q, ['job', 'add', 'cu-doomed', '--cmd', 'echo doomed']);
      await waitFor(async () => {
        const names = await jobNamesOf(away);
        return names.includes('cu-keep') && names.includes('cu-doomed');
      }, { timeoutMs: 20_000, intervalMs: 300, what: `${away.label} to hold cu-keep and cu-doomed before it stops` });

      expect(await away.stop(), away.logs()).toEqual({ exitCode: 0, signal: null });
      const present = others(members, away);
      await waitForAgreement({ observers: present, alive: present, gone: [{ daemon: away, state: 'left' }], allowOthersGone: true, timeoutMs: 15_000 });

      // While it is away, on various members: adds, removes, a change, and an add undone.
      await okJson(p, ['job', 'add', 'cu-new1', '--cmd', 'echo new1']);
      await okJson(q, ['job', 'add', 'cu-new2', '--cmd', 'echo new2', '--every', '2h']);
      await okJson(p, ['job', 'rm', 'cu-doomed']);
      await okJson(q, ['job', 'add', 'cu-flash', '--cmd', 'true']);
      await okJson(p, ['job', 'rm', 'cu-flash']);
      await okJson(present[2] as Daemon, ['job', 'disable', 'cu-keep']);
      const expected = await waitForSameJobs(present, 'the members that stayed to hold the same jobs');

      await away.restart();
      const after = await waitForSameJobs(members, `${away.label} to catch up with the jobs changed while it was away`);
      expect(after).toEqual(expected);
      const names = after.map((j) => j.name);
      expect(names).toEqual(expect.arrayContaining(['cu-keep', 'cu-new1', 'cu-new2']));
      expect(names).not.toContain('cu-doomed');
      expect(names).not.toContain('cu-flash');
      expect(after.find((j) => j.name === 'cu-keep')?.enabled).toBe(false);
      await waitForAgreement({ alive: members, allowOthersGone: true, timeoutMs: 30_000 });
    }, TEST_TIMEOUT_MS);
  });

  describe('graceful stop', () => {
    healFirst();

    it('SIGTERM of a non-leader exits 0, and the others show it left', async () => {
      const leaving = nonLeaders()[0] as Daemon;
      expect(await leaving.stop(), leaving.logs()).toEqual({ exitCode: 0, signal: null });
      const rest = others(members, leaving);
      await waitForAgreement({ observers: rest, alive: rest, gone: [{ daemon: leaving, state: 'left' }], allowOthersGone: true, timeoutMs: 15_000 });
      // It stays `left` (not dead, not suspect) for a while.
      await expectStable(
        async () => {
          const views = await Promise.all(rest.map((m) => m.json<NodeView[]>(['nodes'])));
          return views.map((v) => v.find((n) => n.nodeId === leaving.nodeId)?.state);
        },
        { durationMs: 2500, intervalMs: 500, what: `the state of ${leaving.label} as the others see it` },
      );
    }, TEST_TIMEOUT_MS);
  });

  describe('leader crash', () => {
    healFirst();

    it('kill -9 of the leader: the others see it dead and agree on a new leader; restarted, it rejoins under the same id', async () => {
      const before = await waitForAgreement({ alive: members, allowOthersGone: true });
      const old = byId(members, before.leader);
      const oldIncarnation = (before.views.get(old.nodeId) ?? []).find((n) => n.nodeId === old.nodeId)?.incarnation as number;
      expect(oldIncarnation).toBeGreaterThan(0);

      old.kill('SIGKILL');
      expect(await old.waitForExit()).toEqual({ exitCode: null, signal: 'SIGKILL' });
      const rest = others(members, old);
      const failover = await waitForAgreement({
        observers: rest,
        alive: rest,
        gone: [{ daemon: old, state: 'dead' }],
        notLeader: old.nodeId,
        allowOthersGone: true,
        timeoutMs: 15_000,
        what: 'the others to see the old leader dead and agree on a new one',
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${logsOf(rest, 3000)}`);
      });
      expect(failover.leader).not.toBe(old.nodeId);

      // The new leader does a leader's work: a broadcast asked on another member runs once
      // on every survivor (each appends its id to a file on this shared host).
      const ranFile = join(await tempDir('chorus-ran-'), 'ran');
      const asker = others(rest, byId(members, failover.leader))[0] as Daemon;
      const r = await asker.cli(['run', '--wait', '--timeout', '30s', '--json', '--', `echo $CHORUS_NODE_ID >> ${sq(ranFile)}`], { timeoutMs: 60_000 });
      expectExit(r, EXIT.ok);
      const survivorIds = rest.map((m) => m.nodeId).sort();
      expect(r.json<InstanceView>().subtasks.map((s) => s.nodeId).sort()).toEqual(survivorIds);
      expect((await readFile(ranFile, 'utf8')).trim().split('\n').sort()).toEqual(survivorIds);

      // Restart on the same data directory with the same flags.
      const oldPid = old.pid;
      await old.restart(); // checks that node.json names the same node id
      expect(old.pid).not.toBe(oldPid);
      const back = await waitForAgreement({
        alive: members,
        allowOthersGone: true,
        newIncarnation: [{ daemon: old, above: oldIncarnation }],
        timeoutMs: 30_000,
        what: 'everyone to see the restarted leader alive, as its new incarnation, and agree on one leader',
      });
      for (const view of back.views.values()) {
        const entry = view.find((n) => n.nodeId === old.nodeId);
        expect(entry?.state).toBe('alive');
        expect(entry?.incarnation).toBeGreaterThan(oldIncarnation);
      }
      expect((await statusOf(old)).nodeId).toBe(old.nodeId);
      // Still once per survivor: neither the restart nor the leader change ran it again.
      expect((await readFile(ranFile, 'utf8')).trim().split('\n').sort()).toEqual(survivorIds);
    }, TEST_TIMEOUT_MS);
  });
});

describe('a --join target that is down at start', () => {
  it('the joining node keeps retrying and joins once the target comes up', async () => {
    // Learn the target's node id and address, then take it down.
    const target = await startDaemon({ name: 'target' });
    const targetAddr = target.joinAddr;
    const port = /\/tcp\/(\d+)\//.exec(targetAddr)?.[1];
    expect(port, targetAddr).toBeDefined();
    expect(await target.stop(), target.logs()).toEqual({ exitCode: 0, signal: null });

    const joiner = await startDaemon({ name: 'joiner', join: [targetAddr] });
    // Alone for now, as the target is down.
    await expectStable(async () => (await joiner.json<NodeView[]>(['nodes'])).map((n) => [n.nodeId, n.state]), {
      durationMs: 2000,
      intervalMs: 500,
      what: "the joiner's member list while its --join target is down",
    }).then((view) => expect(view).toEqual([[joiner.nodeId, 'alive']]));

    // The target comes back at the address the joiner was given.
    await target.restart({ listen: [`/ip4/127.0.0.1/tcp/${port}`] });
    expect(target.joinAddr).toBe(targetAddr);
    await waitForAgreement({ alive: [target, joiner], timeoutMs: 30_000, what: 'the joiner to join the target once it is up' }).catch((err: Error) => {
      throw new Error(`${err.message}\n${logsOf([joiner, target], 4000)}`);
    });
  }, TEST_TIMEOUT_MS);
});
