// Fire history (issue 11, part 4) in virtual time: every due fire of a scheduled job gets
// one decision, replicated, the same on every node; a leader's death leaves late fires
// that each misfire policy decides its own way; disabled and forbid-overlap fires are
// recorded as skipped.
import { describe, expect, it } from 'vitest';
import type { FireView } from '../api/views.js';
import { SimCluster } from '../testing/sim-cluster.js';

const SECOND = 1000;

describe('fire history in the simulator', () => {
  it('records one decision per due fire, the same everywhere, across a leader failover, per misfire policy', async () => {
    const sim = new SimCluster({ seed: 211, size: 4, network: { lossRate: 0.02, minDelayMs: 1, maxDelayMs: 10 } });
    try {
      sim.start('all');
      await sim.until(() => sim.agreed() && sim.agreedLeader() !== null, 15_000, 'a leader');
      const leader = sim.agreedLeader() as string;
      const every = { kind: 'every' as const, intervalMs: SECOND };
      await sim.addJob(leader, 'once', { cmd: 'sleep:10', schedule: every, misfire: 'once', misfireWindowMs: 300 });
      await sim.addJob(leader, 'all', { cmd: 'sleep:10', schedule: every, misfire: 'all' });
      await sim.addJob(leader, 'skip', { cmd: 'sleep:10', schedule: every, misfire: 'skip' });
      await sim.addJob(leader, 'busy', { cmd: 'sleep:2500', schedule: every, concurrency: 'forbid' });
      await sim.addJob(leader, 'off', { cmd: 'sleep:10', schedule: every });
      await sim.drive(sim.service(leader).setJobEnabled('off', false), 'disable off');
      await sim.run(4 * SECOND);
      // Frozen rather than killed: the others take seconds to give up on it, so fires fall due with no leader.
      sim.freeze(leader);
      await sim.until(() => { const l = sim.agreedLeader(); return l !== null && l !== leader; }, 20_000, 'a new leader');
      await sim.run(4 * SECOND);
      await sim.until(() => sim.converged(sim.liveIds().filter((n) => n !== leader)), 20_000, 'the cluster converging');

      const live = sim.liveIds().filter((n) => n !== leader);
      const history = (on: string, job: string): FireView[] => sim.service(on).jobHistory(job, 10_000);
      for (const job of ['once', 'all', 'skip', 'busy', 'off']) {
        const first = history(live[0] as string, job);
        for (const on of live.slice(1)) expect(history(on, job), `${job}'s history at ${on}`).toEqual(first);
        // One decision per due time, none missing: consecutive seconds from the first.
        const times = first.map((f) => Date.parse(f.scheduledAt)).sort((a, b) => a - b);
        expect(times.length).toBeGreaterThan(6);
        times.slice(1).forEach((t, i) => expect(t - (times[i] as number), `${job}: a due fire with no decision`).toBe(SECOND));
        expect(new Set(first.map((f) => f.leader)).size, `${job}: decided by both leaders`).toBe(2);
      }
      const outcomes = (job: string) => new Set(history(live[0] as string, job).map((f) => `${f.outcome}${f.reason ? `/${f.reason}` : ''}`));
      expect(outcomes('off')).toEqual(new Set(['skipped/disabled']));
      expect(outcomes('busy')).toContain('skipped/forbid-overlap');
      expect(outcomes('busy')).toContain('created');
      // The fires due while no leader was there: late. once (window 300 ms) misses them; all catches them up; skip misses them.
      expect(outcomes('once')).toContain('missed/past-misfire-window');
      expect(outcomes('all')).toContain('caught-up');
      expect(outcomes('all')).not.toContain('missed/past-misfire-window');
      expect(outcomes('skip')).toContain('missed/past-misfire-window');
      // A created fire names its instance, which exists.
      for (const f of history(live[0] as string, 'all').filter((x) => x.outcome === 'created' || x.outcome === 'caught-up')) {
        expect(sim.store(live[0] as string).instance(f.instanceId as string), `instance of ${f.scheduledAt}`).toBeDefined();
      }
    } finally {
      sim.dispose();
    }
  });

  it('skips the fires of a job that fires faster than it runs once it has max-unfinished-per-job unfinished instances (reason backlog), and fires again once they end', async () => {
    const sim = new SimCluster({ seed: 212, size: 3, config: { maxUnfinishedPerJob: 3 } });
    try {
      sim.start('all');
      await sim.until(() => sim.agreed() && sim.agreedLeader() !== null, 15_000, 'a leader');
      const leader = sim.agreedLeader() as string;
      await sim.addJob(leader, 'slow', { cmd: 'sleep:6500', schedule: { kind: 'every', intervalMs: SECOND } });
      let most = 0;
      for (let t = 0; t < 12; t++) {
        await sim.run(SECOND);
        most = Math.max(most, sim.store(leader).unfinishedOf('slow').size);
      }
      expect(most, 'unfinished instances of the job at once').toBe(3);
      const history = sim.service(leader).jobHistory('slow', 10_000);
      const outcomes = history.map((f) => `${f.outcome}${f.reason ? `/${f.reason}` : ''}`);
      expect(outcomes).toContain('skipped/backlog');
      // The first ones ended by now (6.5 s each): the job fired again after its backlog went down.
      expect(outcomes.filter((o) => o === 'created').length).toBeGreaterThan(3);
      expect(sim.service(leader).status().bounds.find((b) => b.name === 'unfinished instances of a job')).toMatchObject({ limit: 3 });
    } finally {
      sim.dispose();
    }
  });
});
