/**
 * A member's room machine (docs/PROTOCOL.md section 5): `startJoin` from an invite, then
 * `memberStep(ctx, state, event)`. Everything arrives from the owner over one peer link; every
 * owner-signed structure is checked against the owner key from the invite (or, for a v2 invite,
 * the key the owner sent that matches the invite's commitment).
 */
import {
  AuthError,
  asSymmetricKey,
  cellOpen,
  cellSeal,
  equalBytes,
  openFrom,
  sealTo,
  sha256,
  toHex,
  type EcPublicKey,
} from '../../crypto/index.ts';
import { DecodeError, type ZeroRoomError } from '../errors.ts';
import {
  MAX_NAME,
  MAX_TEXT,
  decodeAcceptBundle,
  decodeKeyBody,
  decodeToMember,
  encodeJoinSecret,
  encodeMessage,
  fileBody,
  type ChainBody,
  type MessageBody,
  type HistoryEntryWire,
  type KeyBody,
  type ToMember,
} from './codec.ts';
import { AuthenticityError, FreshnessError, MembershipError, RoomError } from './errors.ts';
import { LABEL, ZERO_HASH, contextOf, inviteIdBytes, keyHashOf, memberIdOf, ownerKeyCommit, peerKeyHex, safetyCode } from './ids.ts';
import { checkInviteFresh, type Invite } from './invite.ts';
import { closeLink, emit, guarded, sendTo, type Out } from './step.ts';
import { signKeyUpdate } from './key-update.ts';
import {
  GRACE_MESSAGES,
  MAX_FORMER_MEMBERS,
  MAX_PENDING_SENDS,
  MAX_SENDER_GAPS,
  MEMBER_KEPT_EPOCHS,
  type Effect,
  type EpochRecord,
  type KnownMember,
  type MemberCtx,
  type MemberEvent,
  type MemberId,
  type MemberInfo,
  type MemberState,
  type RemovalReason,
  type RoomEvent,
  type SenderGap,
  type Step,
} from './types.ts';
import {
  epochFor,
  membersHashOf,
  openAnchor,
  openBody,
  openCert,
  openChainEntry,
  openEnvelope,
  sealEnvelope,
  senderFor,
} from './verify.ts';

export interface StartJoinOptions {
  readonly now: number;
  readonly name: string;
}

/**
 * Section 5.4: a fresh joining key; the first message for the owner (`join-request` sealed to the
 * owner's key, or for a v2 invite `join-hello` to learn that key). Throws for an expired invite.
 */
export function startJoin(ctx: MemberCtx, invite: Invite, opts: StartJoinOptions): Step<MemberState> {
  checkInviteFresh(invite, opts.now);
  if (opts.name.length > MAX_NAME) throw new RangeError(`name longer than ${MAX_NAME} characters`);
  const state: MemberState = {
    role: 'member',
    phase: 'joining',
    room: invite.room.slice(),
    roomName: invite.name ?? null,
    ownerIpub: invite.opub,
    ownerPeer: peerKeyHex(invite.npub),
    selfId: memberIdOf(ctx.identity.publicKey),
    name: opts.name,
    join: {
      inviteId: inviteIdBytes(invite.token),
      token: invite.token.slice(),
      jkey: asSymmetricKey(ctx.random(32)),
      acceptHash: null,
      ownerCommit: invite.ocommit.slice(),
      exp: invite.exp,
    },
    seq: 0,
    epoch: -1,
    epochs: [],
    members: [],
    former: [],
    lastIdx: -1,
    viewFrom: 0,
    syncAt: null,
    chain: -1,
    chainSeen: null,
    tail: ZERO_HASH,
    sent: [],
    gaps: [],
  };
  return { state, effects: [firstContact(ctx, state)] };
}

function ownerKey(s: MemberState): EcPublicKey {
  if (s.ownerIpub === null) throw new MembershipError('room.state', 'the owner key is not known yet');
  return s.ownerIpub;
}

/** v2 invites ask for the owner key first (5.3); with it known, the join request. */
function firstContact(ctx: MemberCtx, s: MemberState): Effect {
  if (s.ownerIpub === null) return sendTo(s.ownerPeer, encodeMessage({ type: 'join-hello', invite: s.join!.inviteId }));
  return joinRequest(ctx, s);
}

function joinRequest(ctx: MemberCtx, s: MemberState): Effect {
  const j = s.join!;
  const sealed = sealTo(
    ctx.identity.privateKey,
    ownerKey(s),
    encodeJoinSecret({ room: s.room, token: j.token, jkey: j.jkey, npub: ctx.peerKey, name: s.name }),
  );
  return sendTo(s.ownerPeer, encodeMessage({ type: 'join-request', invite: j.inviteId, ipub: ctx.identity.publicKey, sealed }));
}

function joinConfirm(s: MemberState): Effect {
  const j = s.join!;
  const proof = cellSeal(asSymmetricKey(j.jkey), j.acceptHash!, contextOf(LABEL.joinConfirm, j.token, s.room));
  return sendTo(s.ownerPeer, encodeMessage({ type: 'join-confirm', invite: j.inviteId, proof, chain: s.chain }));
}

/** Section 5.11: over the chain head (null before the accept). */
export function memberSafetyCode(s: MemberState): string | null {
  const cur = s.epochs.find((e) => e.epoch === s.epoch);
  return cur?.annHash == null ? null : safetyCode(s.room, cur.annHash);
}

// ---- The step function ----

export function memberStep(ctx: MemberCtx, state: MemberState, event: MemberEvent): Step<MemberState> {
  switch (event.kind) {
    case 'received': {
      const seen: { type: ToMember['type'] | null } = { type: null };
      return guarded(
        state,
        () => {
          const msg = decodeToMember(event.bytes);
          seen.type = msg.type;
          return onReceived(ctx, state, msg);
        },
        (e) => refusalEffects(state, seen.type, e),
      );
    }
    case 'connected':
      return guarded(state, () => onConnected(ctx, state));
    case 'send':
      return guarded(state, () =>
        sendText(
          ctx,
          state,
          event.file !== undefined ? fileBody(event.file) : { text: event.text, ts: Math.max(0, Math.floor(event.now)) },
        ),
      );
    case 'leave':
      return guarded(state, () => {
        requirePhase(state, 'member');
        return {
          state: { ...state, phase: 'left' },
          effects: [sendTo(state.ownerPeer, encodeMessage({ type: 'leave' })), closeLink(state.ownerPeer, 'left'), emit({ type: 'left' })],
        };
      });
    case 'update-keys':
      return guarded(state, () => requestKeyUpdate(ctx, state));
  }
}

