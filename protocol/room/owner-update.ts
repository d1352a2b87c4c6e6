/**
 * The owner's own key update (docs/PROTOCOL.md 5.8.1 step 5): the owner replaces its identity and
 * peer keys with an `owner-update` chain entry signed by the old identity key, rotates the room key,
 * revokes its pending invites and moves to the signaling path of its new peer key, listening on the
 * old one for members that have not moved (`previousPaths`). Members verify the entry with the owner
 * key they hold and switch their trusted owner key and path in one transition.
 */
import { equalBytes, sha256, type EcPublicKey } from '../../crypto/index.ts';
import { encodeMessage, type ChainBody, type KeyBody } from './codec.ts';
import { AuthenticityError, MembershipError } from './errors.ts';
import { ZERO_HASH, keyHashOf, memberIdOf, peerKeyHex, saltyAuthToken } from './ids.ts';
import { appendEntry, rotate } from './owner.ts';
import type { RoomIdentity } from './records.ts';
import { closeLink, emit, guarded, sendTo, type Out } from './step.ts';
import {
  MAX_FORMER_MEMBERS,
  MAX_PREVIOUS_PATHS,
  PREVIOUS_PATH_MS,
  type Effect,
  type InviteRecord,
  type KnownMember,
  type MemberInfo,
  type MemberState,
  type OwnerCtx,
  type OwnerMember,
  type OwnerState,
  type PeerKeyHex,
  type PreviousPath,
  type Step,
} from './types.ts';
import { membersHashOf, openCert, openChainEntry, signCert } from './verify.ts';

// ---- Owner side ----

/**
 * Step 5.2: one `owner-update` entry signed with the current key (`ctx.identity`), naming `next`
 * (stored as pending by the driver before this step). Every member gets the new epoch key sealed
 * from the new key; pending and claimed invites are revoked; the old path is kept for the members
 * that have not moved yet. The driver switches its keys and its path after this step is saved.
 */
export function ownerUpdateStep(
  ctx: OwnerCtx,
  state: OwnerState,
  keys: { current: RoomIdentity; next: RoomIdentity },
  now: number,
): Step<OwnerState> {
  return guarded(state, () => ownerUpdate(ctx, state, keys, now));
}

function ownerUpdate(ctx: OwnerCtx, s: OwnerState, keys: { current: RoomIdentity; next: RoomIdentity }, now: number): Out<OwnerState> {
  const { current, next } = keys;
  if (!equalBytes(current.identity.publicKey, ctx.identity.publicKey) || !equalBytes(current.peer.publicKey, ctx.peerKey))
    throw new MembershipError('room.state', 'the current keys are not the ones this room runs on');
  const old = s.members.find((m) => m.info.owner);
  if (old === undefined || old.info.id !== s.selfId) throw new MembershipError('room.state', 'the owner is not in its own member list');
  const id = memberIdOf(next.identity.publicKey);
  const peer = peerKeyHex(next.peer.publicKey);
  if (id === old.info.id || s.members.some((m) => m.info.id === id || m.peer === peer) || s.removedPeers.includes(peer))
    throw new MembershipError('room.state', 'the new keys are already in use');
  const info: MemberInfo = {
    id,
    ipub: next.identity.publicKey,
    npub: next.peer.publicKey,
    name: old.info.name,
    owner: true,
    epoch: s.epoch,
  };
  const nextCtx: OwnerCtx = { ...ctx, identity: next.identity, peerKey: next.peer.publicKey };
  const self: OwnerMember = {
    info,
    lastSeq: 0,
    lastHash: ZERO_HASH,
    cert: signCert(next.identity.privateKey, s.room, info),
    peer,
    viewFrom: old.viewFrom,
    catchUp: null,
  };
  // Every certificate from now on is signed with the new key (join-accept and re-anchors carry them).
  const members = s.members.map((m) => (m === old ? self : { ...m, cert: signCert(next.identity.privateKey, s.room, m.info) }));
  // Pending invites commit to the old key and path (5.3): revoked, their claimants refused.
  const effects: Effect[] = [];
  let revoked = 0;
  const invites = s.invites.map((r): InviteRecord => {
    if (r.status !== 'pending' && r.status !== 'claimed') return r;
    revoked++;
    if (r.claim !== undefined) {
      effects.push(
        sendTo(r.claim.peer, encodeMessage({ type: 'join-refused', code: 'room.invite-revoked' })),
        closeLink(r.claim.peer, 'room.invite-revoked'),
      );
    }
    const authToken = r.authToken ?? (r.token !== undefined ? saltyAuthToken(r.token) : undefined);
    return {
      id: r.id,
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
      status: 'revoked',
      ...(authToken !== undefined ? { authToken } : {}),
    };
  });
  const waiting = s.members.filter((m) => !m.info.owner).map((m) => m.info.id);
  const previousPaths: PreviousPath[] = [...(s.previousPaths ?? [])];
  if (waiting.length > 0) {
    previousPaths.push({ peer: old.peer, secret: current.peer.secretKey.slice(), until: now + PREVIOUS_PATH_MS, waiting });
  }
  const replaced: OwnerState = {
    ...s,
    selfId: id,
    seq: 0,
    members,
    invites,
    previousPaths: previousPaths.slice(-MAX_PREVIOUS_PATHS),
  };
  // Signed with the OLD key (ctx): the key every member holds authorizes the replacement.
  const { state, ann } = appendEntry(ctx, replaced, { op: 'owner-update', cert: self.cert, removed: old.info.id, opub: info.ipub }, now);
  for (const m of state.members) if (!m.info.owner) effects.push(sendTo(m.peer, encodeMessage({ type: 'chain', ann })));
  // The rekey that follows, signed and sealed with the NEW key: the chain head is never an entry a
  // joiner (who knows only the new key) cannot verify, and no new room key is sealed from the old key.
  const r = rotate(nextCtx, state, 'manual', now);
  effects.push(...r.effects);
  effects.push(emit({ type: 'keys-updated', old: old.info.id, member: { id, name: info.name, owner: true }, self: true, revoked }));
  return { state: r.state, effects };
}

