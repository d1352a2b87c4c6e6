/** The member list as drivers show it (CLI `members`, web member panel): section 5.8, 5.11. */
import { fingerprint } from './ids.ts';
import type { MemberId, MemberState, OwnerState } from './types.ts';

export interface MemberListEntry {
  readonly id: MemberId;
  readonly name: string;
  readonly owner: boolean;
  /** Key fingerprint (section 5.11), to compare out of band. */
  readonly fingerprint: string;
}

/** Current members, owner first, in admission order. */
export function memberList(s: OwnerState | MemberState): MemberListEntry[] {
  const infos = s.members.map((m) => m.info);
  return [...infos.filter((m) => m.owner), ...infos.filter((m) => !m.owner)].map((m) => ({
    id: m.id,
    name: m.name,
    owner: m.owner,
    fingerprint: fingerprint(m.ipub, m.npub),
  }));
}
