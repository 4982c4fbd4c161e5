// Following an instance's output across the cluster, for the daemon that serves `instance
// logs --follow`: one question at a time per followed node, held by the node that runs the
// output until it has some (a long poll over RPC, OutputServer.followOwn in output-server.ts). The client
// carries every position (cursor.ts), so nothing here belongs to one client; a question
// answered after the client's request was answered waits here for the client's next
// request, which asks from the same position, so it is neither asked twice nor lost.
import type { Clock } from '../core/clock.js';
import type { FollowPosition, OwnerFollowReply } from './follow.js';

export interface FollowPoll {
  readonly instanceId: string;
  readonly nodeId: string;
  readonly position: FollowPosition;
  state: 'asking' | 'answered' | 'failed';
  reply: OwnerFollowReply | null;
  error: string | null;
  /** When the answer came or the question failed. */
  settledAtMs: number;
  /** Answered: dropped unless taken by then. Failed: asked again after it. */
  expiresAtMs: number;
}

export interface FollowerDeps {
  clock: Clock;
  /** Asks a node (this one too) for its output of an instance after `position`, held up to `waitMs` until there is some. */
  ask: (nodeId: string, instanceId: string, position: FollowPosition, waitMs: number) => Promise<OwnerFollowReply>;
  /** Questions out at once (config.maxFollowPolls); past it, more nodes wait their turn. */
  maxPolls: number;
  /** A node that could not be asked is asked again after this. */
  retryMs: number;
  /** How long a node may hold a question (config.followAskWaitMs). */
  askWaitMs: number;
  /** An answer nobody took (the client went away) is dropped after this (config.followAnswerKeptMs). */
  answerKeptMs: number;
  /** Told when a question about the instance is answered or fails (wakes the requests waiting on it). */
  settled: (instanceId: string) => void;
}

export class LogFollower {
  private readonly polls = new Map<string, FollowPoll>();

  constructor(private readonly deps: FollowerDeps) {}

  /** Questions out or answers kept now. */
  get size(): number {
    return this.polls.size;
  }

  /**
   * The question for a node's output after `position`: the one already asked (answered, or
   * failed a moment ago), else a new one. Null when maxPolls questions are out.
   */
  pollFor(instanceId: string, nodeId: string, position: FollowPosition): FollowPoll | null {
    this.dropExpired();
    const key = `${instanceId}\n${nodeId}\n${position.part}:${position.stdout}:${position.stderr}`;
    const known = this.polls.get(key);
    if (known) return known;
    if (this.polls.size >= this.deps.maxPolls) return null;
    const poll: FollowPoll = { instanceId, nodeId, position, state: 'asking', reply: null, error: null, settledAtMs: Infinity, expiresAtMs: Infinity };
    this.polls.set(key, poll);
    this.deps.ask(nodeId, instanceId, position, this.deps.askWaitMs).then(
      (reply) => this.settle(poll, { state: 'answered', reply, expiresAtMs: this.deps.clock.now() + this.deps.answerKeptMs }),
      (err: unknown) => this.settle(poll, { state: 'failed', error: (err as Error).message ?? String(err), expiresAtMs: this.deps.clock.now() + this.deps.retryMs }),
    );
    return poll;
  }

  /** An answered question's reply; it is forgotten (the client's cursor moves past it). */
  take(poll: FollowPoll): OwnerFollowReply {
    if (poll.state !== 'answered' || poll.reply === null) throw new Error('take() of a question not answered');
    for (const [key, p] of this.polls) if (p === poll) this.polls.delete(key);
    return poll.reply;
  }

  /** When the first failed question about the instance may be asked again, or null. */
  nextRetryAtMs(instanceId: string): number | null {
    let at: number | null = null;
    for (const p of this.polls.values()) if (p.instanceId === instanceId && p.state === 'failed') at = Math.min(at ?? Infinity, p.expiresAtMs);
    return at;
  }

  private settle(poll: FollowPoll, outcome: Partial<FollowPoll>): void {
    Object.assign(poll, outcome, { settledAtMs: this.deps.clock.now() });
    this.deps.settled(poll.instanceId);
  }

  private dropExpired(): void {
    const nowMs = this.deps.clock.now();
    for (const [key, p] of this.polls) if (p.state !== 'asking' && p.expiresAtMs <= nowMs) this.polls.delete(key);
  }
}
