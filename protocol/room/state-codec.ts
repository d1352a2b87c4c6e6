/**
 * Persisted room-machine states (docs/PROTOCOL.md sections 5.15 and 6.3). Storage holds
 * `encodeOwnerState` / `encodeMemberState` output (format 2); the decoders read it back as strictly
 * as a wire message: every field's msgpack type, byte and key lengths (branded keys via the crypto
 * layer's constructors), array sizes against the protocol's limits, enum values, and the invariants
 * the machines rely on (current epoch key and chain head present, one owner, contiguous log and
 * chain). Format 1 (before the announcement chain) is still read and migrated. Anything else is a
 * StateError ('room.bad-state'); a format version this code does not know is a StateVersionError.
 * Key checks need initCrypto() first.
 */
import { asSymmetricKey, equalBytes, KeyError, sha256, type SymmetricKey } from '../../crypto/index.ts';
import { DecodeError } from '../errors.ts';
import { Fields, encode, type Encodable, type IntRange, type MsgValue } from '../msgpack.ts';
import {
  MAX_ANN,
  MAX_CERT,
  MAX_ENVELOPE,
  MAX_MEMBERS,
  MAX_NAME,
  ROTATION_REASONS,
  memberFromFields,
  memberIdValue,
  memberToWire,
} from './codec.ts';
import { StateError, StateVersionError } from './errors.ts';
import { ZERO_HASH, inviteIdOf, memberIdOf, ownerKeyCommit, peerKeyHex } from './ids.ts';
import { ecPublicField } from './wire-keys.ts';
import { MAX_PENDING_SENDS, MAX_PREVIOUS_PATHS, MAX_REMOVED_PEERS, MAX_SENDER_GAPS, type PreviousPath } from './types.ts';
import type {
  ChainLink,
  ChainOp,
  EpochRecord,
  InviteId,
  InviteRecord,
  InviteStatus,
  JoinClaim,
  KnownMember,
  MemberInfo,
  MemberPhase,
  MemberState,
  OwnerMember,
  OwnerState,
  PeerKeyHex,
  RoomConfig,
} from './types.ts';

export const STATE_VERSION = 2;
/** Largest encoded state either side accepts (the web room record holds it in one sealed cell). */
export const MAX_STATE_BYTES = 64 * 1024 * 1024;
/**
 * Cap for the lists the protocol does not bound itself (epochs, chain links, invites, former
 * members). Each entry is one rotation, chain entry, invite or removal; the byte cap binds long
 * before this count.
 */
export const MAX_STORED_RECORDS = 100_000;

const COUNT: IntRange = { min: 0, max: Number.MAX_SAFE_INTEGER };
const IDX_OR_NONE: IntRange = { min: -1, max: Number.MAX_SAFE_INTEGER };
/** Times are the events' `now` (integer milliseconds); any safe integer round-trips. */
const TIME: IntRange = { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER };
const HEX_64 = /^[0-9a-f]{64}$/;
const PHASES: readonly MemberPhase[] = ['joining', 'accepted', 'member', 'refused', 'removed', 'left'];
const INVITE_STATUSES: readonly InviteStatus[] = ['pending', 'claimed', 'used', 'revoked'];
const CHAIN_OPS: readonly ChainOp[] = ['create', 'add', 'rotate', 'update', 'owner-update', 'legacy'];

// ---- Encoding (format 2): explicit field lists, so only what the decoder reads is written ----

const epochWire = (e: EpochRecord): Encodable => ({ epoch: e.epoch, key: e.key, firstIdx: e.firstIdx, ann: e.ann, annHash: e.annHash });
const knownWire = (m: KnownMember): Encodable => ({
  info: memberToWire(m.info),
  lastSeq: m.lastSeq,
  lastHash: m.lastHash,
  untilEpoch: m.untilEpoch,
});
const claimWire = (c: JoinClaim): Encodable => ({ peer: c.peer, info: memberToWire(c.info), jkey: c.jkey, acceptHash: c.acceptHash });

function time(v: number, what: string): number {
  // The machines take `now` as given; a fractional clock would not read back as an integer.
  if (!Number.isSafeInteger(v)) throw new StateError(`${what}: a time must be a safe integer, got ${v}`);
  return v;
}

