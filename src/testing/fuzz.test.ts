// Random and mutated bytes into every decoder a node has: gossip deltas and RPC frames
// from the network, config and job files, state and journal files. None may crash, hang or
// change what a node holds; each refuses with its own named error. The iteration counts
// are printed at the end.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { JobFileError, parseJobFile } from '../cli/job-file.js';
import { CursorError, decodeCursor, encodeCursor } from '../output/cursor.js';
import { encode } from '../cluster/replicator.js';
import { layerFromToml, SettingsError } from '../daemon/settings.js';
import { DataFileError } from '../store/durable-file.js';
import { FileJournal } from '../store/journal.js';
import { RecordStore } from '../store/record-store.js';
import { StateFilePersister } from '../store/state-file.js';
import { systemClock } from '../core/clock.js';
import { REPO_ROOT } from './run-cli.js';
import { SimCluster } from './sim-cluster.js';

const iterations = new Map<string, number>();
const count = (what: string) => iterations.set(what, (iterations.get(what) ?? 0) + 1);
afterAll(() => console.log(`fuzz iterations:\n${[...iterations].map(([w, n]) => `  ${w}: ${n}`).join('\n')}`));

/** Bytes of `base` with a few flipped, cut or inserted. */
function mutated(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc
    .array(fc.tuple(fc.constantFrom('flip', 'cut', 'insert'), fc.nat(Math.max(0, base.length - 1)), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
    .map((edits) => {
      let bytes = [...base];
      for (const [kind, at, byte] of edits) {
        const i = Math.min(at, Math.max(0, bytes.length - 1));
        if (kind === 'flip') bytes[i] = byte;
        else if (kind === 'cut') bytes = bytes.slice(0, i);
        else bytes.splice(i, 0, byte);
      }
      return Uint8Array.from(bytes);
    });
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('fuzz: the network', () => {
  it('gossip deltas and RPC frames of random or mutated bytes are refused and change nothing a node holds', async () => {
    const sim = new SimCluster({ seed: 91, size: 3 });
    try {
      sim.start();
      await sim.until(() => sim.agreed(), 10_000, 'three nodes agreeing');
      await sim.addJob('n01', 'held', { cmd: 'true' });
      await sim.until(() => sim.converged(), 5_000, 'the job everywhere');
      const node = sim.node('n02');
      const before = sim.digestOf('n02');
      const held = node.store.get('job:held');
      const validDelta = encode({ records: [held] });
      const validRequest = new TextEncoder().encode(JSON.stringify({ type: 'push', body: { records: [held], ack: true } }));
      const types = ['sync', 'sync-pull', 'push', 'relay', 'run', 'logs', 'logs-follow', 'drain', 'swim-ping', 'swim-probe', 'swim-gossip', 'swim-state', 'nope'];
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated(validDelta), fc.json().map((j) => new TextEncoder().encode(j))),
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }),
            mutated(validRequest),
            fc.tuple(fc.constantFrom(...types), fc.anything()).map(([type, body]) => new TextEncoder().encode(JSON.stringify({ type, body }) ?? '')),
          ),
          async (delta, frame) => {
            count('gossip deltas');
            node.replicator.onGossip('n03', delta);
            count('RPC frames');
            const reply = JSON.parse(text(await sim.drive(node.rpc.onRequest('n03', frame), 'an RPC reply'))) as { ok: boolean };
            expect(typeof reply.ok).toBe('boolean');
          },
        ),
        { numRuns: 500 },
      );
      await sim.run(2_000);
      // Nothing changed: every refused copy was counted, the one valid re-delivery was a duplicate.
      expect(sim.digestOf('n02')).toBe(before);
      expect(node.replicator.counters.recordsRejected).toBeGreaterThan(0);
      expect(sim.invariantErrors).toEqual([]);
    } finally {
      sim.dispose();
    }
  });
});

