// Membership of a node that has no peers (yet): itself, alive, leading.
import type { MemberInfo, MembershipView, MemberState } from './view.js';

export class SoloMembership implements MembershipView {
  constructor(private readonly self: () => Omit<MemberInfo, 'state' | 'leader' | 'lastSeenMs'>) {}

  get selfId(): string {
    return this.self().nodeId;
  }

  members(): MemberInfo[] {
    return [{ ...this.self(), state: 'alive', leader: true, lastSeenMs: Date.now() }];
  }

  stateOf(nodeId: string): MemberState | undefined {
    return nodeId === this.selfId ? 'alive' : undefined;
  }

  leaderId(): string {
    return this.selfId;
  }
}