function sized(bytes: Uint8Array, what: string): Uint8Array {
  if (bytes.length > MAX_STATE_BYTES) throw new StateError(`${what}: ${bytes.length} bytes, more than ${MAX_STATE_BYTES}`);
  return bytes;
}

export function encodeOwnerState(s: OwnerState): Uint8Array {
  const c = s.config;
  return sized(
    encode({
      v: STATE_VERSION,
      role: 'owner',
      config: {
        rotateEveryMessages: c.rotateEveryMessages,
        rotateAfterMs: c.rotateAfterMs,
        graceMs: c.graceMs,
        history: c.history,
        rotateOnJoin: c.rotateOnJoin,
        inviteTtlMs: c.inviteTtlMs,
        maxLogEntries: c.maxLogEntries,
      },
      room: s.room,
      name: s.name,
      selfId: s.selfId,
      seq: s.seq,
      epoch: s.epoch,
      epochStartedAt: time(s.epochStartedAt, 'epochStartedAt'),
      epochMessages: s.epochMessages,
      epochs: s.epochs.map(epochWire),
      members: s.members.map((m) => ({
        info: memberToWire(m.info),
        lastSeq: m.lastSeq,
        lastHash: m.lastHash,
        cert: m.cert,
        peer: m.peer,
        viewFrom: m.viewFrom,
        catchUp: m.catchUp === null ? null : { at: time(m.catchUp.at, 'catchUp.at'), next: m.catchUp.next },
      })),
      invites: s.invites.map((r) => ({
        id: r.id,
        token: r.token,
        createdAt: time(r.createdAt, 'invite createdAt'),
        expiresAt: time(r.expiresAt, 'invite expiresAt'),
        status: r.status,
        claim: r.claim === undefined ? undefined : claimWire(r.claim),
        usedBy: r.usedBy,
        authToken: r.authToken,
      })),
      nextIdx: s.nextIdx,
      log: s.log.map((e) => ({ idx: e.idx, from: e.from, epoch: e.epoch, env: e.env })),
      chain: s.chain.map((l) => ({ n: l.n, epoch: l.epoch, op: l.op, hash: l.hash, ann: l.ann })),
      removedPeers: s.removedPeers,
      ...(s.previousPaths !== undefined && s.previousPaths.length > 0
        ? {
            previousPaths: s.previousPaths.map((p) => ({
              peer: p.peer,
              secret: p.secret,
              until: time(p.until, 'previousPaths.until'),
              waiting: [...p.waiting],
            })),
          }
        : {}),
    }),
    'owner state',
  );
}

export function encodeMemberState(s: MemberState): Uint8Array {
  const j = s.join;
  return sized(
    encode({
      v: STATE_VERSION,
      role: 'member',
      phase: s.phase,
      room: s.room,
      roomName: s.roomName,
      ownerIpub: s.ownerIpub,
      ownerPeer: s.ownerPeer,
      selfId: s.selfId,
      name: s.name,
      join:
        j === null
          ? null
          : {
              inviteId: j.inviteId,
              token: j.token,
              jkey: j.jkey,
              acceptHash: j.acceptHash,
              ownerCommit: j.ownerCommit,
              ...(j.exp !== null ? { exp: j.exp } : {}),
            },
      seq: s.seq,
      epoch: s.epoch,
      epochs: s.epochs.map(epochWire),
      members: s.members.map(knownWire),
      former: s.former.map(knownWire),
      lastIdx: s.lastIdx,
      viewFrom: s.viewFrom,
      syncAt: s.syncAt,
      chain: s.chain,
      chainSeen: s.chainSeen,
      tail: s.tail,
      sent: s.sent.map((r) => ({ seq: r.seq, hash: r.hash, prev: r.prev })),
      gaps: s.gaps.map((g) => ({ from: g.from, after: g.after, before: g.before })),
    }),
    'member state',
  );
}

// ---- Decoding ----