/**
 * Section 5.8.1: ask the owner to replace our keys with `ctx.pending` (which the driver stored
 * before this step). Nothing changes here: we switch when the owner's `update` entry arrives.
 */
function requestKeyUpdate(ctx: MemberCtx, s: MemberState): Out<MemberState> {
  requirePhase(s, 'member');
  if (ctx.pending === undefined) throw new MembershipError('room.state', 'no new keys to switch to');
  const body = { room: s.room, id: s.selfId, n: s.chain, ipub: ctx.pending.identity.publicKey, npub: ctx.pending.peerKey };
  const signed = signKeyUpdate(ctx.identity.privateKey, ctx.pending.identity, body);
  return { state: s, effects: [sendTo(s.ownerPeer, encodeMessage({ type: 'key-update', old: signed.old, new: signed.new }))] };
}

/**
 * A message from a sender we do not know may be from a member whose admission was withheld from
 * us (5.6): the message is refused, and we ask for the chain (and the message again) once.
 */
function refusalEffects(s: MemberState, type: ToMember['type'] | null, e: ZeroRoomError): Effect[] {
  if (type === 'deliver' && e.code === 'room.not-member' && s.phase === 'member' && s.syncAt !== s.lastIdx) return [syncRequest(s)];
  return [];
}

function requirePhase(s: MemberState, ...phases: MemberState['phase'][]): void {
  if (s.phase === 'refused' || s.phase === 'removed' || s.phase === 'left') {
    throw new MembershipError('room.closed', `no longer in the room (${s.phase})`);
  }
  if (!phases.includes(s.phase)) throw new MembershipError('room.state', `not expected while ${s.phase}`);
}

function onConnected(ctx: MemberCtx, s: MemberState): Out<MemberState> {
  requirePhase(s, 'joining', 'accepted', 'member');
  if (s.phase === 'joining') return { state: s, effects: [firstContact(ctx, s)] };
  if (s.phase === 'accepted') return { state: s, effects: [joinConfirm(s)] };
  // Open sender gaps are asked about again: an answer may have been lost with the link (5.6).
  return { state: { ...s, syncAt: s.lastIdx }, effects: [syncRequest(s), ...s.gaps.map((g) => wantRequest(s, g))] };
}

function syncRequest(s: MemberState): Effect {
  return sendTo(s.ownerPeer, encodeMessage({ type: 'sync', last_idx: s.lastIdx, epoch: s.epoch, chain: s.chain }));
}

function wantRequest(s: MemberState, g: SenderGap): Effect {
  return sendTo(s.ownerPeer, encodeMessage({ type: 'want', from: g.from, after: g.after, before: g.before }));
}

function sendText(ctx: MemberCtx, s: MemberState, body: MessageBody): Out<MemberState> {
  requirePhase(s, 'member');
  if (body.text.length > MAX_TEXT) throw new RangeError(`message text longer than ${MAX_TEXT} characters`);
  const cur = s.epochs.find((e) => e.epoch === s.epoch);
  if (cur?.key == null) throw new MembershipError('room.state', 'no key for the current epoch yet (a catch-up is under way)');
  const seq = s.seq + 1;
  const env = sealEnvelope(ctx.identity.privateKey, {
    room: s.room,
    epoch: s.epoch,
    key: cur.key,
    from: s.selfId,
    seq,
    chain: s.chain,
    prev: s.tail,
    body,
  });
  const hash = sha256(env);
  const sent = [...s.sent, { seq, hash, prev: s.tail }].slice(-MAX_PENDING_SENDS);
  return { state: { ...s, seq, tail: hash, sent }, effects: [sendTo(s.ownerPeer, encodeMessage({ type: 'send', env }))] };
}

function onReceived(ctx: MemberCtx, s: MemberState, msg: ToMember): Out<MemberState> {
  switch (msg.type) {
    case 'owner-key':
      requirePhase(s, 'joining');
      return onOwnerKey(ctx, s, msg);
    case 'join-accept':
      requirePhase(s, 'joining', 'accepted');
      return onAccept(s, msg);
    case 'join-refused':
      requirePhase(s, 'joining', 'accepted');
      return {
        state: { ...s, phase: 'refused', join: null },
        effects: [emit({ type: 'join-refused', code: msg.code }), closeLink(s.ownerPeer, msg.code)],
      };
    case 'welcome':
      requirePhase(s, 'accepted');
      return onWelcome(ctx, s, msg);
    case 'refused':
      requirePhase(s, 'member');
      return onRefused(s, msg);
    case 'deliver':
      requirePhase(s, 'member');
      return onDeliver(s, msg);
    case 'history':
      requirePhase(s, 'member');
      return onHistory(s, msg);
    case 'chain':
      requirePhase(s, 'member');
      return onChain(ctx, s, msg);
    case 'removed':
      requirePhase(s, 'joining', 'accepted', 'member');
      return removed(s, msg.reason);
    case 'resync':
      requirePhase(s, 'member');
      return onResync(ctx, s, msg);
    case 'supply':
      requirePhase(s, 'member');
      return onSupply(s, msg);
  }
}

function removed(s: MemberState, reason: RemovalReason): Out<MemberState> {
  // The keys we hold stay (they read what we already saw); no later key will ever reach us.
  return {
    state: { ...s, phase: 'removed', join: null },
    effects: [emit({ type: 'removed', reason }), closeLink(s.ownerPeer, reason)],
  };
}

// ---- Join (5.3, 5.4) ----

