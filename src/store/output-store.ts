// Captured output of the attempts this node ran, kept apart from the replicated records:
// it stays on the node that ran the command and is fetched from there (`instance logs`).
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StepName } from '../records/types.js';

/** An attempt's output as captured: the tail of each stream, and how many bytes were dropped from its front. */
export interface CapturedOutput {
  stdout: string;
  stderr: string;
  stdoutDroppedBytes: number;
  stderrDroppedBytes: number;
}

export interface SubtaskLog extends CapturedOutput {
  instanceId: string;
  nodeId: string;
  /** Set for the output of a --pre or --post step. */
  step?: StepName;
  attempt: number;
}

export interface OutputStore {
  save(log: SubtaskLog): Promise<void>;
  /** Output of every attempt this node ran for the instance: pre step, attempts in order, post step. */
  read(instanceId: string): Promise<SubtaskLog[]>;
  delete(instanceId: string): Promise<void>;
}

/** `DIR/logs/INSTANCE/{pre,1,2,...,post}.json`. */
export class FileOutputStore implements OutputStore {
  constructor(private readonly logsDir: string) {}

  private dirOf(instanceId: string): string {
    return join(this.logsDir, instanceId);
  }

  async save(log: SubtaskLog): Promise<void> {
    await mkdir(this.dirOf(log.instanceId), { recursive: true });
    await writeFile(join(this.dirOf(log.instanceId), `${log.step ?? log.attempt}.json`), JSON.stringify(log));
  }

  async read(instanceId: string): Promise<SubtaskLog[]> {
    const dir = this.dirOf(instanceId);
    let files: string[];
    try {
      files = await readdir(dir);
    } catch {
      return [];
    }
    const names = files
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .filter((n) => !Number.isNaN(logOrder(n)))
      .sort((a, b) => logOrder(a) - logOrder(b));
    return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(dir, `${n}.json`), 'utf8')) as SubtaskLog));
  }

  async delete(instanceId: string): Promise<void> {
    await rm(this.dirOf(instanceId), { recursive: true, force: true });
  }
}

/** The simulator's: in memory, in the order saved. */
export class MemoryOutputStore implements OutputStore {
  private readonly logs = new Map<string, SubtaskLog[]>();

  async save(log: SubtaskLog): Promise<void> {
    this.logs.set(log.instanceId, [...(this.logs.get(log.instanceId) ?? []), log]);
  }

  async read(instanceId: string): Promise<SubtaskLog[]> {
    return this.logs.get(instanceId) ?? [];
  }

  async delete(instanceId: string): Promise<void> {
    this.logs.delete(instanceId);
  }
}

/** pre.json first, then attempts in order, then post.json. */
function logOrder(name: string): number {
  return name === 'pre' ? -1 : name === 'post' ? Infinity : Number.parseInt(name, 10);
}
