// Persisted machine states (protocol/room/state-codec.ts, docs/PROTOCOL.md 5.15 and 6.3): round
// trips of states real scenario steps produced (and the machines keep working on the decoded
// copies), one test per rule the decoders enforce, and truncated, garbage, oversized and fuzzed
// input that must end in a StateError.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto } from '../../crypto/index.ts';
import { decode, encode, type Encodable, type MsgValue } from '../../protocol/msgpack.ts';
import {
  MAX_MEMBERS,
  MAX_PENDING_SENDS,
  MAX_SENDER_GAPS,
  MAX_STATE_BYTES,
  StateError,
  StateVersionError,
  decodeMemberState,
  decodeOwnerState,
  decodeRoomState,
  encodeMemberState,
  encodeMessage,
  encodeOwnerState,
  type MemberState,
  type OwnerState,
} from '../../protocol/room/index.ts';
import { Net, device, everyoneReadsEveryone, type MemberNode } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

interface World {
  net: Net;
  /** member, left, removed, accepted (mid-join), joining, refused */
  nodes: Record<'a' | 'b' | 'c' | 'y' | 'z' | 'r', MemberNode>;
}

/** A room that went through join, messages, count rotation, kick, leave and every invite status. */
function world(): World {
  const net = new Net(device('owner-state'), { rotateEveryMessages: 5 });
  const [a, b, c] = ['a', 'b', 'c'].map((n) => net.join(n, net.invite())) as [MemberNode, MemberNode, MemberNode];
  net.run();
  everyoneReadsEveryone(net, 'one');
  everyoneReadsEveryone(net, 'two'); // 8 messages: one count rotation
  net.owner({ kind: 'kick', member: c.state!.selfId, now: net.now });
  net.run();
  net.member(b, { kind: 'leave', now: net.now });
  net.run();
  // y: accepted (its confirm is not delivered): the owner holds a claimed invite.
  const y = net.join('y', net.invite());
  net.hello(y);
  net.deliverUp(y);
  for (const bytes of net.take(y, 'down')) net.member(y, { kind: 'received', bytes, now: net.now });
  net.take(y, 'up');
  // z: joining (nothing delivered), r: refused (its invite was revoked).
  const z = net.join('z', net.invite());
  net.take(z, 'up');
  const rUrl = net.invite();
  const rInvite = net.ownerState.invites[net.ownerState.invites.length - 1]!.id;
  net.owner({ kind: 'revoke', invite: rInvite, now: net.now });
  const r = net.join('r', rUrl);
  net.run();
  net.invite(); // one still pending
  net.run();
  const phases = [a, b, c, y, z, r].map((n) => n.state!.phase);
  expect(phases).toEqual(['member', 'left', 'removed', 'accepted', 'joining', 'refused']);
  expect(new Set(net.ownerState.invites.map((i) => i.status))).toEqual(new Set(['used', 'claimed', 'pending', 'revoked']));
  return { net, nodes: { a, b, c, y, z, r } };
}

let w: World;
beforeAll(() => {
  w = world();
});

// ---- Helpers: states as plain msgpack-shaped objects, to break one rule at a time ----

type Plain = null | boolean | number | string | Uint8Array | Plain[] | { [k: string]: Plain };

function plain(v: MsgValue): Plain {
  switch (v.t) {
    case 'nil':
      return null;
    case 'arr':
      return v.v.map(plain);
    case 'map':
      return Object.fromEntries([...v.v].map(([k, x]) => [k, plain(x)]));
    default:
      return v.v;
  }
}

function edit(bytes: Uint8Array, change: (o: { [k: string]: Plain }) => void): Uint8Array {
  const o = plain(decode(bytes)) as { [k: string]: Plain };
  change(o);
  return encode(o as Encodable);
}

const obj = (v: Plain | undefined): { [k: string]: Plain } => v as { [k: string]: Plain };
const arr = (v: Plain | undefined): Plain[] => v as Plain[];

