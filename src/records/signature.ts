// Records that carry their own authority: every record is signed by its writer (the node
// named in its stamp), and who may write what is checked here, on every path a record
// takes into a node (gossip, anti-entropy, acknowledged pushes, a run's reply). So a
// record can travel through any peer and still be trusted, and no member can forge
// another node's result: a subtask's running or terminal state is accepted only when
// signed by its owner, except the `node-lost` verdict any member may give.
import { recordBody } from './canonical.js';
import type { AnyRecord } from './types.js';
import { runnerOf } from './types.js';

/** Signing as this node, and checking anyone's signature. The daemon's are ed25519 node keys; the simulator's are cheaper. */
export interface RecordKeys {
  /** Signs `data` as this node; the signature as text. */
  sign(data: Uint8Array): string;
  /** Whether `sig` is `signer`'s signature of `data`. Never throws: a bad key or signature is false. */
  verify(signer: string, data: Uint8Array, sig: string): boolean;
  /** The same for many at once, off the event loop where the keys can (the daemon's use a worker thread). */
  verifyMany?(checks: SignatureCheck[]): Promise<boolean[]>;
}

export interface SignatureCheck {
  signer: string;
  data: Uint8Array;
  sig: string;
}

const DOMAIN = 'chorus-record-v1';

/** The `sig` of a record being written: ChorusNode.commit signs every record it writes. */
export const UNSIGNED = '';

/**
 * A signature's bytes, only from its one canonical base64url text. Node's decoder skips
 * characters outside the alphabet and ignores a last character's unused bits, so without
 * this check "Fh-pRx..." and "Fh-\uFFFDpRx..." were the same valid signature: anyone relaying a
 * record could make another version of it, with the same content, that replaced it.
 */
export function signatureBytes(sig: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]+$/.test(sig)) return null;
  const bytes = Buffer.from(sig, 'base64url');
  return bytes.toString('base64url') === sig ? bytes : null;
}

/** What is signed: the kind and the record in canonical JSON, without its signature. */
export function signingBytes(r: AnyRecord): Uint8Array {
  return new TextEncoder().encode(`${DOMAIN}\n${r.kind}\n${recordBody(r.record)}`);
}

/** Signs a record written by this node, in place; returns it. */
export function signRecord<T extends AnyRecord>(r: T, keys: RecordKeys): T {
  r.record.sig = keys.sign(signingBytes(r));
  return r;
}

/**
 * Why a record may not be accepted, or null if it may: its signature must be its writer's
 * (the stamp's node), and its writer must be allowed to write it.
 */
export function authorityProblem(r: AnyRecord, keys: RecordKeys): string | null {
  const writer = r.record.stamp.nodeId;
  const rule = writerProblem(r, writer);
  if (rule !== null) return rule;
  if (!keys.verify(writer, signingBytes(r), r.record.sig)) return signatureProblem(r);
  return null;
}

/** authorityProblem for many records: the same answers, the signatures checked together (verifyMany) when the keys can. */
export async function authorityProblems(records: AnyRecord[], keys: RecordKeys): Promise<(string | null)[]> {
  if (!keys.verifyMany) return records.map((r) => authorityProblem(r, keys));
  const problems = records.map((r) => writerProblem(r, r.record.stamp.nodeId));
  const toCheck = records.flatMap((r, i) => (problems[i] === null ? [i] : []));
  const valid = await keys.verifyMany(toCheck.map((i) => {
    const r = records[i] as AnyRecord;
    return { signer: r.record.stamp.nodeId, data: signingBytes(r), sig: r.record.sig };
  }));
  toCheck.forEach((i, n) => {
    if (valid[n] !== true) problems[i] = signatureProblem(records[i] as AnyRecord);
  });
  return problems;
}

const signatureProblem = (r: AnyRecord) => `its signature is not ${r.record.stamp.nodeId}'s`;

/** Who may write what (the signature is checked after this, so it is checked only for records that could be allowed). */
function writerProblem(r: AnyRecord, writer: string): string | null {
  switch (r.kind) {
    case 'member':
      return r.record.nodeId === writer ? null : `a member record of ${r.record.nodeId} written by ${writer}`;
    case 'job':
    case 'instance':
    case 'cancel':
    case 'pause':
    case 'fire':
      return null;
    case 'notify':
      return r.record.runner === writer ? null : `a webhook delivery run by ${r.record.runner} written by ${writer}`; // any member may define jobs, create instances (the leader), ask for a cancel and pause a rollout
    case 'subtask':
    case 'step': {
      const task = r.record;
      if (task.reporter !== writer) return `reported by ${task.reporter} but written by ${writer}`;
      if (writer === runnerOf(task)) return null;
      // Another node may create the first attempt (the leader) or give the node-lost verdict.
      if (task.status === 'pending' && task.attempt === 1 && task.startedAtMs === null) return null;
      if (task.status === 'failed' && task.reason === 'node-lost') return null;
      // Or end a subtask it never released, when a rollout stops or is cancelled (its owner never heard of it).
      const neverReleased = r.kind === 'subtask' && r.record.releasedAtMs === undefined;
      if (task.status === 'cancelled' && (task.reason === 'aborted' || task.reason === 'cancelled') && task.attempt === 1 && task.startedAtMs === null && neverReleased) return null;
      return `a ${task.status} state of ${runnerOf(task)}'s work written by ${writer}, not by its runner`;
    }
  }
}
