/**
 * Owner away (docs/PROTOCOL.md 5.16): while the owner is unreachable, members talk directly over
 * mesh links between the keys of their own roster, and hand the owner what was said when it comes
 * back; the owner orders it once into the one room order.
 *
 * Pure code, like the machines: the member side is `(member state, away state, input) -> {away
 * state, effects}` (the away state is not persisted: a restarted member gets the held envelopes
 * back from its peers, and its own messages wait in its outbox); the owner side is one step of the
 * owner machine (`ownerHandover`) built from the owner's own `send` checks.
 */
import { equalBytes, sha256 } from '../../crypto/index.ts';
import { DecodeError, ZeroRoomError } from '../errors.ts';
import { encode, Fields, type MsgValue } from '../msgpack.ts';
import { MAX_ANN, MAX_ENVELOPE, MAX_HISTORY_ENTRIES, MAX_LINK_MESSAGE, encodeMessage, memberIdValue } from './codec.ts';
import { AuthenticityError, FreshnessError, MembershipError } from './errors.ts';
import { peerKeyHex } from './ids.ts';
import { ownerStep, rotate } from './owner.ts';
import type { Effect, MemberId, MemberState, OwnerCtx, OwnerState, PeerKeyHex, Step } from './types.ts';
import { openAnchor, openBody, openEnvelope } from './verify.ts';

/** How long the link to the owner stays down before a member goes away-mode (a driver timer). */
export const AWAY_AFTER_MS = 5000;
/** Away envelopes a member holds at most in one away period (one handover page). */
export const MAX_AWAY_MESSAGES = MAX_HISTORY_ENTRIES;

/** `room.away-full`: the member holds MAX_AWAY_MESSAGES already; its message waits for the owner. */
export class AwayError extends ZeroRoomError {
  declare readonly code: 'room.away-full';
  constructor(message: string) {
    super('room.away-full', message);
  }
}

// ---- wire (5.16) ----

export interface HandoverEntry {
  readonly from: MemberId;
  readonly env: Uint8Array;
}

export type AwayMessage =
  | { readonly type: 'away-hello'; readonly head: Uint8Array }
  | { readonly type: 'away-msg'; readonly from: MemberId; readonly env: Uint8Array }
  | { readonly type: 'away-handover'; readonly entries: readonly HandoverEntry[] };

const AWAY_TYPES: ReadonlySet<string> = new Set(['away-hello', 'away-msg', 'away-handover']);

export function encodeAwayMessage(m: AwayMessage): Uint8Array {
  switch (m.type) {
    case 'away-hello':
      return encode({ type: m.type, head: m.head });
    case 'away-msg':
      return encode({ type: m.type, from: m.from, env: m.env });
    case 'away-handover':
      return encode({ type: m.type, entries: m.entries.map((e) => ({ from: e.from, env: e.env })) });
  }
}

function entryOf(v: MsgValue, what: string): HandoverEntry {
  const f = Fields.of(v, what).only(['from', 'env']);
  return { from: memberIdValue(f.str('from', 32), `${what}.from`), env: f.bin('env', { min: 1, max: MAX_ENVELOPE }) };
}

/** The one decoder of the mesh and handover messages (closed field lists, sizes). */
export function decodeAwayMessage(bytes: Uint8Array): AwayMessage {
  const what = 'away message';
  if (bytes.length > MAX_LINK_MESSAGE) throw new DecodeError(`${what}: larger than ${MAX_LINK_MESSAGE} bytes`);
  const f = Fields.fromBytes(bytes, what);
  const type = f.str('type', 64);
  switch (type) {
    case 'away-hello':
      f.only(['type', 'head']);
      return { type, head: f.bin('head', { min: 1, max: MAX_ANN }) };
    case 'away-msg':
      f.only(['type', 'from', 'env']);
      return { type, from: memberIdValue(f.str('from', 32), `${type}.from`), env: f.bin('env', { min: 1, max: MAX_ENVELOPE }) };
    case 'away-handover':
      f.only(['type', 'entries']);
      return { type, entries: f.arr('entries', MAX_AWAY_MESSAGES).map((v) => entryOf(v, `${type}.entries`)) };
    default:
      throw new DecodeError(`${what}: unknown type "${type}"`);
  }
}

