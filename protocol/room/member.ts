/**
 * A member's room machine (docs/PROTOCOL.md section 5): `startJoin` from an invite, then
 * `memberStep(ctx, state, event)`. Everything arrives from the owner over one peer link; every
 * owner-signed structure is checked against the owner key from the invite.
 */
import { AuthError, asSymmetricKey, cellOpen, cellSeal, equalBytes, openFrom, sealTo, sha256, toHex } from '../../crypto/index.ts';
import { DecodeError } from '../errors.ts';
import {
  MAX_NAME,
  MAX_TEXT,
  decodeAcceptBundle,
  decodeRekeyKey,
  decodeToMember,
  encodeJoinSecret,
  encodeMessage,
  type HistoryEntryWire,
  type RekeyWire,
  type ToMember,
} from './codec.ts';
import { AuthenticityError, FreshnessError, MembershipError, RoomError } from './errors.ts';
import { LABEL, contextOf, inviteIdBytes, memberIdOf, peerKeyHex, safetyCode } from './ids.ts';
import { checkInviteFresh, type Invite } from './invite.ts';
import { closeLink, emit, guarded, sendTo, type Out } from './step.ts';
import {
  GRACE_MESSAGES,
  MAX_FORMER_MEMBERS,
  MEMBER_KEPT_EPOCHS,
  type Effect,
  type EpochRecord,
  type KnownMember,
  type MemberCtx,
  type MemberEvent,
  type MemberInfo,
  type MemberState,
  type RemovalReason,
  type RoomEvent,
  type Step,
} from './types.ts';
import { epochFor, openAnn, openBody, openCert, openEnvelope, sealEnvelope, senderFor } from './verify.ts';

export interface StartJoinOptions {
  readonly now: number;
  readonly name: string;
}

/** Section 5.4: a fresh joining key, the join request sealed to the owner. Throws for an expired invite. */
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
    join: { inviteId: inviteIdBytes(invite.token), token: invite.token.slice(), jkey: asSymmetricKey(ctx.random(32)), acceptHash: null },
    seq: 0,
    epoch: -1,
    epochs: [],
    members: [],
    former: [],
    lastIdx: -1,
    viewFrom: 0,
    syncAt: null,
  };
  return { state, effects: [joinRequest(ctx, state)] };
}

function joinRequest(ctx: MemberCtx, s: MemberState): Effect {
  const j = s.join!;
  const sealed = sealTo(
    ctx.identity.privateKey,
    s.ownerIpub,
    encodeJoinSecret({ room: s.room, token: j.token, jkey: j.jkey, npub: ctx.peerKey, name: s.name }),
  );
  return sendTo(s.ownerPeer, encodeMessage({ type: 'join-request', invite: j.inviteId, ipub: ctx.identity.publicKey, sealed }));
}

function joinConfirm(s: MemberState): Effect {
  const j = s.join!;
  const proof = cellSeal(asSymmetricKey(j.jkey), j.acceptHash!, contextOf(LABEL.joinConfirm, j.token, s.room));
  return sendTo(s.ownerPeer, encodeMessage({ type: 'join-confirm', invite: j.inviteId, proof }));
}

export function memberSafetyCode(s: MemberState): string | null {
  const cur = s.epochs.find((e) => e.epoch === s.epoch);
  return cur === undefined ? null : safetyCode(s.room, cur.annHash);
}

// ---- The step function ----

export function memberStep(ctx: MemberCtx, state: MemberState, event: MemberEvent): Step<MemberState> {
  switch (event.kind) {
    case 'received':
      return guarded(state, () => onReceived(ctx, state, decodeToMember(event.bytes)));
    case 'connected':
      return guarded(state, () => onConnected(ctx, state));
    case 'send':
      return guarded(state, () => sendText(ctx, state, event.text, event.now));
    case 'leave':
      return guarded(state, () => {
        requirePhase(state, 'member');
        return {
          state: { ...state, phase: 'left' },
          effects: [sendTo(state.ownerPeer, encodeMessage({ type: 'leave' })), closeLink(state.ownerPeer, 'left'), emit({ type: 'left' })],
        };
      });
  }
}

