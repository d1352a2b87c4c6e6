/**
 * The stored record codecs (protocol/room/records.ts): round trips, records in the layouts the web
 * app and the CLI wrote before they shared one codec (built here field by field as the old encoders
 * did), and refusals of unknown, missing, mistyped and oversized fields with RecordError.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generateBoxKeyPair, generateIdentity, initCrypto, systemRandom, toHex } from '../../crypto/index.ts';
import { encode, type Encodable } from '../../protocol/msgpack.ts';
import { createRoom, encodeMemberState, encodeOwnerState, ownerStep, startJoin, decodeInviteUrl } from '../../protocol/room/index.ts';
import type { MemberState, OwnerState } from '../../protocol/room/types.ts';
import {
  MAX_OUTBOX,
  MAX_STORED_TEXT,
  RecordError,
  committedHistory,
  committedOutbox,
  decodeHistoryRecord,
  decodeOutboxList,
  decodeOutboxRecord,
  decodeRoomIdentity,
  decodeRoomRecord,
  decodeStoredRoom,
  decodeGenerationMark,
  encodeGenerationMark,
  checkGeneration,
  RollbackError,
  encodeHistoryRecord,
  encodeOutboxList,
  encodeOutboxRecord,
  encodeRoomIdentity,
  encodeRoomRecord,
  restoreOwnerLog,
  type HistoryRecord,
  type RoomIdentity,
} from '../../protocol/room/records.ts';

let keys: RoomIdentity;
let owner: OwnerState;
let member: MemberState;

beforeAll(async () => {
  await initCrypto();
  keys = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  const ctx = {
    random: systemRandom,
    identity: keys.identity,
    peerKey: keys.peer.publicKey,
    invites: { appUrl: 'http://a/', server: 'ws://a' },
  };
  owner = createRoom(ctx, { now: 1000, ownerName: 'o' }).state;
  owner = ownerStep(ctx, owner, { kind: 'send', text: 'one', now: 2000 }).state;
  owner = ownerStep(ctx, owner, { kind: 'send', text: 'two', now: 3000 }).state;
  const invited = ownerStep(ctx, owner, { kind: 'invite', now: 4000 });
  owner = invited.state;
  const url = invited.effects.flatMap((e) => (e.kind === 'event' && e.event.type === 'invite' ? [e.event.url] : []))[0]!;
  const m = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  member = startJoin({ random: systemRandom, identity: m.identity, peerKey: m.peer.publicKey }, decodeInviteUrl(url), {
    now: 5000,
    name: 'm',
  }).state;
});

function refused(f: () => unknown): RecordError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RecordError);
    expect((e as RecordError).code).toBe('storage.record');
    return e as RecordError;
  }
  return expect.fail('decoded') as never;
}

const enc = (o: Record<string, unknown>): Uint8Array => encode(o as Encodable);

describe('RoomIdentity', () => {
  it('round-trips; the old web and CLI bytes (same layout) decode', () => {
    expect(decodeRoomIdentity(encodeRoomIdentity(keys))).toEqual(keys);
    const old = enc({
      v: 1,
      ipub: keys.identity.publicKey,
      ipriv: keys.identity.privateKey,
      npub: keys.peer.publicKey,
      nsec: keys.peer.secretKey,
    });
    expect(decodeRoomIdentity(old)).toEqual(keys);
  });

  it('refuses unknown, missing and wrong-length fields and other versions', () => {
    const good = {
      v: 1,
      ipub: keys.identity.publicKey,
      ipriv: keys.identity.privateKey,
      npub: keys.peer.publicKey,
      nsec: keys.peer.secretKey,
    };
    expect(refused(() => decodeRoomIdentity(enc({ ...good, extra: 1 }))).message).toMatch(/extra/);
    const { nsec: _, ...missing } = good;
    expect(refused(() => decodeRoomIdentity(enc(missing))).message).toMatch(/nsec/);
    expect(refused(() => decodeRoomIdentity(enc({ ...good, npub: new Uint8Array(31) }))).message).toMatch(/npub/);
    expect(refused(() => decodeRoomIdentity(enc({ ...good, ipub: new Uint8Array(45) }))).message).toMatch(/key/i);
    expect(refused(() => decodeRoomIdentity(enc({ ...good, v: 2 }))).message).toMatch(/version 2/);
    refused(() => decodeRoomIdentity(new Uint8Array([...encodeRoomIdentity(keys), 0])));
  });
});

describe('RoomRecord', () => {
  const record = () => ({
    role: 'owner' as const,
    server: 'ws://a',
    serverKey: 'ab'.repeat(32),
    appUrl: 'http://a/',
    createdAt: 7,
    state: owner,
  });

  it('round-trips owner and member records', () => {
    expect(decodeRoomRecord(encodeRoomRecord(record()))).toEqual(record());
    const m = { ...record(), role: 'member' as const, appUrl: '', state: member };
    expect(decodeRoomRecord(encodeRoomRecord(m))).toEqual(m);
  });

  it('decodes version 1 as the web app wrote it (id, createdAt, no appUrl)', () => {
    const old = enc({
      v: 1,
      id: toHex(owner.room),
      role: 'owner',
      server: 'ws://a',
      serverKey: '',
      createdAt: 9,
      state: encodeOwnerState(owner),
    });
    expect(decodeRoomRecord(old)).toEqual({ role: 'owner', server: 'ws://a', serverKey: '', appUrl: '', createdAt: 9, state: owner });
    const wrongId = enc({
      v: 1,
      id: '00'.repeat(32),
      role: 'owner',
      server: 'ws://a',
      serverKey: '',
      createdAt: 9,
      state: encodeOwnerState(owner),
    });
    expect(refused(() => decodeRoomRecord(wrongId)).message).toMatch(/id/);
  });

  it('version 3 carries the save generation; version 2 reads as generation 0; gen is checked (6.6)', () => {
    expect(decodeStoredRoom(encodeRoomRecord(record(), 42))).toEqual({ record: record(), gen: 42 });
    const state = encodeOwnerState(owner);
    const v2 = { v: 2, role: 'owner', server: 'ws://a', serverKey: '', appUrl: '', createdAt: 1, state };
    expect(decodeStoredRoom(enc(v2)).gen).toBe(0);
    expect(refused(() => decodeStoredRoom(enc({ ...v2, gen: 3 }))).message).toMatch(/gen/);
    for (const gen of [-1, 1.5, 'x']) expect(refused(() => decodeStoredRoom(enc({ ...v2, v: 3, gen }))).message).toMatch(/gen/);
    expect(refused(() => decodeStoredRoom(enc({ ...v2, v: 3 }))).message).toMatch(/gen/);
  });

  it('checkGeneration: older than the mark, or no mark past generation 1, is storage.rollback', () => {
    expect(() => checkGeneration(5, 5, 'r')).not.toThrow();
    expect(() => checkGeneration(6, 5, 'r')).not.toThrow();
    expect(() => checkGeneration(0, null, 'r')).not.toThrow();
    expect(() => checkGeneration(1, null, 'r')).not.toThrow();
    expect(() => checkGeneration(4, 5, 'r')).toThrow(RollbackError);
    expect(() => checkGeneration(2, null, 'r')).toThrow(expect.objectContaining({ code: 'storage.rollback' }));
    expect(decodeGenerationMark(encodeGenerationMark(9))).toBe(9);
    for (const bad of [{ v: 1, gen: 0 }, { v: 2, gen: 1 }, { v: 1 }, { v: 1, gen: 1, x: 0 }])
      expect(() => decodeGenerationMark(enc(bad))).toThrow(RecordError);
  });

  it('decodes version 1 as the CLI wrote it (appUrl, no id, no createdAt)', () => {
    const old = enc({ v: 1, role: 'member', server: 'ws://a', serverKey: '', appUrl: '', state: encodeMemberState(member) });
    expect(decodeRoomRecord(old)).toEqual({ role: 'member', server: 'ws://a', serverKey: '', appUrl: '', createdAt: 0, state: member });
  });

  it('refuses mixed layouts, unknown and missing fields, a role that does not match, bad keys, other versions', () => {
    const state = encodeOwnerState(owner);
    const v2 = { v: 2, role: 'owner', server: 'ws://a', serverKey: '', appUrl: '', createdAt: 1, state };
    expect(refused(() => decodeRoomRecord(enc({ ...v2, id: toHex(owner.room) }))).message).toMatch(/id/);
    expect(refused(() => decodeRoomRecord(enc({ ...v2, v: 1 }))).message).toMatch(/createdAt/);
    const { appUrl: _, ...noAppUrl } = v2;
    expect(refused(() => decodeRoomRecord(enc(noAppUrl))).message).toMatch(/appUrl/);
    expect(refused(() => decodeRoomRecord(enc({ ...v2, role: 'member' }))).message).toMatch(/role/);
    expect(refused(() => decodeRoomRecord(enc({ ...v2, role: 'admin' }))).message).toMatch(/role/);
    expect(refused(() => decodeRoomRecord(enc({ ...v2, serverKey: 'AB'.repeat(32) }))).message).toMatch(/serverKey/);
    expect(refused(() => decodeRoomRecord(enc({ ...v2, server: 'x'.repeat(2049) }))).message).toMatch(/server/);
    expect(refused(() => decodeRoomRecord(enc({ ...v2, createdAt: -1 }))).message).toMatch(/createdAt/);
    expect(refused(() => decodeRoomRecord(enc({ ...v2, v: 4 }))).message).toMatch(/version 4/);
    // The machine state keeps its own typed error (section 5.15).
    expect(() => decodeRoomRecord(enc({ ...v2, state: new Uint8Array([0x80]) }))).toThrow(
      expect.objectContaining({ code: 'room.bad-state' }),
    );
  });
});

describe('OutboxRecord and the outbox list', () => {
  const a = { seq: 3, text: 'waiting', at: 5, wire: new Uint8Array([1, 2, 3]) };
  const b = { seq: 4, text: 'and another', at: 6, wire: new Uint8Array([4]) };

  it('round-trips; the web app record and the CLI v1 list decode', () => {
    expect(decodeOutboxRecord(encodeOutboxRecord(a))).toEqual(a);
    expect(decodeOutboxList(encodeOutboxList([a, b]))).toEqual([a, b]);
    expect(decodeOutboxRecord(enc({ v: 1, seq: 3, text: 'waiting', at: 5, wire: a.wire }))).toEqual(a);
    const cliV1 = enc({ v: 1, entries: [{ seq: 3, text: 'waiting', wire: a.wire }] });
    expect(decodeOutboxList(cliV1)).toEqual([{ ...a, at: 0 }]);
  });

  it('refuses malformed records and lists', () => {
    const good = { v: 1, seq: 3, text: 'x', at: 5, wire: new Uint8Array([1]) };
    for (const [bad, field] of [
      [{ ...good, seq: '3' }, /seq/],
      [{ ...good, seq: 1.5 }, /seq/],
      [{ ...good, seq: 0 }, /seq/],
      [{ ...good, wire: new Uint8Array(0) }, /wire/],
      [{ ...good, text: 'x'.repeat(MAX_STORED_TEXT + 1) }, /text/],
      [{ ...good, extra: 1 }, /extra/],
      [{ ...good, v: 2 }, /version/],
    ] as const) {
      expect(refused(() => decodeOutboxRecord(enc(bad))).message).toMatch(field);
    }
    const { text: _, ...noText } = good;
    expect(refused(() => decodeOutboxRecord(enc(noText))).message).toMatch(/text/);
    refused(() => decodeOutboxRecord(new Uint8Array([...enc(good), 0])));

    expect(refused(() => decodeOutboxList(encodeOutboxList([b, a]))).message).toMatch(/order/);
    expect(refused(() => decodeOutboxList(encodeOutboxList([a, a]))).message).toMatch(/order/);
    expect(refused(() => decodeOutboxList(enc({ v: 2, entries: [{ seq: 1, text: 'x', wire: a.wire }] }))).message).toMatch(/at/);
    expect(refused(() => decodeOutboxList(enc({ v: 1, entries: [{ ...a }] }))).message).toMatch(/at/);
    expect(refused(() => decodeOutboxList(enc({ v: 2, entries: [], more: 1 }))).message).toMatch(/more/);
    const many = Array.from({ length: MAX_OUTBOX + 1 }, (_x, i) => ({ ...a, seq: i + 1 }));
    expect(refused(() => decodeOutboxList(encodeOutboxList(many))).message).toMatch(/entries/);
  });
});

describe('HistoryRecord', () => {
  const h: HistoryRecord = { idx: 4, senderId: 'ab'.repeat(16) as never, senderName: 'n', seq: 7, text: '<b>x</b>', at: 1, system: false };

  it('round-trips with and without the owner log entry; old web records decode', () => {
    expect(decodeHistoryRecord(encodeHistoryRecord(h))).toEqual(h);
    const owned = { ...h, epoch: 2, env: new Uint8Array([9]) };
    expect(decodeHistoryRecord(encodeHistoryRecord(owned))).toEqual(owned);
    expect(decodeHistoryRecord(enc({ v: 1, ...owned }))).toEqual(owned);
  });

  it('refuses unknown fields, half a log entry, a sender that is not a member id', () => {
    const good = { v: 1, ...h };
    expect(refused(() => decodeHistoryRecord(enc({ ...good, extra: true }))).message).toMatch(/extra/);
    expect(refused(() => decodeHistoryRecord(enc({ ...good, env: new Uint8Array([1]) }))).message).toMatch(/epoch/);
    expect(refused(() => decodeHistoryRecord(enc({ ...good, senderId: 'mallory' }))).message).toMatch(/senderId/);
    expect(refused(() => decodeHistoryRecord(enc({ ...good, system: 1 }))).message).toMatch(/system/);
  });
});

describe('restore rules', () => {
  it('leaves out history and outbox records beyond the committed state; rebuilds the owner log', () => {
    const entries = owner.log.map((e): HistoryRecord => ({
      idx: e.idx,
      senderId: e.from,
      senderName: 'o',
      seq: e.idx + 1,
      text: 't',
      at: 0,
      system: false,
      epoch: e.epoch,
      env: e.env,
    }));
    const beyond: HistoryRecord = { ...entries[0]!, idx: owner.nextIdx };
    expect(committedHistory(owner, [beyond, ...entries].reverse()).map((r) => r.idx)).toEqual(owner.log.map((e) => e.idx));
    expect(restoreOwnerLog({ ...owner, log: [] }, [...entries, beyond])).toEqual(owner);
    const rec = (seq: number) => ({ seq, text: 't', at: 0, wire: new Uint8Array([1]) });
    const s = { ...member, seq: 2 };
    expect(committedOutbox(s, [rec(3), rec(2), rec(1)]).map((r) => r.seq)).toEqual([1, 2]);
  });
});