/** Decodes either role (dispatch on `role`), for stores that hold both. */
export function decodeRoomState(bytes: Uint8Array): OwnerState | MemberState {
  return parse(bytes, 'room state', (f, what, v) => {
    const role = f.str('role', 16);
    if (role === 'owner') return ownerFrom(f, what, v);
    if (role === 'member') return memberFrom(f, what, v);
    throw new DecodeError(`${what}: unknown role "${role}"`);
  });
}

export function decodeOwnerState(bytes: Uint8Array): OwnerState {
  return parse(bytes, 'owner state', ownerFrom);
}

export function decodeMemberState(bytes: Uint8Array): MemberState {
  return parse(bytes, 'member state', memberFrom);
}

type Version = 1 | 2;

function parse<T>(bytes: Uint8Array, what: string, body: (f: Fields, what: string, v: Version) => T): T {
  if (!(bytes instanceof Uint8Array)) throw new StateError(`${what}: not a byte array`);
  sized(bytes, what);
  try {
    const f = Fields.fromBytes(bytes, what);
    // The version first: a newer format may have fields this one refuses.
    const v = f.raw('v');
    if (v.t !== 'int') throw new DecodeError(`${what}: field "v" must be int, got ${v.t}`);
    if (v.v !== 1 && v.v !== 2) throw new StateVersionError(what, v.v);
    return body(f, what, v.v);
  } catch (e) {
    if (e instanceof StateError) throw e;
    if (e instanceof DecodeError || e instanceof KeyError) throw new StateError(e.message, { cause: e });
    throw e;
  }
}

const OWNER_FIELDS_V1 = [
  'v',
  'role',
  'config',
  'room',
  'name',
  'selfId',
  'seq',
  'epoch',
  'epochStartedAt',
  'epochMessages',
  'epochs',
  'members',
  'invites',
  'nextIdx',
  'log',
];
const OWNER_FIELDS_V2 = [...OWNER_FIELDS_V1, 'chain', 'removedPeers', 'previousPaths'];

