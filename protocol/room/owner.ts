/**
 * The owner's room machine (docs/PROTOCOL.md section 5): `ownerStep(ctx, state, event)` returns
 * the next state and the effects (link sends, link closes, UI events). Pure: no clock (events
 * carry `now`), randomness and identity keys come from `ctx`.
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
  type BoxPublicKey,
} from '../../crypto/index.ts';
import { DecodeError } from '../errors.ts';
import {
  MAX_HISTORY_ENTRIES,
  MAX_MEMBERS,
  MAX_NAME,
  MAX_RESYNC_ANNS,
  MAX_TEXT,
  decodeJoinSecret,
  decodeToOwner,
  encodeAcceptBundle,
  encodeKeyBody,
  encodeMessage,
  fileBody,
  type ChainBody,
  type MessageBody,
  type EnvelopeBody,
  type ToOwner,
} from './codec.ts';
import { AuthenticityError, InviteError, JoinError, MembershipError, FreshnessError, RoomError } from './errors.ts';
import { openKeyUpdate } from './key-update.ts';
import { LABEL, ZERO_HASH, contextOf, inviteIdOf, keyHashOf, memberIdOf, peerKeyHex, roomIdOf, safetyCode, saltyAuthToken } from './ids.ts';
import { inviteUrl, type InviteParams } from './invite.ts';
import { closeLink, emit, guarded, sendTo, type Out } from './step.ts';
import {
  CATCH_UP_INTERVAL_MS,
  DEFAULT_CONFIG,
  GRACE_MESSAGES,
  MAX_INVITE_RECORDS,
  MAX_REMOVED_PEERS,
  MAX_PENDING_INVITES,
  OWNER_KEPT_CHAIN,
  OWNER_MIN_CHAIN,
  type ChainLink,
  type Effect,
  type EpochRecord,
  type InviteId,
  type InviteRecord,
  type MemberId,
  type MemberInfo,
  type OwnerCtx,
  type OwnerEvent,
  type OwnerMember,
  type OwnerState,
  type PeerKeyHex,
  type RemovalReason,
  type RoomConfig,
  type RotationReason,
  type Step,
} from './types.ts';
import { membersHashOf, openBody, openEnvelope, sealEnvelope, signCert, signChainEntry } from './verify.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const HISTORY_CHUNK_BYTES = 512 * 1024;

export interface CreateRoomOptions {
  readonly now: number;
  readonly ownerName: string;
  readonly name?: string;
  readonly config?: Partial<RoomConfig>;
}

function checkConfig(c: RoomConfig): void {
  const ints: (keyof RoomConfig)[] = ['rotateEveryMessages', 'rotateAfterMs', 'graceMs', 'inviteTtlMs', 'maxLogEntries'];
  for (const k of ints) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`room config: ${k} must be a non-negative integer`);
  }
  if (c.rotateEveryMessages < 1) throw new RangeError('room config: rotateEveryMessages must be at least 1');
}

function checkName(name: string, what: string): void {
  if (name.length > MAX_NAME) throw new RangeError(`${what} longer than ${MAX_NAME} characters`);
}

/**
 * Section 5.2: identity and peer key from ctx, the room id derived from the peer key (5.1), the
 * epoch-0 key from ctx.random, all on this device; the chain starts with its create entry.
 */
export function createRoom(ctx: OwnerCtx, opts: CreateRoomOptions): Step<OwnerState> {
  const config: RoomConfig = { ...DEFAULT_CONFIG, ...opts.config };
  checkConfig(config);
  checkName(opts.ownerName, 'owner name');
  if (opts.name !== undefined) checkName(opts.name, 'room name');
  const room = roomIdOf(ctx.peerKey).slice();
  const key = asSymmetricKey(ctx.random(32));
  const self: MemberInfo = {
    id: memberIdOf(ctx.identity.publicKey),
    ipub: ctx.identity.publicKey,
    npub: ctx.peerKey,
    name: opts.ownerName,
    owner: true,
    epoch: 0,
  };
  const ann = signChainEntry(ctx.identity.privateKey, {
    op: 'create',
    room,
    n: 0,
    prev: ZERO_HASH,
    epoch: 0,
    firstIdx: 0,
    keyHash: keyHashOf(room, 0, key),
    membersHash: membersHashOf([self]),
    ts: Math.max(0, Math.floor(opts.now)),
  });
  const annHash = sha256(ann);
  const state: OwnerState = {
    role: 'owner',
    config,
    room,
    name: opts.name ?? null,
    selfId: self.id,
    seq: 0,
    epoch: 0,
    epochStartedAt: opts.now,
    epochMessages: 0,
    epochs: [{ epoch: 0, key, firstIdx: 0, annHash, ann }],
    members: [
      {
        info: self,
        lastSeq: 0,
        lastHash: ZERO_HASH,
        cert: signCert(ctx.identity.privateKey, room, self),
        peer: peerKeyHex(ctx.peerKey),
        viewFrom: 0,
        catchUp: null,
      },
    ],
    invites: [],
    nextIdx: 0,
    log: [],
    chain: [{ n: 0, epoch: 0, op: 'create', hash: annHash, ann }],
    removedPeers: [],
  };
  return { state, effects: [emit({ type: 'rotated', epoch: 0, reason: 'create' })] };
}

// ---- Queries for drivers and the peer-link layer ----

export function currentEpoch(s: OwnerState): EpochRecord {
  const rec = s.epochs.find((e) => e.epoch === s.epoch);
  if (rec === undefined) throw new Error('owner state has no record of its current epoch');
  return rec;
}