function requirePhase(s: MemberState, ...phases: MemberState['phase'][]): void {
  if (s.phase === 'refused' || s.phase === 'removed' || s.phase === 'left') {
    throw new MembershipError('room.closed', `no longer in the room (${s.phase})`);
  }
  if (!phases.includes(s.phase)) throw new MembershipError('room.state', `not expected while ${s.phase}`);
}

function onConnected(ctx: MemberCtx, s: MemberState): Out<MemberState> {
  requirePhase(s, 'joining', 'accepted', 'member');
  if (s.phase === 'joining') return { state: s, effects: [joinRequest(ctx, s)] };
  if (s.phase === 'accepted') return { state: s, effects: [joinConfirm(s)] };
  return { state: { ...s, syncAt: s.lastIdx }, effects: [syncRequest(s)] };
}

function syncRequest(s: MemberState): Effect {
  return sendTo(s.ownerPeer, encodeMessage({ type: 'sync', last_idx: s.lastIdx, epoch: s.epoch }));
}

function sendText(ctx: MemberCtx, s: MemberState, text: string, now: number): Out<MemberState> {
  requirePhase(s, 'member');
  if (text.length > MAX_TEXT) throw new RangeError(`message text longer than ${MAX_TEXT} characters`);
  const cur = s.epochs.find((e) => e.epoch === s.epoch)!;
  const seq = s.seq + 1;
  const env = sealEnvelope(ctx.identity.privateKey, {
    room: s.room,
    epoch: s.epoch,
    key: cur.key!,
    from: s.selfId,
    seq,
    body: { text, ts: Math.max(0, Math.floor(now)) },
  });
  return { state: { ...s, seq }, effects: [sendTo(s.ownerPeer, encodeMessage({ type: 'send', env }))] };
}

function onReceived(ctx: MemberCtx, s: MemberState, msg: ToMember): Out<MemberState> {
  switch (msg.type) {
    case 'join-accept':
      requirePhase(s, 'joining', 'accepted');
      return onAccept(ctx, s, msg);
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
      return { state: s, effects: [emit({ type: 'send-refused', code: msg.code, seq: msg.seq ?? null })] };
    case 'deliver':
      requirePhase(s, 'member');
      return onDeliver(s, msg);
    case 'history':
      requirePhase(s, 'member');
      return onHistory(s, msg);
    case 'member-added':
      requirePhase(s, 'member');
      return onMemberAdded(s, msg.cert);
    case 'rekey':
      requirePhase(s, 'member');
      return applyRekey(ctx, s, msg);
    case 'removed':
      requirePhase(s, 'joining', 'accepted', 'member');
      return removed(s, msg.reason);
    case 'resync':
      requirePhase(s, 'member');
      return onResync(ctx, s, msg);
  }
}

function removed(s: MemberState, reason: RemovalReason): Out<MemberState> {
  // The keys we hold stay (they read what we already saw); no later key will ever reach us.
  return {
    state: { ...s, phase: 'removed', join: null },
    effects: [emit({ type: 'removed', reason }), closeLink(s.ownerPeer, reason)],
  };
}

// ---- Join (5.4) ----

function onAccept(ctx: MemberCtx, s: MemberState, msg: Extract<ToMember, { type: 'join-accept' }>): Out<MemberState> {
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
  const ann = openAnn(s.ownerIpub, s.room, bundle.ann);
  if (ann.epoch !== bundle.epoch) throw new AuthenticityError('room.bad-rekey', 'join accept key and announcement disagree');
  const members = bundle.certs.map((c) => openCert(s.ownerIpub, s.room, c));
  if (!members.some((m) => m.owner)) throw new AuthenticityError('room.not-owner', 'join accept lists no owner');
  const epoch: EpochRecord = {
    epoch: ann.epoch,
    key: asSymmetricKey(bundle.key),
    firstIdx: ann.firstIdx,
    annHash: sha256(bundle.ann),
    prev: ann.prev,
    reason: ann.reason,
    ann: bundle.ann,
  };
  const next: MemberState = {
    ...s,
    phase: 'accepted',
    roomName: bundle.name ?? s.roomName,
    epoch: ann.epoch,
    epochs: [epoch],
    members: members.map((info) => ({ info, lastSeq: 0 })),
    join: { ...j, acceptHash: sha256(encodeMessage(msg)) },
  };
  return { state: next, effects: [joinConfirm(next)] };
}

