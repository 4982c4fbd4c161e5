// Broadcasts under failure, with real daemon processes (DESIGN.md guarantees 1-5 and 7).
// This is why chorus exists: PowerJob re-ran a broadcast on a healthy worker after
// another worker shut down. Every job command here appends "node instance attempt" to a
// shared history file when it really starts; after each scenario the broadcast checker
// (src/testing/checker.ts) compares that history with the final instance records, and
// each scenario adds its own exact expectations.
//
// A fresh cluster for every scenario that stops, kills, freezes or restarts a node; one
// shared, tagged cluster for the scenarios that do not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceView, JobView } from '../src/api/views.js';
import { processState } from '../src/core/proc.js';
import {
  EXIT,
  Work,
  expectChecked,
  expectExit,
  expectStable,
  instanceOn,
  instancesOf,
  isProcessAlive,
  isProcessGroupAlive,
  okJson,
  runsOf,
  sortById,
  startCluster,
  subtaskOf,
  summarize,
  useProcessCleanup,
  waitFor,
  waitForAgreement,
  waitForEnd,
  waitForInstance,
  waitGroupGone,
  type Daemon,
} from './support/index.js';

useProcessCleanup();

/** Per test: starting a cluster on a loaded 2-core machine takes a while; every wait inside has its own deadline. */
const SCENARIO_MS = 150_000;

const sortedIds = (nodes: Daemon[]) => nodes.map((n) => n.nodeId).sort();
const ids = (...nodes: Daemon[]) => nodes.map((n) => n.nodeId);

/** A fresh cluster (the first node the seed, the others joined to it at once), sorted by node id, once every node sees every other one alive. */
async function cluster(prefix: string, tags: string[][]): Promise<Daemon[]> {
  const nodes = sortById(await startCluster({ prefix, tags, parallel: true }));
  await waitForAgreement({ alive: nodes });
  return nodes;
}

/** The leader every observer names, once they agree on the membership. */
async function agreedLeader(observers: Daemon[], spec: { alive: Daemon[]; gone?: { daemon: Daemon; state: 'dead' | 'left' }[] }): Promise<string> {
  return (await waitForAgreement({ observers, ...spec })).leader;
}

/** [attempt, status, reason, exitCode] of each earlier attempt. */
const historyOf = (i: InstanceView, node: string) => subtaskOf(i, node).history.map((h) => [h.attempt, h.status, h.reason, h.exitCode]);

/** What must not change any more once a scenario is over: the history file and the instance on each node. */
async function expectSettled(work: Work, observers: Daemon[], id: string): Promise<void> {
  await expectStable(
    async () => ({
      history: work.historyText(),
      views: (await Promise.all(observers.map((o) => instanceOn(o, id)))).map(summarize),
    }),
    { durationMs: 2500, intervalMs: 500, what: `the history file and instance ${id} after the end` },
  );
}

/** Adds a job through a node (acknowledged by another member before the CLI returns). */
async function addJob(n: Daemon, name: string, cmd: string, extra: string[] = []): Promise<JobView> {
  return okJson<JobView>(n, ['job', 'add', name, '--cmd', cmd, ...extra]);
}

/**
 * Three nodes running a waiting broadcast with --retries 2, every attempt 1 started: the
 * victim is a follower, the job was added and run through one of the others.
 */
async function threeRunning(prefix: string, job: string) {
  const nodes = await cluster(prefix, [[], [], []]);
  const leader = await agreedLeader(nodes, { alive: nodes });
  const victim = nodes.filter((n) => n.nodeId !== leader)[1] as Daemon;
  const others = nodes.filter((n) => n !== victim);
  const work = await Work.create();
  await addJob(others[0] as Daemon, job, work.cmd({ wait: true }), ['--retries', '2']);
  const created = await runJob(others[0] as Daemon, job);
  await work.waitStarted(sortedIds(nodes), created.id);
  for (const n of others) await work.pgid(n.nodeId, created.id);
  const victimGroup = await work.pgid(victim.nodeId, created.id);
  return { nodes, victim, others, work, created, victimGroup };
}

/** `job run NAME --json` on a node: the created instance (not waited for). */
async function runJob(n: Daemon, job: string): Promise<InstanceView> {
  return okJson<InstanceView>(n, ['job', 'run', job]);
}