function ownerFrom(f: Fields, what: string, v: Version): OwnerState {
  f.only(v === 1 ? OWNER_FIELDS_V1 : OWNER_FIELDS_V2);
  if (f.str('role', 16) !== 'owner') throw new DecodeError(`${what}: role must be "owner"`);
  const config = configFrom(f.map_('config'), `${what}.config`);
  const epoch = f.int('epoch', COUNT);
  let epochs: EpochRecord[];
  let chain: ChainLink[];
  if (v === 1) {
    // Format 1: a run of epochs ending at the current one, each with its key and announcement.
    const old = list(f, 'epochs', MAX_STORED_RECORDS, what, (e, w) => epochFromV1(e, w, true));
    const first = epoch + 1 - old.length;
    if (old.length === 0 || first < 0 || old.some((e, i) => e.epoch !== first + i))
      throw new DecodeError(`${what}: epochs are not a run ending at ${epoch}`);
    const cur = old[old.length - 1]!;
    epochs = old.map((e) => migratedEpoch(e, epoch));
    chain = [{ n: epoch, epoch, op: 'legacy', hash: cur.annHash, ann: cur.ann }];
  } else {
    epochs = list(f, 'epochs', MAX_STORED_RECORDS, what, (e, w) => epochFrom(e, w, true));
    checkEpochs(epochs, epoch, what, true);
    chain = list(f, 'chain', MAX_STORED_RECORDS, what, chainLinkFrom);
    const head = chain[chain.length - 1];
    if (head === undefined || chain.some((l, i) => l.n !== head.n - chain.length + 1 + i))
      throw new DecodeError(`${what}: chain is not contiguous`);
    if (chain.some((l, i) => (i > 0 && (l.epoch < chain[i - 1]!.epoch || l.op === 'legacy')) || (l.op === 'create' && l.n !== 0)))
      throw new DecodeError(`${what}: chain links out of order`);
    const cur = epochs.find((e) => e.epoch === epoch)!;
    if (head.epoch !== epoch || !equalBytes(head.hash, cur.annHash!) || !equalBytes(head.ann, cur.ann!))
      throw new DecodeError(`${what}: the chain head is not the current epoch's`);
  }
  const selfId = memberIdValue(f.str('selfId', 32), `${what}.selfId`);
  const members = list(f, 'members', MAX_MEMBERS, what, (m, w) => ownerMemberFrom(m, w, v));
  const owners = members.filter((m) => m.info.owner);
  if (owners.length !== 1 || owners[0]!.info.id !== selfId) throw new DecodeError(`${what}: members must hold exactly one owner, selfId`);
  distinct(
    members.map((m) => m.info.id),
    `${what}.members ids`,
  );
  distinct(
    members.map((m) => m.peer),
    `${what}.members peers`,
  );
  const invites = list(f, 'invites', MAX_STORED_RECORDS, what, inviteFrom);
  distinct(
    invites.map((r) => r.id),
    `${what}.invites ids`,
  );
  const nextIdx = f.int('nextIdx', COUNT);
  const log = list(f, 'log', config.maxLogEntries, what, (e) => {
    e.only(['idx', 'from', 'epoch', 'env']);
    return {
      idx: e.int('idx', COUNT),
      from: memberIdValue(e.str('from', 32), `${what}.log.from`),
      epoch: e.int('epoch', COUNT),
      env: e.bin('env', { min: 1, max: MAX_ENVELOPE }),
    };
  });
  // Absent in format 1 and in format 2 states written before it was kept.
  const removedPeers =
    f.optional('removedPeers', (k) =>
      f.arr(k, MAX_REMOVED_PEERS).map((item, i) => {
        if (item.t !== 'str' || !HEX_64.test(item.v)) throw new DecodeError(`${what}.removedPeers[${i}]: not 64 lowercase hex digits`);
        return item.v as PeerKeyHex;
      }),
    ) ?? [];
  distinct(removedPeers, `${what}.removedPeers`);
  // Paths left by an owner update (5.8.1 step 5); absent when there are none.
  const previousPaths = f.optional('previousPaths', (k) =>
    f
      .arr(k, MAX_PREVIOUS_PATHS)
      .map((v, i) => previousPathFrom(Fields.of(v, `${what}.previousPaths[${i}]`), `${what}.previousPaths[${i}]`)),
  );
  if (previousPaths !== undefined)
    distinct(
      previousPaths.map((p) => p.peer),
      `${what}.previousPaths peers`,
    );
  // Appended at nextIdx, trimmed from the front: contiguous, ending just before nextIdx.
  if (log.some((e, i) => e.idx !== nextIdx - log.length + i || e.epoch > epoch))
    throw new DecodeError(`${what}: log is not contiguous up to nextIdx`);
  return {
    role: 'owner',
    config,
    room: f.bin('room', 16),
    name: nullable(f, 'name', (k) => f.str(k, MAX_NAME)),
    selfId,
    seq: f.int('seq', COUNT),
    epoch,
    epochStartedAt: f.int('epochStartedAt', TIME),
    epochMessages: f.int('epochMessages', COUNT),
    epochs,
    members,
    invites,
    nextIdx,
    log,
    chain,
    removedPeers,
    ...(previousPaths !== undefined && previousPaths.length > 0 ? { previousPaths } : {}),
  };
}

function previousPathFrom(p: Fields, what: string): PreviousPath {
  p.only(['peer', 'secret', 'until', 'waiting']);
  const waiting = p.arr('waiting', MAX_MEMBERS).map((v, i) => {
    if (v.t !== 'str') throw new DecodeError(`${what}.waiting[${i}]: must be str, got ${v.t}`);
    return memberIdValue(v.v, `${what}.waiting[${i}]`);
  });
  distinct(waiting, `${what}.waiting`);
  return { peer: peerHex(p, 'peer', what), secret: p.bin('secret', 32), until: p.int('until', TIME), waiting };
}

const MEMBER_FIELDS_V1 = [
  'v',
  'role',
  'phase',
  'room',
  'roomName',
  'ownerIpub',
  'ownerPeer',
  'selfId',
  'name',
  'join',
  'seq',
  'epoch',
  'epochs',
  'members',
  'former',
  'lastIdx',
  'viewFrom',
  'syncAt',
];
const MEMBER_FIELDS_V2 = [...MEMBER_FIELDS_V1, 'chain', 'chainSeen', 'tail', 'sent', 'gaps'];

