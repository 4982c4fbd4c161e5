// The control-plane service as the HTTP API runs it, driven in a simulated cluster: the
// same putJob, runJob, cancel and watch the daemon serves, on a fake clock.
import { afterEach, describe, expect, it } from 'vitest';
import { SimCluster, type SimClusterOptions } from '../testing/sim-cluster.js';
import { apiErrorOf, jobSpec } from '../testing/fixtures.js';
import { SecretFileError } from '../scheduler/webhook-io.js';
import { versionOf } from './version-of.js';

let sim: SimCluster | null = null;
afterEach(() => {
  sim?.dispose();
  sim = null;
});

async function cluster(options: Partial<SimClusterOptions> = {}): Promise<SimCluster> {
  const s = new SimCluster({ seed: 7, size: 3, ...options });
  sim = s;
  s.start('all');
  await s.until(() => s.agreed() && s.liveIds().every((id) => s.service(id).nodes().length === 3), 10_000, 'three nodes agreeing');
  return s;
}

const apiError = apiErrorOf;

/** Adds a job on n01 and waits until every node has heard of it. */
async function addJobEverywhere(s: SimCluster, name: string, cmd: string): Promise<void> {
  await s.addJob('n01', name, { cmd });
  await s.until(() => s.liveIds().every((id) => s.store(id).job(name) !== undefined), 5000, 'every node hearing of the job');
}

/** The agreed leader, and a member that is not it. */
function leaderAndMember(s: SimCluster): { leader: string; member: string } {
  const leader = s.agreedLeader() as string;
  return { leader, member: s.liveIds().find((id) => id !== leader) as string };
}

