// `instance logs --follow` through the control service of one member of a simulated
// cluster, on a fake clock: the owners' long polls over RPC, the follower's questions and
// the client's cursor. Each line of output arrives once, while the attempt runs, and the
// follow ends when the instance does.
import { afterEach, describe, expect, it } from 'vitest';
import type { LogFollowView } from '../api/control-plane.js';
import type { ControlService } from '../api/service.js';
import { SimCluster } from '../testing/sim-cluster.js';

let sim: SimCluster | null = null;
afterEach(() => {
  sim?.dispose();
  sim = null;
});

async function cluster(): Promise<SimCluster> {
  const s = new SimCluster({ seed: 11, size: 3 });
  sim = s;
  s.start('all');
  await s.until(() => s.agreed() && s.liveIds().every((id) => s.service(id).nodes().length === 3), 10_000, 'three nodes agreeing');
  return s;
}

interface Followed {
  answers: (LogFollowView & { atMs: number })[];
  /** Text per node, step and attempt, in the order it came. */
  text: Map<string, string>;
}

/** Follows to the end as the CLI does: each answer's cursor goes into the next request. */
async function followToEnd(s: SimCluster, service: ControlService, id: string, options: { node?: string; from?: Followed } = {}): Promise<Followed> {
  const followed: Followed = options.from ?? { answers: [], text: new Map() };
  const node = options.node ?? null;
  let cursor = followed.answers.at(-1)?.cursor ?? '';
  for (let i = 0; i < 200; i++) {
    const answer = await s.drive(service.followLogs(id, node, cursor, 20_000), `follow answer ${i}`, 60_000);
    followed.answers.push({ ...answer, atMs: s.clock.now() });
    for (const c of answer.chunks) {
      const key = `${c.nodeId} ${c.step ?? 'attempt'} ${c.attempt} ${c.stream}`;
      followed.text.set(key, (followed.text.get(key) ?? '') + c.text);
    }
    if (answer.done) return followed;
    cursor = answer.cursor;
  }
  throw new Error('the follow never ended');
}

/** The first answer only (what was there, or the first output to come). */
async function firstAnswer(s: SimCluster, service: ControlService, id: string): Promise<Followed> {
  const answer = await s.drive(service.followLogs(id, null, '', 20_000), 'the first follow answer');
  const followed: Followed = { answers: [{ ...answer, atMs: s.clock.now() }], text: new Map() };
  for (const c of answer.chunks) followed.text.set(`${c.nodeId} ${c.step ?? 'attempt'} ${c.attempt} ${c.stream}`, c.text);
  return followed;
}