describe('the PowerJob scenario: one of two workers goes away in the middle of a broadcast', () => {
  const cases = [
    { how: 'SIGTERM', healthyDone: false },
    { how: 'SIGKILL', healthyDone: false },
    // PowerJob's exact sequence: the healthy worker had already run its share when the other went away.
    { how: 'SIGTERM', healthyDone: true },
    { how: 'SIGKILL', healthyDone: true },
  ] as const;
  for (const { how, healthyDone } of cases) {
    it(
      `${how} ${healthyDone ? 'after the healthy worker finished' : 'while both run'}: the healthy worker runs exactly once, the other share stays with its node`,
      async () => {
        const nodes = await cluster(`p${how === 'SIGTERM' ? 't' : 'k'}${healthyDone ? 'd' : 'r'}`, [[], []]);
        const leader = await agreedLeader(nodes, { alive: nodes });
        // The leader dispatches (PowerJob's server); the other worker goes away.
        const healthy = nodes.find((n) => n.nodeId === leader) as Daemon;
        const victim = nodes.find((n) => n.nodeId !== leader) as Daemon;
        const work = await Work.create();
        await addJob(healthy, 'pj', work.cmd({ wait: true }));

        const created = await runJob(healthy, 'pj');
        expect(created.targets).toEqual(sortedIds(nodes));
        expect(created.subtasks.map((s) => s.nodeId)).toEqual(sortedIds(nodes));
        await work.waitStarted(ids(healthy, victim), created.id);
        const healthyGroup = await work.pgid(healthy.nodeId, created.id);
        const victimGroup = await work.pgid(victim.nodeId, created.id);
        if (healthyDone) {
          await work.release(healthy.nodeId);
          await waitForInstance([healthy], created.id, (i) => subtaskOf(i, healthy.nodeId).status === 'succeeded', {
            what: 'the healthy worker to finish its share',
          });
        }

        if (how === 'SIGTERM') {
          // Graceful: the daemon leaves, kills its running command, reports the attempt
          // failed/interrupted itself (README: "interrupted: the owner's daemon stopped
          // (SIGTERM) or crashed while the attempt ran") and exits 0.
          expect(await victim.stop(30_000), victim.logs().slice(-4000)).toEqual({ exitCode: 0, signal: null });
          await waitGroupGone(victimGroup, 'the command of the stopped worker');
        } else {
          victim.kill('SIGKILL');
          expect(await victim.waitForExit()).toEqual({ exitCode: null, signal: 'SIGKILL' });
        }
        await agreedLeader([healthy], { alive: [healthy], gone: [{ daemon: victim, state: how === 'SIGTERM' ? 'left' : 'dead' }] });

        // The lost share gets its verdict, and the healthy worker's share is untouched.
        const expectedReason = how === 'SIGTERM' ? 'interrupted' : 'node-lost';
        const [during] = await waitForInstance(
          [healthy],
          created.id,
          (i) => subtaskOf(i, victim.nodeId).reason === expectedReason,
          { what: `the subtask of the ${how === 'SIGTERM' ? 'stopped' : 'killed'} worker to be failed/${expectedReason}` },
        );
        expect(subtaskOf(during as InstanceView, healthy.nodeId)).toMatchObject({ status: healthyDone ? 'succeeded' : 'running', attempt: 1 });
        if (!healthyDone) expect(isProcessGroupAlive(healthyGroup)).toBe(true);
        expect(runsOf(work, healthy.nodeId, created.id)).toEqual([1]);

        await work.release(); // the healthy worker's share, and a killed worker's orphan
        const final = await waitForEnd([healthy], created.id);
        expect(final.status, summarize(final)).toBe('failed');
        expect(final.targets).toEqual(sortedIds(nodes));
        expect(subtaskOf(final, healthy.nodeId)).toMatchObject({ status: 'succeeded', attempt: 1, exitCode: 0, reason: null, history: [] });
        expect(subtaskOf(final, victim.nodeId)).toMatchObject({ nodeId: victim.nodeId, status: 'failed', reason: expectedReason, attempt: 1, exitCode: null, history: [] });
        await expectSettled(work, [healthy], created.id);

        // Ran exactly once on the healthy worker; the victim's one start is its own; nobody else ran its share.
        expect(runsOf(work, healthy.nodeId, created.id)).toEqual([1]);
        expect(runsOf(work, victim.nodeId, created.id)).toEqual([1]);
        expect(work.history()).toHaveLength(2);
        const all = await instancesOf(healthy, 'pj');
        expect(all.map((i) => i.id)).toEqual([created.id]);
        expectChecked(work, all, ids(healthy), [created.id]);
      },
      SCENARIO_MS,
    );
  }
});