function onOwnerKey(ctx: MemberCtx, s: MemberState, msg: Extract<ToMember, { type: 'owner-key' }>): Out<MemberState> {
  const j = s.join!;
  if (!equalBytes(msg.invite, j.inviteId)) throw new AuthenticityError('room.not-owner', 'owner key for another invite');
  if (s.ownerIpub !== null) throw new FreshnessError('room.duplicate', 'the owner key is known already');
  if (!equalBytes(ownerKeyCommit(msg.opub), j.ownerCommit)) {
    throw new AuthenticityError('room.not-owner', 'the owner key does not match the invite');
  }
  const next: MemberState = { ...s, ownerIpub: msg.opub };
  return { state: next, effects: [joinRequest(ctx, next)] };
}

function onAccept(s: MemberState, msg: Extract<ToMember, { type: 'join-accept' }>): Out<MemberState> {
  const opub = ownerKey(s);
  const j = s.join!;
  if (!equalBytes(msg.invite, j.inviteId)) throw new AuthenticityError('room.not-owner', 'join accept for another invite');
  let plain: Uint8Array;
  try {
    plain = cellOpen(asSymmetricKey(j.jkey), msg.sealed, contextOf(LABEL.joinAccept, j.token, s.room));
  } catch (e) {
    if (e instanceof AuthError)
      throw new AuthenticityError('room.not-owner', 'join accept does not open with our joining key', { cause: e });
    throw e;
  }
  const bundle = decodeAcceptBundle(plain);
  if (!equalBytes(bundle.room, s.room)) throw new AuthenticityError('room.wrong-room', 'join accept is for another room');
  const members = bundle.certs.map((c) => openCert(opub, s.room, c));
  if (!members.some((m) => m.owner)) throw new AuthenticityError('room.not-owner', 'join accept lists no owner');
  if (new Set(members.map((m) => m.id)).size !== members.length)
    throw new AuthenticityError('room.fork', 'join accept lists a member twice');
  const head = openAnchor(opub, s.room, bundle.ann);
  let n: number;
  let firstIdx: number;
  if ('entry' in head) {
    const e = head.entry;
    if (e.epoch !== bundle.epoch || !equalBytes(e.keyHash, keyHashOf(s.room, e.epoch, bundle.key))) {
      throw new AuthenticityError('room.bad-rekey', 'join accept key and chain head disagree');
    }
    if (!equalBytes(e.membersHash, membersHashOf(members)))
      throw new AuthenticityError('room.fork', 'join accept members and chain head disagree');
    n = e.n;
    firstIdx = e.firstIdx;
  } else {
    // A migrated owner whose head is still a format-1 announcement (5.7): n is its epoch.
    if (head.legacy.epoch !== bundle.epoch) throw new AuthenticityError('room.bad-rekey', 'join accept key and announcement disagree');
    n = head.legacy.epoch;
    firstIdx = head.legacy.firstIdx;
  }
  const next: MemberState = {
    ...s,
    phase: 'accepted',
    roomName: bundle.name ?? s.roomName,
    epoch: bundle.epoch,
    epochs: [{ epoch: bundle.epoch, key: asSymmetricKey(bundle.key), firstIdx, ann: bundle.ann, annHash: sha256(bundle.ann) }],
    members: members.map((info) => ({ info, lastSeq: 0, lastHash: null })),
    chain: n,
    join: { ...j, acceptHash: sha256(encodeMessage(msg)) },
  };
  return { state: next, effects: [joinConfirm(next)] };
}

/** We are admitted; our own `add` entry (and anything since the accept) follows in a resync (5.4). */
function onWelcome(ctx: MemberCtx, s: MemberState, msg: Extract<ToMember, { type: 'welcome' }>): Out<MemberState> {
  const self = openCert(ownerKey(s), s.room, msg.cert);
  if (self.id !== s.selfId || !equalBytes(self.npub, ctx.peerKey)) {
    throw new AuthenticityError('room.impersonation', 'welcome certificate is not ours');
  }
  const next: MemberState = {
    ...s,
    phase: 'member',
    join: null,
    lastIdx: msg.from_idx - 1,
    viewFrom: msg.from_idx,
    tail: ZERO_HASH,
    sent: [],
  };
  return { state: next, effects: [emit({ type: 'joined', room: toHex(s.room), epoch: next.epoch })] };
}

// ---- Refused sends (5.6) ----

/**
 * A refused message breaks our chain at it (5.6): it and every pending message built on it are
 * dead. If our tail is one of them, the next message chains onto the owner's tail instead (the
 * hash of our last message it accepted: a message lost on the way is then left out, not waited for).
 */
function onRefused(s: MemberState, msg: Extract<ToMember, { type: 'refused' }>): Out<MemberState> {
  const effects = [emit({ type: 'send-refused', code: msg.code, seq: msg.seq ?? null })];
  if (msg.seq === undefined || msg.code === 'room.replay') return { state: s, effects };
  const refused = s.sent.find((r) => r.seq === msg.seq);
  if (refused === undefined) return { state: s, effects };
  const dead = new Set<Uint8Array>();
  for (const r of s.sent) {
    if (r === refused || [...dead].some((d) => equalBytes(d, r.prev))) dead.add(r.hash);
  }
  const sent = s.sent.filter((r) => !dead.has(r.hash));
  const tailDead = [...dead].some((d) => equalBytes(d, s.tail));
  const tail = tailDead ? (msg.tail ?? refused.prev) : s.tail;
  return { state: { ...s, tail, sent }, effects };
}

// ---- The announcement chain (5.7) ----

const summary = (m: MemberInfo) => ({ id: m.id, name: m.name, owner: m.owner });

function currentRecord(s: MemberState): EpochRecord {
  const cur = s.epochs.find((e) => e.epoch === s.epoch);
  if (cur === undefined || cur.annHash === null) throw new MembershipError('room.state', 'no chain head yet');
  return cur;
}