function refused(decoder: (b: Uint8Array) => unknown, bytes: Uint8Array, message?: RegExp): StateError {
  let caught: unknown;
  try {
    decoder(bytes);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(StateError);
  const err = caught as StateError;
  expect(err.code).toBe('room.bad-state');
  if (message) expect(err.message).toMatch(message);
  return err;
}

const ownerBytes = () => encodeOwnerState(w.net.ownerState);
const memberBytes = (n: keyof World['nodes'] = 'a') => encodeMemberState(w.nodes[n].state!);

describe('round trips of real states', () => {
  it('owner: decode(encode(s)) equals s, and encoding is canonical', () => {
    const bytes = ownerBytes();
    const back = decodeOwnerState(bytes);
    expect(back).toEqual(w.net.ownerState);
    expect(encodeOwnerState(back)).toEqual(bytes);
    expect(decodeRoomState(bytes)).toEqual(back);
  });

  it('member in every phase: member, left, removed, accepted, joining, refused', () => {
    for (const n of Object.values(w.nodes)) {
      const bytes = encodeMemberState(n.state!);
      const back = decodeMemberState(bytes);
      expect(back, n.name).toEqual(n.state);
      expect(encodeMemberState(back)).toEqual(bytes);
      expect(decodeRoomState(bytes)).toEqual(back);
    }
    // The removed member keeps former members (with untilEpoch) and old epochs.
    expect(w.nodes.a.state!.former.length).toBeGreaterThan(0);
  });

  it('the machines keep working on decoded states (a restart in the middle of a room)', () => {
    const net = new Net(device('owner-restart'), { rotateEveryMessages: 3 });
    const nodes = ['p', 'q'].map((n) => net.join(n, net.invite()));
    net.run();
    everyoneReadsEveryone(net, 'before');
    net.ownerState = decodeOwnerState(encodeOwnerState(net.ownerState));
    for (const n of nodes) n.state = decodeMemberState(encodeMemberState(n.state!));
    everyoneReadsEveryone(net, 'after');
    net.owner({ kind: 'kick', member: nodes[0]!.state!.selfId, now: net.now });
    net.run();
    net.ownerState = decodeOwnerState(encodeOwnerState(net.ownerState));
    everyoneReadsEveryone(net, 'kicked', [nodes[0]!]);
    expect(net.ownerErrors).toEqual([]);
  });

  it('round-trips a catch-up window and a room without a name', () => {
    const s: OwnerState = {
      ...w.net.ownerState,
      name: null,
      members: w.net.ownerState.members.map((m) => ({ ...m, catchUp: { at: -5, next: 3 } })),
    };
    expect(decodeOwnerState(encodeOwnerState(s))).toEqual(s);
  });
});

describe('versions and framing', () => {
  it('refuses an unknown version with StateVersionError naming it, before any other check', () => {
    const bytes = edit(ownerBytes(), (o) => {
      o.v = 3;
      o.newField = 'from the future';
    });
    const err = refused(decodeOwnerState, bytes, /version 3/);
    expect(err).toBeInstanceOf(StateVersionError);
    expect((err as StateVersionError).version).toBe(3);
    refused(
      decodeMemberState,
      edit(memberBytes(), (o) => (o.v = 0)),
      /version 0/,
    );
  });
  it('refuses a missing or non-int version', () => {
    refused(
      decodeOwnerState,
      edit(ownerBytes(), (o) => delete o.v),
      /missing field "v"/,
    );
    refused(
      decodeOwnerState,
      edit(ownerBytes(), (o) => (o.v = '1')),
      /"v" must be int/,
    );
    refused(
      decodeOwnerState,
      edit(ownerBytes(), (o) => (o.v = 1.5)),
      /"v" must be int/,
    );
  });
  it('refuses the other role, and an unknown role in decodeRoomState', () => {
    refused(decodeOwnerState, memberBytes(), /unexpected field|role/);
    refused(decodeMemberState, ownerBytes(), /unexpected field|role/);
    refused(
      decodeRoomState,
      edit(memberBytes(), (o) => (o.role = 'admin')),
      /unknown role/,
    );
  });
  it('refuses unexpected fields', () => {
    refused(
      decodeOwnerState,
      edit(ownerBytes(), (o) => (o.extra = 1)),
      /unexpected field "extra"/,
    );
    refused(
      decodeMemberState,
      edit(memberBytes(), (o) => (o.extra = 1)),
      /unexpected field "extra"/,
    );
  });
  it('refuses trailing bytes, every truncation, garbage and non-maps', () => {
    const bytes = ownerBytes();
    refused(decodeOwnerState, new Uint8Array([...bytes, 0]), /trailing/);
    const cuts = new Set([0, 1, 2, 3, 10, bytes.length - 1]);
    for (let i = 0; i < 200; i++) cuts.add(Math.floor((bytes.length * i) / 200));
    for (const n of cuts) refused(decodeOwnerState, bytes.subarray(0, n));
    refused(decodeMemberState, new Uint8Array([0xc1]));
    refused(decodeMemberState, encode([1, 2, 3]), /expected a map/);
    refused(decodeMemberState, new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]), /truncated/);
  });
  it('refuses oversized input before parsing it, and the encoder refuses to write it', () => {
    refused(decodeOwnerState, new Uint8Array(MAX_STATE_BYTES + 1), /more than/);
    const env = new Uint8Array(128 * 1024).fill(1);
    const huge: OwnerState = {
      ...w.net.ownerState,
      log: Array.from({ length: 520 }, (_, i) => ({ idx: i, from: w.net.ownerState.selfId, epoch: 0, env })),
    };
    expect(() => encodeOwnerState(huge)).toThrow(StateError);
  });
  it('the encoder refuses a fractional time (it would not read back)', () => {
    expect(() => encodeOwnerState({ ...w.net.ownerState, epochStartedAt: 1.5 })).toThrow(StateError);
  });
});