/** SaltyRTC auth tokens the link layer accepts for a first contact (section 5.3). */
export function pendingAuthTokens(s: OwnerState, now: number): Uint8Array[] {
  return s.invites
    .filter((i) => (i.status === 'pending' || i.status === 'claimed') && i.token !== undefined && now <= i.expiresAt)
    .map((i) => saltyAuthToken(i.token!));
}

/**
 * SaltyRTC auth tokens of invites that can no longer admit anyone (used, revoked, expired) and are
 * still on record: the link layer refuses a joiner presenting one with an authenticated refusal,
 * which is final for it (4.1), where an unknown token only gets a 3005 it retries.
 */
export function retiredAuthTokens(s: OwnerState, now: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const i of s.invites) {
    if (i.authToken !== undefined) out.push(i.authToken);
    else if (i.token !== undefined && (i.status === 'used' || i.status === 'revoked' || now > i.expiresAt))
      out.push(saltyAuthToken(i.token));
  }
  return out;
}

/** Peer keys of removed members, refused with an authenticated refusal when they come back (5.8). */
export function removedPeerKeys(s: OwnerState): readonly PeerKeyHex[] {
  return s.removedPeers;
}

/** Peer keys of the current members other than the owner (trusted-key reconnects). */
export function memberPeerKeys(s: OwnerState): PeerKeyHex[] {
  return s.members.filter((m) => !m.info.owner).map((m) => m.peer);
}

/** The newest entry of the owner's announcement chain (section 5.7). */
export function chainHead(s: OwnerState): ChainLink {
  const head = s.chain[s.chain.length - 1];
  if (head === undefined) throw new Error('owner state has no chain');
  return head;
}

/** Section 5.11: over the chain head. */
export function ownerSafetyCode(s: OwnerState): string {
  return safetyCode(s.room, chainHead(s).hash);
}

export function inviteStatus(s: OwnerState, id: InviteId, now: number): InviteRecord['status'] | 'expired' | 'unknown' {
  const r = s.invites.find((i) => i.id === id);
  if (r === undefined) return 'unknown';
  if ((r.status === 'pending' || r.status === 'claimed') && now > r.expiresAt) return 'expired';
  return r.status;
}

// ---- The step function ----

export function ownerStep(ctx: OwnerCtx, state: OwnerState, event: OwnerEvent): Step<OwnerState> {
  switch (event.kind) {
    case 'received': {
      const peer = typeof event.from === 'string' ? event.from : peerKeyHex(event.from as BoxPublicKey);
      // What the refusal needs to know: the message type, and for 'send' the sender's sequence
      // number once the envelope's signature checked out (so the member knows which one failed).
      const seen: { type: ToOwner['type'] | null; seq: number | null } = { type: null, seq: null };
      return guarded(
        state,
        () => {
          const msg = decodeToOwner(event.bytes);
          seen.type = msg.type;
          return onReceived(ctx, state, peer, msg, event.now, seen);
        },
        (e) => refusalEffects(state, peer, seen.type, e.code, seen.seq),
      );
    }
    case 'invite':
      return guarded(state, () => createInvite(ctx, state, event.now, event.ttlMs));
    case 'revoke':
      return guarded(state, () => revokeInvite(state, event.invite));
    case 'send':
      return guarded(state, () =>
        sendOwn(
          ctx,
          state,
          event.file !== undefined ? fileBody(event.file) : { text: event.text, ts: Math.max(0, Math.floor(event.now)) },
          event.now,
        ),
      );
    case 'kick':
      return guarded(state, () => kick(ctx, state, event.member, event.now));
    case 'rotate':
      return guarded(state, () => rotate(ctx, state, 'manual', event.now));
    case 'tick':
      return guarded(state, () => tick(ctx, state, event.now));
  }
}

function memberByPeer(s: OwnerState, peer: PeerKeyHex): OwnerMember | undefined {
  return s.members.find((m) => m.peer === peer && !m.info.owner);
}

/** What a refused input gets back (section 5.4, 5.6, 5.8). */
function refusalEffects(s: OwnerState, peer: PeerKeyHex, type: ToOwner['type'] | null, code: string, seq: number | null): Effect[] {
  const m = memberByPeer(s, peer);
  if (m !== undefined) {
    // A refused send says what the sender's chain continues from here (5.6).
    const tail = m.lastHash ?? ZERO_HASH;
    return [sendTo(peer, encodeMessage({ type: 'refused', code, ...(seq !== null ? { seq, tail } : {}) }))];
  }
  if (type === null || type === 'join-hello' || type === 'join-request' || type === 'join-confirm') {
    return [sendTo(peer, encodeMessage({ type: 'join-refused', code })), closeLink(peer, code)];
  }
  return [sendTo(peer, encodeMessage({ type: 'removed', reason: 'not-member' })), closeLink(peer, code)];
}

function onReceived(
  ctx: OwnerCtx,
  s: OwnerState,
  peer: PeerKeyHex,
  msg: ToOwner,
  now: number,
  seen: { seq: number | null },
): Out<OwnerState> {
  switch (msg.type) {
    case 'join-hello':
      return onJoinHello(ctx, s, peer, msg, now);
    case 'join-request':
      return onJoinRequest(ctx, s, peer, msg, now);
    case 'join-confirm':
      return onJoinConfirm(ctx, s, peer, msg, now);
    case 'send':
      return onSend(ctx, s, peer, msg.env, now, seen);
    case 'leave':
      return removeMember(ctx, s, requireMember(s, peer).info.id, 'left', now);
    case 'sync':
      return onSync(ctx, s, requireMember(s, peer), msg, now);
    case 'want':
      return onWant(s, requireMember(s, peer), msg);
    case 'key-update':
      return onKeyUpdate(ctx, s, requireMember(s, peer), msg, now);
  }
}