function openKey(ctx: MemberCtx, s: MemberState, sealed: Uint8Array): KeyBody {
  let body: KeyBody;
  try {
    let plain: Uint8Array;
    try {
      plain = openFrom(ctx.identity.privateKey, ownerKey(s), sealed);
    } catch (e) {
      // Sealed to the new keys of an update of ours that the owner has committed (5.8.1).
      if (!(e instanceof AuthError) || ctx.pending === undefined) throw e;
      plain = openFrom(ctx.pending.identity.privateKey, ownerKey(s), sealed);
    }
    body = decodeKeyBody(plain);
  } catch (e) {
    if (e instanceof AuthError || e instanceof DecodeError)
      throw new AuthenticityError('room.bad-rekey', 'epoch key does not open from the owner', { cause: e });
    throw e;
  }
  if (!equalBytes(body.room, s.room)) throw new AuthenticityError('room.bad-rekey', 'epoch key for another room');
  return body;
}

/** The key of a rotate entry must be the one the entry commits to. */
function checkKey(s: MemberState, entry: ChainBody, key: KeyBody): void {
  if (key.epoch !== entry.epoch || key.firstIdx !== entry.firstIdx || !equalBytes(keyHashOf(s.room, key.epoch, key.key), entry.keyHash)) {
    throw new AuthenticityError('room.bad-rekey', `epoch key is not the one chain entry ${entry.n} commits to`);
  }
}

function leftReason(reason: string): RemovalReason | 'removed' {
  return reason === 'leave' ? 'left' : reason === 'kick' ? 'kicked' : 'removed';
}

/**
 * Applies chain entry `head + 1` (5.7) in one transition, after every check of the op rules and
 * the member list hash. `key`: the opened key of a rotate entry (required live).
 */
function applyEntry(
  ctx: MemberCtx,
  s: MemberState,
  entry: ChainBody,
  ann: Uint8Array,
  key: KeyBody | null,
  live: boolean,
): Out<MemberState> {
  const opub = ownerKey(s);
  const cur = currentRecord(s);
  if (entry.n !== s.chain + 1) throw new FreshnessError('room.chain-gap', `chain entry ${entry.n} does not follow ${s.chain}`);
  if (!equalBytes(entry.prev, cur.annHash!))
    throw new AuthenticityError('room.fork', `chain entry ${entry.n} does not chain onto our head`);
  const annHash = sha256(ann);
  const effects: Effect[] = [];
  let next: MemberState;
  switch (entry.op) {
    case 'create':
      throw new AuthenticityError('room.fork', 'a second create entry');
    case 'add': {
      if (key !== null) throw new AuthenticityError('room.bad-rekey', 'an admission carries no key');
      if (
        entry.epoch !== s.epoch ||
        entry.firstIdx !== cur.firstIdx ||
        cur.key === null ||
        !equalBytes(entry.keyHash, keyHashOf(s.room, s.epoch, cur.key))
      ) {
        throw new AuthenticityError('room.fork', `admission ${entry.n} changes the epoch or its key`);
      }
      const info = openCert(opub, s.room, entry.cert);
      if (info.epoch !== entry.epoch || info.owner || s.members.some((m) => m.info.id === info.id)) {
        throw new AuthenticityError('room.fork', `admission ${entry.n} of a member that cannot be added`);
      }
      const members: KnownMember[] = [...s.members, { info, lastSeq: 0, lastHash: ZERO_HASH }];
      if (!equalBytes(entry.membersHash, membersHashOf(members.map((m) => m.info)))) {
        throw new AuthenticityError('room.fork', `admission ${entry.n}: member list does not match`);
      }
      next = { ...s, members, chain: entry.n, epochs: s.epochs.map((e) => (e === cur ? { ...e, ann, annHash } : e)) };
      // Our own admission is reported as 'joined' (by the welcome), not as someone joining.
      if (info.id !== s.selfId) effects.push(emit({ type: 'member-joined', member: summary(info) }));
      break;
    }
    case 'rotate': {
      if (entry.epoch !== s.epoch + 1 || entry.firstIdx < cur.firstIdx) {
        throw new AuthenticityError('room.fork', `rotation ${entry.n} does not start the next epoch`);
      }
      if (entry.removed.includes(s.selfId)) throw new AuthenticityError('room.bad-rekey', 'a rotation that removes us');
      const gone = entry.removed.map((id) => s.members.find((m) => m.info.id === id));
      if (gone.some((m) => m === undefined || m.info.owner))
        throw new AuthenticityError('room.fork', `rotation ${entry.n} removes a non-member`);
      const members = s.members.filter((m) => !entry.removed.includes(m.info.id));
      if (!equalBytes(entry.membersHash, membersHashOf(members.map((m) => m.info)))) {
        throw new AuthenticityError('room.fork', `rotation ${entry.n}: member list does not match`);
      }
      if (!members.some((m) => m.info.id === s.selfId) && s.members.some((m) => m.info.id === s.selfId)) {
        throw new AuthenticityError('room.bad-rekey', 'a rotation without us');
      }
      if (key === null && live) throw new AuthenticityError('room.bad-rekey', `rotation ${entry.n} came without its key`);
      if (key !== null) checkKey(s, entry, key);
      const rec: EpochRecord = {
        epoch: entry.epoch,
        key: key === null ? null : asSymmetricKey(key.key),
        firstIdx: entry.firstIdx,
        ann,
        annHash,
      };
      const epochs = [
        ...s.epochs.filter((e) => e.epoch !== entry.epoch).map((e) => (e === cur ? { ...e, ann: null, annHash: null } : e)),
        rec,
      ];
      const reason = leftReason(entry.reason);
      const former = keptFormer([...s.former, ...gone.map((m) => ({ ...m!, untilEpoch: entry.epoch }))]);
      next = { ...s, members, former, epochs: epochs.sort((a, b) => a.epoch - b.epoch), epoch: entry.epoch, chain: entry.n };
      for (const m of gone) effects.push(emit({ type: 'member-left', member: summary(m!.info), reason }));
      effects.push(emit({ type: 'rotated', epoch: entry.epoch, reason: entry.reason }));
      break;
    }
    case 'update':
      return applyUpdate(ctx, s, entry, ann, key, live);
  }
  return { state: next, effects };
}

/**
 * Section 5.8.1: an `update` entry replaces one member's keys and starts the next epoch. The old
 * id becomes a former member (its messages stay verifiable); when it is us, the certificate must
 * be for the pending keys we asked for, and we switch to them in this step: new id, seq 0, tail 0.
 */