describe('ControlService', () => {
  it('job add is an acknowledged write that a second add of the same name does not overwrite (409 job-exists)', async () => {
    const s = await cluster();
    const job = await s.addJob('n02', 'deploy', { cmd: 'sleep:50' });
    // On another member before the answer (whichever confirmed first).
    expect(['n01', 'n03'].filter((id) => s.store(id).job('deploy')?.stamp.wallMs === job.stamp.wallMs)).not.toEqual([]);
    const err = await apiError(s.drive(s.service('n02').putJob('deploy', { ...job.spec!, cmd: 'sleep:1' }, false), 'second add'));
    expect([err.status, err.code]).toEqual([409, 'job-exists']);
    expect(s.store('n02').job('deploy')?.spec?.cmd).toBe('sleep:50');
  });

  it('a watch wakes on the instance\'s next change, times out on the clock when none comes, and leaves no waiter behind', async () => {
    const s = await cluster();
    await s.addJob('n01', 'slow', { cmd: 'sleep:2000' });
    await s.until(() => s.store('n03').job('slow') !== undefined, 5000, 'n03 hearing of the job');
    const instance = await s.runJob('n03', 'slow');
    const service = s.service('n03');
    // Every subtask running as n03 sees it: nothing else changes for the next 2 s.
    await s.until(() => [...s.store('n03').subtasksOf(instance.id).values()].filter((t) => t.status === 'running').length === 3, 5000, 'every subtask running');

    const current = service.getInstance(instance.id);
    const quiet = s.drive(service.watchInstance(instance.id, versionOf(current), 300), 'a watch with nothing to report');
    expect(service.watchedInstances()).toBe(1);
    const startMs = s.now();
    await quiet;
    expect(s.now() - startMs).toBeGreaterThanOrEqual(300);
    expect(service.watchedInstances()).toBe(0);

    // Woken by each change before its deadline (a subtask's end is one), until the instance ends.
    let seen = service.getInstance(instance.id);
    const deadlineMs = s.now() + 60_000;
    while (seen.status !== 'succeeded') {
      const woken = await s.drive(service.watchInstance(instance.id, versionOf(seen), 60_000), 'a watch until the next change');
      expect(versionOf(woken)).not.toBe(versionOf(seen));
      expect(s.now()).toBeLessThan(deadlineMs);
      seen = woken;
    }
    expect(service.watchedInstances()).toBe(0);
  });

  it('a change watch answers when a record of an asked kind changes (wherever it was written), times out when none does, and names a cursor of another run', async () => {
    const s = await cluster();
    const service = s.service('n03');
    const first = await service.watchChanges(null, ['job'], 60_000);
    expect(first.changed).toEqual([]); // no cursor yet: at once, with one to wait from

    const quiet = s.drive(service.watchChanges(first.cursor, ['job', 'fire'], 300), 'a watch with nothing to report');
    const startMs = s.now();
    expect(await quiet).toEqual({ cursor: first.cursor, changed: [] });
    expect(s.now() - startMs).toBeGreaterThanOrEqual(300);

    // A job added through another member wakes a watch on jobs, not one on fires only.
    const onJobs = service.watchChanges(first.cursor, ['job'], 60_000);
    const onFires = service.watchChanges(first.cursor, ['fire'], 5_000);
    let wokenAtMs: number | null = null;
    void onJobs.then(() => (wokenAtMs = s.now()));
    const addedAtMs = s.now();
    await s.addJob('n01', 'nightly', { cmd: 'sleep:1' }); // moves the clock until n01 has it acknowledged
    const woken = await s.drive(onJobs, 'a watch on jobs');
    expect(woken.changed).toEqual(['job']);
    expect(woken.cursor).not.toBe(first.cursor);
    expect(wokenAtMs! - addedAtMs).toBeLessThan(5_000);
    expect((await s.drive(onFires, 'a watch on fires')).changed).toEqual([]);
    // From the new cursor, the same change is not news again; from the old one it still is.
    expect((await s.drive(service.watchChanges(woken.cursor, ['job'], 0), 'a look from the new cursor')).changed).toEqual([]);
    expect((await s.drive(service.watchChanges(first.cursor, [], 0), 'a look at every kind')).changed).toContain('job');
    expect(service.watchedInstances()).toBe(0); // no waiter left behind

    // A cursor of an earlier run of the daemon: everything may have changed.
    const [, seq] = woken.cursor.split('.');
    expect((await service.watchChanges(`000000000000.${seq}`, ['job', 'instance'], 60_000)).changed).toEqual(['job', 'instance']);
    for (const bad of ['', 'nope', `${woken.cursor.split('.')[0]}.99999999`]) {
      const err = await apiError(service.watchChanges(bad, ['job'], 0));
      expect([err.status, err.code]).toEqual([400, 'bad-cursor']);
    }
  });

  it('a job list asked for recent runs gives each job its newest instances, newest first, with their status; asked for none, none', async () => {
    const s = await cluster();
    await s.addJob('n01', 'often', { cmd: 'sleep:1' });
    await s.addJob('n01', 'once', { cmd: 'sleep:1' });
    const often: string[] = [];
    for (let i = 0; i < 3; i++) {
      often.push((await s.runJob('n02', 'often')).id);
      await s.run(10); // distinct creation times
    }
    const once = (await s.runJob('n02', 'once')).id;
    const service = s.service('n03');
    await s.until(() => [...often, once].every((id) => s.store('n03').instance(id) !== undefined && service.getInstance(id).status === 'succeeded'), 10_000, 'every run ended, as n03 sees it');
    const listed = service.listJobs(2).items.map((j) => [j.name, j.recent]);
    expect(listed).toEqual([
      ['often', [often[2], often[1]].map((id) => ({ id, status: 'succeeded', createdAt: service.getInstance(id as string).createdAt }))],
      ['once', [{ id: once, status: 'succeeded', createdAt: service.getInstance(once).createdAt }]],
    ]);
    expect(service.listJobs().items.map((j) => j.recent)).toEqual([undefined, undefined]);
  });

  it('cancel through one node cancels the instance everywhere; a cancel of a finished instance changes nothing', async () => {
    const s = await cluster();
    await s.addJob('n01', 'long', { cmd: 'sleep:60000' });
    const instance = await s.runJob('n02', 'long');
    // The leader and n02 hold it when the run is answered; the others hear of it by gossip.
    await s.until(() => s.liveIds().every((id) => s.store(id).instance(instance.id) !== undefined) && s.service('n01').getInstance(instance.id).status === 'running', 5000, 'running');
    await s.cancel('n03', instance.id);
    await s.until(() => s.liveIds().every((id) => s.service(id).getInstance(instance.id).status === 'cancelled'), 10_000, 'cancelled everywhere');
    const before = s.store('n01').instance(instance.id);
    await s.cancel('n01', instance.id);
    expect(s.store('n01').instance(instance.id)).toBe(before);
    const unknown = await apiError(s.drive(s.service('n01').cancelInstance('nope'), 'cancel of an unknown instance'));
    expect([unknown.status, unknown.code]).toEqual([404, 'unknown-instance']);
  });

  it('a run asked again with its request id (a lost answer, another member) makes one instance; the same id for another command is 409', async () => {
    const s = await cluster();
    await addJobEverywhere(s, 'once', 'sleep:10');
    const first = await s.drive(s.service('n02').runJob('once', { requestId: 'ci-build-1234' }), 'a run with a request id');
    const again = await s.drive(s.service('n02').runJob('once', { requestId: 'ci-build-1234' }), 'the same request again');
    const elsewhere = await s.drive(s.service('n03').runJob('once', { requestId: 'ci-build-1234' }), 'the same request through another member');
    expect([again.id, elsewhere.id]).toEqual([first.id, first.id]);
    const other = await s.drive(s.service('n02').runJob('once', { requestId: 'ci-build-5678' }), 'another request');
    expect(other.id).not.toBe(first.id);
    await s.run(2000);
    expect(s.store('n01').instances().filter((i) => i.job === 'once')).toHaveLength(2);

    const spec = s.store('n01').job('once')!.spec!;
    const adhoc = await s.drive(s.service('n03').runAdhoc({ ...spec, cmd: 'sleep:20' }, { requestId: 'deploy-42' }), 'an ad-hoc run');
    expect((await s.drive(s.service('n01').runAdhoc({ ...spec, cmd: 'sleep:20' }, { requestId: 'deploy-42' }), 'the same ad-hoc run')).id).toBe(adhoc.id);
    const reused = await apiError(s.drive(s.service('n03').runAdhoc({ ...spec, cmd: 'sleep:30' }, { requestId: 'deploy-42' }), 'another command with the same id'));
    expect([reused.status, reused.code]).toEqual([409, 'request-id-reused']);
  });

  it('a run forwarded to the leader survives the leader crashing right after its answer: the member that asked holds it, and it ends', async () => {
    const s = await cluster();
    await addJobEverywhere(s, 'kept', 'sleep:200');
    const { leader, member } = leaderAndMember(s);
    const view = await s.drive(s.service(member).runJob('kept', { requestId: 'kept-run-1' }), 'a run through a member');
    s.crash(leader);
    await s.until(() => s.liveIds().every((id) => s.store(id).instance(view.id) !== undefined), 10_000, 'the survivors holding the run');
    // A new leader carries it on: the crashed one's share ends node-lost, the others run theirs.
    await s.until(() => s.liveIds().every((id) => ['succeeded', 'failed'].includes(s.service(id).getInstance(view.id).status)), 30_000, 'the run ending everywhere');
  });

  it('a job add asked again with its request id is answered as the first was (no 409 job-exists); the same id for another job write is 409', async () => {
    const s = await cluster();
    const spec = jobSpec({ cmd: 'sleep:1' });
    const first = await s.drive(s.service('n02').putJob('deploy', spec, false, 'add-deploy-1'), 'job add');
    const again = await s.drive(s.service('n02').putJob('deploy', spec, false, 'add-deploy-1'), 'the same job add again');
    expect(again).toEqual(first);
    const other = await apiError(s.drive(s.service('n02').putJob('deploy', { ...spec, cmd: 'sleep:2' }, false, 'add-deploy-1'), 'another write with the same id'));
    expect([other.status, other.code]).toEqual([409, 'request-id-reused']);
    const noKey = await apiError(s.drive(s.service('n02').putJob('deploy', spec, false), 'the same add without an id'));
    expect(noKey.code).toBe('job-exists');
  });

  it('a run forwarded to a frozen leader: the member says why it did not answer (busy, or suspected and replaced), and the run asked again with its request id, on whichever leader, is the one instance', async () => {
    const s = await cluster();
    await addJobEverywhere(s, 'slow-leader', 'sleep:10');
    const { leader, member } = leaderAndMember(s);
    s.freeze(leader);
    const busy = await apiError(s.drive(s.service(member).runJob('slow-leader', { requestId: 'frozen-leader-1' }), 'a run while the leader is frozen'));
    // Alive and silent is busy; once suspected, another member leads (this one, here) and takes the request.
    expect(busy.status).toBe(503);
    // A suspect leader is still the leader (busy, not lost) until it is declared dead.
    expect([busy.code, busy.message]).toEqual(['leader-busy', expect.stringMatching(/^the leader n0\d is (alive|suspect) but did not answer within 2500 ms \(busy\)/)]);
    s.thaw(leader);
    let view: Awaited<ReturnType<ReturnType<SimCluster['service']>['runJob']>> | null = null;
    const deadlineMs = s.now() + 30_000;
    while (view === null && s.now() < deadlineMs) {
      try {
        view = await s.drive(s.service(member).runJob('slow-leader', { requestId: 'frozen-leader-1' }), 'the run asked again');
      } catch (err) {
        if (!['leader-busy', 'leader-lost', 'no-leader'].includes((err as { code?: string }).code ?? '')) throw err;
        await s.run(250);
      }
    }
    expect(view).not.toBeNull();
    await s.until(() => s.liveIds().every((id) => s.store(id).instance(view!.id)?.job === 'slow-leader' && s.service(id).getInstance(view!.id).status === 'succeeded'), 20_000, 'the run ending everywhere');
    for (const id of s.liveIds()) expect(s.store(id).instances().filter((i) => i.job === 'slow-leader').map((i) => i.id)).toEqual([view!.id]);
  });

  it('a job or a run whose --notify-secret-file this daemon cannot sign with is refused (400 bad-secret-file), saying why and where it is read; nothing is written', async () => {
    // The file system of the simulated hosts: one good key; everything else refused the way webhook-io.ts words it.
    const readSecret = async (file: string) => {
      if (file === '/etc/chorus/hook.key') return 'sesame';
      throw new SecretFileError(`--notify-secret-file ${file}: it is not a regular file (a FIFO). A secret file must be ...`);
    };
    const s = await cluster({ webhooks: () => ({ post: () => Promise.reject(new Error('no receiver')), readSecret }) });
    const service = s.service('n02');
    const notify = { notify: ['http://127.0.0.1:9/hook'] };

    const job = await apiError(s.drive(service.putJob('signed', jobSpec({ ...notify, notifySecretFile: '/tmp/fifo' }), false), 'add with a FIFO'));
    expect([job.status, job.code]).toEqual([400, 'bad-secret-file']);
    expect(job.message).toMatch(/^--notify-secret-file \/tmp\/fifo: it is not a regular file \(a FIFO\)\. /);
    expect(job.message).toMatch(/It is read on the node that delivers \(the leader\), so every node that may lead needs it; this check ran on sim-n02\.$/);
    const run = await apiError(s.drive(service.runAdhoc(jobSpec({ ...notify, notifySecretFile: '/tmp/fifo' })), 'run with a FIFO'));
    expect([run.status, run.code]).toEqual([400, 'bad-secret-file']);
    const relative = await apiError(s.drive(service.putJob('signed', jobSpec({ ...notify, notifySecretFile: 'hook.key' }), false), 'add with a relative path'));
    expect(relative.message).toMatch(/^--notify-secret-file hook\.key: give an absolute path\. /);
    expect(s.liveIds().map((id) => s.store(id).job('signed'))).toEqual([undefined, undefined, undefined]);
    expect(s.store('n02').instances()).toEqual([]);

    await s.drive(service.putJob('signed', jobSpec({ ...notify, notifySecretFile: '/etc/chorus/hook.key' }), false), 'add with a good key');
    expect(s.store('n02').job('signed')?.spec?.notifySecretFile).toBe('/etc/chorus/hook.key');
  });
});