/** The paths the owner still listens on for members that have not moved, with the peer keys it admits there. */
export function previousPathsOf(s: OwnerState): { path: PreviousPath; trusted: PeerKeyHex[] }[] {
  return (s.previousPaths ?? []).map((path) => ({
    path,
    trusted: s.members.filter((m) => !m.info.owner && path.waiting.includes(m.info.id)).map((m) => m.peer),
  }));
}

/**
 * A member's link to our current path opened: it applied the owner update (it could not find the
 * path otherwise), so no previous path waits for it any longer. Paths nobody waits on are dropped.
 */
export function memberMoved(s: OwnerState, peer: PeerKeyHex): OwnerState {
  const m = s.members.find((x) => x.peer === peer && !x.info.owner);
  if (m === undefined || s.previousPaths === undefined || !s.previousPaths.some((p) => p.waiting.includes(m.info.id))) return s;
  const ids = new Set(s.members.filter((x) => x !== m).map((x) => x.info.id));
  return withPaths(
    s,
    s.previousPaths.map((p) => ({ ...p, waiting: p.waiting.filter((id) => ids.has(id)) })),
  );
}

/** Drops previous paths past their time, or whose waiting members are all gone (removed, or updated their keys). */
export function expirePreviousPaths(s: OwnerState, now: number): OwnerState {
  if (s.previousPaths === undefined) return s;
  const ids = new Set(s.members.map((m) => m.info.id));
  const kept = s.previousPaths.filter((p) => now <= p.until && p.waiting.some((id) => ids.has(id)));
  return kept.length === s.previousPaths.length ? s : withPaths(s, kept);
}

function withPaths(s: OwnerState, paths: readonly PreviousPath[]): OwnerState {
  const kept = paths.filter((p) => p.waiting.length > 0);
  if (kept.length > 0) return { ...s, previousPaths: kept };
  const rest: OwnerState = { ...s };
  delete (rest as { previousPaths?: unknown }).previousPaths;
  return rest;
}

// ---- Member side ----

/**
 * Opens a chain entry with the owner key we hold, or (for an entry we already hold) with the key of
 * a former owner: a resync may repeat entries from before an owner update we applied. An entry
 * beyond our head must verify with the key we hold (room.not-owner otherwise: a forged update).
 */