function memberFrom(f: Fields, what: string, v: Version): MemberState {
  f.only(v === 1 ? MEMBER_FIELDS_V1 : MEMBER_FIELDS_V2);
  if (f.str('role', 16) !== 'member') throw new DecodeError(`${what}: role must be "member"`);
  const phase = oneOf(f.str('phase', 16), PHASES, `${what}.phase`);
  // Format 1 always held the owner key (v1 invites carried it).
  const ownerIpub = v === 1 ? ecPublicField(f, 'ownerIpub', what) : nullable(f, 'ownerIpub', () => ecPublicField(f, 'ownerIpub', what));
  // A v2 joiner learns the owner key before its join request (5.3): null only before the accept.
  if (ownerIpub === null && phase !== 'joining' && phase !== 'refused' && phase !== 'removed')
    throw new DecodeError(`${what}: no owner key after joining`);
  const join = nullable(f, 'join', (k) => {
    const j = f
      .map_(k)
      .only(v === 1 ? ['inviteId', 'token', 'jkey', 'acceptHash'] : ['inviteId', 'token', 'jkey', 'acceptHash', 'ownerCommit', 'exp']);
    const ownerCommit = v === 1 ? ownerKeyCommit(ownerIpub!) : j.bin('ownerCommit', 16);
    if (ownerIpub !== null && !equalBytes(ownerCommit, ownerKeyCommit(ownerIpub)))
      throw new DecodeError(`${what}: owner key and commitment disagree`);
    return {
      inviteId: j.bin('inviteId', 32),
      token: j.bin('token', 32),
      jkey: symmetricKey(j, 'jkey'),
      acceptHash: nullable(j, 'acceptHash', (h) => j.bin(h, 32)),
      ownerCommit,
      // Optional: states written before the expiry was kept have none.
      exp: j.optional('exp', (e) => j.int(e, { min: 0, max: Number.MAX_SAFE_INTEGER })) ?? null,
    };
  });
  // While joining the token and joining key are needed (resent on reconnect); afterwards deleted.
  const joining = phase === 'joining' || phase === 'accepted';
  if (joining !== (join !== null)) throw new DecodeError(`${what}: join must be present exactly while joining`);
  if (phase === 'accepted' && join?.acceptHash === null) throw new DecodeError(`${what}: accepted without the accept hash`);
  const epoch = f.int('epoch', IDX_OR_NONE);
  const live = phase === 'accepted' || phase === 'member';
  let epochs: EpochRecord[];
  if (v === 1) {
    const old = list(f, 'epochs', MAX_STORED_RECORDS, what, (e, w) => epochFromV1(e, w, false));
    if (old.some((e, i) => i > 0 && e.epoch <= old[i - 1]!.epoch)) throw new DecodeError(`${what}: epochs not in ascending order`);
    const current = old.find((e) => e.epoch === epoch);
    if (epoch >= 0 && (current === undefined || current.key === null) && live)
      throw new DecodeError(`${what}: no key for the current epoch`);
    epochs = old.map((e) => migratedEpoch(e, epoch));
  } else {
    epochs = list(f, 'epochs', MAX_STORED_RECORDS, what, (e, w) => epochFrom(e, w, false));
    if (epoch >= 0 && live) checkEpochs(epochs, epoch, what, false);
    else if (epochs.some((e, i) => i > 0 && e.epoch <= epochs[i - 1]!.epoch))
      throw new DecodeError(`${what}: epochs not in ascending order`);
  }
  if (epoch === -1 && phase !== 'joining' && phase !== 'refused') throw new DecodeError(`${what}: no epoch after the accept`);
  if (ownerIpub === null && epoch !== -1) throw new DecodeError(`${what}: an epoch without the owner key`);
  const members = list(f, 'members', MAX_MEMBERS, what, (m, w) => knownFrom(m, w, v));
  distinct(
    members.map((m) => m.info.id),
    `${what}.members ids`,
  );
  // Format 1 numbered the chain by epoch (one announcement each): that is the head's position.
  const chain = v === 1 ? epoch : f.int('chain', IDX_OR_NONE);
  if ((chain === -1) !== (epoch === -1)) throw new DecodeError(`${what}: a chain position exactly from the accept on`);
  const sent =
    v === 1
      ? []
      : list(f, 'sent', MAX_PENDING_SENDS, what, (r) => {
          r.only(['seq', 'hash', 'prev']);
          return { seq: r.int('seq', { min: 1, max: Number.MAX_SAFE_INTEGER }), hash: r.bin('hash', 32), prev: r.bin('prev', 32) };
        });
  if (sent.some((r, i) => i > 0 && r.seq <= sent[i - 1]!.seq)) throw new DecodeError(`${what}: sent not in ascending order`);
  const gaps =
    v === 1
      ? []
      : list(f, 'gaps', MAX_SENDER_GAPS, what, (g, w) => {
          g.only(['from', 'after', 'before']);
          return { from: memberIdValue(g.str('from', 32), `${w}.from`), after: g.bin('after', 32), before: g.bin('before', 32) };
        });
  return {
    role: 'member',
    phase,
    room: f.bin('room', 16),
    roomName: nullable(f, 'roomName', (k) => f.str(k, MAX_NAME)),
    ownerIpub,
    ownerPeer: peerHex(f, 'ownerPeer', what),
    selfId: memberIdValue(f.str('selfId', 32), `${what}.selfId`),
    name: f.str('name', MAX_NAME),
    join,
    seq: f.int('seq', COUNT),
    epoch,
    epochs,
    members,
    former: list(f, 'former', MAX_STORED_RECORDS, what, (m, w) => knownFrom(m, w, v)),
    lastIdx: f.int('lastIdx', IDX_OR_NONE),
    viewFrom: f.int('viewFrom', COUNT),
    syncAt: nullable(f, 'syncAt', (k) => f.int(k, IDX_OR_NONE)),
    chain,
    chainSeen: v === 1 ? null : nullable(f, 'chainSeen', (k) => f.int(k, COUNT)),
    tail: v === 1 ? ZERO_HASH : f.bin('tail', 32),
    sent,
    gaps,
  };
}

