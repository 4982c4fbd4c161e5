// Webhooks (issue 11, part 6) in virtual time: an instance that ends POSTs its JSON once
// per URL, signed when a secret is named, retried with backoff, and delivered once even
// when the leader that runs the delivery dies in the middle of its retries.
import { describe, expect, it } from 'vitest';
import type { Clock } from '../core/clock.js';
import { isInstanceFinished } from '../records/status.js';
import { signatureOf } from '../scheduler/notifier.js';
import { SimCluster } from '../testing/sim-cluster.js';

interface Post {
  from: string;
  url: string;
  body: string;
  headers: Record<string, string>;
  answered: number;
}

/** A fake receiver: answers each POST after 5 ms of the sender's clock with the status `answer` picks. */
function receiver(answer: (post: Post, nth: number) => number) {
  const posts: Post[] = [];
  const webhooks = (nodeId: string, clock: Clock) => ({
    post: (url: string, body: string, headers: Record<string, string>) =>
      new Promise<{ status: number }>((resolve) => {
        clock.setTimer(5, () => {
          const post: Post = { from: nodeId, url, body, headers, answered: 0 };
          post.answered = answer(post, posts.filter((p) => p.url === url).length + 1);
          posts.push(post);
          resolve({ status: post.answered });
        });
      }),
    readSecret: async (file: string) => `secret-of-${file}`,
  });
  return { posts, webhooks };
}

async function formed(sim: SimCluster): Promise<string> {
  sim.start('all');
  await sim.until(() => sim.agreed() && sim.agreedLeader() !== null, 15_000, 'a leader');
  return sim.agreedLeader() as string;
}

describe('webhooks in the simulator', () => {
  it('a failed instance POSTs its JSON once to each URL, signed; a succeeded one only with --notify-on always', async () => {
    const rx = receiver(() => 200);
    const sim = new SimCluster({ seed: 301, size: 3, webhooks: rx.webhooks });
    try {
      const leader = await formed(sim);
      await sim.addJob(leader, 'bad', { cmd: 'fail:3', notify: ['http://127.0.0.1:9/a', 'http://127.0.0.1:9/b'], notifySecretFile: '/etc/chorus/hook.key' });
      await sim.addJob(leader, 'good', { cmd: 'sleep:10', notify: ['http://127.0.0.1:9/good'] });
      await sim.addJob(leader, 'loud', { cmd: 'sleep:10', notify: ['http://127.0.0.1:9/loud'], notifyOn: 'always' });
      const bad = await sim.runJob(leader, 'bad');
      const good = await sim.runJob(leader, 'good');
      const loud = await sim.runJob(leader, 'loud');
      await sim.until(() => [bad, good, loud].every((i) => isInstanceFinished(sim.progressSeenBy(leader, i.id)?.status ?? 'pending')), 10_000, 'the instances ending');
      await sim.until(() => sim.service(leader).getInstance(bad.id).notifications.every((n) => n.status === 'delivered') && rx.posts.length >= 3, 10_000, 'the deliveries');
      await sim.run(5_000); // nothing more comes
      expect(rx.posts.map((p) => p.url).sort()).toEqual(['http://127.0.0.1:9/a', 'http://127.0.0.1:9/b', 'http://127.0.0.1:9/loud']);
      const a = rx.posts.find((p) => p.url.endsWith('/a')) as Post;
      expect(JSON.parse(a.body)).toMatchObject({ id: bad.id, job: 'bad', status: 'failed' });
      expect(a.headers['x-chorus-signature']).toBe(signatureOf('secret-of-/etc/chorus/hook.key', a.body));
      expect(a.headers['x-chorus-delivery']).toBe(`${bad.id}/0`);
      expect(rx.posts.find((p) => p.url.endsWith('/loud'))?.headers['x-chorus-signature']).toBeUndefined();
      const view = sim.service(sim.liveIds().find((n) => n !== leader) as string).getInstance(bad.id);
      expect(view.notifications.map((n) => [n.url, n.status, n.attempts])).toEqual([['http://127.0.0.1:9/a', 'delivered', 1], ['http://127.0.0.1:9/b', 'delivered', 1]]);
      expect(sim.service(leader).getInstance(good.id).notifications).toEqual([]);
    } finally {
      sim.dispose();
    }
  });

  it('retries with backoff until the receiver takes it', async () => {
    const rx = receiver((_p, nth) => (nth <= 3 ? 503 : 204));
    const sim = new SimCluster({ seed: 302, size: 3, webhooks: rx.webhooks });
    try {
      const leader = await formed(sim);
      await sim.addJob(leader, 'bad', { cmd: 'fail:1', notify: ['http://127.0.0.1:9/x'] });
      const bad = await sim.runJob(leader, 'bad');
      await sim.until(() => sim.service(leader).getInstance(bad.id).notifications[0]?.status === 'delivered', 30_000, 'the delivery');
      const n = sim.service(leader).getInstance(bad.id).notifications[0];
      expect(n).toMatchObject({ status: 'delivered', attempts: 4, lastError: null });
      expect(rx.posts.map((p) => p.answered)).toEqual([503, 503, 503, 204]);
    } finally {
      sim.dispose();
    }
  });

  it('a runner killed in the middle of its retries: the next leader takes the delivery over and delivers it once', async () => {
    let up = false;
    const rx = receiver(() => (up ? 200 : 500));
    const sim = new SimCluster({ seed: 303, size: 4, webhooks: rx.webhooks });
    try {
      const leader = await formed(sim);
      await sim.addJob(leader, 'bad', { cmd: 'fail:1', notify: ['http://127.0.0.1:9/x'] });
      const bad = await sim.runJob(leader, 'bad');
      await sim.until(() => rx.posts.length >= 2, 30_000, 'two failed tries');
      sim.crash(leader);
      up = true;
      const other = sim.liveIds()[0] as string;
      await sim.until(() => sim.service(other).getInstance(bad.id).notifications[0]?.status === 'delivered', 60_000, 'the delivery by the next leader');
      await sim.run(10_000);
      const delivered = rx.posts.filter((p) => p.answered === 200);
      expect(delivered).toHaveLength(1);
      expect(delivered[0]?.from).not.toBe(leader);
      const n = sim.service(other).getInstance(bad.id).notifications[0];
      expect(n?.runner).toBe(delivered[0]?.from);
      expect(n?.attempts).toBeGreaterThanOrEqual(2); // the tries it knew of from the dead runner, and its own
    } finally {
      sim.dispose();
    }
  });
});