function onWelcome(ctx: MemberCtx, s: MemberState, msg: Extract<ToMember, { type: 'welcome' }>): Out<MemberState> {
  const self = openCert(s.ownerIpub, s.room, msg.cert);
  if (self.id !== s.selfId || !equalBytes(self.npub, ctx.peerKey)) {
    throw new AuthenticityError('room.impersonation', 'welcome certificate is not ours');
  }
  let next: MemberState = {
    ...s,
    phase: 'member',
    join: null,
    members: [...s.members.filter((m) => m.info.id !== self.id), { info: self, lastSeq: 0 }],
    lastIdx: msg.from_idx - 1,
    viewFrom: msg.from_idx,
  };
  const effects: Effect[] = [];
  if (msg.rekey !== undefined) {
    // The room rotated between our accept and our confirm (5.4): that announcement predates our
    // admission and cannot list us; our certificate (issued in that epoch) admits us to it. Members
    // admitted meanwhile are in neither our accept nor the announcement: ask for a resync (5.10).
    const r = applyRekey(ctx, next, msg.rekey, self.epoch);
    next = { ...r.state, syncAt: r.state.lastIdx };
    effects.push(...r.effects, syncRequest(next));
  }
  effects.unshift(emit({ type: 'joined', room: toHex(s.room), epoch: next.epoch }));
  return { state: next, effects };
}

function onMemberAdded(s: MemberState, cert: Uint8Array): Out<MemberState> {
  const info = openCert(s.ownerIpub, s.room, cert);
  const existing = s.members.find((m) => m.info.id === info.id);
  if (existing !== undefined && existing.info.epoch === info.epoch) throw new FreshnessError('room.duplicate', 'member already known');
  if (info.epoch > s.epoch + 1) throw new FreshnessError('room.epoch-unknown', 'certificate from an epoch we do not know');
  const former = existing !== undefined ? keptFormer([...s.former, { ...existing, untilEpoch: info.epoch }]) : s.former;
  return {
    state: { ...s, members: [...s.members.filter((m) => m !== existing), { info, lastSeq: 0 }], former },
    effects: [emit({ type: 'member-joined', member: summary(info) })],
  };
}

const summary = (m: MemberInfo) => ({ id: m.id, name: m.name, owner: m.owner });

// ---- Rotation (5.7) ----