export function openOwnerEntry(s: MemberState, ann: Uint8Array): ChainBody {
  const held = s.ownerIpub;
  if (held === null) throw new MembershipError('room.state', 'the owner key is not known yet');
  try {
    return openChainEntry(held, s.room, ann);
  } catch (e) {
    if (!(e instanceof AuthenticityError) || e.code !== 'room.not-owner') throw e;
    for (const f of s.former) {
      if (!f.info.owner) continue;
      let entry: ChainBody;
      try {
        entry = openChainEntry(f.info.ipub, s.room, ann);
      } catch (inner) {
        if (inner instanceof AuthenticityError && inner.code === 'room.not-owner') continue;
        throw inner;
      }
      if (entry.n <= s.chain) return entry;
    }
    throw e;
  }
}

/**
 * The owner key in force after a resync's entries (5.8.1 step 5.5): the keys in it are sealed with
 * it. Walks the entries beyond our head, switching at each owner update that verifies with the key
 * in force; an entry that does not verify stops the walk (the apply step refuses it with its error).
 */
export function ownerKeyAfter(s: MemberState, anns: readonly Uint8Array[]): EcPublicKey | null {
  let key = s.ownerIpub;
  if (key === null) return null;
  for (const ann of anns) {
    let entry: ChainBody;
    try {
      entry = openChainEntry(key, s.room, ann);
    } catch (e) {
      // Held entries signed by a former owner key are skipped; anything else is refused when applied.
      if (e instanceof AuthenticityError && e.code === 'room.not-owner') continue;
      throw e;
    }
    if (entry.op === 'owner-update' && entry.n > s.chain) key = entry.opub;
  }
  return key;
}

/**
 * Step 5.3: applies an `owner-update` entry that follows our head (position and `prev` checked by
 * the caller): the old owner becomes a former member, the certified new one a member, and our
 * trusted owner key and path are the new ones; the link to the old path is closed (the driver
 * connects to the new one once this state is saved).
 */
export function applyOwnerUpdate(
  s: MemberState,
  entry: Extract<ChainBody, { op: 'owner-update' }>,
  ann: Uint8Array,
  key: KeyBody | null,
): Out<MemberState> {
  const cur = s.epochs.find((e) => e.epoch === s.epoch);
  if (cur === undefined) throw new MembershipError('room.state', 'no chain head yet');
  if (key !== null) throw new AuthenticityError('room.bad-rekey', 'an owner update carries no key (the rotation after it does)');
  if (
    entry.epoch !== s.epoch ||
    entry.firstIdx !== cur.firstIdx ||
    cur.key === null ||
    !equalBytes(entry.keyHash, keyHashOf(s.room, s.epoch, cur.key))
  ) {
    throw new AuthenticityError('room.fork', `owner update ${entry.n} changes the epoch or its key`);
  }
  const old = s.members.find((m) => m.info.owner);
  if (old === undefined || old.info.id !== entry.removed)
    throw new AuthenticityError('room.fork', `owner update ${entry.n} does not replace the owner`);
  // Possession: the new key certifies itself as the owner (room.not-owner when it did not sign).
  const info = openCert(entry.opub, s.room, entry.cert);
  if (
    !info.owner ||
    !equalBytes(info.ipub, entry.opub) ||
    info.epoch !== entry.epoch ||
    info.name !== old.info.name ||
    s.members.some((m) => m.info.id === info.id || equalBytes(m.info.npub, info.npub))
  ) {
    throw new AuthenticityError('room.fork', `owner update ${entry.n} certifies an owner that cannot replace ${entry.removed}`);
  }
  const members: KnownMember[] = [...s.members.filter((m) => m !== old), { info, lastSeq: 0, lastHash: ZERO_HASH }];
  if (!equalBytes(entry.membersHash, membersHashOf(members.map((m) => m.info))))
    throw new AuthenticityError('room.fork', `owner update ${entry.n}: member list does not match`);
  const former = [...s.former, { ...old, untilEpoch: entry.epoch + 1 }];
  const next: MemberState = {
    ...s,
    members,
    former: former.length <= MAX_FORMER_MEMBERS ? former : former.slice(-MAX_FORMER_MEMBERS),
    epochs: s.epochs.map((e) => (e === cur ? { ...e, ann, annHash: sha256(ann) } : e)),
    chain: entry.n,
    ownerIpub: entry.opub,
    ownerPeer: peerKeyHex(info.npub),
  };
  return {
    state: next,
    effects: [
      emit({ type: 'keys-updated', old: old.info.id, member: { id: info.id, name: info.name, owner: true }, self: false }),
      // The owner listens on its new path now; the driver reconnects there (the state names it).
      closeLink(s.ownerPeer, 'owner-moved'),
    ],
  };
}
