// Webhooks (`--notify URL`, issue 11 part 6): when an instance ends, the leader writes one
// delivery record per URL with itself as runner; the runner POSTs the instance's JSON,
// signed with HMAC-SHA256 when the job names a secret file, and retries with backoff for
// up to 10 minutes (config.webhook*). A delivery is done once per instance end: its success is journalled
// (fsynced) before its record is written, so a runner that restarts in between does not
// POST again; a new leader takes over only deliveries whose runner died, and an ended
// delivery outranks any takeover in the merge (records/merge.ts mergeNotify). The POST and
// the secret file themselves are in webhook-io.ts.
import { createHmac } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { Ticker } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import { formatDurationUnits } from '../core/duration.js';
import type { Logger } from '../core/log.js';
import type { MembershipView } from '../cluster/view.js';
import { isGone } from '../cluster/view.js';
import type { HybridClock } from '../records/hlc.js';
import { UNSIGNED } from '../records/signature.js';
import { isInstanceFinished } from '../records/status.js';
import type { AnyRecord, InstanceRecord, NotifyRecord } from '../records/types.js';
import type { AttemptJournal } from '../store/journal.js';
import { instanceIdOf, type RecordStore } from '../store/record-store.js';

export interface WebhookAnswer {
  status: number;
  /** Bytes of the answer's body read (and dropped) before the connection was closed. */
  answerBytes?: number;
}

export interface NotifierDeps {
  clock: Clock;
  config: ChorusConfig;
  store: RecordStore;
  hlc: HybridClock;
  view: MembershipView;
  journal: AttemptJournal;
  commit: (records: AnyRecord[]) => void;
  log: Logger;
  /** Whether this node leads and its state is fresh enough to act on (as the leader's own check). */
  mayLead: () => boolean;
  /** The body: the instance's JSON as `chorus instance show --json` prints it. */
  bodyOf: (instanceId: string) => unknown;
  /** POSTs `body` to `url`; rejects on a network error, a timeout, or when `stop` fires (the notifier stops). */
  post: (url: string, body: string, headers: Record<string, string>, stop: AbortSignal) => Promise<WebhookAnswer>;
  /** The key in a --notify-secret-file; rejects, saying why, when the file cannot serve as one. */
  readSecret: (file: string) => Promise<string>;
}

/** Backoff before try `n + 1` after `n` failed tries: 1 s, 2 s, 4 s ... at most 60 s (by default). */
export function backoffMs(config: Pick<ChorusConfig, 'webhookBackoffBaseMs' | 'webhookBackoffMaxMs'>, failedTries: number): number {
  return Math.min(config.webhookBackoffMaxMs, config.webhookBackoffBaseMs * 2 ** Math.max(0, failedTries - 1));
}

/** Whether an instance that ended with `status` calls its webhooks. */
export function wantsNotify(instance: InstanceRecord, status: string): boolean {
  const urls = instance.spec.notify ?? [];
  if (urls.length === 0) return false;
  return (instance.spec.notifyOn ?? 'failure') === 'always' || status !== 'succeeded';
}

