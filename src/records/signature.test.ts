// Records that carry their own authority: a record signed by its writer is accepted; one
// altered in any field, signed by another node, or written by a node that may not write
// it is refused. Checked with the daemon's ed25519 keys and with the simulator's keys.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ed25519RecordKeys } from '../network/record-keys.js';
import { SimKeyring } from '../testing/sim-keys.js';
import { jobSpec } from '../testing/fixtures.js';
import { authorityProblem, signRecord, UNSIGNED, type RecordKeys } from './signature.js';
import type { AnyRecord, Stamp, SubtaskRecord } from './types.js';
import { parseRecord } from './validate.js';

/** Three nodes with real ed25519 keys: their ids are peer ids, as in the daemon. */
const nodes = await Promise.all(
  [0, 1, 2].map(async () => {
    const key = await generateKeyPair('Ed25519');
    return { id: peerIdFromPrivateKey(key).toString(), keys: new Ed25519RecordKeys(key) as RecordKeys };
  }),
);
const [owner, leader, other] = nodes as [(typeof nodes)[number], (typeof nodes)[number], (typeof nodes)[number]];
const stampOf = (nodeId: string, wallMs = 2000): Stamp => ({ wallMs, counter: 0, nodeId });

function subtask(writer: string, over: Partial<SubtaskRecord> = {}): AnyRecord {
  return {
    kind: 'subtask',
    record: {
      instanceId: 'i1',
      nodeId: owner.id,
      attempt: 1,
      status: 'succeeded',
      reason: null,
      exitCode: 0,
      startedAtMs: 1500,
      finishedAtMs: 1900,
      notBeforeMs: null,
      history: [],
      reporter: writer,
      stamp: stampOf(writer),
      sig: UNSIGNED,
      ...over,
    },
  };
}

const job = (writer: string): AnyRecord => ({
  kind: 'job',
  record: { name: 'backup', spec: jobSpec(), enabled: true, deleted: false, createdAtMs: 1000, stamp: stampOf(writer), sig: UNSIGNED },
});
const member = (nodeId: string, writer = nodeId): AnyRecord => ({
  kind: 'member',
  record: { nodeId, name: 'web-1', tags: { role: 'web' }, addrs: ['/ip4/127.0.0.1/tcp/7400'], incarnation: 3, left: false, stamp: stampOf(writer), sig: UNSIGNED },
});
const instance = (writer: string): AnyRecord => ({
  kind: 'instance',
  record: { id: 'i1', job: 'backup', spec: jobSpec(), trigger: 'manual', scheduledAtMs: null, createdAtMs: 1000, targets: [owner.id, other.id].sort(), failure: null, stamp: stampOf(writer), sig: UNSIGNED },
});
const cancel = (writer: string): AnyRecord => ({ kind: 'cancel', record: { instanceId: 'i1', requestedAtMs: 3000, stamp: stampOf(writer), sig: UNSIGNED } });

/** The node whose keys sign a record written (stamped) by `id`. */
const keysOf = (id: string) => nodes.find((n) => n.id === id)?.keys as RecordKeys;
const signed = (r: AnyRecord) => signRecord(structuredClone(r), keysOf(r.record.stamp.nodeId));
/** As it arrives from the network: parsed from JSON. */
const received = (r: AnyRecord): AnyRecord => {
  const parsed = parseRecord(JSON.parse(JSON.stringify(r)));
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.record;
};

