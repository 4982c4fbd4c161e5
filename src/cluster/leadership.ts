// Who leads. Every member computes the leader from its own membership view with the same
// rule: the member with the smallest node id among those alive (or suspect: not declared
// dead) for at least leaderStableMs, or among all confirmed-alive ones when none is stable
// yet. No votes, no terms: two views that disagree for a moment make two leaders, which
// guarantee 7 makes harmless (a scheduled fire's instance id comes from its job and time).
// A leader acts only once its view is fresh (cluster/fresh-view.ts).
//
// The keepers (DESIGN.md, guarantee 6) are chosen by the same rule in the same pass: the
// leader, then the next smallest ids among the stable members, then among the others, up
// to config.keepers. So every node that sees the same members names the same keepers, the
// leader is always one, and a keeper that dies is replaced by the next in line.
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
  config: Pick<ChorusConfig, 'leaderStableMs' | 'keepers'>;
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
  /** The keepers changed (called after onChange when both did). */
  onKeepersChange?: () => void;
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
  /** The keepers, leader first, then by id (stable members before the others). */
  private keeperIds: readonly string[] = [];

  constructor(private readonly deps: LeadershipDeps) {}

  leaderId(): string | null {
    return this.current;
  }

  /** The keepers as this node sees them: the leader first (see the header). */
  keepers(): readonly string[] {
    return this.keeperIds;
  }

  isKeeper(nodeId: string): boolean {
    return this.keeperIds.includes(nodeId);
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
   * every member that changed has a bigger id than the last of a full set of stable keepers:
   * the smallest stable ids stay the smallest (at 1,000 members the choice made at every
   * change was a third of the simulation's time).
   */
  memberChanged(nodeId: string): void {
    this.changedSinceChoice.add(nodeId);
    this.chooseSoon();
  }

  private readonly chooseSoon = coalesced(() => {
    const last = this.keeperIds[this.keeperIds.length - 1];
    const settled = this.chosenAmongStable && last !== undefined && this.keeperIds.length === this.deps.config.keepers;
    if (settled && ![...this.changedSinceChoice].some((id) => id <= last)) this.changedSinceChoice.clear();
    else this.choose();
  });

  /** Chooses the leader from the view now (see the header). */
  choose(): void {
    this.changedSinceChoice.clear();
    const nowMs = this.deps.clock.now();
    const { leaderStableMs } = this.deps.config;
    let next = Number.POSITIVE_INFINITY;
    const count = this.deps.config.keepers;
    // The smallest `count` ids of the stable members, and of the others.
    const smallest = { stable: [] as string[], unstable: [] as string[] };
    const consider = (nodeId: string, stable: boolean) => keepSmallest(stable ? smallest.stable : smallest.unstable, nodeId, count);
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
    const candidate = [...smallest.stable, ...smallest.unstable].reduce<string | null>((min, id) => (min === null || id < min ? id : min), null);
    const leader = selfFromMs === null ? null : (smallest.stable[0] ?? candidate);
    const keepers = [...smallest.stable, ...smallest.unstable].filter((id) => id !== leader).slice(0, count - (leader === null ? 0 : 1));
    if (leader !== null) keepers.unshift(leader);
    this.chosenAmongStable = leader !== null && keepers.length > 0 && keepers.every((id) => smallest.stable.includes(id));
    // Who becomes stable later matters only if it would then be among the smallest stable ids.
    const lastKeeper = keepers[keepers.length - 1];
    for (const [nodeId, member] of this.deps.candidates()) {
      if ((member.state !== 'alive' && member.state !== 'suspect') || member.aliveSinceMs === null) continue;
      const stableAtMs = member.aliveSinceMs + leaderStableMs;
      const matters = !this.chosenAmongStable || keepers.length < count || lastKeeper === undefined || nodeId < lastKeeper;
      if (nowMs < stableAtMs && matters) next = Math.min(next, stableAtMs);
    }
    this.nextChoiceMs = next;
    if (Number.isFinite(next)) this.deps.hurry();
    if (leader !== this.current) {
      this.deps.log.info({ leader }, 'leader changed');
      this.current = leader;
      this.deps.observer?.leaderChanged?.(leader);
      this.deps.onChange();
    }
    if (keepers.length !== this.keeperIds.length || keepers.some((id, i) => id !== this.keeperIds[i])) {
      this.deps.log.info({ keepers }, 'keepers changed');
      this.keeperIds = keepers;
      this.deps.onKeepersChange?.();
    }
  }
}

/** Adds `id` to `ids` (sorted, at most `count` long) if it is among the `count` smallest. */
function keepSmallest(ids: string[], id: string, count: number): void {
  if (ids.length === count && id >= (ids[count - 1] as string)) return;
  let at = ids.length;
  while (at > 0 && (ids[at - 1] as string) > id) at -= 1;
  ids.splice(at, 0, id);
  if (ids.length > count) ids.pop();
}