/** `sha256=HEX` of the body under the key, as GitHub's webhooks sign. */
export function signatureOf(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const journalIdOf = (n: NotifyRecord) => `${n.instanceId}:notify-${n.index}`;

export class Notifier {
  /** Instances whose records changed since the leader last looked (one may have ended). */
  private readonly changed = new Set<string>();
  /** Deliveries this node is POSTing right now. */
  private readonly inFlight = new Set<string>();
  /** Aborted by stop(): POSTs in flight end at once, and nothing is written for them. */
  private stopping = new AbortController();

  constructor(private readonly deps: NotifierDeps) {
    this.ticker = new Ticker(deps.clock, () => this.tick(), () => Math.max(deps.config.leaderTickMs, this.nextMs - deps.clock.now()));
    deps.store.onChange((records) => {
      let wake = false;
      for (const r of records) {
        const id = instanceIdOf(r);
        if (id !== null && r.kind !== 'notify') this.changed.add(id);
        if (r.kind === 'notify' && r.record.runner === deps.view.selfId && r.record.status === 'pending') wake = true;
      }
      if (wake || this.changed.size > 0) this.ticker.soon();
    });
  }

  start(): void {
    if (this.stopping.signal.aborted) this.stopping = new AbortController();
    this.ticker.start(this.deps.config.leaderIdleTickMs);
  }

  /** Stops at once: POSTs in flight are aborted and left pending (this node, back, or a new leader sends them again). */
  stop(): void {
    this.ticker.stop();
    this.stopping.abort(new Error('the notifier stopped'));
  }

  /** Refuses, saying why, a --notify-secret-file that this node could not sign with (a job's add checks it here). */
  async checkSecretFile(file: string): Promise<void> {
    await this.deps.readSecret(file);
  }

  /** A member's state changed: a runner may have died (its deliveries are taken over at the next tick). */
  membershipChanged(): void {
    this.ticker.soon();
  }

  private readonly ticker: Ticker;
  /** When the next look is due: a delivery's retry time, or a slow safety look. */
  private nextMs = 0;

  private tick(): void {
    this.nextMs = this.deps.clock.now() + this.deps.config.leaderIdleTickMs * 4;
    if (this.deps.mayLead()) this.lead();
    this.nextMs = Math.min(this.nextMs, this.deliverOwn());
  }

  /** The leader's part: deliveries for instances that ended, and takeovers from runners that died. */
  private lead(): void {
    const { store, view, hlc } = this.deps;
    const writes: AnyRecord[] = [];
    for (const id of this.changed) {
      const instance = store.instance(id);
      if (!instance) continue;
      const status = store.statusOf(instance);
      if (!isInstanceFinished(status) || !wantsNotify(instance, status) || store.notificationsOf(id).length > 0) continue;
      const stamp = hlc.tick();
      (instance.spec.notify ?? []).forEach((url, index) => {
        const record: NotifyRecord = { instanceId: id, index, url, runner: view.selfId, generation: 1, status: 'pending', attempts: 0, lastError: null, firstTryAtMs: null, nextTryAtMs: null, deliveredAtMs: null, stamp, sig: UNSIGNED };
        writes.push({ kind: 'notify', record });
      });
      this.deps.log.info({ job: instance.job, instanceId: id, nodeId: view.selfId, attempt: null, status, webhooks: instance.spec.notify?.length }, 'instance ended: webhooks to call');
    }
    this.changed.clear();
    for (const n of store.notifications()) {
      if (n.status !== 'pending' || n.runner === view.selfId || !isGone(view.stateOf(n.runner))) continue;
      writes.push({ kind: 'notify', record: { ...n, runner: view.selfId, generation: n.generation + 1, nextTryAtMs: null, stamp: hlc.tick(), sig: UNSIGNED } });
      this.deps.log.warn({ instanceId: n.instanceId, nodeId: view.selfId, attempt: null, url: n.url, from: n.runner }, 'webhook delivery taken over: its runner is gone');
    }
    if (writes.length > 0) this.deps.commit(writes);
  }

  /** The runner's part: POSTs its due deliveries; returns when it next has one due. */
  private deliverOwn(): number {
    const { store, view, clock, journal } = this.deps;
    const nowMs = clock.now();
    let nextMs = Number.POSITIVE_INFINITY;
    for (const n of store.notifications()) {
      if (n.status !== 'pending' || n.runner !== view.selfId) continue;
      const key = `${n.instanceId}/${n.index}`;
      if (this.inFlight.has(key)) continue;
      // Delivered before a restart, but the record did not get out: say so without POSTing again.
      const end = journal.endOf(journalIdOf(n), n.generation);
      if (end?.status === 'succeeded') {
        this.write(n, { status: 'delivered', deliveredAtMs: end.atMs, nextTryAtMs: null });
        continue;
      }
      const dueMs = n.nextTryAtMs ?? nowMs;
      if (dueMs > nowMs) {
        nextMs = Math.min(nextMs, dueMs);
        continue;
      }
      this.inFlight.add(key);
      void this.deliver(n).finally(() => {
        this.inFlight.delete(key);
        this.ticker.soon();
      });
    }
    return nextMs;
  }

  private async deliver(n: NotifyRecord): Promise<void> {
    const { clock, journal, log } = this.deps;
    const stop = this.stopping.signal;
    const startedAtMs = clock.now();
    const firstTryAtMs = n.firstTryAtMs ?? startedAtMs;
    const attempts = n.attempts + 1;
    let error: string;
    try {
      const body = JSON.stringify(this.deps.bodyOf(n.instanceId));
      const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'chorus', 'x-chorus-event': 'instance.ended', 'x-chorus-delivery': `${n.instanceId}/${n.index}` };
      const secretFile = this.deps.store.instance(n.instanceId)?.spec.notifySecretFile;
      if (secretFile) headers['x-chorus-signature'] = signatureOf(await this.deps.readSecret(secretFile), body);
      if (stop.aborted) return;
      const answer = await this.deps.post(n.url, body, headers, stop);
      if (answer.status >= 200 && answer.status < 300) {
        const nowMs = clock.now();
        journal.recordEnd({ instanceId: journalIdOf(n), attempt: n.generation, atMs: nowMs, status: 'succeeded', reason: null, exitCode: answer.status, startedAtMs });
        this.write(n, { status: 'delivered', attempts, firstTryAtMs, deliveredAtMs: nowMs, nextTryAtMs: null, lastError: null });
        log.info({ instanceId: n.instanceId, nodeId: this.deps.view.selfId, attempt: attempts, url: n.url, httpStatus: answer.status, answerBytes: answer.answerBytes }, 'webhook delivered');
        return;
      }
      error = `HTTP ${answer.status}`;
    } catch (err) {
      if (stop.aborted) return;
      error = (err as Error).message.slice(0, 500);
    }
    const nowMs = clock.now();
    const { config } = this.deps;
    const giveUp = nowMs + backoffMs(config, attempts) > firstTryAtMs + config.webhookRetryForMs;
    this.write(n, { status: giveUp ? 'failed' : 'pending', attempts, firstTryAtMs, lastError: error, nextTryAtMs: giveUp ? null : nowMs + backoffMs(config, attempts) });
    const gaveUp = `webhook failed: gave up after ${formatDurationUnits(config.webhookRetryForMs)} of retries`;
    log.warn({ instanceId: n.instanceId, nodeId: this.deps.view.selfId, attempt: attempts, url: n.url, error }, giveUp ? gaveUp : 'webhook try failed; retrying');
  }

  private write(n: NotifyRecord, change: Partial<NotifyRecord>): void {
    // The latest version held (a takeover by another leader may have come in while POSTing: then it is no longer ours to write).
    const current = this.deps.store.notificationsOf(n.instanceId).find((x) => x.index === n.index) ?? n;
    if (current.runner !== this.deps.view.selfId || current.status !== 'pending') return;
    this.deps.commit([{ kind: 'notify', record: { ...current, ...change, stamp: this.deps.hlc.tick(), sig: UNSIGNED } }]);
  }
}