describe('instance logs --follow (simulated cluster)', () => {
  it('gets each node\'s output while its attempt runs, once, and ends with the instance', async () => {
    const s = await cluster();
    await s.addJob('n01', 'slow', { cmd: 'sleep:3000' });
    const instance = await s.runJob('n02', 'slow');
    await s.until(() => s.store('n03').instance(instance.id) !== undefined, 5000, 'n03 hearing of the run');
    const followed = await followToEnd(s, s.service('n03'), instance.id);
    const ids = s.ids();
    expect(new Map([...followed.text].sort())).toEqual(new Map(ids.map((id) => [`${id} attempt 1 stdout`, `sleep:3000 on ${id} attempt 1\n`])));
    // The lines came while the attempts still ran (the command takes 3 s of virtual time).
    const firstLines = followed.answers.filter((a) => a.chunks.length > 0);
    expect(firstLines[0]?.status).toBe('running');
    const endedAtMs = Math.max(...ids.map((id) => s.store('n03').subtask(instance.id, id)?.finishedAtMs ?? Infinity));
    for (const a of firstLines) expect(a.atMs).toBeLessThan(endedAtMs);
    // Every attempt is reported read to its end once; the last answer says done, with the final status.
    expect(followed.answers.flatMap((a) => a.ended).map((e) => e.nodeId).sort()).toEqual(ids);
    expect(followed.answers.at(-1)).toMatchObject({ done: true, status: 'succeeded' });
    // Not a poll loop: a handful of answers, not one per 100 ms of the 3 s.
    expect(followed.answers.length).toBeLessThanOrEqual(10);
  });

  it('follows retries as separate attempts and the steps, and an instance already over prints it all at once', async () => {
    const s = await cluster();
    await s.addJob('n01', 'flaky', { cmd: 'flaky:1 sleep:500', retries: 1, pre: 'sleep:100', post: 'sleep:100' });
    const instance = await s.runJob('n01', 'flaky');
    const live = await followToEnd(s, s.service('n02'), instance.id);
    const leader = s.store('n02').step(instance.id, 'pre')?.runnerNodeId as string;
    const expected = new Map<string, string>([
      [`${leader} pre 1 stdout`, `sleep:100 on ${leader} attempt 1\n`],
      [`${leader} post 1 stdout`, `sleep:100 on ${leader} attempt 1\n`],
    ]);
    for (const id of s.ids()) for (const attempt of [1, 2]) expected.set(`${id} attempt ${attempt} stdout`, `flaky:1 sleep:500 on ${id} attempt ${attempt}\n`);
    expect(new Map([...live.text].sort())).toEqual(new Map([...expected].sort()));
    expect(live.answers.at(-1)).toMatchObject({ done: true, status: 'succeeded' });

    // Once it ended: everything in one go, the same text.
    const after = await followToEnd(s, s.service('n03'), instance.id);
    expect(new Map([...after.text].sort())).toEqual(new Map([...expected].sort()));
    expect(after.answers.length, JSON.stringify(after.answers.map((a) => ({ ...a, cursor: undefined })), null, 1)).toBeLessThanOrEqual(2);

    // --node: that node only.
    const one = await followToEnd(s, s.service('n03'), instance.id, { node: 'n03' });
    expect([...one.text.keys()].sort()).toEqual(['n03 attempt 1 stdout', 'n03 attempt 2 stdout']);
  });

  it('ends when a node is lost, saying its output could not be had', async () => {
    const s = await cluster();
    await s.addJob('n01', 'long', { cmd: 'sleep:4000' });
    const instance = await s.runJob('n01', 'long');
    await s.until(() => s.store('n01').subtask(instance.id, 'n03')?.status === 'running', 5000, 'n03 running');
    const started = await firstAnswer(s, s.service('n01'), instance.id);
    expect(started.answers[0]?.status).toBe('running');
    s.crash('n03');
    const followed = await followToEnd(s, s.service('n01'), instance.id, { from: started });
    expect(followed.answers.at(-1)).toMatchObject({ done: true, status: 'failed' });
    expect(followed.text.get('n01 attempt 1 stdout')).toBe('sleep:4000 on n01 attempt 1\n');
    expect(followed.answers.flatMap((a) => a.unavailable).map((u) => u.nodeId)).toContain('n03');
    // A node that cannot be asked is asked again now and then, not in a loop.
    expect(followed.answers.length, JSON.stringify(followed.answers.map((a) => [a.atMs, a.status, a.unavailable.length]))).toBeLessThanOrEqual(10);
  });

  it('refuses a cursor it did not make, and an unknown instance', async () => {
    const s = await cluster();
    await s.addJob('n01', 'quick', { cmd: 'sleep:10' });
    const instance = await s.runJob('n01', 'quick');
    const service = s.service('n01');
    await expect(s.drive(service.followLogs(instance.id, null, 'nonsense', 0), 'bad cursor')).rejects.toMatchObject({ status: 400, code: 'bad-cursor' });
    await expect(s.drive(service.followLogs(instance.id, null, 'AA~9-1-0-0-0', 0), 'cursor past the nodes')).rejects.toMatchObject({ status: 400, code: 'bad-cursor' });
    await expect(s.drive(service.followLogs('nope', null, '', 0), 'unknown instance')).rejects.toMatchObject({ status: 404, code: 'unknown-instance' });
  });
});