describe('owner state rules', () => {
  const bad = (change: (o: { [k: string]: Plain }) => void, message?: RegExp) =>
    refused(decodeOwnerState, edit(ownerBytes(), change), message);
  const member = (o: { [k: string]: Plain }, i: number) => obj(arr(o.members)[i]!);
  const invite = (o: { [k: string]: Plain }, status: string) => obj(arr(o.invites).find((r) => obj(r).status === status)!);

  it('config: known history policy, rotateEveryMessages >= 1, closed field list', () => {
    bad((o) => (obj(o.config).history = 'all'), /history: unknown value/);
    bad((o) => (obj(o.config).rotateEveryMessages = 0), /rotateEveryMessages" out of range/);
    bad((o) => (obj(o.config).graceMs = -1), /graceMs" out of range/);
    bad((o) => (obj(o.config).rotateOnJoin = 1), /rotateOnJoin" must be bool/);
    bad((o) => (obj(o.config).extra = 1), /unexpected field/);
  });
  it('room is 16 bytes; name is nil or at most 64 characters and present', () => {
    bad((o) => (o.room = new Uint8Array(15)), /room" must be 16 bytes/);
    bad((o) => (o.name = 'x'.repeat(65)), /name" longer than 64/);
    bad((o) => delete o.name, /missing field "name"/);
  });
  it('integers are ints in range (a float or negative sequence number is refused)', () => {
    bad((o) => (o.seq = 1.5), /seq" must be int/);
    bad((o) => (o.seq = -1), /seq" out of range/);
    bad((o) => (o.nextIdx = 'x'), /nextIdx" must be int/);
  });
  it('selfId is a member id, and the one owner among the members', () => {
    bad((o) => (o.selfId = 'A'.repeat(32)), /not a member id/);
    bad((o) => (o.selfId = obj(member(o, 1).info).id!), /exactly one owner/);
    bad((o) => (obj(member(o, 1).info).owner = true), /exactly one owner/);
  });
  it('epochs: ascending, the current one with its key and the chain head, every kept one with its key', () => {
    const cur = (o: { [k: string]: Plain }) => obj(arr(o.epochs).at(-1)!);
    expect(arr(obj(plain(decode(ownerBytes()))).epochs).length).toBeGreaterThan(1);
    bad((o) => arr(o.epochs).pop(), /no key for the current epoch/);
    bad((o) => arr(o.epochs).splice(0), /no key for the current epoch/);
    bad((o) => arr(o.epochs).reverse(), /ascending/);
    bad((o) => (o.epoch = (o.epoch as number) + 1), /no key for the current epoch/);
    bad((o) => (obj(arr(o.epochs)[0]!).epoch = (o.epoch as number) + 5), /ascending|after the current/);
    bad((o) => (obj(arr(o.epochs)[0]!).key = null), /key" must be bin/);
    bad((o) => (obj(arr(o.epochs)[0]!).key = new Uint8Array(31)), /key" must be 32 bytes/);
    bad((o) => (cur(o).annHash = new Uint8Array(33)), /annHash" must be 32 bytes/);
    bad((o) => (cur(o).annHash = new Uint8Array(32)), /hash does not match/);
    bad((o) => (cur(o).ann = null), /no chain head/);
    bad((o) => (cur(o).ann = new Uint8Array(0)), /ann" must be 1\.\./);
    bad((o) => (obj(arr(o.epochs)[0]!).ann = cur(o).ann!), /only the current epoch holds the chain head/);
    bad((o) => (obj(arr(o.epochs)[0]!).reason = 'count'), /unexpected field "reason"/);
  });
  it('chain: contiguous links ending at the head of the current epoch, hashes of their entries, known ops', () => {
    const link = (o: { [k: string]: Plain }, i: number) => obj(arr(o.chain).at(i)!);
    expect(arr(obj(plain(decode(ownerBytes()))).chain).length).toBeGreaterThan(2);
    bad((o) => (o.chain = []), /chain is not contiguous/);
    bad((o) => arr(o.chain).splice(1, 1), /chain is not contiguous/);
    bad((o) => arr(o.chain).pop(), /chain head is not the current epoch's/);
    bad((o) => (link(o, -1).n = (link(o, -1).n as number) + 1), /chain is not contiguous/);
    bad((o) => (link(o, 0).hash = new Uint8Array(32)), /hash is not the entry's hash/);
    bad((o) => (link(o, -1).epoch = (link(o, -1).epoch as number) + 1), /chain head is not the current epoch's/);
    bad((o) => (link(o, 1).epoch = 99), /out of order/);
    bad((o) => (link(o, 1).op = 'legacy'), /out of order/);
    bad((o) => (link(o, 1).op = 'create'), /out of order/);
    bad((o) => (link(o, 1).op = 'merge'), /op: unknown value/);
    bad((o) => delete o.chain, /missing field "chain"/);
  });
  it('members: the last hash of each sender chain is nil or 32 bytes', () => {
    bad((o) => (member(o, 1).lastHash = new Uint8Array(31)), /lastHash" must be 32 bytes/);
    bad((o) => delete member(o, 1).lastHash, /missing field "lastHash"/);
  });
  it('members: at most 256, distinct, ids that match their keys, real keys, peer = npub', () => {
    bad((o) => (o.members = Array.from({ length: MAX_MEMBERS + 1 }, () => member(o, 0))), /more than 256 items/);
    bad((o) => arr(o.members).push(member(o, 1)), /duplicate/);
    bad((o) => (obj(member(o, 1).info).id = obj(member(o, 0).info).id!), /does not match its key|duplicate|exactly one owner/);
    bad((o) => {
      const ipub = obj(member(o, 1).info).ipub as Uint8Array;
      ipub[ipub.length - 1]! ^= 1; // breaks the Themis container CRC
    }, /ipub" is not a Themis EC public key/);
    bad((o) => (obj(member(o, 1).info).npub = new Uint8Array(31)), /npub" must be 32 bytes/);
    bad((o) => (member(o, 1).peer = member(o, 0).peer as string), /peer is not the member's peer key/);
    bad((o) => (member(o, 1).peer = (member(o, 1).peer as string).toUpperCase()), /64 lowercase hex/);
    bad((o) => (member(o, 1).cert = new Uint8Array(2049)), /cert" must be 1\.\.2048/);
    bad((o) => (member(o, 1).catchUp = { at: 1, next: 2, extra: 3 }), /unexpected field "extra"/);
    bad((o) => (member(o, 1).catchUp = { at: 1.5, next: 2 }), /at" must be int/);
    bad((o) => (member(o, 1).untilEpoch = 3), /unexpected field "untilEpoch"/);
  });
  it("invites: id is the token's invite id, known status, claim only while claimed, usedBy only when used", () => {
    bad((o) => (invite(o, 'pending').id = invite(o, 'used').id as string), /not the token's invite id|duplicate/);
    bad((o) => (invite(o, 'pending').id = 'x'), /64 lowercase hex/);
    bad((o) => (invite(o, 'pending').status = 'expired'), /status: unknown value/);
    bad((o) => (invite(o, 'pending').token = null), /token" must be bin/);
    bad((o) => (invite(o, 'claimed').status = 'pending'), /claim and status disagree/);
    bad((o) => delete invite(o, 'claimed').token, /claim and status disagree/);
    bad((o) => (invite(o, 'revoked').usedBy = invite(o, 'used').usedBy!), /usedBy on an invite/);
    bad((o) => (obj(invite(o, 'claimed').claim).jkey = new Uint8Array(16)), /jkey" must be 32 bytes/);
    bad((o) => arr(o.invites).push(invite(o, 'used')), /duplicate/);
  });
  it('log: contiguous up to nextIdx, no longer than maxLogEntries, real envelopes', () => {
    bad((o) => arr(o.log).splice(1, 1), /log is not contiguous/);
    bad((o) => (o.nextIdx = (o.nextIdx as number) + 1), /log is not contiguous/);
    bad((o) => (obj(arr(o.log)[0]!).epoch = 99), /log is not contiguous/);
    bad((o) => (obj(o.config).maxLogEntries = 2), /more than 2 items/);
    bad((o) => (obj(arr(o.log)[0]!).env = new Uint8Array(0)), /env" must be 1\.\./);
    bad((o) => (obj(arr(o.log)[0]!).from = 'owner'), /not a member id/);
  });
});

describe('member state rules', () => {
  const bad = (change: (o: { [k: string]: Plain }) => void, message?: RegExp, n: keyof World['nodes'] = 'a') =>
    refused(decodeMemberState, edit(memberBytes(n), change), message);

  it('phase is one of the six', () => {
    bad((o) => (o.phase = 'lurking'), /phase: unknown value/);
  });
  it('join is present exactly while joining or accepted, with its keys and (accepted) the accept hash', () => {
    bad((o) => (o.join = obj(plain(decode(memberBytes('y')))).join!), /join must be present exactly while joining/);
    bad((o) => (o.join = null), /join must be present/, 'z');
    bad((o) => (obj(o.join).acceptHash = null), /accepted without the accept hash/, 'y');
    bad((o) => (obj(o.join).jkey = new Uint8Array(31)), /jkey" must be 32 bytes/, 'y');
    bad((o) => (obj(o.join).token = new Uint8Array(33)), /token" must be 32 bytes/, 'z');
  });
  it('epochs ascending, the current one with its key; epoch -1 only before the accept', () => {
    bad((o) => arr(o.epochs).reverse(), /ascending/);
    // Between the pages of a resync the current epoch may lack its key (docs/PROTOCOL.md 5.10) ...
    const keyless = edit(memberBytes(), (o) => (obj(arr(o.epochs).find((e) => obj(e).epoch === o.epoch)!).key = null));
    expect(decodeMemberState(keyless).epochs.find((e) => e.epoch === w.nodes.a.state!.epoch)!.key).toBeNull();
    // ... but never its chain head.
    bad((o) => (obj(arr(o.epochs).find((e) => obj(e).epoch === o.epoch)!).ann = null), /no chain head/);
    bad((o) => (o.epoch = 99), /no key for the current epoch/);
    bad((o) => (o.epoch = -1), /no epoch after the accept/);
    bad((o) => (o.epoch = -2), /epoch" out of range/);
  });
  it('keys and ids: owner key is a Themis key, owner peer is lowercase hex, ids match keys', () => {
    bad((o) => (o.ownerIpub = new Uint8Array(45)), /ownerIpub" is not a Themis EC public key/);
    bad((o) => (o.ownerPeer = 'ab'), /64 lowercase hex/);
    bad((o) => (o.selfId = '0'.repeat(31)), /not a member id/);
    bad((o) => (obj(obj(arr(o.members)[0]!).info).id = '0'.repeat(32)), /does not match its key/);
  });
  it('members at most 256 and distinct; untilEpoch is an int when present, never nil', () => {
    bad((o) => (o.members = Array.from({ length: MAX_MEMBERS + 1 }, () => arr(o.members)[0]!)), /more than 256 items/);
    bad((o) => arr(o.members).push(arr(o.members)[0]!), /duplicate/);
    bad((o) => (obj(arr(o.former)[0]!).untilEpoch = null), /untilEpoch" must be int/);
  });
  it('chain fields: a head position from the accept on, a 32-byte tail, ascending pending sends, bounded gaps', () => {
    const h = new Uint8Array(32).fill(1);
    bad((o) => (o.chain = -1), /chain position exactly from the accept on/);
    bad((o) => (o.chain = 2), /chain position exactly from the accept on/, 'z');
    bad((o) => (o.chain = 1.5), /chain" must be int/);
    bad((o) => (o.chainSeen = -1), /chainSeen" out of range/);
    bad((o) => delete o.chainSeen, /missing field "chainSeen"/);
    bad((o) => (o.tail = new Uint8Array(31)), /tail" must be 32 bytes/);
    bad(
      (o) =>
        (o.sent = [
          { seq: 2, hash: h, prev: h },
          { seq: 2, hash: h, prev: h },
        ]),
      /sent not in ascending order/,
    );
    bad((o) => (o.sent = [{ seq: 0, hash: h, prev: h }]), /seq" out of range/);
    bad(
      (o) => (o.sent = Array.from({ length: MAX_PENDING_SENDS + 1 }, (_, i) => ({ seq: i + 1, hash: h, prev: h }))),
      /more than 1000 items/,
    );
    bad(
      (o) => (o.gaps = Array.from({ length: MAX_SENDER_GAPS + 1 }, () => ({ from: o.selfId!, after: h, before: h }))),
      /more than 64 items/,
    );
    bad((o) => (o.gaps = [{ from: 'someone', after: h, before: h }]), /not a member id/);
    bad((o) => (o.gaps = [{ from: o.selfId!, after: h, before: h, idx: 3 }]), /unexpected field "idx"/);
  });
  it('owner key: nil only before the accept, and then the join carries the invite commitment', () => {
    expect(w.nodes.z.state!.ownerIpub).toBeNull(); // a v2 joiner that has not had the owner key yet
    bad((o) => (o.ownerIpub = null), /no owner key after joining/);
    bad((o) => (o.ownerIpub = null), /no owner key after joining/, 'y');
    bad((o) => (obj(o.join).ownerCommit = new Uint8Array(15)), /ownerCommit" must be 16 bytes/, 'z');
    bad((o) => (obj(o.join).ownerCommit = new Uint8Array(16)), /owner key and commitment disagree/, 'y');
  });
  it('indices: lastIdx and syncAt >= -1, syncAt present (nil when none)', () => {
    bad((o) => (o.lastIdx = -2), /lastIdx" out of range/);
    bad((o) => (o.syncAt = -2), /syncAt" out of range/);
    bad((o) => delete o.syncAt, /missing field "syncAt"/);
    bad((o) => (o.roomName = 7), /roomName" must be str/);
    bad((o) => (o.name = 'n'.repeat(65)), /name" longer than 64/);
  });
});

describe('fuzzing: only StateError', () => {
  const decoders = [decodeOwnerState, decodeMemberState, decodeRoomState];
  const onlyStateErrors = (bytes: Uint8Array) => {
    for (const d of decoders) {
      try {
        d(bytes);
      } catch (e) {
        if (!(e instanceof StateError)) throw e;
      }
    }
  };
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), onlyStateErrors), { numRuns: 500 });
  });
  it('random byte changes to real states (decodes to a valid state, or a StateError)', () => {
    const samples = [ownerBytes(), memberBytes('a'), memberBytes('y')];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: samples.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        (which, flips) => {
          const bytes = samples[which]!.slice();
          for (const [at, x] of flips) bytes[at % bytes.length]! ^= x;
          onlyStateErrors(bytes);
        },
      ),
      { numRuns: 300 },
    );
  });
  it('wire messages are not states', () => {
    onlyStateErrors(encodeMessage({ type: 'sync', last_idx: 1, epoch: 0, chain: 0 }));
    refused(decodeRoomState, encodeMessage({ type: 'leave' }));
  });
});

describe("decoded states are the caller's own", () => {
  it('share no bytes with the input buffer', () => {
    const bytes = memberBytes('a');
    const s: MemberState = decodeMemberState(bytes);
    const room = s.room.slice();
    bytes.fill(0);
    expect(s.room).toEqual(room);
  });
});

describe('the room record (web vault and CLI state directory) reads the state through the codec', () => {
  it('round-trips both roles, and refuses a state stored by the old loose format', async () => {
    const { decodeRoomRecord, encodeRoomRecord } = await import('../../protocol/room/records.ts');
    const base = { server: 'ws://127.0.0.1:1/', serverKey: '', appUrl: '', createdAt: 5 };
    const owner = { ...base, role: 'owner' as const, state: w.net.ownerState };
    expect(decodeRoomRecord(encodeRoomRecord(owner))).toEqual(owner);
    const member = { ...base, role: 'member' as const, state: w.nodes.y.state! };
    expect(decodeRoomRecord(encodeRoomRecord(member))).toEqual(member);
    const { appUrl: _, ...webV1 } = { ...base, id: 'r1' };
    const loose = encode({ ...webV1, v: 1, role: 'member', state: encode(w.nodes.y.state! as unknown as Encodable) });
    expect(() => decodeRoomRecord(loose)).toThrow(expect.objectContaining({ code: 'room.bad-state' }));
  });
});