function requireMember(s: OwnerState, peer: PeerKeyHex): OwnerMember {
  const m = memberByPeer(s, peer);
  if (m === undefined) throw new MembershipError('room.not-member', 'this peer is not a member of the room');
  return m;
}

// ---- Invites (5.3) ----

function createInvite(ctx: OwnerCtx, s: OwnerState, now: number, ttlMs?: number): Out<OwnerState> {
  const ttl = ttlMs ?? s.config.inviteTtlMs;
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new InviteError('room.invite-malformed', 'invite lifetime must be a positive integer');
  const pending = s.invites.filter((i) => i.status === 'pending' || i.status === 'claimed').length;
  if (pending >= MAX_PENDING_INVITES)
    throw new InviteError('room.invite-limit', `${MAX_PENDING_INVITES} invites are pending already; revoke some first`);
  const token = ctx.random(32).slice();
  if (token.length !== 32) throw new RangeError('random source returned the wrong length');
  const id = inviteIdOf(token);
  const invite: InviteParams = {
    room: s.room,
    token,
    opub: ctx.identity.publicKey,
    npub: ctx.peerKey,
    server: ctx.invites.server,
    exp: now + ttl,
    ...(ctx.invites.serverKey ? { spub: ctx.invites.serverKey } : {}),
  };
  const url = inviteUrl(ctx.invites.appUrl, invite);
  const record: InviteRecord = { id, token, createdAt: now, expiresAt: invite.exp, status: 'pending' };
  return {
    state: { ...s, invites: [...withRoomForOne(s.invites), record] },
    effects: [emit({ type: 'invite', id, url, expiresAt: invite.exp })],
  };
}

/** At most MAX_INVITE_RECORDS - 1 records, dropping the oldest retired ones (section 5.15). */
function withRoomForOne(invites: readonly InviteRecord[]): readonly InviteRecord[] {
  let excess = invites.length - (MAX_INVITE_RECORDS - 1);
  if (excess <= 0) return invites;
  return invites.filter((i) => i.status === 'pending' || i.status === 'claimed' || excess-- <= 0);
}

function retire(r: InviteRecord, status: 'used' | 'revoked', usedBy?: PeerKeyHex): InviteRecord {
  return { id: r.id, createdAt: r.createdAt, expiresAt: r.expiresAt, status, ...(usedBy ? { usedBy } : {}), ...retiredAuthToken(r) };
}

/** The auth token a retired record keeps (section 5.3): derived from the token, which is deleted. */
function retiredAuthToken(r: InviteRecord): { authToken?: Uint8Array } {
  if (r.authToken !== undefined) return { authToken: r.authToken };
  return r.token !== undefined ? { authToken: saltyAuthToken(r.token) } : {};
}

function replaceInvite(s: OwnerState, r: InviteRecord): OwnerState {
  return { ...s, invites: s.invites.map((i) => (i.id === r.id ? r : i)) };
}

function revokeInvite(s: OwnerState, id: InviteId): Out<OwnerState> {
  const r = s.invites.find((i) => i.id === id);
  if (r === undefined) throw new InviteError('room.invite-unknown', 'no such invite');
  if (r.status === 'used') throw new InviteError('room.invite-used', 'the invite was already used');
  if (r.status === 'revoked') throw new InviteError('room.invite-revoked', 'the invite is already revoked');
  const effects: Effect[] = [];
  if (r.claim !== undefined) {
    effects.push(
      sendTo(r.claim.peer, encodeMessage({ type: 'join-refused', code: 'room.invite-revoked' })),
      closeLink(r.claim.peer, 'room.invite-revoked'),
    );
  }
  return { state: replaceInvite(s, retire(r, 'revoked')), effects };
}

/** Status checks 1-4 of section 5.4, in the spec's order. */
function usableInvite(s: OwnerState, inviteId: Uint8Array, now: number): InviteRecord {
  const r = s.invites.find((i) => i.id === toHex(inviteId));
  if (r === undefined) throw new InviteError('room.invite-unknown', 'unknown invite');
  if (r.status === 'revoked') throw new InviteError('room.invite-revoked', 'the invite was revoked');
  if (r.status === 'used') throw new InviteError('room.invite-used', 'the invite was already used');
  if (now > r.expiresAt || r.token === undefined) throw new InviteError('room.invite-expired', 'the invite has expired');
  return r;
}

/** Check 8 of section 5.4: one peer key names one member's link. */
function checkPeerKeyFree(s: OwnerState, peer: PeerKeyHex): void {
  if (s.members.some((m) => m.peer === peer)) throw new JoinError('room.peer-key-taken', 'this peer key already belongs to a member');
}

// ---- Join (5.4) ----

/** A v2 joiner asks for the owner's identity key over the link authenticated to npub (5.3). */
function onJoinHello(
  ctx: OwnerCtx,
  s: OwnerState,
  peer: PeerKeyHex,
  msg: Extract<ToOwner, { type: 'join-hello' }>,
  now: number,
): Out<OwnerState> {
  const r = usableInvite(s, msg.invite, now);
  if (r.claim !== undefined && r.claim.peer !== peer) throw new InviteError('room.invite-used', 'the invite is being used by someone else');
  return { state: s, effects: [sendTo(peer, encodeMessage({ type: 'owner-key', invite: msg.invite, opub: ctx.identity.publicKey }))] };
}