/** `admittedAt`: the epoch of our own certificate when the rekey comes inside our welcome. */
function applyRekey(ctx: MemberCtx, s: MemberState, r: RekeyWire, admittedAt?: number): Out<MemberState> {
  const ann = openAnn(s.ownerIpub, s.room, r.ann);
  const annHash = sha256(r.ann);
  let body;
  try {
    body = decodeRekeyKey(openFrom(ctx.identity.privateKey, s.ownerIpub, r.key));
  } catch (e) {
    if (e instanceof AuthError || e instanceof DecodeError)
      throw new AuthenticityError('room.bad-rekey', 'rekey key does not open from the owner', { cause: e });
    throw e;
  }
  if (!equalBytes(body.room, s.room) || body.epoch !== ann.epoch || !equalBytes(body.annHash, annHash)) {
    throw new AuthenticityError('room.bad-rekey', 'rekey key is not for this announcement');
  }
  const existing = s.epochs.find((e) => e.epoch === ann.epoch);
  if (existing !== undefined) {
    if (equalBytes(existing.annHash, annHash)) throw new FreshnessError('room.duplicate', `epoch ${ann.epoch} already installed`);
    throw new AuthenticityError('room.fork', `two different announcements for epoch ${ann.epoch}`);
  }
  const before = s.epochs.find((e) => e.epoch === ann.epoch - 1);
  const after = s.epochs.find((e) => e.epoch === ann.epoch + 1);
  if ((before !== undefined && !equalBytes(ann.prev, before.annHash)) || (after !== undefined && !equalBytes(after.prev, annHash))) {
    throw new AuthenticityError('room.fork', `announcement for epoch ${ann.epoch} does not chain`);
  }
  const admittedInIt = admittedAt === ann.epoch;
  if (ann.epoch > s.epoch && !admittedInIt && !ann.members.some((m) => m.id === s.selfId)) {
    throw new AuthenticityError('room.bad-rekey', 'announcement of a newer epoch without us');
  }
  const rec: EpochRecord = {
    epoch: ann.epoch,
    key: asSymmetricKey(body.key),
    firstIdx: ann.firstIdx,
    annHash,
    prev: ann.prev,
    reason: ann.reason,
    ann: r.ann,
  };
  const epochs = keptEpochs(
    [...s.epochs, rec].sort((a, b) => a.epoch - b.epoch),
    Math.max(s.epoch, ann.epoch),
  );
  if (ann.epoch < s.epoch) return { state: { ...s, epochs }, effects: [] }; // older epoch: for reading history only
  if (admittedInIt && ann.epoch > s.epoch) {
    // Our roster (accept bundle + our certificate) is newer than this announcement's: keep it.
    return { state: { ...s, epochs, epoch: ann.epoch }, effects: [emit({ type: 'rotated', epoch: ann.epoch, reason: ann.reason })] };
  }
  const leftReason = ann.reason === 'leave' ? 'left' : ann.reason === 'kick' ? 'kicked' : 'removed';
  const roster = rosterChange(s, ann.members, ann.epoch, leftReason);
  return {
    state: { ...s, epochs, epoch: ann.epoch, members: roster.members, former: roster.former },
    effects: [...roster.effects, emit({ type: 'rotated', epoch: ann.epoch, reason: ann.reason })],
  };
}

/** The newest MEMBER_KEPT_EPOCHS epochs, the current one always among them (section 5.11). */
function keptEpochs(sorted: EpochRecord[], current: number): EpochRecord[] {
  if (sorted.length <= MEMBER_KEPT_EPOCHS) return sorted;
  const keep = sorted.slice(-MEMBER_KEPT_EPOCHS);
  return keep.some((e) => e.epoch === current) ? keep : [...keep.slice(1), ...sorted.filter((e) => e.epoch === current)];
}

/** The newest MAX_FORMER_MEMBERS former members: older ones' history can no longer be verified. */
function keptFormer(former: KnownMember[]): KnownMember[] {
  return former.length <= MAX_FORMER_MEMBERS ? former : former.slice(-MAX_FORMER_MEMBERS);
}

/** Replace the member list; dropped members become former members (their old messages stay verifiable). */
function rosterChange(
  s: MemberState,
  infos: readonly MemberInfo[],
  untilEpoch: number,
  leftReason: RemovalReason | 'removed',
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
    members.push({ info, lastSeq: 0 });
    if (old === undefined) effects.push(emit({ type: 'member-joined', member: summary(info) }));
  }
  for (const old of s.members) {
    if (!infos.some((i) => i.id === old.info.id)) {
      former.push({ ...old, untilEpoch });
      effects.push(emit({ type: 'member-left', member: summary(old.info), reason: leftReason }));
    }
  }
  return { members, former: keptFormer(former), effects };
}

function onResync(ctx: MemberCtx, s: MemberState, msg: Extract<ToMember, { type: 'resync' }>): Out<MemberState> {
  let next = s;
  const effects: Effect[] = [];
  if (msg.rekey !== undefined) {
    try {
      const r = applyRekey(ctx, next, msg.rekey);
      next = r.state;
      effects.push(...r.effects);
    } catch (e) {
      // The owner re-sends the current epoch on every resync; already holding it is fine.
      if (!(e instanceof FreshnessError && e.code === 'room.duplicate')) throw e;
    }
  }
  const infos = msg.certs.map((c) => openCert(s.ownerIpub, s.room, c));
  if (!infos.some((i) => i.id === s.selfId)) throw new AuthenticityError('room.bad-rekey', 'resync without us');
  const roster = rosterChange(next, infos, next.epoch, 'removed');
  return { state: { ...next, members: roster.members, former: roster.former, syncAt: null }, effects: [...effects, ...roster.effects] };
}