// ---- Parts ----

function configFrom(f: Fields, what: string): RoomConfig {
  f.only(['rotateEveryMessages', 'rotateAfterMs', 'graceMs', 'history', 'rotateOnJoin', 'inviteTtlMs', 'maxLogEntries']);
  return {
    rotateEveryMessages: f.int('rotateEveryMessages', { min: 1, max: Number.MAX_SAFE_INTEGER }),
    rotateAfterMs: f.int('rotateAfterMs', COUNT),
    graceMs: f.int('graceMs', COUNT),
    history: oneOf(f.str('history', 16), ['since-rotation', 'none'] as const, `${what}.history`),
    rotateOnJoin: f.bool('rotateOnJoin'),
    inviteTtlMs: f.int('inviteTtlMs', COUNT),
    maxLogEntries: f.int('maxLogEntries', COUNT),
  };
}

/**
 * Ascending epochs, the current one with the chain head (and, on the owner, its key), older ones
 * without. A member's current epoch may lack its key between the pages of a resync (5.10).
 */
function checkEpochs(epochs: readonly EpochRecord[], epoch: number, what: string, ownerKeys: boolean): void {
  if (epochs.some((e, i) => i > 0 && e.epoch <= epochs[i - 1]!.epoch)) throw new DecodeError(`${what}: epochs not in ascending order`);
  const cur = epochs.find((e) => e.epoch === epoch);
  if (cur === undefined || (ownerKeys && cur.key === null)) throw new DecodeError(`${what}: no key for the current epoch`);
  if (cur.ann === null || cur.annHash === null || !equalBytes(cur.annHash, sha256(cur.ann))) {
    throw new DecodeError(`${what}: the current epoch has no chain head, or its hash does not match`);
  }
  if (epochs.some((e) => e.epoch !== epoch && (e.ann !== null || e.annHash !== null)))
    throw new DecodeError(`${what}: only the current epoch holds the chain head`);
  if (epochs.some((e) => e.epoch > epoch)) throw new DecodeError(`${what}: an epoch after the current one`);
  if (ownerKeys && epochs.some((e) => e.key === null)) throw new DecodeError(`${what}: the owner holds every kept epoch's key`);
}