function onJoinRequest(
  ctx: OwnerCtx,
  s: OwnerState,
  peer: PeerKeyHex,
  msg: Extract<ToOwner, { type: 'join-request' }>,
  now: number,
): Out<OwnerState> {
  const r = usableInvite(s, msg.invite, now);
  if (r.claim !== undefined && (r.claim.peer !== peer || !equalBytes(r.claim.info.ipub, msg.ipub))) {
    throw new InviteError('room.invite-used', 'the invite is being used by someone else');
  }
  let secret;
  try {
    secret = decodeJoinSecret(openFrom(ctx.identity.privateKey, msg.ipub, msg.sealed));
  } catch (e) {
    if (e instanceof AuthError || e instanceof DecodeError)
      throw new JoinError('room.join-proof', 'join request does not open', { cause: e });
    throw e;
  }
  const token = r.token!;
  if (!equalBytes(secret.token, token) || !equalBytes(secret.room, s.room) || peerKeyHex(secret.npub) !== peer) {
    throw new JoinError('room.join-proof', 'join request does not prove the invite, the room or the peer key');
  }
  const info: MemberInfo = { id: memberIdOf(msg.ipub), ipub: msg.ipub, npub: secret.npub, name: secret.name, owner: false, epoch: s.epoch };
  if (s.members.some((m) => m.info.id === info.id)) throw new JoinError('room.already-member', 'this identity is already a member');
  checkPeerKeyFree(s, peer);
  if (s.members.length >= MAX_MEMBERS) throw new JoinError('room.full', `the room has ${MAX_MEMBERS} members`);
  if (ctx.admit !== undefined && !ctx.admit(info)) throw new JoinError('room.not-admitted', 'the owner declined this joiner');
  const cur = currentEpoch(s);
  const bundle = encodeAcceptBundle({
    room: s.room,
    ...(s.name !== null ? { name: s.name } : {}),
    epoch: s.epoch,
    key: cur.key!,
    ann: chainHead(s).ann,
    certs: s.members.map((m) => m.cert),
  });
  const sealed = cellSeal(asSymmetricKey(secret.jkey), bundle, contextOf(LABEL.joinAccept, token, s.room));
  const accept = encodeMessage({ type: 'join-accept', invite: msg.invite, sealed });
  const claimed: InviteRecord = { ...r, status: 'claimed', claim: { peer, info, jkey: secret.jkey, acceptHash: sha256(accept) } };
  return { state: replaceInvite(s, claimed), effects: [sendTo(peer, accept)] };
}

function onJoinConfirm(
  ctx: OwnerCtx,
  s: OwnerState,
  peer: PeerKeyHex,
  msg: Extract<ToOwner, { type: 'join-confirm' }>,
  now: number,
): Out<OwnerState> {
  if (msg.chain > chainHead(s).n) throw new FreshnessError('room.chain-gap', `chain position ${msg.chain} is beyond ours`);
  const used = s.invites.find((i) => i.id === toHex(msg.invite));
  if (used?.status === 'used' && used.usedBy === peer) {
    // A repeated confirm after a reconnect: the welcome again and what followed it, nothing else changes.
    const m = memberByPeer(s, peer);
    if (m !== undefined) {
      const welcome = encodeMessage({ type: 'welcome', cert: m.cert, from_idx: m.viewFrom });
      const page = historyPage(s, m, m.viewFrom, now);
      return {
        state: replaceMember(s, m, page.member),
        effects: [sendTo(peer, welcome), ...resyncEffects(ctx, s, m, msg.chain, m.info.epoch - 1), ...page.effects],
      };
    }
  }
  const r = usableInvite(s, msg.invite, now);
  const claim = r.claim;
  if (claim === undefined) throw new JoinError('room.join-proof', 'confirm without a join request');
  if (claim.peer !== peer) throw new InviteError('room.invite-used', 'the invite is being used by someone else');
  let proof: Uint8Array;
  try {
    proof = cellOpen(asSymmetricKey(claim.jkey), msg.proof, contextOf(LABEL.joinConfirm, r.token!, s.room));
  } catch (e) {
    if (e instanceof AuthError) throw new JoinError('room.join-proof', 'join confirm does not open', { cause: e });
    throw e;
  }
  if (!equalBytes(proof, claim.acceptHash)) throw new JoinError('room.join-proof', 'join confirm is not for the accept sent');
  if (s.members.some((m) => m.info.id === claim.info.id)) throw new JoinError('room.already-member', 'this identity is already a member');
  checkPeerKeyFree(s, peer);
  if (s.members.length >= MAX_MEMBERS) throw new JoinError('room.full', `the room has ${MAX_MEMBERS} members`);

  const info: MemberInfo = { ...claim.info, epoch: s.epoch };
  const cert = signCert(ctx.identity.privateKey, s.room, info);
  const viewFrom = s.config.history === 'none' ? s.nextIdx : Math.max(currentEpoch(s).firstIdx, s.log[0]?.idx ?? s.nextIdx);
  const member: OwnerMember = { info, lastSeq: 0, lastHash: ZERO_HASH, cert, peer, viewFrom, catchUp: null };
  const others = s.members.filter((m) => !m.info.owner);
  const admitted = replaceInvite({ ...s, members: [...s.members, member] }, retire(r, 'used', peer));
  const added = appendEntry(ctx, admitted, { op: 'add', cert }, now);
  let next = added.state;
  const page = historyPage(next, member, viewFrom, now);
  next = replaceMember(next, member, page.member);
  const effects: Effect[] = [
    sendTo(peer, encodeMessage({ type: 'welcome', cert, from_idx: viewFrom })),
    ...resyncEffects(ctx, next, member, msg.chain, claim.info.epoch),
    ...page.effects,
    ...others.map((m) => sendTo(m.peer, encodeMessage({ type: 'chain', ann: added.ann }))),
    emit({ type: 'member-joined', member: { id: info.id, name: info.name, owner: false } }),
  ];
  if (s.config.rotateOnJoin) {
    const rotated = rotate(ctx, next, 'join', now);
    next = rotated.state;
    effects.push(...rotated.effects);
  }
  return { state: next, effects };
}