// ---- Messages and history (5.6, 5.9) ----

type EntryResult =
  | { readonly kind: 'message'; readonly state: MemberState; readonly event: RoomEvent }
  | { readonly kind: 'skip'; readonly state: MemberState; readonly reason: 'no-key' | 'unknown-sender' };

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
  let epoch: EpochRecord;
  try {
    epoch = epochFor(s.epochs, e.idx, inner.epoch, GRACE_MESSAGES);
  } catch (err) {
    if (history && err instanceof FreshnessError && err.code === 'room.epoch-unknown') {
      return { kind: 'skip', state: { ...s, lastIdx: e.idx }, reason: 'no-key' };
    }
    throw err;
  }
  const record = who.list === 'members' ? s.members[who.index]! : s.former[who.index]!;
  if (inner.seq <= record.lastSeq) throw new FreshnessError('room.replay', `sequence ${inner.seq} from ${e.from} already seen`);
  const body = openBody(epoch.key!, inner);
  const updated = { ...record, lastSeq: inner.seq };
  const state: MemberState =
    who.list === 'members'
      ? { ...s, lastIdx: e.idx, members: s.members.map((m, i) => (i === who.index ? updated : m)) }
      : { ...s, lastIdx: e.idx, former: s.former.map((m, i) => (i === who.index ? updated : m)) };
  return {
    kind: 'message',
    state,
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
    },
  };
}

function requestGap(s: MemberState): Out<MemberState> {
  if (s.syncAt === s.lastIdx) return { state: s, effects: [] };
  return { state: { ...s, syncAt: s.lastIdx }, effects: [syncRequest(s)] };
}

function onDeliver(s: MemberState, msg: Extract<ToMember, { type: 'deliver' }>): Out<MemberState> {
  if (msg.idx <= s.lastIdx) throw new FreshnessError('room.duplicate', `index ${msg.idx} already seen`);
  if (msg.idx > s.lastIdx + 1) return requestGap(s); // dropped here, fetched again as history
  const r = processEntry(s, msg, false);
  if (r.kind !== 'message') throw new Error('unreachable: live entries are never skipped');
  return { state: clearSync(r.state), effects: [emit(r.event)] };
}

function clearSync(s: MemberState): MemberState {
  return s.syncAt !== null && s.lastIdx > s.syncAt ? { ...s, syncAt: null } : s;
}

function onHistory(s: MemberState, msg: Extract<ToMember, { type: 'history' }>): Out<MemberState> {
  const effects: Effect[] = [];
  let next = s;
  if (msg.log_start - 1 > next.lastIdx) {
    effects.push(emit({ type: 'history-skipped', count: msg.log_start - 1 - next.lastIdx, reason: 'trimmed' }));
    next = { ...next, lastIdx: msg.log_start - 1 };
  }
  if (msg.from_idx > next.lastIdx + 1) return requestGap(s);
  const skipped = { 'no-key': 0, 'unknown-sender': 0 };
  for (const e of msg.entries) {
    if (e.idx <= next.lastIdx) continue; // overlap with what we have
    const r = processEntry(next, e, true);
    next = r.state;
    if (r.kind === 'message') effects.push(emit(r.event));
    else skipped[r.reason]++;
  }
  for (const reason of ['no-key', 'unknown-sender'] as const) {
    if (skipped[reason] > 0) effects.push(emit({ type: 'history-skipped', count: skipped[reason], reason }));
  }
  const done = clearSync(next);
  if (msg.more !== true) return { state: done, effects };
  const ask = requestMore(done);
  return { state: ask.state, effects: [...effects, ...ask.effects] };
}

/** 5.10: ask for the next history page, once per index reached (a repeated page asks nothing). */
function requestMore(s: MemberState): Out<MemberState> {
  if (s.syncAt === s.lastIdx) return { state: s, effects: [] };
  return {
    state: { ...s, syncAt: s.lastIdx },
    effects: [sendTo(s.ownerPeer, encodeMessage({ type: 'sync', last_idx: s.lastIdx, epoch: s.epoch, more: true }))],
  };
}

export { RoomError };