/** Whether a link message belongs to this module (dispatch before the room decoders). */
export function isAwayMessage(bytes: Uint8Array): boolean {
  try {
    const t = Fields.fromBytes(bytes, 'message').str('type', 64);
    return AWAY_TYPES.has(t);
  } catch {
    // Not a map with a type: the room decoder reports it.
    return false;
  }
}

// ---- member side ----

/**
 * A mesh peer as this member sees it: `hello` until its away-hello, then `ready` (same chain
 * head), `stale` (its head is older than ours) or `ahead` (newer: we are behind).
 */
export type AwayPeerStatus = 'hello' | 'ready' | 'stale' | 'ahead';

export interface AwayPeer {
  readonly peer: PeerKeyHex;
  readonly member: MemberId;
  readonly status: AwayPeerStatus;
}

/** An envelope held while away: shown provisionally, handed to the owner on its return. */
export interface AwayEntry {
  readonly from: MemberId;
  readonly name: string;
  readonly seq: number;
  readonly hash: Uint8Array;
  readonly env: Uint8Array;
  readonly text: string;
  readonly ts: number;
}

export interface AwayState {
  readonly peers: readonly AwayPeer[];
  /** In arrival order, at most MAX_AWAY_MESSAGES. */
  readonly held: readonly AwayEntry[];
  /** A peer showed a newer chain head: this member holds a stale roster or key and stays silent. */
  readonly behind: boolean;
}

export const EMPTY_AWAY: AwayState = Object.freeze({ peers: [], held: [], behind: false });

export type AwayEvent =
  /** A message said while the owner is away, shown provisionally (no room index yet). */
  | { readonly type: 'away-message'; readonly entry: AwayEntry }
  | { readonly type: 'away-peer'; readonly peer: PeerKeyHex; readonly member: MemberId; readonly status: AwayPeerStatus | 'closed' }
  /** Its ordered copy arrived (`idx`), or it was passed over and withdrawn (`idx` null). */
  | { readonly type: 'away-settled'; readonly from: MemberId; readonly seq: number; readonly idx: number | null };

export type AwayEffect =
  | { readonly kind: 'send'; readonly to: PeerKeyHex; readonly bytes: Uint8Array }
  | { readonly kind: 'close'; readonly to: PeerKeyHex; readonly reason: string }
  | { readonly kind: 'event'; readonly event: AwayEvent };

export interface AwayStep {
  readonly state: AwayState;
  readonly effects: readonly AwayEffect[];
  readonly error?: ZeroRoomError;
}

function guardedAway(a: AwayState, f: () => AwayStep): AwayStep {
  try {
    return f();
  } catch (e) {
    if (e instanceof ZeroRoomError) return { state: a, effects: [], error: e };
    throw e;
  }
}

/**
 * The pairing rule (5.16): for keys a < b, a is initiator on its own path and b connects to it.
 * `trust`: the roster keys greater than ours (we host them); `dial`: the smaller ones (we join theirs).
 */
export function meshRoles(s: MemberState): { readonly trust: readonly PeerKeyHex[]; readonly dial: readonly PeerKeyHex[] } {
  const self = s.members.find((m) => m.info.id === s.selfId);
  if (self === undefined || s.phase !== 'member') return { trust: [], dial: [] };
  const own = peerKeyHex(self.info.npub);
  const others = s.members.filter((m) => !m.info.owner && m.info.id !== s.selfId).map((m) => peerKeyHex(m.info.npub));
  return { trust: others.filter((k) => k > own).sort(), dial: others.filter((k) => k < own).sort() };
}

/** The roster member (never the owner, never us) whose peer key is `peer`. */
function rosterPeer(s: MemberState, peer: PeerKeyHex): MemberId | null {
  const m = s.members.find((x) => !x.info.owner && x.info.id !== s.selfId && peerKeyHex(x.info.npub) === peer);
  return m?.info.id ?? null;
}