describe('record signatures (ed25519 node keys)', () => {
  it('accepts every kind of record signed by a writer allowed to write it', () => {
    for (const r of [job(other.id), member(owner.id), instance(leader.id), cancel(other.id), subtask(owner.id), subtask(owner.id, { status: 'running', exitCode: null, finishedAtMs: null })]) {
      expect(authorityProblem(received(signed(r)), other.keys), `${r.kind}`).toBeNull();
    }
    // The leader creates the first attempt, pending; any member may give the node-lost verdict.
    expect(authorityProblem(received(signed(subtask(leader.id, { status: 'pending', exitCode: null, startedAtMs: null, finishedAtMs: null }))), other.keys)).toBeNull();
    expect(authorityProblem(received(signed(subtask(leader.id, { status: 'failed', reason: 'node-lost', exitCode: null }))), other.keys)).toBeNull();
  });

  it("an owner's report of a command killed by a signal keeps its signature through the network; one without a signal still verifies", () => {
    const killed = subtask(owner.id, { status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGKILL', history: [{ attempt: 1, status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGSEGV', startedAtMs: 1000, finishedAtMs: 1100 }], attempt: 2 });
    const arrived = received(signed(killed));
    expect(arrived.record).toMatchObject({ reason: 'signal', signal: 'SIGKILL' });
    expect(authorityProblem(arrived, other.keys)).toBeNull();
    // Signed by a writer that knew no `signal` field: reading it adds none, so its signature holds.
    const older = received(signed(subtask(owner.id, { status: 'failed', reason: 'exit-code', exitCode: 3 })));
    expect(older.record).not.toHaveProperty('signal');
    expect(authorityProblem(older, other.keys)).toBeNull();
    // The signal is signed: another name is another record.
    const altered = structuredClone(signed(killed));
    (altered.record as SubtaskRecord).signal = 'SIGTERM';
    expect(authorityProblem(received(altered), other.keys)).toMatch(/signature is not/);
  });

  it("refuses a member's forgery of another node's result, whatever it claims", () => {
    // Written and signed by the leader, claiming success for the owner.
    expect(authorityProblem(signed(subtask(leader.id)), other.keys)).toMatch(/not by its runner/);
    // Claims the owner as reporter and writer, but signed with the leader's key.
    const claimed = signRecord(subtask(owner.id), leader.keys);
    expect(authorityProblem(claimed, other.keys)).toMatch(/signature is not/);
    // Says the owner reported it but the leader wrote it.
    expect(authorityProblem(signed(subtask(leader.id, { reporter: owner.id })), other.keys)).toMatch(/reported by/);
    // A later attempt, pending, by someone else: only the owner retries its own work.
    expect(authorityProblem(signed(subtask(leader.id, { attempt: 2, status: 'pending', exitCode: null, startedAtMs: null, finishedAtMs: null })), other.keys)).toMatch(/not by its runner/);
    // Another node's member record.
    expect(authorityProblem(signed(member(owner.id, leader.id)), other.keys)).toMatch(/member record/);
  });

  it('lets the leader end only a subtask it never released (a stopped or cancelled rollout), and a webhook delivery be written only by its runner', () => {
    const unreleased = { status: 'cancelled' as const, exitCode: null, startedAtMs: null, finishedAtMs: 3000 };
    for (const reason of ['aborted', 'cancelled'] as const) {
      expect(authorityProblem(received(signed(subtask(leader.id, { ...unreleased, reason }))), other.keys), reason).toBeNull();
      // Released (its owner may be running it): only the owner ends it.
      expect(authorityProblem(signed(subtask(leader.id, { ...unreleased, reason, releasedAtMs: 1000 })), other.keys), `${reason} after a release`).toMatch(/not by its runner/);
      // Started: the owner's work, whatever the claim.
      expect(authorityProblem(signed(subtask(leader.id, { ...unreleased, reason, startedAtMs: 1500 })), other.keys), `${reason} of a started one`).toMatch(/not by its runner/);
    }
    const notify = (writer: string, runner: string): AnyRecord => ({
      kind: 'notify',
      record: { instanceId: 'i1', index: 0, url: 'http://127.0.0.1:9/h', runner, generation: 1, status: 'delivered', attempts: 1, lastError: null, firstTryAtMs: 2000, nextTryAtMs: null, deliveredAtMs: 2000, stamp: stampOf(writer), sig: UNSIGNED },
    });
    expect(authorityProblem(received(signed(notify(leader.id, leader.id))), other.keys)).toBeNull();
    expect(authorityProblem(signed(notify(other.id, leader.id)), owner.keys)).toMatch(/webhook delivery run by/);
  });

  it('refuses a record with no signature, a truncated one, or one by a writer whose id holds no key', () => {
    expect(authorityProblem(job(owner.id), other.keys)).toMatch(/signature is not/);
    const good = signed(job(owner.id));
    expect(authorityProblem({ kind: 'job', record: { ...good.record, sig: good.record.sig.slice(0, 40) } } as AnyRecord, other.keys)).toMatch(/signature/);
    expect(authorityProblem({ kind: 'job', record: { ...good.record, stamp: stampOf('not-a-peer-id') } } as AnyRecord, other.keys)).toMatch(/signature/);
  });

  it('refuses a record altered in any field after it was signed (property)', () => {
    const originals = [job(other.id), member(owner.id), instance(leader.id), cancel(other.id), subtask(owner.id)].map(signed);
    fc.assert(
      fc.property(fc.constantFrom(...originals), fc.nat(), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null)), (original, pick, value) => {
        const copy = structuredClone(original);
        const paths = leafPaths(copy.record).filter((p) => p[0] !== 'sig');
        const path = paths[pick % paths.length] as string[];
        const before = JSON.stringify(copy);
        setAt(copy.record as unknown as Record<string, unknown>, path, value);
        fc.pre(JSON.stringify(copy) !== before);
        expect(authorityProblem(copy, other.keys)).not.toBeNull();
      }),
      { numRuns: 300 },
    );
  });
});