interface EpochRecordV1 {
  readonly epoch: number;
  readonly key: SymmetricKey | null;
  readonly firstIdx: number;
  readonly annHash: Uint8Array;
  readonly ann: Uint8Array;
}

function epochFromV1(f: Fields, what: string, keyRequired: boolean): EpochRecordV1 {
  f.only(['epoch', 'key', 'firstIdx', 'annHash', 'prev', 'reason', 'ann']);
  f.bin('prev', 32);
  oneOf(f.str('reason', 16), ROTATION_REASONS, `${what}.reason`);
  return {
    epoch: f.int('epoch', COUNT),
    key: keyRequired ? symmetricKey(f, 'key') : nullable(f, 'key', (k) => symmetricKey(f, k)),
    firstIdx: f.int('firstIdx', COUNT),
    annHash: f.bin('annHash', 32),
    ann: f.bin('ann', { min: 1, max: MAX_ANN }),
  };
}

/** Format 1 -> 2: keys and first indices stay; only the current epoch keeps its announcement (the head). */
function migratedEpoch(e: EpochRecordV1, current: number): EpochRecord {
  const head = e.epoch === current;
  return { epoch: e.epoch, key: e.key, firstIdx: e.firstIdx, ann: head ? e.ann : null, annHash: head ? e.annHash : null };
}

function epochFrom(f: Fields, what: string, keyRequired: boolean): EpochRecord {
  f.only(['epoch', 'key', 'firstIdx', 'ann', 'annHash']);
  void what;
  return {
    epoch: f.int('epoch', COUNT),
    key: keyRequired ? symmetricKey(f, 'key') : nullable(f, 'key', (k) => symmetricKey(f, k)),
    firstIdx: f.int('firstIdx', COUNT),
    ann: nullable(f, 'ann', (k) => f.bin(k, { min: 1, max: MAX_ANN })),
    annHash: nullable(f, 'annHash', (k) => f.bin(k, 32)),
  };
}

function chainLinkFrom(f: Fields, what: string): ChainLink {
  f.only(['n', 'epoch', 'op', 'hash', 'ann']);
  const ann = f.bin('ann', { min: 1, max: MAX_ANN });
  const hash = f.bin('hash', 32);
  if (!equalBytes(hash, sha256(ann))) throw new DecodeError(`${what}: hash is not the entry's hash`);
  return { n: f.int('n', COUNT), epoch: f.int('epoch', COUNT), op: oneOf(f.str('op', 16), CHAIN_OPS, `${what}.op`), hash, ann };
}

/** MemberInfo as in certificates, plus: the id is the one its identity key names (5.1). */
function infoFrom(f: Fields, what: string): MemberInfo {
  const info = memberFromFields(f, what);
  if (memberIdOf(info.ipub) !== info.id) throw new DecodeError(`${what}: member id does not match its key`);
  return info;
}

function knownFrom(f: Fields, what: string, v: Version): KnownMember {
  f.only(v === 1 ? ['info', 'lastSeq', 'untilEpoch'] : ['info', 'lastSeq', 'lastHash', 'untilEpoch']);
  const untilEpoch = absentOr(f, 'untilEpoch', (k) => f.int(k, COUNT));
  return {
    info: infoFrom(f.map_('info'), `${what}.info`),
    lastSeq: f.int('lastSeq', COUNT),
    lastHash: v === 1 ? null : nullable(f, 'lastHash', (k) => f.bin(k, 32)),
    ...(untilEpoch === undefined ? {} : { untilEpoch }),
  };
}

function ownerMemberFrom(f: Fields, what: string, v: Version): OwnerMember {
  f.only(
    v === 1
      ? ['info', 'lastSeq', 'cert', 'peer', 'viewFrom', 'catchUp']
      : ['info', 'lastSeq', 'lastHash', 'cert', 'peer', 'viewFrom', 'catchUp'],
  );
  const info = infoFrom(f.map_('info'), `${what}.info`);
  const peer = peerHex(f, 'peer', what);
  if (peer !== peerKeyHex(info.npub)) throw new DecodeError(`${what}: peer is not the member's peer key`);
  return {
    info,
    lastSeq: f.int('lastSeq', COUNT),
    lastHash: v === 1 ? null : nullable(f, 'lastHash', (k) => f.bin(k, 32)),
    cert: f.bin('cert', { min: 1, max: MAX_CERT }),
    peer,
    viewFrom: f.int('viewFrom', COUNT),
    catchUp: nullable(f, 'catchUp', (k) => {
      const c = f.map_(k).only(['at', 'next']);
      return { at: c.int('at', TIME), next: c.int('next', COUNT) };
    }),
  };
}