// ---- Messages (5.6) ----

function onSend(
  ctx: OwnerCtx,
  s: OwnerState,
  peer: PeerKeyHex,
  env: Uint8Array,
  now: number,
  seen: { seq: number | null },
): Out<OwnerState> {
  const m = requireMember(s, peer);
  const inner = openEnvelope(m.info.ipub, env, m.info.id, s.room);
  seen.seq = inner.seq;
  // Replay first: a re-sent copy of an ordered message is reported as such whatever its epoch.
  if (inner.seq <= m.lastSeq) throw new FreshnessError('room.replay', `sequence ${inner.seq} from ${m.info.id} already seen`);
  const cur = currentEpoch(s);
  if (inner.epoch > s.epoch) throw new FreshnessError('room.epoch-unknown', `epoch ${inner.epoch} does not exist yet`);
  const inGrace = inner.epoch === s.epoch - 1 && s.nextIdx < cur.firstIdx + GRACE_MESSAGES && now - s.epochStartedAt <= s.config.graceMs;
  if ((inner.epoch !== s.epoch && !inGrace) || inner.epoch < m.info.epoch) {
    throw new FreshnessError('room.epoch-expired', `epoch ${inner.epoch} is no longer accepted`);
  }
  if (inner.chain !== null && inner.chain > chainHead(s).n) {
    throw new FreshnessError('room.chain-gap', `chain position ${inner.chain} is beyond ours`);
  }
  // The sender chain (5.6): format-1 envelopes only while this membership's chain is unknown.
  if (inner.prev === null ? m.lastHash !== null : m.lastHash !== null && !equalBytes(inner.prev, m.lastHash)) {
    throw new FreshnessError('room.sender-chain', `message ${inner.seq} from ${m.info.id} does not continue its chain`);
  }
  const key = s.epochs.find((e) => e.epoch === inner.epoch)?.key;
  if (key == null) throw new FreshnessError('room.epoch-unknown', `no key for epoch ${inner.epoch}`);
  const body = openBody(key, inner);
  const lastHash = inner.prev === null ? null : sha256(env);
  const withSeq: OwnerState = { ...s, members: s.members.map((x) => (x === m ? { ...x, lastSeq: inner.seq, lastHash } : x)) };
  return order(ctx, withSeq, m.info, inner, env, body, now);
}

function sendOwn(ctx: OwnerCtx, s: OwnerState, body: MessageBody, now: number): Out<OwnerState> {
  if (body.text.length > MAX_TEXT) throw new RangeError(`message text longer than ${MAX_TEXT} characters`);
  const self = s.members.find((m) => m.info.owner)!;
  const cur = currentEpoch(s);
  const seq = s.seq + 1;
  const chain = chainHead(s).n;
  const prev = self.lastHash ?? ZERO_HASH;
  const env = sealEnvelope(ctx.identity.privateKey, {
    room: s.room,
    epoch: s.epoch,
    key: cur.key!,
    from: s.selfId,
    seq,
    chain,
    prev,
    body,
  });
  const inner: EnvelopeBody = { room: s.room, epoch: s.epoch, from: s.selfId, seq, chain, prev, ct: new Uint8Array(0) };
  const next: OwnerState = { ...s, seq, members: s.members.map((x) => (x === self ? { ...x, lastSeq: seq, lastHash: sha256(env) } : x)) };
  return order(ctx, next, self.info, inner, env, body, now);
}

/** Give the message its room index, log it, forward the same envelope to everyone (5.6). */
function order(
  ctx: OwnerCtx,
  s: OwnerState,
  sender: MemberInfo,
  inner: EnvelopeBody,
  env: Uint8Array,
  body: MessageBody,
  now: number,
): Out<OwnerState> {
  const idx = s.nextIdx;
  const log = [...s.log, { idx, from: sender.id, epoch: inner.epoch, env }];
  const trimmed = log.length > s.config.maxLogEntries ? log.slice(log.length - s.config.maxLogEntries) : log;
  const deliver = encodeMessage({ type: 'deliver', idx, from: sender.id, env });
  const effects: Effect[] = s.members.filter((m) => !m.info.owner).map((m) => sendTo(m.peer, deliver));
  effects.push(
    emit({
      type: 'message',
      idx,
      from: sender.id,
      name: sender.name,
      text: body.text,
      ts: body.ts,
      epoch: inner.epoch,
      seq: inner.seq,
      history: false,
      ...(body.file !== undefined ? { file: body.file } : {}),
    }),
  );
  const next: OwnerState = { ...s, log: trimmed, nextIdx: idx + 1, epochMessages: s.epochMessages + 1 };
  if (next.epochMessages >= s.config.rotateEveryMessages) {
    const r = rotate(ctx, next, 'count', now);
    return { state: r.state, effects: [...effects, ...r.effects] };
  }
  return { state: next, effects };
}