describe('a signature only in its canonical text', () => {
  it('refuses a signature text that decodes to the right bytes but is not the one written (found by fuzzing)', async () => {
    for (const keys of [owner.keys, new SimKeyring('seed').keysFor(owner.id)]) {
      const signed = signRecord(subtask(owner.id), keys);
      const sig = signed.record.sig;
      expect(authorityProblem(signed, keys)).toBeNull();
      const last = sig.at(-1) as string;
      // The last character carries unused bits: another letter with the same used bits decodes to the same bytes.
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const sameBytes = [...alphabet].filter((c) => c !== last && Buffer.from(sig.slice(0, -1) + c, 'base64url').equals(Buffer.from(sig, 'base64url')));
      const variants = [`${sig.slice(0, 3)}\uFFFD${sig.slice(3)}`, `${sig} `, `${sig}=`, `${sig.slice(0, 5)}.${sig.slice(5)}`, ...sameBytes.map((c) => sig.slice(0, -1) + c)];
      expect(variants.length).toBeGreaterThan(4);
      for (const variant of variants) {
        const altered = { ...signed, record: { ...signed.record, sig: variant } } as AnyRecord;
        expect(authorityProblem(altered, keys), JSON.stringify(variant)).toMatch(/signature/);
      }
      if (keys instanceof Ed25519RecordKeys) {
        const data = new TextEncoder().encode('x');
        const good = keys.sign(data);
        expect(await keys.verifyMany([{ signer: owner.id, data, sig: good }, { signer: owner.id, data, sig: `${good.slice(0, 2)}\uFFFD${good.slice(2)}` }])).toEqual([true, false]);
        await keys.close();
      }
    }
  });
});

describe('record signatures (the simulator keyring)', () => {
  it('lets each node sign only as itself', () => {
    const ring = new SimKeyring('seed');
    const [a, b] = [ring.keysFor('n01'), ring.keysFor('n02')];
    const r = { kind: 'job', record: { ...job('n01').record } } as AnyRecord;
    expect(authorityProblem(signRecord(structuredClone(r), a), b)).toBeNull();
    expect(authorityProblem(signRecord(structuredClone(r), b), a)).toMatch(/signature is not n01's/);
    // Another cluster's keyring (another seed) does not know these signatures.
    expect(authorityProblem(signRecord(structuredClone(r), a), new SimKeyring('other').keysFor('n03'))).toMatch(/signature/);
  });
});

function leafPaths(value: unknown, prefix: string[] = []): string[][] {
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return [prefix];
    return entries.flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
  }
  return [prefix];
}

function setAt(target: Record<string, unknown>, path: string[], value: unknown): void {
  let at: Record<string, unknown> = target;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
  at[path[path.length - 1] as string] = value;
}
