// A file offer as a room message (docs/PROTOCOL.md 5.17.1): the message body union and its strict
// decoder, an offer signed, sealed, ordered and delivered like a text, and refused like any send
// from a member who was removed (room.not-member).
import { beforeAll, describe, expect, it } from 'vitest';
import { generateAeadKey, initCrypto, sha256 } from '../../crypto/index.ts';
import { DecodeError } from '../../protocol/errors.ts';
import { asFileId, FILE_CHUNK, type FileOffer } from '../../protocol/files/index.ts';
import { encode } from '../../protocol/msgpack.ts';
import { decodeBody, encodeBody, fileBody } from '../../protocol/room/codec.ts';
import type { RoomEvent } from '../../protocol/room/index.ts';
import { Net, device, type MemberNode } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

function offer(name = 'photo.jpg'): FileOffer {
  return {
    file: asFileId(crypto.getRandomValues(new Uint8Array(16))),
    name,
    size: 3 * FILE_CHUNK + 5,
    mime: 'image/jpeg',
    chunk: FILE_CHUNK,
    hash: sha256(new Uint8Array([1, 2, 3])),
    fkey: generateAeadKey(),
    ts: 1_700_000_000_123,
  };
}

type Message = Extract<RoomEvent, { type: 'message' }>;
const messages = (events: readonly RoomEvent[]): Message[] => events.flatMap((e) => (e.type === 'message' ? [e] : []));

describe('message body union (5.17.1)', () => {
  it('round-trips a text and a file body; a file body is exactly the offer encoding', () => {
    expect(decodeBody(encodeBody({ text: 'hi', ts: 5 }))).toEqual({ text: 'hi', ts: 5 });
    const o = offer();
    const back = decodeBody(encodeBody(fileBody(o)));
    expect(back).toEqual({ text: '', ts: o.ts, file: o });
  });

  it('refuses malformed, oversized and mixed bodies with DecodeError', () => {
    const o = offer();
    const wire = {
      type: 'file',
      file: o.file,
      name: o.name,
      size: o.size,
      mime: o.mime,
      chunk: o.chunk,
      hash: o.hash,
      fkey: o.fkey,
      ts: o.ts,
    };
    const bad: [string, Uint8Array][] = [
      ['text field on a file', encode({ ...wire, text: 'x' })],
      ['file fields on a text', encode({ type: 'text', text: 'x', ts: 0, file: o.file })],
      ['chunk size other than 65536', encode({ ...wire, chunk: 1024 })],
      ['short file id', encode({ ...wire, file: o.file.slice(0, 15) })],
      ['short hash', encode({ ...wire, hash: o.hash.slice(1) })],
      ['short fkey', encode({ ...wire, fkey: o.fkey.slice(1) })],
      ['size above 2^40', encode({ ...wire, size: 2 ** 40 + 1 })],
      ['empty name', encode({ ...wire, name: '' })],
      ['name too long', encode({ ...wire, name: 'n'.repeat(256) })],
      ['oversized offer', encode({ ...wire, mime: 'm'.repeat(127), name: 'n'.repeat(255), extra: new Uint8Array(700) })],
      ['unknown type', encode({ ...wire, type: 'files' })],
    ];
    for (const [what, bytes] of bad) expect(() => decodeBody(bytes), what).toThrow(DecodeError);
    expect(() => encodeBody({ text: '', ts: o.ts + 1, file: o })).toThrow(RangeError);
  });
});

function setup(seed: string, names = ['a', 'b']): { net: Net; nodes: MemberNode[] } {
  const net = new Net(device(seed));
  const nodes = names.map((n) => net.join(n, net.invite()));
  net.run();
  for (const n of nodes) expect(n.state!.phase).toBe('member');
  return { net, nodes };
}

describe('an offer in the room log', () => {
  it("a member's offer is ordered by the owner and delivered to every member with the decoded offer", () => {
    const { net, nodes } = setup('file-offer-1');
    const [a, b] = nodes as [MemberNode, MemberNode];
    const o = offer();
    expect(net.member(a, { kind: 'send', text: '', file: o, now: net.now }).error).toBeUndefined();
    net.run();
    for (const events of [net.ownerEvents, a.events, b.events]) {
      const m = messages(events).at(-1)!;
      expect(m.file).toEqual(o);
      expect(m.text).toBe('');
      expect(m.from).toBe(a.state!.selfId);
    }
    // The owner's own offer, and a text after it, keep their sender chains (5.6).
    const o2 = offer('notes.txt');
    expect(net.owner({ kind: 'send', text: '', file: o2, now: net.now }).error).toBeUndefined();
    expect(net.member(b, { kind: 'send', text: 'after', now: net.now }).error).toBeUndefined();
    net.run();
    expect(
      messages(a.events)
        .slice(-2)
        .map((m) => [m.file?.name, m.text]),
    ).toEqual([
      ['notes.txt', ''],
      [undefined, 'after'],
    ]);
    expect(net.ownerErrors).toEqual([]);
  });

  it('refuses the offer of a removed member (room.not-member) and nobody receives it', () => {
    const { net, nodes } = setup('file-offer-2', ['a', 'b', 'c']);
    const [a, , c] = nodes as [MemberNode, MemberNode, MemberNode];
    net.owner({ kind: 'kick', member: c.state!.selfId, now: net.now });
    // c has not heard of its removal yet and offers a file.
    expect(net.member(c, { kind: 'send', text: '', file: offer('late.bin'), now: net.now }).error).toBeUndefined();
    const before = messages(a.events).length;
    net.deliverUp(c);
    expect(net.ownerErrors.at(-1)?.code).toBe('room.not-member');
    net.run();
    expect(
      messages(a.events)
        .slice(before)
        .some((m) => m.file !== undefined),
    ).toBe(false);
    expect(messages(net.ownerEvents).some((m) => m.file?.name === 'late.bin')).toBe(false);
  });

  it('a replayed offer envelope is refused (room.replay)', () => {
    const { net, nodes } = setup('file-offer-3');
    const [a] = nodes as [MemberNode];
    net.member(a, { kind: 'send', text: '', file: offer(), now: net.now });
    const [wire] = net.take(a, 'up');
    net.owner({ kind: 'received', from: a.peer, bytes: wire!, now: net.now });
    net.owner({ kind: 'received', from: a.peer, bytes: wire!, now: net.now });
    expect(net.ownerErrors.at(-1)?.code).toBe('room.replay');
    expect(messages(net.ownerEvents).filter((m) => m.file !== undefined)).toHaveLength(1);
  });
});