// ---- The announcement chain and rotation (5.7) ----

type EntrySpec =
  | { readonly op: 'add'; readonly cert: Uint8Array }
  | { readonly op: 'rotate'; readonly reason: RotationReason; readonly removed: readonly MemberId[]; readonly key: Uint8Array }
  | { readonly op: 'update'; readonly cert: Uint8Array; readonly removed: MemberId; readonly key: Uint8Array };

/**
 * Signs the next chain entry for `s` (whose members are already those after the entry), appends
 * it and applies retention (5.15). A rotation also makes its key current.
 */
function appendEntry(ctx: OwnerCtx, s: OwnerState, spec: EntrySpec, now: number): { state: OwnerState; ann: Uint8Array } {
  const head = chainHead(s);
  const cur = currentEpoch(s);
  const rotating = spec.op === 'rotate' || spec.op === 'update';
  const epoch = rotating ? s.epoch + 1 : s.epoch;
  const firstIdx = rotating ? s.nextIdx : cur.firstIdx;
  const key = spec.op === 'add' ? cur.key! : spec.key;
  const common = {
    room: s.room,
    n: head.n + 1,
    prev: head.hash,
    epoch,
    firstIdx,
    keyHash: keyHashOf(s.room, epoch, key),
    membersHash: membersHashOf(s.members.map((m) => m.info)),
    ts: Math.max(0, Math.floor(now)),
  };
  const body: ChainBody =
    spec.op === 'add'
      ? { ...common, op: 'add', cert: spec.cert }
      : spec.op === 'update'
        ? { ...common, op: 'update', cert: spec.cert, removed: spec.removed }
        : { ...common, op: 'rotate', reason: spec.reason, removed: spec.removed };
  const ann = signChainEntry(ctx.identity.privateKey, body);
  const hash = sha256(ann);
  const epochs: EpochRecord[] = rotating
    ? [...s.epochs.map((e) => (e.epoch === s.epoch ? { ...e, ann: null, annHash: null } : e)), { epoch, key, firstIdx, ann, annHash: hash }]
    : s.epochs.map((e) => (e.epoch === s.epoch ? { ...e, ann, annHash: hash } : e));
  const chain = [...s.chain, { n: common.n, epoch, op: spec.op, hash, ann }];
  return { state: retain({ ...s, epoch, epochs, chain }), ann };
}

/**
 * Retention (5.15): the chain from the link that opened the oldest epoch the log (or the grace
 * window) still needs, and at least OWNER_MIN_CHAIN links, at most OWNER_KEPT_CHAIN; keys of the
 * current and previous epoch, and of epochs the log holds messages of that the retained chain reaches.
 */
function retain(s: OwnerState): OwnerState {
  const logEpochs = new Set(s.log.map((e) => e.epoch));
  let oldest = Math.max(0, s.epoch - 1);
  for (const e of s.epochs) if (e.epoch < oldest && logEpochs.has(e.epoch)) oldest = e.epoch;
  let from = s.chain.findIndex((l) => l.epoch >= oldest);
  from = Math.min(from < 0 ? s.chain.length - 1 : from, s.chain.length - OWNER_MIN_CHAIN);
  from = Math.max(from, s.chain.length - OWNER_KEPT_CHAIN, 0);
  const chain = from > 0 ? s.chain.slice(from) : s.chain;
  const floor = chain[0]!.epoch;
  const epochs = s.epochs.filter((e) => e.epoch >= s.epoch - 1 || (e.epoch >= floor && logEpochs.has(e.epoch)));
  return epochs.length === s.epochs.length && chain === s.chain ? s : { ...s, epochs, chain };
}

function sealedKey(ctx: OwnerCtx, s: OwnerState, m: OwnerMember, e: EpochRecord): Uint8Array {
  return sealTo(ctx.identity.privateKey, m.info.ipub, encodeKeyBody({ room: s.room, epoch: e.epoch, firstIdx: e.firstIdx, key: e.key! }));
}

export function rotate(
  ctx: OwnerCtx,
  s: OwnerState,
  reason: RotationReason,
  now: number,
  removed: readonly MemberId[] = [],
): Out<OwnerState> {
  const key = asSymmetricKey(ctx.random(32));
  const { state, ann } = appendEntry(ctx, s, { op: 'rotate', reason, removed, key }, now);
  const next: OwnerState = { ...state, epochStartedAt: now, epochMessages: 0 };
  const rec = currentEpoch(next);
  const effects: Effect[] = next.members
    .filter((m) => !m.info.owner)
    .map((m) => sendTo(m.peer, encodeMessage({ type: 'chain', ann, key: sealedKey(ctx, next, m, rec) })));
  effects.push(emit({ type: 'rotated', epoch: next.epoch, reason }));
  return { state: next, effects };
}

// ---- Membership (5.8) ----

function kick(ctx: OwnerCtx, s: OwnerState, id: MemberId, now: number): Out<OwnerState> {
  const m = s.members.find((x) => x.info.id === id);
  if (m === undefined) throw new MembershipError('room.not-member', `${id} is not a member`);
  if (m.info.owner) throw new MembershipError('room.forbidden', 'the owner cannot kick itself');
  return removeMember(ctx, s, id, 'kicked', now);
}

