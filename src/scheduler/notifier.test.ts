// The webhook runner's own rules, in one node: backoff, the 10-minute limit, the journal
// that keeps a delivered webhook from being POSTed again after a restart, a secret file
// refused at delivery, and a stop that does not wait for a POST.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../core/config.js';
import { silentLogger } from '../core/log.js';
import type { MembershipView } from '../cluster/view.js';
import { HybridClock } from '../records/hlc.js';
import type { AnyRecord, NotifyRecord } from '../records/types.js';
import { MemoryJournal } from '../store/journal.js';
import { RecordStore } from '../store/record-store.js';
import { FakeClock } from '../testing/fake-clock.js';
import { jobSpec } from '../testing/fixtures.js';
import { waitFor } from '../testing/wait.js';
import { backoffMs, Notifier, signatureOf, type NotifierDeps } from './notifier.js';
import { readSecretFile } from './webhook-io.js';

const SELF = 'n1';

function setup(answer: (stop: AbortSignal) => Promise<{ status: number }>, readSecret: NotifierDeps['readSecret'] = async () => 'k') {
  const clock = new FakeClock(Date.UTC(2026, 11, 6));
  const store = RecordStore.inMemory(clock);
  const journal = new MemoryJournal();
  const posts: string[] = [];
  const view = { selfId: SELF, stateOf: () => 'alive', members: () => [], leaderId: () => SELF, goneMembers: () => new Set() } as unknown as MembershipView;
  const notifier = new Notifier({
    clock,
    config: defaultConfig,
    store,
    hlc: new HybridClock(clock, SELF),
    view,
    journal,
    commit: (records: AnyRecord[]) => void store.apply(records),
    log: silentLogger,
    mayLead: () => false,
    bodyOf: (id) => ({ id }),
    post: async (url, _body, _headers, stop) => {
      posts.push(url);
      return answer(stop);
    },
    readSecret,
  });
  const pending: NotifyRecord = { instanceId: 'i1', index: 0, url: 'http://127.0.0.1:9/h', runner: SELF, generation: 1, status: 'pending', attempts: 0, lastError: null, firstTryAtMs: null, nextTryAtMs: null, deliveredAtMs: null, stamp: { wallMs: 1, counter: 0, nodeId: SELF }, sig: '' };
  return { clock, store, journal, posts, notifier, pending };
}

const state = (store: RecordStore) => store.notificationsOf('i1')[0];

describe('webhook runner', () => {
  it('backs off 1 s, 2 s, 4 s ... up to 60 s', () => {
    expect([1, 2, 3, 4, 7, 8, 20].map((tries) => backoffMs(defaultConfig, tries))).toEqual([1000, 2000, 4000, 8000, 60000, 60000, 60000]);
  });

  it('signs like GitHub: sha256= and the hex HMAC of the body', () => {
    expect(signatureOf('key', '{"a":1}')).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(signatureOf('key', '{"a":1}')).not.toBe(signatureOf('key2', '{"a":1}'));
  });

  it('gives up 10 minutes after the first try: failed, with the last error', async () => {
    const { clock, store, notifier, pending, posts } = setup(async () => ({ status: 500 }));
    store.apply([{ kind: 'notify', record: pending }]);
    notifier.start();
    await clock.advanceAsync(defaultConfig.webhookRetryForMs + 120_000, 500);
    notifier.stop();
    expect(state(store)).toMatchObject({ status: 'failed', lastError: 'HTTP 500' });
    // 1+2+4+8+16+32 s, then every 60 s until 10 minutes: about 14 tries.
    expect(posts.length).toBeGreaterThanOrEqual(12);
    expect(posts.length).toBeLessThanOrEqual(16);
  });

  it('a delivery the journal says succeeded is recorded delivered without a second POST (a restart between the answer and the record)', async () => {
    const { clock, store, journal, notifier, pending, posts } = setup(async () => ({ status: 200 }));
    journal.recordEnd({ instanceId: 'i1:notify-0', attempt: 1, atMs: clock.now() - 1000, status: 'succeeded', reason: null, exitCode: 200, startedAtMs: clock.now() - 1100 });
    store.apply([{ kind: 'notify', record: pending }]);
    notifier.start();
    await clock.advanceAsync(5_000, 500);
    notifier.stop();
    expect(posts).toEqual([]);
    expect(state(store)?.status).toBe('delivered');
  });

  it('a network error is a failed try, retried', async () => {
    let n = 0;
    const { clock, store, notifier, pending, posts } = setup(async () => {
      n += 1;
      if (n === 1) throw new Error('connect ECONNREFUSED 127.0.0.1:9');
      return { status: 201 };
    });
    store.apply([{ kind: 'notify', record: pending }]);
    notifier.start();
    await clock.advanceAsync(10_000, 250);
    notifier.stop();
    expect(posts).toHaveLength(2);
    expect(state(store)).toMatchObject({ status: 'delivered', attempts: 2, lastError: null });
  });

  it('a secret file refused at delivery (a FIFO) is a failed try with the reason, retried; nothing waits on the FIFO', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chorus-notifier-'));
    try {
      const fifo = join(dir, 'hook.key');
      execFileSync('mkfifo', ['-m', '600', fifo]);
      const { clock, store, notifier, pending, posts } = setup(async () => ({ status: 200 }), readSecretFile);
      store.apply([{ kind: 'instance', record: { id: 'i1', job: 'j', spec: jobSpec({ notify: [pending.url], notifySecretFile: fifo }), trigger: 'manual', scheduledAtMs: null, createdAtMs: clock.now(), targets: [SELF], failure: null, stamp: { wallMs: 1, counter: 0, nodeId: SELF }, sig: '' } }]);
      store.apply([{ kind: 'notify', record: pending }]);
      notifier.start();
      // The file is opened in real time, the backoff passes on the fake clock.
      await waitFor(async () => {
        await clock.advanceAsync(250, 250);
        return (state(store)?.attempts ?? 0) >= 2;
      }, { timeoutMs: 10_000, what: 'two failed tries' });
      notifier.stop();
      expect(posts).toEqual([]); // never sent unsigned
      expect(state(store)).toMatchObject({ status: 'pending', attempts: 2 });
      expect(state(store)?.lastError).toMatch(/--notify-secret-file .*hook\.key: it is not a regular file \(a FIFO\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stop aborts a POST in flight and leaves its delivery pending, with no try counted', async () => {
    const aborted: unknown[] = [];
    const { clock, store, notifier, pending, posts } = setup(
      (stop) =>
        new Promise((_resolve, reject) => {
          stop.addEventListener('abort', () => {
            aborted.push(stop.reason);
            reject(stop.reason as Error);
          });
        }),
    );
    store.apply([{ kind: 'notify', record: pending }]);
    notifier.start();
    await clock.advanceAsync(1_000, 250);
    expect(posts).toHaveLength(1);
    notifier.stop();
    await clock.advanceAsync(5_000, 250);
    expect(aborted).toHaveLength(1);
    expect(posts).toHaveLength(1);
    expect(state(store)).toMatchObject({ status: 'pending', attempts: 0, lastError: null });
  });
});
