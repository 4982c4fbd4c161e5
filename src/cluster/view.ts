// What the rest of the daemon needs to know about the cluster: who is a member, in
// which state, and who leads. The membership protocol (membership.ts) maintains it.

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

export interface MemberInfo {
  nodeId: string;
  name: string;
  tags: Record<string, string>;
  addrs: string[];
  incarnation: number;
  state: MemberState;
  leader: boolean;
  /** Holds the whole state (DESIGN.md, guarantee 6); the leader always does. */
  keeper: boolean;
  /** Takes no new work (`chorus node drain`). */
  draining: boolean;
  /** Local time this node last heard from the member (itself: now). */
  lastSeenMs: number | null;
  /** This node's suspicion of the member, while it is `suspect` here (the failure detector's view). */
  suspicion?: MemberSuspicion | null;
}

/** A suspicion as the node holding it sees it (SWIM with Lifeguard's confirmations). */
export interface MemberSuspicion {
  /** Local time the suspicion began here. */
  sinceMs: number;
  /** Other members' suspicions of it heard after the first (each shortens the timeout). */
  confirmations: number;
  /** Confirmations that shorten the timeout to its least (the indirect probers; 0 for a member known from records only). */
  expectedConfirmations: number;
  /** When this node declares it dead unless it refutes (earlier as confirmations arrive). */
  deadAtMs: number;
  /** False for a member known only from records and never heard since this start (not announced to others). */
  verified: boolean;
}

export interface MembershipView {
  readonly selfId: string;
  members(): MemberInfo[];
  stateOf(nodeId: string): MemberState | undefined;
  leaderId(): string | null;
  /** The keepers, leader first (cluster/leadership.ts). */
  keepers(): readonly string[];
  /** Members now dead or left (whose unfinished work is lost), kept up to date: no walk over every member. */
  goneMembers(): ReadonlySet<string>;
}

/** A member that will not run anything any more: its pending or running work is lost. */
export function isGone(state: MemberState | undefined): boolean {
  return state === 'dead' || state === 'left';
}

export function matchesTags(memberTags: Record<string, string>, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([key, value]) => memberTags[key] === value);
}