function headOf(s: MemberState): { ann: Uint8Array; hash: Uint8Array } {
  const cur = s.epochs.find((e) => e.epoch === s.epoch);
  if (cur?.ann == null || cur.annHash === null) throw new MembershipError('room.state', 'no chain head');
  return { ann: cur.ann, hash: cur.annHash };
}

const peerEvent = (p: AwayPeer, status: AwayPeerStatus | 'closed'): AwayEffect => ({
  kind: 'event',
  event: { type: 'away-peer', peer: p.peer, member: p.member, status },
});

/** A mesh link opened: check the peer against our roster, then greet it with our chain head. */
export function awayOpened(s: MemberState, a: AwayState, peer: PeerKeyHex): AwayStep {
  return guardedAway(a, () => {
    if (s.phase !== 'member') throw new MembershipError('room.state', 'not a member');
    const member = rosterPeer(s, peer);
    if (member === null) {
      const e = new MembershipError('room.not-member', `${peer.slice(0, 8)} is not in our roster`);
      return { state: a, effects: [{ kind: 'close', to: peer, reason: e.code }], error: e };
    }
    const p: AwayPeer = { peer, member, status: 'hello' };
    return {
      state: { ...a, peers: [...a.peers.filter((x) => x.peer !== peer), p] },
      effects: [{ kind: 'send', to: peer, bytes: encodeAwayMessage({ type: 'away-hello', head: headOf(s).ann }) }, peerEvent(p, 'hello')],
    };
  });
}

/** A mesh link closed. */
export function awayClosed(a: AwayState, peer: PeerKeyHex): AwayStep {
  const p = a.peers.find((x) => x.peer === peer);
  if (p === undefined) return { state: a, effects: [] };
  return { state: { ...a, peers: a.peers.filter((x) => x !== p) }, effects: [peerEvent(p, 'closed')] };
}

const msgTo = (to: PeerKeyHex, e: AwayEntry): AwayEffect => ({
  kind: 'send',
  to,
  bytes: encodeAwayMessage({ type: 'away-msg', from: e.from, env: e.env }),
});

/** Peer input on a mesh link. */
export function awayReceived(s: MemberState, a: AwayState, peer: PeerKeyHex, bytes: Uint8Array): AwayStep {
  return guardedAway(a, () => {
    if (s.phase !== 'member') throw new MembershipError('room.state', 'not a member');
    const p = a.peers.find((x) => x.peer === peer);
    // A link the driver did not open through awayOpened, or a peer no longer in the roster.
    if (p === undefined || rosterPeer(s, peer) === null)
      throw new MembershipError('room.not-member', `${peer.slice(0, 8)} is not a mesh peer`);
    const msg = decodeAwayMessage(bytes);
    switch (msg.type) {
      case 'away-hello':
        return onHello(s, a, p, msg.head);
      case 'away-msg':
        return onAwayMsg(s, a, p, msg.from, msg.env);
      case 'away-handover':
        throw new MembershipError('room.forbidden', 'a handover goes to the owner');
    }
  });
}

function onHello(s: MemberState, a: AwayState, p: AwayPeer, head: Uint8Array): AwayStep {
  if (p.status !== 'hello') throw new FreshnessError('room.duplicate', 'hello already received');
  // The owner's signature first: a roster (chain head) not signed by the owner is refused.
  const opened = openAnchor(s.ownerIpub!, s.room, head);
  const n = 'entry' in opened ? opened.entry.n : opened.legacy.epoch;
  const mine = headOf(s);
  let status: AwayPeerStatus;
  if (equalBytes(sha256(head), mine.hash)) status = 'ready';
  else if (n === s.chain) throw new AuthenticityError('room.fork', 'a different chain head at our position');
  else status = n > s.chain ? 'ahead' : 'stale';
  const updated: AwayPeer = { ...p, status };
  const state: AwayState = { ...a, peers: a.peers.map((x) => (x === p ? updated : x)), behind: a.behind || status === 'ahead' };
  const effects: AwayEffect[] = [peerEvent(updated, status)];
  // A ready peer gets everything we hold (a member that restarted gets it back this way).
  if (status === 'ready' && !state.behind) for (const e of a.held) effects.push(msgTo(p.peer, e));
  return { state, effects };
}