describe('nodes killed in the middle of a broadcast', () => {
  it(
    'five nodes, two killed (-9): their subtasks are node-lost under their own ids, the three others succeed once',
    async () => {
      const nodes = await cluster('f', [[], [], [], [], []]);
      const leader = await agreedLeader(nodes, { alive: nodes });
      const followers = nodes.filter((n) => n.nodeId !== leader);
      const victims = [followers[1], followers[3]] as Daemon[];
      const survivors = nodes.filter((n) => !victims.includes(n));
      const work = await Work.create();
      // No --timeout: the instance must end because the deaths are detected, not by a timeout.
      await addJob(nodes[0] as Daemon, 'five', work.cmd({ wait: true }));

      const created = await runJob(survivors[1] as Daemon, 'five');
      expect(created.targets).toEqual(sortedIds(nodes));
      await work.waitStarted(sortedIds(nodes), created.id);
      for (const n of nodes) await work.pgid(n.nodeId, created.id);

      for (const v of victims) v.kill('SIGKILL');
      for (const v of victims) expect(await v.waitForExit()).toEqual({ exitCode: null, signal: 'SIGKILL' });

      // Every survivor gives the two lost shares their verdict while its own keeps running.
      const during = await waitForInstance(
        survivors,
        created.id,
        (i) => victims.every((v) => subtaskOf(i, v.nodeId).reason === 'node-lost'),
        { what: 'the two killed nodes to be node-lost on every survivor' },
      );
      for (const view of during) {
        for (const s of survivors) expect(subtaskOf(view, s.nodeId).status, summarize(view)).toBe('running');
        expect(view.status).toBe('running');
      }

      await work.release();
      const final = await waitForEnd(survivors, created.id);
      expect(final.status, summarize(final)).toBe('failed');
      expect(final.targets).toEqual(sortedIds(nodes));
      expect(final.subtasks.map((s) => s.nodeId)).toEqual(sortedIds(nodes));
      for (const v of victims) {
        expect(subtaskOf(final, v.nodeId)).toMatchObject({ nodeId: v.nodeId, status: 'failed', reason: 'node-lost', attempt: 1, history: [] });
      }
      for (const s of survivors) {
        expect(subtaskOf(final, s.nodeId)).toMatchObject({ status: 'succeeded', reason: null, attempt: 1, exitCode: 0, history: [] });
        expect(runsOf(work, s.nodeId, created.id)).toEqual([1]);
      }
      for (const v of victims) expect(runsOf(work, v.nodeId, created.id)).toEqual([1]);
      await expectSettled(work, survivors, created.id);
      const all = await instancesOf(survivors[0] as Daemon, 'five');
      expect(all.map((i) => i.id)).toEqual([created.id]);
      expectChecked(work, all, ids(...survivors), [created.id]);
    },
    SCENARIO_MS,
  );

  it(
    'the leader (also a target) killed: a new leader adopts the instance, the survivors finish and report, nothing is created twice',
    async () => {
      const nodes = await cluster('l', [[], [], []]);
      const leaderId = await agreedLeader(nodes, { alive: nodes });
      const oldLeader = nodes.find((n) => n.nodeId === leaderId) as Daemon;
      const survivors = nodes.filter((n) => n !== oldLeader);
      const work = await Work.create();
      await addJob(survivors[0] as Daemon, 'lead', work.cmd({ wait: true }));
      // Asked through a follower: the leader creates it.
      const created = await runJob(survivors[0] as Daemon, 'lead');
      expect(created.targets).toEqual(sortedIds(nodes));
      await work.waitStarted(sortedIds(nodes), created.id);
      for (const n of nodes) await work.pgid(n.nodeId, created.id);

      oldLeader.kill('SIGKILL');
      expect(await oldLeader.waitForExit()).toEqual({ exitCode: null, signal: 'SIGKILL' });
      const newLeader = await agreedLeader(survivors, { alive: survivors, gone: [{ daemon: oldLeader, state: 'dead' }] });
      expect(newLeader).not.toBe(leaderId);

      // The new leader adopts the instance: the dead leader's share is node-lost, the others still run.
      const during = await waitForInstance(survivors, created.id, (i) => subtaskOf(i, leaderId).reason === 'node-lost', {
        what: 'the new leader to give the old leader\'s subtask its node-lost verdict',
      });
      for (const view of during) for (const s of survivors) expect(subtaskOf(view, s.nodeId).status, summarize(view)).toBe('running');

      await work.release();
      const final = await waitForEnd(survivors, created.id);
      expect(final.status, summarize(final)).toBe('failed');
      expect(final.targets).toEqual(sortedIds(nodes));
      expect(final.subtasks.map((s) => s.nodeId)).toEqual(sortedIds(nodes));
      expect(subtaskOf(final, leaderId)).toMatchObject({ status: 'failed', reason: 'node-lost', attempt: 1 });
      for (const s of survivors) expect(subtaskOf(final, s.nodeId)).toMatchObject({ status: 'succeeded', attempt: 1, exitCode: 0, history: [] });
      await expectSettled(work, survivors, created.id);

      // One instance, everywhere; one run per node.
      for (const s of survivors) expect((await instancesOf(s, 'lead')).map((i) => i.id)).toEqual([created.id]);
      for (const n of nodes) expect(runsOf(work, n.nodeId, created.id)).toEqual([1]);
      expectChecked(work, await instancesOf(survivors[0] as Daemon, 'lead'), ids(...survivors), [created.id]);

      // The new leader runs the next broadcast on the survivors only.
      const next = await okJson<InstanceView>(survivors[1] as Daemon, ['job', 'run', 'lead', '--wait'], 45_000);
      expect(next.status).toBe('succeeded');
      expect(next.targets).toEqual(sortedIds(survivors));
      expectChecked(work, await instancesOf(survivors[0] as Daemon, 'lead'), ids(...survivors), [created.id, next.id]);
    },
    SCENARIO_MS,
  );

  it(
    'a node killed (-9) and restarted: its subtask is failed/interrupted, it ran once and never runs again',
    async () => {
      // Retries are allowed (see threeRunning): only guarantee 3 keeps the interrupted attempt from running again.
      const { nodes, victim, others, work, created, victimGroup: orphan } = await threeRunning('r', 'crash');

      victim.kill('SIGKILL');
      expect(await victim.waitForExit()).toEqual({ exitCode: null, signal: 'SIGKILL' });
      // The others give their verdict first; the owner's own report must win over it after the restart.
      await waitForInstance(others, created.id, (i) => subtaskOf(i, victim.nodeId).reason === 'node-lost', {
        what: 'the killed node to be node-lost',
      });
      expect(isProcessGroupAlive(orphan)).toBe(true); // the command outlived its daemon

      await victim.restart();
      await waitGroupGone(orphan, 'the command the crashed daemon left running');
      await agreedLeader(nodes, { alive: nodes });
      const during = await waitForInstance(nodes, created.id, (i) => subtaskOf(i, victim.nodeId).reason === 'interrupted', {
        what: 'the restarted node\'s subtask to be failed/interrupted everywhere',
      });
      for (const view of during) for (const s of others) expect(subtaskOf(view, s.nodeId).status, summarize(view)).toBe('running');

      await work.release();
      const final = await waitForEnd(nodes, created.id);
      expect(final.status, summarize(final)).toBe('failed');
      expect(subtaskOf(final, victim.nodeId)).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, exitCode: null, history: [] });
      for (const s of others) expect(subtaskOf(final, s.nodeId)).toMatchObject({ status: 'succeeded', attempt: 1, exitCode: 0, history: [] });

      // A few worker ticks later nothing has changed: it never ran again.
      await expectSettled(work, nodes, created.id);
      for (const n of nodes) expect(runsOf(work, n.nodeId, created.id)).toEqual([1]);
      expect(work.startedKeys().sort()).toEqual(sortedIds(nodes).map((n) => `${n}.${created.id}.1`));
      expectChecked(work, await instancesOf(victim, 'crash'), ids(...others), [created.id]);
    },
    SCENARIO_MS,
  );

  it(
    'a node that already holds the node-lost verdict on its own running subtask crashes and restarts: still interrupted, its leftover killed',
    async () => {
      // Freezing past detection delivers the verdict to the owner while its command still runs;
      // its crash recovery must not take that verdict for the attempt's end.
      const { nodes, victim, others, work, created, victimGroup: orphan } = await threeRunning('v', 'verdict');

      victim.freeze();
      try {
        await waitForInstance(others, created.id, (i) => subtaskOf(i, victim.nodeId).reason === 'node-lost', {
          what: 'the frozen node to be node-lost',
        });
      } finally {
        victim.thaw();
      }
      await agreedLeader(nodes, { alive: nodes });
      // The owner itself now holds the verdict on the attempt it is still running.
      await waitForInstance([victim], created.id, (i) => subtaskOf(i, victim.nodeId).reason === 'node-lost', {
        what: 'the verdict to reach the owner',
      });
      expect(isProcessGroupAlive(orphan)).toBe(true);

      victim.kill('SIGKILL');
      expect(await victim.waitForExit()).toEqual({ exitCode: null, signal: 'SIGKILL' });
      await victim.restart();
      await waitGroupGone(orphan, 'the command the crashed daemon left running');
      await waitForInstance(nodes, created.id, (i) => subtaskOf(i, victim.nodeId).reason === 'interrupted', {
        what: 'the restarted owner\'s own report (interrupted) to replace the verdict everywhere',
      });

      await work.release();
      const final = await waitForEnd(nodes, created.id);
      expect(final.status, summarize(final)).toBe('failed');
      expect(subtaskOf(final, victim.nodeId)).toMatchObject({ status: 'failed', reason: 'interrupted', attempt: 1, history: [] });
      for (const s of others) expect(subtaskOf(final, s.nodeId)).toMatchObject({ status: 'succeeded', attempt: 1, history: [] });
      await expectSettled(work, nodes, created.id);
      for (const n of nodes) expect(runsOf(work, n.nodeId, created.id)).toEqual([1]);
      expectChecked(work, await instancesOf(victim, 'verdict'), ids(...others), [created.id]);
    },
    SCENARIO_MS,
  );

  it(
    'a node frozen (SIGSTOP) past detection, then thawed: its own report may win over node-lost, but nothing runs twice',
    async () => {
      const { nodes, victim, others, work, created, victimGroup: victimJob } = await threeRunning('z', 'freeze');

      victim.freeze();
      try {
        await waitFor(() => processState(victim.pid) === 'T', { timeoutMs: 10_000, what: 'the daemon to be stopped (state T)' });
        // Only the daemon is stopped: its command runs in its own process group.
        expect(processState(victimJob)).not.toBe('T');
        expect(isProcessAlive(victimJob)).toBe(true);

        await agreedLeader(others, { alive: others, gone: [{ daemon: victim, state: 'dead' }] });
        await waitForInstance(others, created.id, (i) => subtaskOf(i, victim.nodeId).reason === 'node-lost', {
          what: 'the frozen node to be node-lost',
        });
        for (const s of others) await work.release(s.nodeId);
        const ended = await waitForEnd(others, created.id);
        expect(ended.status, summarize(ended)).toBe('failed');
        expect(subtaskOf(ended, victim.nodeId)).toMatchObject({ status: 'failed', reason: 'node-lost', attempt: 1 });
        for (const s of others) expect(subtaskOf(ended, s.nodeId)).toMatchObject({ status: 'succeeded', attempt: 1, history: [] });
        expect(processState(victim.pid)).toBe('T');
        expect(isProcessAlive(victimJob)).toBe(true); // still waiting for its release
      } finally {
        victim.thaw();
      }

      // Thawed, it comes back (same incarnation) and its command ends: the owner's own
      // report outranks the node-lost verdict (DESIGN.md: the owner knows what happened).
      await agreedLeader(nodes, { alive: nodes });
      await work.release(victim.nodeId);
      await waitGroupGone(victimJob, 'the command of the thawed node');
      const final = await waitForInstance(nodes, created.id, (i) => subtaskOf(i, victim.nodeId).status === 'succeeded', {
        what: 'the thawed owner\'s own report to reach every node',
      }).then(() => waitForEnd(nodes, created.id));
      expect(final.status, summarize(final)).toBe('succeeded');
      expect(subtaskOf(final, victim.nodeId)).toMatchObject({ status: 'succeeded', reason: null, attempt: 1, exitCode: 0, history: [] });
      await expectSettled(work, nodes, created.id);
      for (const n of nodes) expect(runsOf(work, n.nodeId, created.id)).toEqual([1]);
      expectChecked(work, await instancesOf(victim, 'freeze'), ids(...others), [created.id]);
    },
    SCENARIO_MS,
  );
});