function applyUpdate(
  ctx: MemberCtx,
  s: MemberState,
  entry: Extract<ChainBody, { op: 'update' }>,
  ann: Uint8Array,
  key: KeyBody | null,
  live: boolean,
): Out<MemberState> {
  const cur = currentRecord(s);
  if (entry.epoch !== s.epoch + 1 || entry.firstIdx < cur.firstIdx) {
    throw new AuthenticityError('room.fork', `update ${entry.n} does not start the next epoch`);
  }
  const old = s.members.find((m) => m.info.id === entry.removed);
  if (old === undefined || old.info.owner) throw new AuthenticityError('room.fork', `update ${entry.n} replaces a non-member`);
  const info = openCert(ownerKey(s), s.room, entry.cert);
  if (info.epoch !== entry.epoch || info.owner || info.name !== old.info.name || s.members.some((m) => m.info.id === info.id)) {
    throw new AuthenticityError('room.fork', `update ${entry.n} certifies a member that cannot replace ${entry.removed}`);
  }
  const self = old.info.id === s.selfId;
  // Ours: the keys we asked for (pending), or already in use when the driver reconnected with them.
  const ours = (k: { identity: { publicKey: Uint8Array }; peerKey: Uint8Array } | undefined) =>
    k !== undefined && equalBytes(k.identity.publicKey, info.ipub) && equalBytes(k.peerKey, info.npub);
  if (self && !ours(ctx.pending) && !ours(ctx)) throw new AuthenticityError('room.bad-rekey', 'an update of our keys we did not ask for');
  const members: KnownMember[] = [...s.members.filter((m) => m !== old), { info, lastSeq: 0, lastHash: ZERO_HASH }];
  if (!equalBytes(entry.membersHash, membersHashOf(members.map((m) => m.info)))) {
    throw new AuthenticityError('room.fork', `update ${entry.n}: member list does not match`);
  }
  if (key === null && live) throw new AuthenticityError('room.bad-rekey', `update ${entry.n} came without its key`);
  if (key !== null) checkKey(s, entry, key);
  const annHash = sha256(ann);
  const rec: EpochRecord = {
    epoch: entry.epoch,
    key: key === null ? null : asSymmetricKey(key.key),
    firstIdx: entry.firstIdx,
    ann,
    annHash,
  };
  const epochs = [...s.epochs.filter((e) => e.epoch !== entry.epoch).map((e) => (e === cur ? { ...e, ann: null, annHash: null } : e)), rec];
  const former = keptFormer([...s.former, { ...old, untilEpoch: entry.epoch }]);
  let next: MemberState = { ...s, members, former, epochs: epochs.sort((a, b) => a.epoch - b.epoch), epoch: entry.epoch, chain: entry.n };
  // Our messages not yet delivered were signed by the old key: the owner no longer orders them.
  if (self) next = { ...next, selfId: info.id, seq: 0, tail: ZERO_HASH, sent: [] };
  return { state: next, effects: [emit({ type: 'keys-updated', old: old.info.id, member: summary(info), self })] };
}

/** An entry at or below our head: the same one again, or a different one (a fork). */
function heldEntry(s: MemberState, entry: ChainBody, ann: Uint8Array): RoomError {
  if (entry.n === s.chain && !equalBytes(sha256(ann), currentRecord(s).annHash!)) {
    return new AuthenticityError('room.fork', `two different chain entries at ${entry.n}`);
  }
  return new FreshnessError('room.duplicate', `chain entry ${entry.n} already held`);
}

function onChain(ctx: MemberCtx, s: MemberState, msg: Extract<ToMember, { type: 'chain' }>): Out<MemberState> {
  const entry = openChainEntry(ownerKey(s), s.room, msg.ann);
  if (entry.n <= s.chain) throw heldEntry(s, entry, msg.ann);
  if (entry.n > s.chain + 1) return requestGap(s); // entries were lost or withheld: ask (5.10)
  const key = msg.key === undefined ? null : openKey(ctx, s, msg.key);
  const r = applyEntry(ctx, s, entry, msg.ann, key, true);
  return { state: pruned(r.state), effects: r.effects };
}

/** The newest MAX_FORMER_MEMBERS former members: older ones' history can no longer be verified. */
function keptFormer(former: KnownMember[]): KnownMember[] {
  return former.length <= MAX_FORMER_MEMBERS ? former : former.slice(-MAX_FORMER_MEMBERS);
}

/**
 * Retention (5.15): the epochs whose messages can still reach us, from the one before the epoch in
 * force at our next index on, at most MEMBER_KEPT_EPOCHS, the current one always among them.
 */
function pruned(s: MemberState): MemberState {
  let inForce = -1;
  for (const e of s.epochs) if (e.firstIdx <= s.lastIdx + 1 && e.epoch > inForce) inForce = e.epoch;
  let epochs = s.epochs.filter((e) => e.epoch >= inForce - 1 || e.epoch === s.epoch);
  if (epochs.length > MEMBER_KEPT_EPOCHS) {
    const keep = epochs.slice(-MEMBER_KEPT_EPOCHS);
    epochs = keep.some((e) => e.epoch === s.epoch) ? keep : [...keep.slice(1), ...epochs.filter((e) => e.epoch === s.epoch)];
  }
  return epochs.length === s.epochs.length ? s : { ...s, epochs };
}

/** Replace the member list; dropped members become former members (their old messages stay verifiable). */
function rosterChange(
  s: MemberState,
  infos: readonly MemberInfo[],
  untilEpoch: number,
): { members: KnownMember[]; former: KnownMember[]; effects: Effect[] } {
  const members: KnownMember[] = [];
  const former: KnownMember[] = [...s.former];
  const effects: Effect[] = [];
  for (const info of infos) {
    const old = s.members.find((m) => m.info.id === info.id);
    if (old !== undefined && old.info.epoch === info.epoch) {
      members.push(old);
      continue;
    }
    if (old !== undefined) former.push({ ...old, untilEpoch: info.epoch });
    members.push({ info, lastSeq: 0, lastHash: null });
    if (old === undefined) effects.push(emit({ type: 'member-joined', member: summary(info) }));
  }
  for (const old of s.members) {
    if (!infos.some((i) => i.id === old.info.id)) {
      former.push({ ...old, untilEpoch });
      effects.push(emit({ type: 'member-left', member: summary(old.info), reason: 'removed' }));
    }
  }
  return { members, former: keptFormer(former), effects };
}

