// Codecs of the room protocol (docs/PROTOCOL.md sections 5.3, 5.12): round trips, one test per
// rule the version-1 invite decoder enforces (version 2: invite.test.ts), and malformed input that
// must end in a typed error.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, initCrypto, toBase64url, type EcPublicKey } from '../../crypto/index.ts';
import { DecodeError, ZeroRoomError } from '../../protocol/errors.ts';
import { encode } from '../../protocol/msgpack.ts';
import {
  InviteError,
  decodeInvite,
  decodeInviteUrl,
  decodeToMember,
  decodeToOwner,
  encodeInviteV1,
  encodeMessage,
  inviteUrl,
  memberStep,
  ownerKeyCommit,
  ownerStep,
  type InviteParams,
  type MemberId,
  type ToMember,
  type ToOwner,
} from '../../protocol/room/index.ts';
import { decodeChainBody, decodeEnvelopeBody, decodeKeyBody } from '../../protocol/room/codec.ts';
import { Net, device, type MemberNode } from './harness.ts';

let opub: EcPublicKey;
beforeAll(async () => {
  await initCrypto();
  opub = generateIdentity().publicKey;
});

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

const inviteArb = () =>
  fc.record({
    room: bytes(16),
    token: bytes(32),
    npub: bytes(32),
    server: fc.constantFrom('ws://127.0.0.1:8765/', 'wss://signal.example.org/salty', 'ws://[::1]:9/'),
    exp: fc.nat({ max: 0xffffffff * 1000 }),
    spub: fc.option(bytes(32), { nil: undefined }),
    name: fc.option(fc.string({ maxLength: 64 }), { nil: undefined }),
  });

type InviteFields = typeof inviteArb extends () => fc.Arbitrary<infer T> ? T : never;

function toInvite(r: InviteFields): InviteParams {
  const { spub, name, npub, ...rest } = r;
  return { ...rest, npub: npub as InviteParams['npub'], opub, ...(spub ? { spub } : {}), ...(name !== undefined ? { name } : {}) };
}

describe('invite codec, version 1 (still decoded)', () => {
  it('round-trips the v1 map; the owner writes the same invite as v2', () => {
    fc.assert(
      fc.property(inviteArb(), (r) => {
        const inv = toInvite(r);
        const { name, ...withoutName } = inv;
        expect(decodeInvite(encodeInviteV1(inv))).toEqual({ v: 1, ...inv, ocommit: ownerKeyCommit(opub) });
        const url = inviteUrl('https://app.example.org/zr/', inv);
        expect(url.startsWith('https://app.example.org/zr/#join=')).toBe(true);
        // v2: the owner key as its commitment, expiry in whole seconds, no room name.
        expect(decodeInviteUrl(url)).toEqual({
          v: 2,
          ...withoutName,
          opub: null,
          ocommit: ownerKeyCommit(opub),
          exp: Math.floor(inv.exp / 1000) * 1000,
        });
        void name;
      }),
      { numRuns: 100 },
    );
  });

  const good = (): Record<string, unknown> => ({
    v: 1,
    room: new Uint8Array(16),
    token: new Uint8Array(32),
    opub,
    npub: new Uint8Array(32),
    server: 'ws://127.0.0.1:1/',
    exp: 5,
  });
  const url = (m: Record<string, unknown>) => `https://a.example/#join=${toBase64url(encode(m as never))}`;
  const malformed = (u: string) => expect(() => decodeInviteUrl(u)).toThrow(expect.objectContaining({ code: 'room.invite-malformed' }));

  it('accepts the minimal invite', () => {
    expect(decodeInviteUrl(url(good())).exp).toBe(5);
  });
  it('refuses a string that is not a URL, or not http(s)', () => {
    malformed('not a url');
    malformed(url(good()).replace('https:', 'ftp:'));
  });
  it('refuses a fragment other than #join=', () => {
    malformed(url(good()).replace('#join=', '#jion='));
    malformed('https://a.example/');
    malformed(url(good()).replace('#join=', '?join=') + '#x');
  });
  it('refuses non-canonical or invalid base64url', () => {
    malformed(url(good()) + '=');
    malformed(url(good()) + '!');
    malformed(url(good()).slice(0, -1));
  });
  it('refuses unknown fields, wrong types and lengths, other versions', () => {
    malformed(url({ ...good(), extra: 1 }));
    malformed(url({ ...good(), v: 2 }));
    malformed(url({ ...good(), token: new Uint8Array(31) }));
    malformed(url({ ...good(), room: 'room' }));
    malformed(url({ ...good(), exp: 1.5 }));
    malformed(url({ ...good(), opub: new Uint8Array(45) }));
    malformed(url({ ...good(), name: 'x'.repeat(65) }));
    const { token: _t, ...noToken } = good();
    malformed(url(noToken));
  });
  it('refuses a server URL that is not ws: or wss:', () => {
    malformed(url({ ...good(), server: 'https://127.0.0.1/' }));
    malformed(url({ ...good(), server: 'nonsense' }));
  });
  it('refuses trailing bytes after the map', () => {
    malformed(`https://a.example/#join=${toBase64url(new Uint8Array([...encode(good() as never), 0]))}`);
  });
  it('is an InviteError', () => {
    expect(() => decodeInviteUrl('x')).toThrow(InviteError);
  });
});