describe('one healthy, tagged cluster (role=web, web, db)', () => {
  let nodes: Daemon[];
  let web: Daemon[];
  let db: Daemon;

  beforeAll(async () => {
    nodes = await cluster('t', [['role=web'], ['role=web'], ['role=db']]);
    web = nodes.filter((n) => n.options.tags?.includes('role=web'));
    db = nodes.find((n) => n.options.tags?.includes('role=db')) as Daemon;
  }, 90_000);

  afterAll(async () => {
    // Not needed by the later scenarios: stop it now (the harness would kill it at the end).
    await Promise.all((nodes ?? []).map((n) => n.stop().catch(() => undefined)));
  });

  it(
    'a retry stays home: attempts 1-2 fail on one node only, its subtask succeeds at attempt 3; the others ran once',
    async () => {
      const work = await Work.create();
      const flaky = nodes[1] as Daemon;
      await addJob(db, 'retry', work.cmd({ fail: `[ "$CHORUS_NODE_ID" = "${flaky.nodeId}" ] && [ "$CHORUS_ATTEMPT" -lt 3 ]` }), ['--retries', '2']);
      const r = await db.cli(['job', 'run', 'retry', '--wait', '--json'], { timeoutMs: 45_000 });
      expectExit(r, EXIT.ok);
      const created = r.json<InstanceView>();
      const final = await waitForEnd(nodes, created.id);
      expect(final.status).toBe('succeeded');
      expect(subtaskOf(final, flaky.nodeId)).toMatchObject({ status: 'succeeded', attempt: 3, exitCode: 0, reason: null });
      expect(historyOf(final, flaky.nodeId)).toEqual([
        [1, 'failed', 'exit-code', 1],
        [2, 'failed', 'exit-code', 1],
      ]);
      for (const n of nodes.filter((x) => x !== flaky)) {
        expect(subtaskOf(final, n.nodeId)).toMatchObject({ status: 'succeeded', attempt: 1, history: [] });
        expect(runsOf(work, n.nodeId, created.id)).toEqual([1]);
      }
      expect(runsOf(work, flaky.nodeId, created.id)).toEqual([1, 2, 3]);
      expect(work.history()).toHaveLength(5);
      expectChecked(work, [final], ids(...nodes), [created.id]);
    },
    SCENARIO_MS,
  );

  it(
    'tags: a role=web job runs on the web nodes only; a role=none job fails at once with a clear failure',
    async () => {
      const work = await Work.create();
      await addJob(db, 'webonly', work.cmd(), ['--tag', 'role=web']);
      const r = await db.cli(['job', 'run', 'webonly', '--wait', '--json'], { timeoutMs: 45_000 });
      expectExit(r, EXIT.ok);
      const created = r.json<InstanceView>();
      expect(created.targets).toEqual(sortedIds(web));
      expect(created.subtasks.map((s) => s.nodeId)).toEqual(sortedIds(web));
      const final = await waitForEnd(nodes, created.id);
      expect(final.status).toBe('succeeded');
      expect(work.history().map((l) => l.nodeId).sort()).toEqual(sortedIds(web));
      expect(runsOf(work, db.nodeId, created.id)).toEqual([]);
      expectChecked(work, [final], ids(...nodes), [created.id]);

      await addJob(web[0] as Daemon, 'nowhere', work.cmd(), ['--tag', 'role=none']);
      const none = await db.cli(['job', 'run', 'nowhere', '--wait', '--json'], { timeoutMs: 30_000 });
      expect(none.timedOut, none.context).toBe(false);
      expectExit(none, EXIT.failed);
      const failed = none.json<InstanceView>();
      expect(failed).toMatchObject({ status: 'failed', targets: [], subtasks: [] });
      expect(failed.failure).toMatch(/no alive node matches the tags role=none/);
      const human = await db.cli(['job', 'run', 'nowhere', '--wait'], { timeoutMs: 30_000 });
      expectExit(human, EXIT.failed);
      expect(`${human.stdout}${human.stderr}`).toMatch(/no alive node matches the tags role=none/);
      // Nothing ran anywhere for it.
      expect(work.history().filter((l) => l.instanceId === failed.id)).toEqual([]);
    },
    SCENARIO_MS,
  );

  it(
    'cancel while subtasks run on 3 nodes: all cancelled, the instance cancelled, every job process group dead',
    async () => {
      const work = await Work.create();
      await addJob(web[0] as Daemon, 'cancelme', work.cmd({ wait: true }), ['--retries', '2']);
      const created = await runJob(db, 'cancelme');
      expect(created.targets).toEqual(sortedIds(nodes));
      await work.waitStarted(sortedIds(nodes), created.id);
      const groups = await Promise.all(nodes.map((n) => work.pgid(n.nodeId, created.id)));
      for (const g of groups) expect(isProcessGroupAlive(g)).toBe(true);

      const cancel = await (web[1] as Daemon).cli(['instance', 'cancel', created.id, '--json']);
      expectExit(cancel, EXIT.ok);
      expect(cancel.json<InstanceView>()).toMatchObject({ id: created.id, cancelRequested: true });
      const final = await waitForEnd(nodes, created.id);
      expect(final.status, summarize(final)).toBe('cancelled');
      for (const n of nodes) expect(subtaskOf(final, n.nodeId)).toMatchObject({ status: 'cancelled', reason: 'cancelled', attempt: 1, history: [] });
      for (const [i, g] of groups.entries()) await waitGroupGone(g, `the cancelled command on ${nodes[i]?.label}`);
      const waited = await db.cli(['instance', 'wait', created.id, '--json'], { timeoutMs: 30_000 });
      expectExit(waited, EXIT.failed);
      await expectSettled(work, nodes, created.id);
      for (const n of nodes) expect(runsOf(work, n.nodeId, created.id)).toEqual([1]);
      expectChecked(work, [final], ids(...nodes), [created.id]);
    },
    SCENARIO_MS,
  );

  it(
    'sharding: CHORUS_SHARD_INDEX/TOTAL are the position in the sorted targets and their number, the same on every attempt',
    async () => {
      const work = await Work.create();
      // Every node fails its first attempt: the retry must see the same shard.
      await addJob(db, 'shard', work.cmd({ fail: '[ "$CHORUS_ATTEMPT" -lt 2 ]' }), ['--retries', '1']);
      await addJob(db, 'shardweb', work.cmd(), ['--tag', 'role=web']);
      const r = await (web[0] as Daemon).cli(['job', 'run', 'shard', '--wait', '--json'], { timeoutMs: 45_000 });
      expectExit(r, EXIT.ok);
      const all = r.json<InstanceView>();
      const rw = await (web[0] as Daemon).cli(['job', 'run', 'shardweb', '--wait', '--json'], { timeoutMs: 45_000 });
      expectExit(rw, EXIT.ok);
      const webOnly = rw.json<InstanceView>();

      expect(all.targets).toEqual(sortedIds(nodes));
      for (const n of nodes) {
        const index = sortedIds(nodes).indexOf(n.nodeId);
        expect(subtaskOf(all, n.nodeId)).toMatchObject({ status: 'succeeded', attempt: 2, shardIndex: index });
        const seen = work.shards().filter((s) => s.instanceId === all.id && s.nodeId === n.nodeId);
        expect(seen.map((s) => [s.attempt, s.index, s.total])).toEqual([
          [1, index, 3],
          [2, index, 3],
        ]);
      }
      expect(webOnly.targets).toEqual(sortedIds(web));
      for (const n of web) {
        const index = sortedIds(web).indexOf(n.nodeId);
        expect(subtaskOf(webOnly, n.nodeId).shardIndex).toBe(index);
        const seen = work.shards().filter((s) => s.instanceId === webOnly.id && s.nodeId === n.nodeId);
        expect(seen.map((s) => [s.attempt, s.index, s.total])).toEqual([[1, index, 2]]);
      }
      expectChecked(work, [await waitForEnd(nodes, all.id), await waitForEnd(nodes, webOnly.id)], ids(...nodes), [all.id, webOnly.id]);
    },
    SCENARIO_MS,
  );
});