function onResync(ctx: MemberCtx, s: MemberState, msg: Extract<ToMember, { type: 'resync' }>): Out<MemberState> {
  const r =
    msg.certs !== undefined
      ? reanchor(ctx, s, msg.anns[0]!, msg.keys, msg.certs)
      : applyEntries(ctx, s, msg.anns, msg.keys, msg.more !== true);
  let next = r.state;
  const effects = [...r.effects];
  if (msg.more !== true) {
    // The answer is complete: a chain position a message named and we still lack was withheld (5.6).
    if (next.chainSeen !== null && next.chain < next.chainSeen) {
      effects.push(emit({ type: 'warning', code: 'membership-withheld', count: next.chainSeen - next.chain, member: null }));
    }
    next = { ...next, syncAt: null, chainSeen: null };
  }
  return { state: pruned(next), effects };
}

/**
 * Section 5.10, entries: apply those after our head in order; every key must belong to one. After
 * the last page the current epoch has its key (a page may end on a rotation whose key the owner no
 * longer holds: nothing was said in that epoch).
 */
function applyEntries(
  ctx: MemberCtx,
  s: MemberState,
  anns: readonly Uint8Array[],
  sealedKeys: readonly Uint8Array[],
  last: boolean,
): Out<MemberState> {
  const keys = new Map<number, KeyBody>();
  for (const k of sealedKeys) {
    const body = openKey(ctx, s, k);
    if (keys.has(body.epoch)) throw new AuthenticityError('room.bad-rekey', `two keys for epoch ${body.epoch}`);
    keys.set(body.epoch, body);
  }
  let next = s;
  const effects: Effect[] = [];
  for (const ann of anns) {
    const entry = openChainEntry(ownerKey(s), s.room, ann);
    if (entry.n <= next.chain) {
      // Already applied (this answer crossed a live entry): skip it, and its key with it.
      const held = heldEntry(next, entry, ann);
      if (held.code === 'room.fork') throw held;
      if (entry.op === 'rotate' || entry.op === 'update') keys.delete(entry.epoch);
      continue;
    }
    const key = entry.op === 'rotate' || entry.op === 'update' ? (keys.get(entry.epoch) ?? null) : null;
    if (key !== null) keys.delete(entry.epoch);
    const r = applyEntry(ctx, next, entry, ann, key, false);
    next = r.state;
    effects.push(...r.effects);
  }
  if (keys.size > 0) throw new AuthenticityError('room.bad-rekey', 'a key for no rotation in this resync');
  if (last && next.epochs.find((e) => e.epoch === next.epoch)?.key == null) {
    throw new AuthenticityError('room.bad-rekey', 'no key for the current epoch');
  }
  return { state: next, effects };
}

/**
 * Section 5.10, re-anchor: the owner's head with every member's certificate, instead of the
 * entries we missed. Checked like a join accept; reported unless our own head was of format 1.
 */
function reanchor(
  ctx: MemberCtx,
  s: MemberState,
  ann: Uint8Array,
  sealedKeys: readonly Uint8Array[],
  certs: readonly Uint8Array[],
): Out<MemberState> {
  const opub = ownerKey(s);
  const head = openAnchor(opub, s.room, ann);
  const annHash = sha256(ann);
  const infos = certs.map((c) => openCert(opub, s.room, c));
  if (new Set(infos.map((m) => m.id)).size !== infos.length) throw new AuthenticityError('room.fork', 're-anchor lists a member twice');
  if (!infos.some((i) => i.id === s.selfId)) throw new AuthenticityError('room.bad-rekey', 'resync without us');
  if (!infos.some((i) => i.owner)) throw new AuthenticityError('room.not-owner', 'resync lists no owner');
  const n = 'entry' in head ? head.entry.n : head.legacy.epoch;
  const epoch = 'entry' in head ? head.entry.epoch : head.legacy.epoch;
  const firstIdx = 'entry' in head ? head.entry.firstIdx : head.legacy.firstIdx;
  if ('entry' in head && !equalBytes(head.entry.membersHash, membersHashOf(infos))) {
    throw new AuthenticityError('room.fork', 're-anchor members and chain head disagree');
  }
  const cur = currentRecord(s);
  if (n < s.chain || epoch < s.epoch || (n === s.chain && !equalBytes(annHash, cur.annHash!))) {
    throw new AuthenticityError('room.fork', `re-anchor at ${n} does not follow our head ${s.chain}`);
  }
  const keys = new Map<number, KeyBody>();
  for (const k of sealedKeys) {
    const body = openKey(ctx, s, k);
    if (keys.has(body.epoch) || body.epoch > epoch) throw new AuthenticityError('room.bad-rekey', `unexpected key for epoch ${body.epoch}`);
    keys.set(body.epoch, body);
  }
  const headKey = keys.get(epoch);
  if (headKey !== undefined) {
    if (headKey.firstIdx !== firstIdx) throw new AuthenticityError('room.bad-rekey', 'epoch key and chain head disagree');
    if ('entry' in head && !equalBytes(keyHashOf(s.room, epoch, headKey.key), head.entry.keyHash)) {
      throw new AuthenticityError('room.bad-rekey', 'epoch key is not the one the chain head commits to');
    }
  } else if (epoch !== s.epoch) {
    throw new AuthenticityError('room.bad-rekey', 'no key for the current epoch');
  }
  // Keys of epochs we lack: for reading what we missed (the owner's seal vouches for them).
  const byEpoch = new Map(s.epochs.map((e) => [e.epoch, e] as const));
  for (const k of keys.values()) {
    const held = byEpoch.get(k.epoch);
    if (held?.key == null)
      byEpoch.set(k.epoch, { epoch: k.epoch, key: asSymmetricKey(k.key), firstIdx: k.firstIdx, ann: null, annHash: null });
  }
  const headRec = byEpoch.get(epoch)!;
  byEpoch.set(epoch, { ...headRec, firstIdx, ann, annHash });
  const epochs = [...byEpoch.values()]
    .map((e) => (e.epoch === epoch ? e : e.annHash === null ? e : { ...e, ann: null, annHash: null }))
    .sort((a, b) => a.epoch - b.epoch);
  const roster = rosterChange(s, infos, epoch);
  const forget = (m: KnownMember): KnownMember => (m.lastHash === null ? m : { ...m, lastHash: null });
  const next: MemberState = {
    ...s,
    epochs,
    epoch,
    chain: n,
    members: roster.members.map(forget),
    former: roster.former.map(forget),
  };
  const effects: Effect[] = [...roster.effects];
  if (epoch !== s.epoch) effects.push(emit({ type: 'rotated', epoch, reason: rotationReasonOf(head) }));
  const ownHeadLegacy = 'legacy' in openAnchor(opub, s.room, cur.ann!);
  if (!ownHeadLegacy && n > s.chain) {
    effects.push(emit({ type: 'warning', code: 'membership-unverified', count: n - s.chain, member: null }));
  }
  return { state: next, effects };
}