function removeMember(ctx: OwnerCtx, s: OwnerState, id: MemberId, reason: RemovalReason, now: number): Out<OwnerState> {
  const m = s.members.find((x) => x.info.id === id)!;
  const removedPeers = [...s.removedPeers.filter((p) => p !== m.peer), m.peer].slice(-MAX_REMOVED_PEERS);
  const next: OwnerState = { ...s, members: s.members.filter((x) => x !== m), removedPeers };
  const r = rotate(ctx, next, reason === 'left' ? 'leave' : 'kick', now, [id]);
  return {
    state: r.state,
    effects: [
      sendTo(m.peer, encodeMessage({ type: 'removed', reason })),
      closeLink(m.peer, reason),
      emit({ type: 'member-left', member: { id, name: m.info.name, owner: false }, reason }),
      ...r.effects,
    ],
  };
}

// ---- Key updates (5.8.1) ----

/**
 * A member replaces its identity and peer keys: both signatures, the room, its current id, a
 * chain position we hold, and new keys that name no member and no removed peer (a replayed
 * update names keys already in use: room.replay). One `update` entry and a new epoch; the old
 * peer key is refused from now on like a removed member's; every member gets the new key sealed
 * to its current identity key, the updated one over its old link, which is then closed.
 */
function onKeyUpdate(
  ctx: OwnerCtx,
  s: OwnerState,
  m: OwnerMember,
  msg: Extract<ToOwner, { type: 'key-update' }>,
  now: number,
): Out<OwnerState> {
  const body = openKeyUpdate(m.info.ipub, { old: msg.old, new: msg.new });
  if (!equalBytes(body.room, s.room)) throw new AuthenticityError('room.wrong-room', 'key update is for another room');
  if (body.id !== m.info.id) throw new AuthenticityError('room.impersonation', 'key update for another member');
  if (body.n > chainHead(s).n) throw new FreshnessError('room.chain-gap', `chain position ${body.n} is beyond ours`);
  const id = memberIdOf(body.ipub);
  const peer = peerKeyHex(body.npub);
  if (s.members.some((x) => x.info.id === id || x.peer === peer) || s.removedPeers.includes(peer)) {
    throw new FreshnessError('room.replay', 'the new keys are already in use');
  }
  const epoch = s.epoch + 1;
  const info: MemberInfo = { id, ipub: body.ipub, npub: body.npub, name: m.info.name, owner: false, epoch };
  const cert = signCert(ctx.identity.privateKey, s.room, info);
  const updated: OwnerMember = { info, lastSeq: 0, lastHash: ZERO_HASH, cert, peer, viewFrom: m.viewFrom, catchUp: null };
  const removedPeers = [...s.removedPeers.filter((p) => p !== m.peer), m.peer].slice(-MAX_REMOVED_PEERS);
  const key = asSymmetricKey(ctx.random(32));
  const replaced: OwnerState = { ...s, members: s.members.map((x) => (x === m ? updated : x)), removedPeers };
  const { state, ann } = appendEntry(ctx, replaced, { op: 'update', cert, removed: m.info.id, key }, now);
  const next: OwnerState = { ...state, epochStartedAt: now, epochMessages: 0 };
  const rec = currentEpoch(next);
  const effects: Effect[] = next.members
    .filter((x) => !x.info.owner)
    .map((x) => sendTo(x === updated ? m.peer : x.peer, encodeMessage({ type: 'chain', ann, key: sealedKey(ctx, next, x, rec) })));
  effects.push(
    closeLink(m.peer, 'keys-updated'),
    emit({ type: 'keys-updated', old: m.info.id, member: { id, name: info.name, owner: false }, self: false }),
  );
  return { state: next, effects };
}

// ---- History and reconnection (5.9, 5.10) ----

function replaceMember(s: OwnerState, old: OwnerMember, updated: OwnerMember): OwnerState {
  return updated === old ? s : { ...s, members: s.members.map((x) => (x === old ? updated : x)) };
}

/**
 * One `history` page for `m` from room index `from` (5.9): at most MAX_HISTORY_ENTRIES entries
 * and about HISTORY_CHUNK_BYTES, with `more` when the log goes on. The catch-up limit (5.10):
 * inside a member's window no entry is sent twice, so a request that goes back gets no page.
 */
function historyPage(s: OwnerState, m: OwnerMember, from: number, now: number): { member: OwnerMember; effects: Effect[] } {
  const current = m.catchUp;
  const inWindow = current !== null && now >= current.at && now - current.at < CATCH_UP_INTERVAL_MS;
  if (inWindow && from < current.next) return { member: m, effects: [] };
  const start = s.log.findIndex((e) => e.idx >= from);
  if (start < 0) return { member: m, effects: [] };
  const entries: { idx: number; from: MemberId; env: Uint8Array }[] = [];
  let bytes = 0;
  for (let i = start; i < s.log.length && entries.length < MAX_HISTORY_ENTRIES; i++) {
    const e = s.log[i]!;
    if (entries.length > 0 && bytes + e.env.length > HISTORY_CHUNK_BYTES) break;
    entries.push({ idx: e.idx, from: e.from, env: e.env });
    bytes += e.env.length + 48;
  }
  const more = start + entries.length < s.log.length;
  const page = encodeMessage({
    type: 'history',
    from_idx: entries[0]!.idx,
    log_start: s.log[0]!.idx,
    entries,
    ...(more ? { more: true as const } : {}),
  });
  const next = entries[entries.length - 1]!.idx + 1;
  return { member: { ...m, catchUp: { at: inWindow ? current.at : now, next } }, effects: [sendTo(m.peer, page)] };
}