describe('link message codecs', () => {
  const id = 'ab'.repeat(16) as MemberId;
  const b = (n: number, v = 1) => new Uint8Array(n).fill(v);
  const toOwner: ToOwner[] = [
    { type: 'join-hello', invite: b(32) },
    { type: 'join-request', invite: b(32), ipub: null as never, sealed: b(10) },
    { type: 'join-confirm', invite: b(32), proof: b(40), chain: 3 },
    { type: 'send', env: b(100) },
    { type: 'leave' },
    { type: 'sync', last_idx: -1, epoch: 3, chain: 7 },
    { type: 'want', from: id, after: b(32, 2), before: b(32, 3) },
  ];
  const toMember: ToMember[] = [
    { type: 'owner-key', invite: b(32), opub: null as never },
    { type: 'join-accept', invite: b(32), sealed: b(200) },
    { type: 'join-refused', code: 'room.invite-used' },
    { type: 'welcome', cert: b(100), from_idx: 4 },
    { type: 'refused', code: 'room.replay' },
    { type: 'refused', code: 'room.replay', seq: 9 },
    { type: 'refused', code: 'room.sender-chain', seq: 9, tail: b(32, 4) },
    { type: 'deliver', idx: 0, from: id, env: b(90) },
    {
      type: 'history',
      from_idx: 7,
      log_start: 2,
      entries: [
        { idx: 7, from: id, env: b(5) },
        { idx: 8, from: id, env: b(6) },
      ],
    },
    { type: 'chain', ann: b(100) },
    { type: 'chain', ann: b(100), key: b(100) },
    { type: 'removed', reason: 'kicked' },
    { type: 'resync', anns: [b(10), b(11)], keys: [b(12)] },
    { type: 'resync', anns: [], keys: [], more: true },
    { type: 'resync', anns: [b(10)], keys: [b(12)], certs: [b(13), b(14)] },
    { type: 'supply', from: id, before: b(32, 5), entries: [{ idx: 3, env: b(20) }] },
  ];

  it('round-trips every message type', () => {
    (toOwner[1] as { ipub: unknown }).ipub = opub;
    (toMember[0] as { opub: unknown }).opub = opub;
    for (const m of toOwner) expect(decodeToOwner(encodeMessage(m))).toEqual(m);
    for (const m of toMember) expect(decodeToMember(encodeMessage(m))).toEqual(m);
  });

  it('refuses extra fields (closed lists), unknown types, wrong directions', () => {
    for (const m of toMember) {
      expect(() => decodeToMember(encode({ ...(m as object), x: 1 } as never))).toThrow(DecodeError);
      expect(() => decodeToOwner(encodeMessage(m))).toThrow(DecodeError);
    }
    expect(() => decodeToOwner(encode({ type: 'nope' }))).toThrow(DecodeError);
  });

  it('refuses bad member ids, non-contiguous history, bad reasons, oversized input', () => {
    expect(() => decodeToMember(encode({ type: 'deliver', idx: 0, from: 'AB'.repeat(16), env: b(1) }))).toThrow(DecodeError);
    expect(() =>
      decodeToMember(encode({ type: 'history', from_idx: 1, log_start: 0, entries: [{ idx: 2, from: id, env: b(1) }] })),
    ).toThrow(DecodeError);
    expect(() => decodeToMember(encode({ type: 'removed', reason: 'bored' }))).toThrow(DecodeError);
    expect(() => decodeToOwner(encode({ type: 'send', env: new Uint8Array(1024 * 1024 + 1) }))).toThrow(DecodeError);
    expect(() => decodeToOwner(encode({ type: 'sync', last_idx: -2, epoch: 0, chain: 0 }))).toThrow(DecodeError);
    expect(() => decodeToOwner(encode({ type: 'sync', last_idx: 0, epoch: 0 }))).toThrow(DecodeError); // no chain
    expect(() => decodeToOwner(encode({ type: 'sync', last_idx: 0, epoch: 0, chain: -1 }))).toThrow(DecodeError);
  });

  it('refuses malformed new messages: owner-key, join-hello/confirm, chain, resync, want, supply, refused', () => {
    const bad = (dec: (x: Uint8Array) => unknown, m: Record<string, unknown>) => expect(() => dec(encode(m as never))).toThrow(DecodeError);
    bad(decodeToMember, { type: 'owner-key', invite: b(32), opub: b(45) }); // not a Themis key
    bad(decodeToMember, { type: 'owner-key', invite: b(31), opub });
    bad(decodeToOwner, { type: 'join-hello', invite: b(33) });
    bad(decodeToOwner, { type: 'join-hello', invite: b(32), ipub: opub });
    bad(decodeToOwner, { type: 'join-confirm', invite: b(32), proof: b(40) }); // no chain
    bad(decodeToOwner, { type: 'join-confirm', invite: b(32), proof: b(40), chain: 1.5 });
    bad(decodeToMember, { type: 'chain' });
    bad(decodeToMember, { type: 'chain', ann: b(16 * 1024 + 1) });
    bad(decodeToMember, { type: 'chain', ann: b(10), key: b(0) });
    bad(decodeToMember, { type: 'chain', ann: b(10), key: b(4097) });
    bad(decodeToMember, { type: 'resync', anns: [] }); // no keys
    bad(decodeToMember, { type: 'resync', anns: [b(1)], keys: [b(0)] });
    bad(decodeToMember, { type: 'resync', anns: Array.from({ length: 257 }, () => b(1)), keys: [] });
    bad(decodeToMember, { type: 'resync', anns: [b(1), b(2)], keys: [], certs: [b(3)] }); // an anchor is one entry
    bad(decodeToMember, { type: 'resync', anns: [b(1)], keys: [], certs: [b(3)], more: true });
    bad(decodeToMember, { type: 'resync', anns: ['x'], keys: [] });
    bad(decodeToMember, { type: 'resync', anns: [], keys: [], more: false });
    bad(decodeToOwner, { type: 'want', from: id, after: b(32), before: b(31) });
    bad(decodeToOwner, { type: 'want', from: 'me', after: b(32), before: b(32) });
    bad(decodeToMember, { type: 'supply', from: id, before: b(32), entries: [{ idx: 0, env: b(0) }] });
    bad(decodeToMember, { type: 'supply', from: id, before: b(32), entries: [{ idx: -1, env: b(1) }] });
    bad(decodeToMember, { type: 'supply', from: id, before: b(32), entries: Array.from({ length: 257 }, () => ({ idx: 0, env: b(1) })) });
    bad(decodeToMember, { type: 'refused', code: 'x', tail: b(32) }); // a tail only with a seq
    bad(decodeToMember, { type: 'refused', code: 'x', seq: 1, tail: b(31) });
  });

  it('turns arbitrary bytes into a typed error or a value, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        for (const dec of [decodeToOwner, decodeToMember]) {
          try {
            dec(data);
          } catch (e) {
            expect(e).toBeInstanceOf(ZeroRoomError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('machines fed malformed or hostile maps', () => {
  // Well-formed msgpack maps with a real type and random field values: every outcome is either a
  // typed refusal with the state unchanged or (rarely) a handled message.
  const field = fc.oneof(fc.integer(), fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 80 }), fc.boolean(), fc.constant(null));
  const types = [
    'join-hello',
    'join-request',
    'join-confirm',
    'send',
    'leave',
    'sync',
    'want',
    'owner-key',
    'join-accept',
    'join-refused',
    'welcome',
    'refused',
    'deliver',
    'history',
    'chain',
    'removed',
    'resync',
    'supply',
  ];
  const hostile = fc.record({
    type: fc.constantFrom(...types),
    fields: fc.dictionary(
      fc.constantFrom(
        'invite',
        'ipub',
        'sealed',
        'proof',
        'env',
        'idx',
        'from',
        'cert',
        'ann',
        'key',
        'code',
        'last_idx',
        'epoch',
        'reason',
        'certs',
        'entries',
        'from_idx',
        'log_start',
        'anns',
        'keys',
        'chain',
        'after',
        'before',
        'opub',
        'tail',
      ),
      field,
      { maxKeys: 4 },
    ),
  });

  it('owner and member machines only refuse with typed errors', () => {
    const net = new Net(device('o-fuzz'));
    const a: MemberNode = net.join('a', net.invite());
    net.run();
    fc.assert(
      fc.property(
        fc.oneof(
          hostile.map((h) => encode({ type: h.type, ...h.fields } as never)),
          fc.uint8Array({ maxLength: 200 }),
        ),
        (data) => {
          const o = ownerStep(net.ctx, net.ownerState, { kind: 'received', from: a.peer, bytes: data, now: net.now });
          if (o.error !== undefined) {
            expect(o.error).toBeInstanceOf(ZeroRoomError);
            expect(o.state).toBe(net.ownerState);
          }
          const m = memberStep(a.ctx, a.state!, { kind: 'received', bytes: data, now: net.now });
          if (m.error !== undefined) {
            expect(m.error).toBeInstanceOf(ZeroRoomError);
            expect(m.state).toBe(a.state);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('structures inside signatures and seals (5.6, 5.7, 5.10)', () => {
  const id = 'cd'.repeat(16);
  const h = (v: number) => new Uint8Array(32).fill(v);
  const common = {
    type: 'chain',
    room: new Uint8Array(16),
    n: 3,
    prev: h(1),
    epoch: 1,
    first_idx: 4,
    key_hash: h(2),
    members_hash: h(3),
    ts: 0,
  };
  const entry = (m: Record<string, unknown>) => encode(m as never);

  it('chain entries: one decoder per op with its closed field list', () => {
    expect(decodeChainBody(entry({ ...common, op: 'add', cert: new Uint8Array(10) })).op).toBe('add');
    expect(decodeChainBody(entry({ ...common, op: 'rotate', reason: 'kick', removed: [id] }))).toMatchObject({
      op: 'rotate',
      removed: [id],
    });
    const bad = (m: Record<string, unknown>) => expect(() => decodeChainBody(entry(m))).toThrow(DecodeError);
    bad({ ...common, op: 'merge' });
    bad({ ...common, op: 'add' }); // no cert
    bad({ ...common, op: 'add', cert: new Uint8Array(10), reason: 'kick' }); // a field of another op
    bad({ ...common, op: 'rotate', reason: 'kick' }); // no removed
    bad({ ...common, op: 'rotate', reason: 'create', removed: [] });
    bad({ ...common, op: 'rotate', reason: 'whim', removed: [] });
    bad({ ...common, op: 'rotate', reason: 'kick', removed: [id, id] });
    bad({ ...common, op: 'rotate', reason: 'kick', removed: ['AB'.repeat(16)] });
    bad({ ...common, op: 'rotate', reason: 'kick', removed: Array.from({ length: 257 }, () => id) });
    bad({ ...common, op: 'create', prev: h(1).subarray(1) });
    bad({ ...common, op: 'create', n: -1 });
    bad({ ...common, op: 'create', n: 1.5 });
    bad({ ...common, op: 'create', type: 'epoch' });
    bad({ ...common, op: 'create', extra: 1 });
    expect(() => decodeChainBody(new Uint8Array(16 * 1024 + 1))).toThrow(DecodeError);
  });

  it('envelopes: both chain fields or neither (a format-1 envelope has neither)', () => {
    const env = { type: 'msg', room: new Uint8Array(16), epoch: 0, from: id, seq: 1, ct: new Uint8Array(4) };
    expect(decodeEnvelopeBody(encode(env as never))).toMatchObject({ chain: null, prev: null });
    expect(decodeEnvelopeBody(encode({ ...env, chain: 2, prev: h(4) } as never))).toMatchObject({ chain: 2, prev: h(4) });
    for (const broken of [
      { chain: 2 },
      { prev: h(4) },
      { chain: -1, prev: h(4) },
      { chain: 2, prev: h(4).subarray(2) },
      { chain: 2, prev: null },
    ]) {
      expect(() => decodeEnvelopeBody(encode({ ...env, ...broken } as never))).toThrow(DecodeError);
    }
  });

  it('sealed keys: room, epoch, first index and a 32-byte key, nothing else', () => {
    const key = { room: new Uint8Array(16), epoch: 2, first_idx: 9, key: h(5) };
    expect(decodeKeyBody(encode(key as never))).toEqual({ room: key.room, epoch: 2, firstIdx: 9, key: key.key });
    for (const broken of [{ key: h(5).subarray(1) }, { first_idx: -1 }, { ann_hash: h(1) }, { epoch: 'x' }]) {
      expect(() => decodeKeyBody(encode({ ...key, ...broken } as never))).toThrow(DecodeError);
    }
  });
});