function rotationReasonOf(head: ReturnType<typeof openAnchor>): Extract<RoomEvent, { type: 'rotated' }>['reason'] {
  if ('legacy' in head) return head.legacy.reason;
  return head.entry.op === 'rotate' ? head.entry.reason : 'manual';
}

// ---- Messages and history (5.6, 5.9) ----

type EntryResult =
  | {
      readonly kind: 'message';
      readonly state: MemberState;
      readonly event: RoomEvent;
      /** A new sender gap to ask about, or a chain position beyond our head first seen. */
      readonly gap: SenderGap | null;
      readonly askChain: boolean;
    }
  | { readonly kind: 'skip'; readonly state: MemberState; readonly reason: 'no-key' | 'unknown-sender' }
  /** A message for an epoch we do not know, signed at a chain position beyond our head: ask first. */
  | { readonly kind: 'behind'; readonly state: MemberState };

/** Checks one ordered envelope at index lastIdx + 1; throws a typed error on anything wrong. */
function processEntry(s: MemberState, e: HistoryEntryWire, history: boolean): EntryResult {
  const known = s.members.find((m) => m.info.id === e.from) ?? s.former.find((m) => m.info.id === e.from);
  if (known === undefined) {
    if (history) return { kind: 'skip', state: { ...s, lastIdx: e.idx }, reason: 'unknown-sender' };
    throw new MembershipError('room.not-member', `${e.from} is not a member`);
  }
  const inner = openEnvelope(known.info.ipub, e.env, e.from, s.room);
  const who = senderFor(s.members, s.former, e.from, inner.epoch);
  if (who === null) throw new FreshnessError('room.epoch-expired', `epoch ${inner.epoch} is outside ${e.from}'s membership`);
  const record = who.list === 'members' ? s.members[who.index]! : s.former[who.index]!;
  if (inner.seq <= record.lastSeq) throw new FreshnessError('room.replay', `sequence ${inner.seq} from ${e.from} already seen`);
  const hash = sha256(e.env);
  const withRecord = (st: MemberState, r: KnownMember): MemberState =>
    who.list === 'members'
      ? { ...st, members: st.members.map((m, i) => (i === who.index ? r : m)) }
      : { ...st, former: st.former.map((m, i) => (i === who.index ? r : m)) };
  // Format-1 envelopes carry no chain: the next message of this sender starts the check again.
  const updated: KnownMember = { ...record, lastSeq: inner.seq, lastHash: inner.prev === null ? null : hash };
  const ahead = inner.chain !== null && inner.chain > s.chain;
  let epoch: EpochRecord;
  try {
    epoch = epochFor(s.epochs, e.idx, inner.epoch, GRACE_MESSAGES);
  } catch (err) {
    if (err instanceof FreshnessError && err.code === 'room.epoch-unknown') {
      // The sender saw a rotation we have not: not applied here; the chain is asked for (5.6).
      if (ahead) return { kind: 'behind', state: { ...s, chainSeen: Math.max(s.chainSeen ?? -1, inner.chain) } };
      if (history) return { kind: 'skip', state: withRecord({ ...s, lastIdx: e.idx }, updated), reason: 'no-key' };
    }
    throw err;
  }
  const body = openBody(epoch.key!, inner);
  const gap: SenderGap | null =
    inner.prev !== null && record.lastHash !== null && !equalBytes(inner.prev, record.lastHash)
      ? { from: e.from, after: record.lastHash, before: inner.prev }
      : null;
  const askChain = ahead && (s.chainSeen === null || inner.chain! > s.chainSeen);
  let state = withRecord({ ...s, lastIdx: e.idx }, updated);
  if (askChain) state = { ...state, chainSeen: inner.chain };
  if (e.from === s.selfId) state = { ...state, sent: state.sent.filter((r) => r.seq > inner.seq) };
  return {
    kind: 'message',
    state,
    gap,
    askChain,
    event: {
      type: 'message',
      idx: e.idx,
      from: e.from,
      name: record.info.name,
      text: body.text,
      ts: body.ts,
      epoch: inner.epoch,
      seq: inner.seq,
      history,
      ...(body.file !== undefined ? { file: body.file } : {}),
    },
  };
}

function requestGap(s: MemberState): Out<MemberState> {
  if (s.syncAt === s.lastIdx) return { state: s, effects: [] };
  return { state: { ...s, syncAt: s.lastIdx }, effects: [syncRequest(s)] };
}

/** A new sender gap: ask the owner for the missing messages, or report at once when too many are open. */
function openGap(s: MemberState, gap: SenderGap): Out<MemberState> {
  if (s.gaps.some((g) => g.from === gap.from && equalBytes(g.before, gap.before))) return { state: s, effects: [] };
  if (s.gaps.length >= MAX_SENDER_GAPS) return { state: s, effects: [emit(withheldWarning(s, gap.from))] };
  return { state: { ...s, gaps: [...s.gaps, gap] }, effects: [wantRequest(s, gap)] };
}