function onAwayMsg(s: MemberState, a: AwayState, p: AwayPeer, from: MemberId, env: Uint8Array): AwayStep {
  if (p.status !== 'ready' || a.behind) throw new MembershipError('room.state', 'not talking to this peer (chain heads differ)');
  const entry = checkEnvelope(s, a, from, env);
  const state: AwayState = { ...a, held: [...a.held, entry] };
  const effects: AwayEffect[] = [{ kind: 'event', event: { type: 'away-message', entry } }];
  for (const q of a.peers) if (q.status === 'ready' && q.peer !== p.peer) effects.push(msgTo(q.peer, entry));
  return { state, effects };
}

/** The checks of an away envelope (5.16), in order; the entry to hold. */
function checkEnvelope(s: MemberState, a: AwayState, from: MemberId, env: Uint8Array): AwayEntry {
  // An exact copy of an envelope held already (flooding brings most twice): it was checked when it
  // was taken, so the signature is not verified again.
  const hash = sha256(env);
  if (a.held.some((h) => equalBytes(h.hash, hash) && h.from === from)) throw new FreshnessError('room.duplicate', 'envelope already held');
  const known = s.members.find((m) => m.info.id === from);
  if (known === undefined || known.info.owner) throw new MembershipError('room.not-member', `${from} is not a member`);
  const inner = openEnvelope(known.info.ipub, env, from, s.room);
  if (inner.epoch < s.epoch) throw new FreshnessError('room.epoch-expired', `epoch ${inner.epoch} is not the current one`);
  if (inner.epoch > s.epoch) throw new FreshnessError('room.epoch-unknown', `epoch ${inner.epoch} is not the current one`);
  if (inner.chain === null || inner.prev === null) throw new FreshnessError('room.sender-chain', 'an away envelope carries its chain');
  if (inner.chain > s.chain) throw new FreshnessError('room.chain-gap', `chain position ${inner.chain} is beyond ours`);
  const mine = a.held.filter((h) => h.from === from);
  const last = mine.at(-1);
  if (inner.seq <= Math.max(known.lastSeq, last?.seq ?? 0))
    throw new FreshnessError('room.replay', `sequence ${inner.seq} from ${from} already seen`);
  if (last !== undefined && !equalBytes(inner.prev, last.hash)) {
    throw new FreshnessError('room.sender-chain', `message ${inner.seq} from ${from} does not continue its away chain`);
  }
  const key = s.epochs.find((e) => e.epoch === s.epoch)?.key;
  if (key == null) throw new FreshnessError('room.epoch-unknown', 'no key for the current epoch');
  const body = openBody(key, inner);
  if (a.held.length >= MAX_AWAY_MESSAGES) throw new AwayError(`${MAX_AWAY_MESSAGES} away messages held already`);
  return { from, name: known.info.name, seq: inner.seq, hash, env, text: body.text, ts: body.ts };
}

/**
 * Our own message while away (`env` from the machine's send step, already in the outbox): held
 * and sent to every ready peer. Refused (`room.state`, `room.away-full`) it just waits for the owner.
 */
export function awayOwn(s: MemberState, a: AwayState, env: Uint8Array): AwayStep {
  return guardedAway(a, () => {
    if (a.behind) throw new MembershipError('room.state', 'behind the chain: waiting for the owner');
    const entry = checkEnvelope(s, { ...a, held: a.held }, s.selfId, env);
    const effects: AwayEffect[] = [{ kind: 'event', event: { type: 'away-message', entry } }];
    for (const q of a.peers) if (q.status === 'ready') effects.push(msgTo(q.peer, entry));
    return { state: { ...a, held: [...a.held, entry] }, effects };
  });
}