describe('fuzz: the follow cursor', () => {
  it('a cursor of random or mutated text is a CursorError or cursors of the instance\'s nodes, nothing else', () => {
    const valid = encodeCursor([
      { position: { part: 2, stdout: 1234, stderr: 5 }, complete: true, steps: ['post'], done: false },
      { position: { part: 0, stdout: 0, stderr: 0 }, complete: false, steps: [], done: true },
      { position: { part: 1, stdout: 99, stderr: 0 }, complete: false, steps: [], done: false },
    ]);
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated(new TextEncoder().encode(valid)).map(text)), (cursor) => {
        count('follow cursors');
        try {
          expect(decodeCursor(cursor, 3)).toHaveLength(3);
        } catch (err) {
          expect(err).toBeInstanceOf(CursorError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('fuzz: files', () => {
  const example = readFileSync(join(REPO_ROOT, 'packaging', 'chorus.toml'));
  const jobsToml = new TextEncoder().encode('[jobs.backup]\ncmd = "pg_dump"\ncron = "0 3 * * *"\ntags = { role = "db" }\ntimeout = "30m"\n\n[jobs.tick]\ncmd = "date"\nevery = "5m"\n');
  const jobsJson = new TextEncoder().encode(JSON.stringify({ jobs: { a: { cmd: 'x', at: '2026-12-24T00:00:00Z', retries: 3 } } }));

  it('config files: a SettingsError or settings, nothing else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), mutated(example).map(text), fc.uint8Array({ maxLength: 400 }).map(text)), (body) => {
        count('config files');
        try {
          layerFromToml(body, '/etc/chorus/chorus.toml');
        } catch (err) {
          expect(err).toBeInstanceOf(SettingsError);
          expect((err as Error).message.startsWith('/etc/chorus/chorus.toml')).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('job files: a JobFileError naming the file, or jobs, nothing else', () => {
    fc.assert(
      fc.property(fc.oneof(mutated(jobsToml).map((b) => ['jobs.toml', text(b)] as const), mutated(jobsJson).map((b) => ['jobs.json', text(b)] as const), fc.string().map((s) => ['jobs.toml', s] as const)), ([file, body]) => {
        count('job files');
        try {
          parseJobFile(file, body);
        } catch (err) {
          expect(err).toBeInstanceOf(JobFileError);
          for (const p of (err as JobFileError).problems) expect(p.startsWith(file)).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('state files: loaded (bad records set aside) or a DataFileError, and never rewritten by the failure', async () => {
    const valid = new TextEncoder().encode(JSON.stringify({ version: 1, records: [] }));
    const log = new TextEncoder().encode('{"records":[],"pruned":[]}\n{"records":[],"pruned":["x"]}\n');
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(valid), fc.uint8Array({ maxLength: 200 })), fc.oneof(mutated(log), fc.uint8Array({ maxLength: 200 }), fc.constant(new Uint8Array())), async (snapshot, changes) => {
        count('state files');
        const dir = await mkdtemp(join(tmpdir(), 'chorus-fuzz-state-'));
        try {
          await writeFile(join(dir, 'state.json'), snapshot);
          await writeFile(join(dir, 'state.log'), changes);
          const store = new RecordStore({ persister: new StateFilePersister(dir), clock: systemClock, flushDelayMs: 5, flushRetryMs: 1000 });
          try {
            await store.load();
          } catch (err) {
            expect(err, String(err)).toBeInstanceOf(DataFileError);
            expect(new Uint8Array(await readFile(join(dir, 'state.json')))).toEqual(snapshot);
          }
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('journal files: opened with the unreadable lines counted, and what was there kept', async () => {
    const valid = new TextEncoder().encode('{"kind":"start","instanceId":"i1","attempt":1,"atMs":1}\n{"kind":"end","instanceId":"i1","attempt":1,"atMs":2,"status":"succeeded","reason":null,"exitCode":0}\n');
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(valid), fc.uint8Array({ maxLength: 300 })), async (bytes) => {
        count('journal files');
        const dir = await mkdtemp(join(tmpdir(), 'chorus-fuzz-journal-'));
        try {
          const path = join(dir, 'journal.log');
          await writeFile(path, bytes);
          const journal = new FileJournal(path);
          journal.open();
          journal.close();
          const after = new Uint8Array(await readFile(path));
          // Nothing is lost: the old bytes are still there, at most a newline ends a torn last line.
          expect(after.slice(0, bytes.length)).toEqual(bytes);
          expect(after.length - bytes.length).toBeLessThanOrEqual(1);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 300 },
    );
  });
});
