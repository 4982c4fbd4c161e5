// `chorus instance logs ID --follow`: long-polls the daemon (GET /v1/instances/ID/logs?follow=1,
// each request carrying the cursor of the answer before) and prints every line as it comes,
// after the name of its node: "web-1 | line" for stdout, "web-1 ! line" for stderr. Lines are
// whole: a piece of output that ends inside a line waits for the rest, or for its attempt's end.
// The human lines are escaped (output/escape.ts); the JSON lines carry the raw text.
import { EXIT, type ChorusClient } from '../api/client.js';
import type { LogFollowChunk, LogFollowView } from '../api/control-plane.js';
import type { InstanceView } from '../api/views.js';
import { escapeControl } from '../output/escape.js';
import { nodeLabels, outputLabel } from './format.js';
import { exitCodeOfStatus } from './wait.js';

/** How long the daemon may hold one request when nothing new comes (the API allows 30 s). */
export const FOLLOW_WAIT_MS = 25_000;
/** A line still without its newline after this many characters is printed as it is (the CLI holds no more). */
export const MAX_PARTIAL_LINE_CHARS = 64 * 1024;

export interface FollowOutput {
  /** One line of output (stdout of the CLI). */
  line: (text: string) => void;
  /** A note for people (stderr of the CLI). */
  warn: (text: string) => void;
}

type Piece = Pick<LogFollowChunk, 'nodeId' | 'name' | 'step' | 'attempt' | 'stream'>;

/** Prints the answers of a follow as lines: human ("NAME | text", "NAME ! text") or, with json, one JSON object per line. */
export class FollowPrinter {
  /** The end of each stream that has no newline yet, by node, part and stream. */
  private readonly partial = new Map<string, { piece: Piece; text: string }>();
  private readonly warned = new Set<string>();
  private readonly labelWidth: number;

  /** `labels`: the nodes known at the start (what is printed is padded to the longest). */
  constructor(
    private readonly out: FollowOutput,
    private readonly json: boolean,
    private readonly labels: Map<string, string>,
  ) {
    this.labelWidth = Math.max(0, ...[...labels.values()].map((l) => l.length));
  }

  take(answer: LogFollowView): void {
    // Node by node, as the answer holds them: its output, then the end of the attempts that ended.
    const nodes = new Set([...answer.chunks.map((c) => c.nodeId), ...answer.ended.map((e) => e.nodeId)]);
    for (const nodeId of nodes) {
      for (const chunk of answer.chunks) if (chunk.nodeId === nodeId) this.takeChunk(chunk);
      for (const e of answer.ended) if (e.nodeId === nodeId) for (const stream of ['stdout', 'stderr'] as const) this.flush(keyOf({ ...e, stream }));
    }
    for (const u of answer.unavailable) this.warnOnce(`${u.nodeId} ${u.message}`, `warning: the output of ${this.labelOf(u)} cannot be had now: ${escapeControl(u.message)}`);
    if (answer.done) this.flushAll();
  }

  private takeChunk(chunk: LogFollowChunk): void {
    const key = keyOf(chunk);
    // An earlier attempt's last line (no newline) ends before this attempt's output.
    for (const [other, held] of this.partial) if (other !== key && held.piece.nodeId === chunk.nodeId && held.piece.stream === chunk.stream) this.flush(other);
    let text = chunk.text;
    if (chunk.skippedBytes > 0) {
      this.out.warn(`warning: ${chunk.skippedBytes} bytes of the ${chunk.stream} of ${this.labelOf(chunk)} were no longer kept on the node (it keeps the last of each stream) and are left out`);
      // What came before the gap ends there; what follows it starts inside a line.
      this.flush(key);
      text = `…${text}`;
    }
    const lines = `${this.partial.get(key)?.text ?? ''}${text}`.split('\n');
    let rest = lines.pop() as string;
    for (const line of lines) this.print(chunk, line);
    if (rest.length > MAX_PARTIAL_LINE_CHARS) {
      this.print(chunk, rest);
      rest = '';
    }
    if (rest === '') this.partial.delete(key);
    else this.partial.set(key, { piece: chunk, text: rest });
  }

  /** Prints every line still waiting for its newline (the follow stops before its end). */
  flushAll(): void {
    for (const key of [...this.partial.keys()]) this.flush(key);
  }

  private flush(key: string): void {
    const held = this.partial.get(key);
    if (!held) return;
    this.partial.delete(key);
    this.print(held.piece, held.text);
  }

  private print(piece: Piece, line: string): void {
    const text = line.replace(/\r$/, '');
    if (this.json) {
      this.out.line(JSON.stringify({ nodeId: piece.nodeId, name: piece.name, stream: piece.stream, step: piece.step, attempt: piece.attempt, text }));
      return;
    }
    const label = outputLabel(this.labelOf(piece), piece.step, piece.attempt);
    this.out.line(`${label.padEnd(this.labelWidth)} ${piece.stream === 'stderr' ? '!' : '|'} ${escapeControl(text)}`);
  }

  private labelOf(node: { nodeId: string; name: string | null }): string {
    return this.labels.get(node.nodeId) ?? nodeLabels([node]).get(node.nodeId) ?? node.nodeId;
  }

  private warnOnce(key: string, text: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.out.warn(text);
  }
}

function keyOf(p: Pick<Piece, 'nodeId' | 'step' | 'attempt' | 'stream'>): string {
  return `${p.nodeId} ${p.step ?? 'attempt'} ${p.attempt} ${p.stream}`;
}

/**
 * Follows an instance's output until the instance ended and all of it was printed (for
 * an instance already over: its whole output, then the end). Returns the exit code of
 * `instance wait`: 0 when it succeeded, 1 when not, 124 when `timeoutMs` passed first
 * (what had come by then is printed, a line cut short included).
 */
export async function followLogs(client: ChorusClient, instanceId: string, nodeRef: string | null, json: boolean, out: FollowOutput, timeoutMs: number | null = null): Promise<number> {
  const deadline = timeoutMs === null ? Infinity : Date.now() + timeoutMs;
  const path = `/v1/instances/${encodeURIComponent(instanceId)}`;
  // Unknown instance: the usual not-found error; known: the nodes' names to pad to.
  const view = await client.request<InstanceView>('GET', path);
  const printer = new FollowPrinter(out, json, nodeLabels(view.subtasks.map((s) => ({ nodeId: s.nodeId, name: s.nodeName }))));
  let cursor = '';
  let status = view.status;
  for (;;) {
    const leftMs = deadline - Date.now();
    if (leftMs <= 0) {
      printer.flushAll();
      out.warn(`timed out following; instance ${instanceId} is still ${status} (to follow it again from the start: chorus instance logs ${instanceId} --follow)`);
      return EXIT.timedOut;
    }
    const waitMs = Math.max(1, Math.min(FOLLOW_WAIT_MS, Math.ceil(leftMs)));
    const query = new URLSearchParams({ follow: '1', waitMs: String(waitMs), ...(cursor === '' ? {} : { cursor }), ...(nodeRef === null ? {} : { node: nodeRef }) });
    const answer = await client.request<LogFollowView>('GET', `${path}/logs?${query.toString()}`, undefined, waitMs + 30_000);
    printer.take(answer);
    if (answer.done) return exitCodeOfStatus(answer.status);
    cursor = answer.cursor;
    status = answer.status;
  }
}