/** The handover pages for the owner (5.16): every held envelope, oldest first. */
export function awayHandover(a: AwayState): Uint8Array[] {
  const pages: Uint8Array[] = [];
  for (let i = 0; i < a.held.length; i += MAX_AWAY_MESSAGES) {
    const entries = a.held.slice(i, i + MAX_AWAY_MESSAGES).map((e) => ({ from: e.from, env: e.env }));
    pages.push(encodeAwayMessage({ type: 'away-handover', entries }));
  }
  return pages;
}

/**
 * After a room step: held envelopes that reached the room order (a `message` event with that
 * sender and seq: `ordered`) or that their sender's chain passed without them are settled and
 * dropped (5.16, "exactly once").
 */
export function awaySettle(
  s: MemberState,
  a: AwayState,
  ordered: readonly { from: MemberId; seq: number; idx: number }[],
  /** Also withdraw the passed-over ones: only once every message of the step is known (not between its events). */
  withdraw = true,
): AwayStep {
  const effects: AwayEffect[] = [];
  const held: AwayEntry[] = [];
  for (const e of a.held) {
    const hit = ordered.find((o) => o.from === e.from && o.seq === e.seq);
    const known = s.members.find((m) => m.info.id === e.from) ?? s.former.find((m) => m.info.id === e.from);
    if (hit !== undefined) effects.push({ kind: 'event', event: { type: 'away-settled', from: e.from, seq: e.seq, idx: hit.idx } });
    else if (withdraw && (known === undefined || known.lastSeq >= e.seq))
      effects.push({ kind: 'event', event: { type: 'away-settled', from: e.from, seq: e.seq, idx: null } });
    else held.push(e);
  }
  return { state: held.length === a.held.length ? a : { ...a, held }, effects };
}

// ---- owner side ----

/** Refusals a later round of the same handover can cure (an entry before the one it chains onto). */
const RETRY: ReadonlySet<string> = new Set(['room.sender-chain']);

/**
 * The owner's step for `away-handover` from member `peer` (5.16): each entry is ordered exactly as
 * if its sender had sent it (the owner's own `send` checks, through ownerStep), duplicates and
 * failures are skipped without a refusal, in rounds until none is ordered; the count rotation is
 * checked once, at the end.
 */
export function ownerHandover(ctx: OwnerCtx, s: OwnerState, peer: PeerKeyHex, bytes: Uint8Array, now: number): Step<OwnerState> {
  try {
    if (!s.members.some((m) => m.peer === peer && !m.info.owner))
      throw new MembershipError('room.not-member', 'a handover from a non-member');
    const msg = decodeAwayMessage(bytes);
    if (msg.type !== 'away-handover') throw new MembershipError('room.forbidden', `${msg.type} is for members`);
    // No count rotation inside the step: every entry of this page is ordered in one epoch.
    let state: OwnerState = { ...s, config: { ...s.config, rotateEveryMessages: Number.MAX_SAFE_INTEGER } };
    const effects: Effect[] = [];
    let pending = msg.entries.filter((e) => e.from !== s.selfId);
    for (;;) {
      const retry: HandoverEntry[] = [];
      let ordered = 0;
      for (const e of pending) {
        const sender = state.members.find((m) => m.info.id === e.from);
        if (sender === undefined) continue;
        const out = ownerStep(ctx, state, { kind: 'received', from: sender.peer, bytes: encodeMessage({ type: 'send', env: e.env }), now });
        if (out.error !== undefined) {
          if (RETRY.has(out.error.code)) retry.push(e);
          continue; // a duplicate (room.replay) or a failure: no refusal for a relayed entry
        }
        state = out.state;
        effects.push(...out.effects);
        ordered++;
      }
      if (ordered === 0 || retry.length === 0) break;
      pending = retry;
    }
    state = { ...state, config: s.config };
    if (state.epochMessages >= s.config.rotateEveryMessages) {
      const r = rotate(ctx, state, 'count', now);
      state = r.state;
      effects.push(...r.effects);
    }
    // Nothing ordered: the state is unchanged (no write).
    return { state: effects.length === 0 ? s : state, effects };
  } catch (e) {
    if (e instanceof ZeroRoomError) return { state: s, effects: [], error: e };
    throw e;
  }
}