function inviteFrom(f: Fields, what: string): InviteRecord {
  f.only(['id', 'token', 'createdAt', 'expiresAt', 'status', 'claim', 'usedBy', 'authToken']);
  const id = f.str('id', 64);
  if (!HEX_64.test(id)) throw new DecodeError(`${what}: id is not 64 lowercase hex digits`);
  const token = absentOr(f, 'token', (k) => f.bin(k, 32));
  if (token !== undefined && inviteIdOf(token) !== id) throw new DecodeError(`${what}: id is not the token's invite id`);
  const status = oneOf(f.str('status', 16), INVITE_STATUSES, `${what}.status`);
  const claim = absentOr(f, 'claim', (k) => {
    const c = f.map_(k).only(['peer', 'info', 'jkey', 'acceptHash']);
    return {
      peer: peerHex(c, 'peer', `${what}.claim`),
      info: infoFrom(c.map_('info'), `${what}.claim.info`),
      jkey: symmetricKey(c, 'jkey'),
      acceptHash: c.bin('acceptHash', 32),
    };
  });
  const usedBy = absentOr(f, 'usedBy', (k) => peerHex(f, k, what));
  // A claim exists only while claimed (and needs the token); only a used invite names its user.
  if ((claim !== undefined) !== (status === 'claimed') || (status === 'claimed' && token === undefined)) {
    throw new DecodeError(`${what}: claim and status disagree`);
  }
  if (usedBy !== undefined && status !== 'used') throw new DecodeError(`${what}: usedBy on an invite that is not used`);
  // Only a retired record (its token deleted) keeps the derived auth token (5.3).
  const authToken = absentOr(f, 'authToken', (k) => f.bin(k, 32));
  if (authToken !== undefined && token !== undefined) throw new DecodeError(`${what}: authToken beside the token`);
  return {
    id: id as InviteId,
    ...(token === undefined ? {} : { token }),
    createdAt: f.int('createdAt', TIME),
    expiresAt: f.int('expiresAt', TIME),
    status,
    ...(claim === undefined ? {} : { claim }),
    ...(usedBy === undefined ? {} : { usedBy }),
    ...(authToken === undefined ? {} : { authToken }),
  };
}

// ---- Field helpers ----

function list<T>(f: Fields, key: string, max: number, what: string, item: (f: Fields, what: string) => T): T[] {
  return f.arr(key, max).map((v: MsgValue, i) => {
    const w = `${what}.${key}[${i}]`;
    return item(Fields.of(v, w), w);
  });
}

/** A field that MUST be present and is nil or a value (the encoder writes null, never omits). */
function nullable<T>(f: Fields, key: string, get: (key: string) => T): T | null {
  return f.raw(key).t === 'nil' ? null : get(key);
}

/** A field the encoder omits when undefined; present, it must be the value (nil is refused). */
function absentOr<T>(f: Fields, key: string, get: (key: string) => T): T | undefined {
  return f.has(key) ? get(key) : undefined;
}

function oneOf<T extends string>(v: string, allowed: readonly T[], what: string): T {
  const found = allowed.find((a) => a === v);
  if (found === undefined) throw new DecodeError(`${what}: unknown value "${v}"`);
  return found;
}

function distinct(values: readonly string[], what: string): void {
  if (new Set(values).size !== values.length) throw new DecodeError(`${what}: duplicate`);
}

function symmetricKey(f: Fields, key: string): SymmetricKey {
  return asSymmetricKey(f.bin(key, 32), key);
}

function peerHex(f: Fields, key: string, what: string): PeerKeyHex {
  const v = f.str(key, 64);
  if (!HEX_64.test(v)) throw new DecodeError(`${what}: field "${key}" is not 64 lowercase hex digits`);
  return v as PeerKeyHex;
}
