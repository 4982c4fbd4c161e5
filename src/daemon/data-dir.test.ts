// What a daemon clears from its data directory at start: half-written copies of a killed one.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeLeftoverCopies } from './data-dir.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('removeLeftoverCopies', () => {
  it('removes the temporary copies of durable writes and a compaction\'s file, and nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chorus-data-dir-'));
    dirs.push(dir);
    const files = ['.state.json.6302.tmp', '.journal.log.compacting', '.tokens.json.77.tmp', 'state.json', 'state.log', 'journal.log', 'api-token', '.hidden', 'x.tmp'];
    for (const name of files) writeFileSync(join(dir, name), 'x');
    expect((await removeLeftoverCopies(dir)).sort()).toEqual(['.journal.log.compacting', '.state.json.6302.tmp', '.tokens.json.77.tmp']);
    expect(readdirSync(dir).sort()).toEqual(['.hidden', 'api-token', 'journal.log', 'state.json', 'state.log', 'x.tmp']);
  });
});