/**
 * 5.10: the `resync` messages for a member whose chain head is at `fromN` (and whose epoch is
 * `memberEpoch`): the entries after it, with the keys of their rotations sealed to the member
 * afresh, in pages; or, when those entries are not all retained (or its head is of format 1), a
 * re-anchor on the head with every member's certificate and the keys it may need.
 */
function resyncEffects(ctx: OwnerCtx, s: OwnerState, m: OwnerMember, fromN: number, memberEpoch: number): Effect[] {
  const head = chainHead(s);
  const at = s.chain.find((l) => l.n === fromN);
  if (fromN === head.n || (at !== undefined && at.op !== 'legacy')) {
    const links = s.chain.filter((l) => l.n > fromN);
    const pages: { anns: Uint8Array[]; keys: Uint8Array[] }[] = [{ anns: [], keys: [] }];
    let bytes = 0;
    for (const l of links) {
      let page = pages[pages.length - 1]!;
      if (page.anns.length >= MAX_RESYNC_ANNS || (page.anns.length > 0 && bytes + l.ann.length > HISTORY_CHUNK_BYTES)) {
        page = { anns: [], keys: [] };
        pages.push(page);
        bytes = 0;
      }
      page.anns.push(l.ann);
      bytes += l.ann.length;
      const rec = l.op === 'rotate' || l.op === 'update' ? s.epochs.find((e) => e.epoch === l.epoch) : undefined;
      if (rec !== undefined) {
        const key = sealedKey(ctx, s, m, rec);
        page.keys.push(key);
        bytes += key.length;
      }
    }
    return pages.map((p, i) =>
      sendTo(
        m.peer,
        encodeMessage({ type: 'resync', anns: p.anns, keys: p.keys, ...(i < pages.length - 1 ? { more: true as const } : {}) }),
      ),
    );
  }
  const keys = s.epochs
    .filter((e) => e.epoch > memberEpoch || e.epoch === s.epoch)
    .slice(-MAX_RESYNC_ANNS)
    .map((e) => sealedKey(ctx, s, m, e));
  return [sendTo(m.peer, encodeMessage({ type: 'resync', anns: [head.ann], keys, certs: s.members.map((x) => x.cert) }))];
}

/**
 * 5.10: `resync` and the first page. A `more` request (the next page of a catch-up) from a member
 * whose chain head is ours gets the page only: nothing about membership can be missing.
 */
function onSync(ctx: OwnerCtx, s: OwnerState, m: OwnerMember, msg: Extract<ToOwner, { type: 'sync' }>, now: number): Out<OwnerState> {
  const head = chainHead(s);
  if (msg.chain > head.n) throw new FreshnessError('room.chain-gap', `chain position ${msg.chain} is beyond ours`);
  const page = historyPage(s, m, Math.max(msg.last_idx + 1, m.viewFrom), now);
  const state = replaceMember(s, m, page.member);
  if (msg.more === true && msg.chain === head.n) return { state, effects: page.effects };
  return { state, effects: [...resyncEffects(ctx, s, m, msg.chain, msg.epoch), ...page.effects] };
}

/**
 * 5.6: a member found a hole in `from`'s sender chain. The logged envelopes of that sender from
 * after `after` up to the one whose hash is `before`, oldest first, none before the member's view.
 */
function onWant(s: OwnerState, m: OwnerMember, msg: Extract<ToOwner, { type: 'want' }>): Out<OwnerState> {
  const mine = s.log.filter((e) => e.from === msg.from && e.idx >= m.viewFrom);
  let end = -1;
  for (let i = mine.length - 1; i >= 0; i--) {
    if (equalBytes(sha256(mine[i]!.env), msg.before)) {
      end = i;
      break;
    }
  }
  const entries: { idx: number; env: Uint8Array }[] = [];
  for (let i = end; i >= 0 && entries.length < MAX_HISTORY_ENTRIES; i--) {
    const e = mine[i]!;
    if (i < end && equalBytes(sha256(e.env), msg.after)) break;
    entries.push({ idx: e.idx, env: e.env });
  }
  entries.reverse();
  return { state: s, effects: [sendTo(m.peer, encodeMessage({ type: 'supply', from: msg.from, before: msg.before, entries }))] };
}

// ---- Clock ticks: invite expiry and timed rotation ----

function tick(ctx: OwnerCtx, s: OwnerState, now: number): Out<OwnerState> {
  let changed = false;
  const invites: InviteRecord[] = [];
  for (const r of s.invites) {
    if (now > r.expiresAt + DAY_MS) {
      changed = true; // status record pruned (section 5.3)
    } else if (now > r.expiresAt && r.token !== undefined) {
      changed = true; // expired: delete the token, keep the record
      invites.push({
        id: r.id,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt,
        status: r.status === 'claimed' ? 'pending' : r.status,
        ...retiredAuthToken(r),
      });
    } else {
      invites.push(r);
    }
  }
  const next = changed ? { ...s, invites } : s;
  if (s.config.rotateAfterMs > 0 && now - s.epochStartedAt >= s.config.rotateAfterMs) return rotate(ctx, next, 'timer', now);
  return { state: next, effects: [] };
}

export { RoomError };
