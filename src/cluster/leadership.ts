// Who leads. Every member computes the leader from its own membership view with the same
// rule: the member with the smallest node id among those alive (or suspect: not declared
// dead) for at least leaderStableMs, or among all confirmed-alive ones when none is stable
// yet. No votes, no terms: two views that disagree for a moment make two leaders, which
// guarantee 7 makes harmless (a scheduled fire's instance id comes from its job and time).
// A leader acts only once its view is fresh (cluster/fresh-view.ts).
import type { Clock } from '../core/clock.js';
import { coalesced } from '../core/clock.js';
import type { ChorusConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { NodeObserver } from '../records/observer.js';
import type { MemberState } from './view.js';

/** What the choice reads of a member other than this node. */
export interface LeaderCandidate {
  state: MemberState;
  /** Since when it is continuously alive; null when it was never heard from since this start. */
  aliveSinceMs: number | null;
}

export interface LeadershipDeps {
  clock: Clock;
  config: Pick<ChorusConfig, 'leaderStableMs'>;
  selfId: string;
  /** The members this node judges (itself excluded), with what it knows of each. */
  candidates: () => Iterable<[string, LeaderCandidate]>;
  /** Whether a member has a member record here: one without cannot lead. */
  hasRecord: (nodeId: string) => boolean;
  /** From when this node itself may lead (after settling into a cluster it knew), or null while it leaves. */
  selfEligibleFromMs: () => number | null;
  /** A choice is due later (a member becomes stable): the membership ticks fast until then. */
  hurry: () => void;
  /** The leader changed. */
  onChange: () => void;
  log: Logger;
  observer?: NodeObserver;
}

export class Leadership {
  private current: string | null = null;
  /** When the choice must be made again (a member becomes stable then); infinite when nothing is timed. */
  private nextChoiceMs = Number.POSITIVE_INFINITY;
  /** Members whose state changed since the leader was last chosen. */
  private readonly changedSinceChoice = new Set<string>();
  /** Whether the leader was chosen among the stable members (then only a change to it, or to a smaller id, can change it). */
  private chosenAmongStable = false;

  constructor(private readonly deps: LeadershipDeps) {}

  leaderId(): string | null {
    return this.current;
  }

  /** Whether a choice is timed for later (the membership ticks fast while one is). */
  get timed(): boolean {
    return Number.isFinite(this.nextChoiceMs);
  }

  /** Makes the choice again if one was timed for now. */
  tick(nowMs: number): void {
    if (nowMs >= this.nextChoiceMs) this.choose();
  }

  /**
   * The choice reads every member (O(N)); a burst of changes (a fleet joining: N of them at
   * every node) asks for one choice, at the end of the current turn, and none at all when
   * every member that changed has a bigger id than a stable leader: the smallest stable id
   * stays the smallest (at 1,000 members the choice made at every change was a third of
   * the simulation's time).
   */
  memberChanged(nodeId: string): void {
    this.changedSinceChoice.add(nodeId);
    this.chooseSoon();
  }

  private readonly chooseSoon = coalesced(() => {
    const leader = this.current;
    if (leader !== null && this.chosenAmongStable && ![...this.changedSinceChoice].some((id) => id <= leader)) this.changedSinceChoice.clear();
    else this.choose();
  });

  /** Chooses the leader from the view now (see the header). */
  choose(): void {
    this.changedSinceChoice.clear();
    const nowMs = this.deps.clock.now();
    const { leaderStableMs } = this.deps.config;
    let next = Number.POSITIVE_INFINITY;
    const smallest: { stable: string | null; candidate: string | null } = { stable: null, candidate: null };
    const consider = (nodeId: string, stable: boolean) => {
      if (smallest.candidate === null || nodeId < smallest.candidate) smallest.candidate = nodeId;
      if (stable && (smallest.stable === null || nodeId < smallest.stable)) smallest.stable = nodeId;
    };
    const selfFromMs = this.deps.selfEligibleFromMs();
    if (selfFromMs !== null) {
      if (nowMs >= selfFromMs) consider(this.deps.selfId, true);
      else next = Math.min(next, selfFromMs);
    }
    for (const [nodeId, member] of this.deps.candidates()) {
      // Only members heard from since we started can lead: one known only from records (the
      // whole cluster stopped and this node came back first) may well be down.
      if ((member.state !== 'alive' && member.state !== 'suspect') || member.aliveSinceMs === null) continue;
      if (!this.deps.hasRecord(nodeId)) continue;
      // A suspect is still a member until it is declared dead: a busy leader keeps leading.
      // Moving the leadership at every suspicion (and back at the refutation) made a busy
      // cluster of 50 change leaders 9 times a node in a minute after one broadcast, each new
      // leader syncing with all its peers first: more load, more suspicions.
      consider(nodeId, nowMs >= member.aliveSinceMs + leaderStableMs);
    }
    const leader = selfFromMs === null ? null : (smallest.stable ?? smallest.candidate);
    this.chosenAmongStable = leader !== null && leader === smallest.stable;
    // Who becomes stable later matters only if it would then be the smallest stable id.
    for (const [nodeId, member] of this.deps.candidates()) {
      if ((member.state !== 'alive' && member.state !== 'suspect') || member.aliveSinceMs === null) continue;
      const stableAtMs = member.aliveSinceMs + leaderStableMs;
      if (nowMs < stableAtMs && (!this.chosenAmongStable || leader === null || nodeId < leader)) next = Math.min(next, stableAtMs);
    }
    this.nextChoiceMs = next;
    if (Number.isFinite(next)) this.deps.hurry();
    if (leader !== this.current) {
      this.deps.log.info({ leader }, 'leader changed');
      this.current = leader;
      this.deps.observer?.leaderChanged?.(leader);
      this.deps.onChange();
    }
  }
}