function withheldWarning(s: MemberState, from: MemberId): RoomEvent {
  const known = [...s.members, ...s.former].find((m) => m.info.id === from);
  return { type: 'warning', code: 'message-withheld', count: 1, member: known === undefined ? null : summary(known.info) };
}

/** The effects that follow an accepted message: the event, then any gap or chain request. */
function afterMessage(s: MemberState, r: Extract<EntryResult, { kind: 'message' }>, askChain: boolean): Out<MemberState> {
  let state = s;
  const effects: Effect[] = [emit(r.event)];
  if (r.gap !== null) {
    const g = openGap(state, r.gap);
    state = g.state;
    effects.push(...g.effects);
  }
  if (askChain) {
    state = { ...state, syncAt: state.lastIdx };
    effects.push(syncRequest(state));
  }
  return { state, effects };
}

function onDeliver(s: MemberState, msg: Extract<ToMember, { type: 'deliver' }>): Out<MemberState> {
  if (msg.idx <= s.lastIdx) throw new FreshnessError('room.duplicate', `index ${msg.idx} already seen`);
  if (msg.idx > s.lastIdx + 1) return requestGap(s); // dropped here, fetched again as history
  const r = processEntry(s, msg, false);
  if (r.kind === 'behind') return requestGap(r.state); // dropped here, fetched again after the chain
  if (r.kind !== 'message') throw new Error('unreachable: live entries are never skipped');
  const out = afterMessage({ ...r.state, syncAt: clearedSync(r.state) }, r, r.askChain);
  return { state: pruned(out.state), effects: out.effects };
}

function clearedSync(s: MemberState): number | null {
  return s.syncAt !== null && s.lastIdx > s.syncAt ? null : s.syncAt;
}

function onHistory(s: MemberState, msg: Extract<ToMember, { type: 'history' }>): Out<MemberState> {
  const effects: Effect[] = [];
  let next = s;
  if (msg.log_start - 1 > next.lastIdx) {
    effects.push(emit({ type: 'history-skipped', count: msg.log_start - 1 - next.lastIdx, reason: 'trimmed' }));
    // Messages we will never see: every sender's chain starts again (5.9).
    const forget = (m: KnownMember): KnownMember => (m.lastHash === null ? m : { ...m, lastHash: null });
    next = { ...next, lastIdx: msg.log_start - 1, members: next.members.map(forget), former: next.former.map(forget) };
  }
  if (msg.from_idx > next.lastIdx + 1) return requestGap(s);
  const skipped = { 'no-key': 0, 'unknown-sender': 0 };
  let askChain = false;
  for (const e of msg.entries) {
    if (e.idx <= next.lastIdx) continue; // overlap with what we have
    const r = processEntry(next, e, true);
    if (r.kind === 'behind') {
      // The rest of this page waits for the chain (and is asked for again after it).
      next = r.state;
      askChain = true;
      break;
    }
    if (r.kind === 'message') {
      askChain ||= r.askChain;
      const out = afterMessage(r.state, r, false);
      next = out.state;
      effects.push(...out.effects);
    } else {
      next = r.state;
      skipped[r.reason]++;
    }
  }
  for (const reason of ['no-key', 'unknown-sender'] as const) {
    if (skipped[reason] > 0) effects.push(emit({ type: 'history-skipped', count: skipped[reason], reason }));
  }
  let done: MemberState = { ...next, syncAt: clearedSync(next) };
  if (askChain) {
    done = { ...done, syncAt: done.lastIdx };
    effects.push(syncRequest(done));
  } else if (msg.more === true) {
    const ask = requestMore(done);
    done = ask.state;
    effects.push(...ask.effects);
  }
  return { state: pruned(done), effects };
}

/** 5.10: ask for the next history page, once per index reached (a repeated page asks nothing). */
function requestMore(s: MemberState): Out<MemberState> {
  if (s.syncAt === s.lastIdx) return { state: s, effects: [] };
  return {
    state: { ...s, syncAt: s.lastIdx },
    effects: [sendTo(s.ownerPeer, encodeMessage({ type: 'sync', last_idx: s.lastIdx, epoch: s.epoch, chain: s.chain, more: true }))],
  };
}

/**
 * 5.6: the owner's answer to a `want`. Entries that verify, open and chain from the gap's start
 * are shown; unless they close the gap exactly, the message is reported as withheld.
 */
function onSupply(s: MemberState, msg: Extract<ToMember, { type: 'supply' }>): Out<MemberState> {
  const gap = s.gaps.find((g) => g.from === msg.from && equalBytes(g.before, msg.before));
  if (gap === undefined) throw new MembershipError('room.state', 'a supply nobody asked for');
  const known = [...s.members, ...s.former].filter((m) => m.info.id === msg.from).at(-1);
  const events: RoomEvent[] = [];
  let chainEnd = gap.after;
  let broken = known === undefined;
  for (const e of known === undefined ? [] : msg.entries) {
    const inner = openEnvelope(known!.info.ipub, e.env, msg.from, s.room);
    const key = s.epochs.find((r) => r.epoch === inner.epoch)?.key;
    if (inner.prev === null || !equalBytes(inner.prev, chainEnd) || key == null) {
      broken = true;
      break;
    }
    const body = openBody(key, inner);
    events.push({
      type: 'message',
      idx: e.idx,
      from: msg.from,
      name: known!.info.name,
      text: body.text,
      ts: body.ts,
      epoch: inner.epoch,
      seq: inner.seq,
      history: true,
      late: true,
      ...(body.file !== undefined ? { file: body.file } : {}),
    });
    chainEnd = sha256(e.env);
  }
  const closed = !broken && events.length > 0 && equalBytes(chainEnd, gap.before);
  const effects: Effect[] = events.map(emit);
  if (!closed) effects.push(emit(withheldWarning(s, msg.from)));
  return { state: { ...s, gaps: s.gaps.filter((g) => g !== gap) }, effects };
}

export { RoomError };
