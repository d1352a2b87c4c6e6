/**
 * Messages between nodes (docs/PROTOCOL.md 3.8.3): one test per rule the strict decoder enforces,
 * exact bytes, and the per-channel order check (replayed and out-of-order numbers).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClusterMessageError,
  HEADER_LENGTH,
  SequenceCheck,
  decodeNodeMessage,
  encodeNodeMessage,
  type NodeId,
  type NodeMessage,
} from '../../signaling/cluster/messages.ts';

const MAX = 64 * 1024;
const node = 'a1b2c3d4e5f60718' as NodeId;

function header(type: number, seq = 1, conn = 7): number[] {
  return [1, type, 0, 0, 0, 0, (seq >>> 24) & 0xff, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff, 0, 0, 0, conn];
}
const bytes = (...parts: (number[] | Uint8Array)[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));
const frame = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, k) => k & 0xff);

function refused(b: Uint8Array, code = 'cluster.message'): void {
  let err: unknown;
  try {
    decodeNodeMessage(b, MAX);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ClusterMessageError);
  expect((err as ClusterMessageError).code).toBe(code);
}

describe('decodeNodeMessage: exact bytes', () => {
  it('decodes every type', () => {
    expect(decodeNodeMessage(bytes(header(9, 1, 7)), MAX)).toEqual({ seq: 1, type: 'path-full', conn: 7 });
    expect(decodeNodeMessage(bytes(header(4, 2)), MAX)).toEqual({ seq: 2, type: 'new-initiator', conn: 7 });
    expect(decodeNodeMessage(bytes(header(3), [5]), MAX)).toEqual({ seq: 1, type: 'new-responder', conn: 7, id: 5 });
    expect(decodeNodeMessage(bytes(header(5), [1]), MAX)).toEqual({ seq: 1, type: 'disconnected', conn: 7, id: 1 });
    expect(decodeNodeMessage(bytes(header(6), [0x0b, 0xbd]), MAX)).toEqual({ seq: 1, type: 'dropped', conn: 7, code: 3005 });
    expect(decodeNodeMessage(bytes(header(7), [3, 2, 9, 255]), MAX)).toEqual({
      seq: 1,
      type: 'granted-initiator',
      conn: 7,
      responders: [2, 9, 255],
    });
    expect(decodeNodeMessage(bytes(header(7), [0]), MAX)).toEqual({ seq: 1, type: 'granted-initiator', conn: 7, responders: [] });
    expect(decodeNodeMessage(bytes(header(8), [2, 1]), MAX)).toEqual({
      seq: 1,
      type: 'granted-responder',
      conn: 7,
      address: 2,
      initiatorConnected: true,
    });
    const id = frame(8);
    const se = decodeNodeMessage(bytes(header(2), id), MAX);
    expect(se).toEqual({ seq: 1, type: 'send-error', conn: 7, id });
    const f = frame(25);
    const relay = decodeNodeMessage(bytes(header(1), new TextEncoder().encode(node), [0, 0, 1, 0], f), MAX);
    expect(relay).toEqual({ seq: 1, type: 'relay', conn: 7, fromNode: node, fromConn: 256, frame: f });
  });

  it('reads the 64-bit sequence number', () => {
    const b = bytes(header(4));
    b.set([0, 0, 0, 1, 0, 0, 0, 2], 2);
    expect(decodeNodeMessage(b, MAX).seq).toBe(2 ** 32 + 2);
  });

  it('round-trips through the encoder (property)', () => {
    const msg = fc.oneof(
      fc.record({ type: fc.constant('new-responder' as const), id: fc.integer({ min: 2, max: 255 }) }),
      fc.record({ type: fc.constant('disconnected' as const), id: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ type: fc.constant('new-initiator' as const) }),
      fc.record({ type: fc.constant('path-full' as const) }),
      fc.record({ type: fc.constant('dropped' as const), code: fc.constantFrom(3001, 3002, 3004, 3005) }),
      fc.record({ type: fc.constant('send-error' as const), id: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
      fc.record({
        type: fc.constant('granted-initiator' as const),
        responders: fc.uniqueArray(fc.integer({ min: 2, max: 255 }), { maxLength: 254 }).map((a) => a.sort((x, y) => x - y)),
      }),
      fc.record({
        type: fc.constant('granted-responder' as const),
        address: fc.integer({ min: 2, max: 255 }),
        initiatorConnected: fc.boolean(),
      }),
      fc.record({
        type: fc.constant('relay' as const),
        fromNode: fc.constant(node),
        fromConn: fc.integer({ min: 1, max: 2 ** 32 - 1 }),
        frame: fc.uint8Array({ minLength: 25, maxLength: 2000 }),
      }),
    );
    fc.assert(
      fc.property(msg, fc.integer({ min: 1, max: 2 ** 53 - 1 }), fc.integer({ min: 1, max: 2 ** 32 - 1 }), (m, seq, conn) => {
        const full = { ...m, seq, conn } as NodeMessage;
        const encoded = encodeNodeMessage(full);
        const copy = encoded.slice();
        expect(decodeNodeMessage(encoded, MAX)).toEqual(full);
        expect(encoded).toEqual(copy); // the decoder does not touch its input
      }),
    );
  });
});

describe('decodeNodeMessage: refusals', () => {
  it('refuses a short header, a wrong version, an unknown type, sequence 0 and connection 0', () => {
    refused(new Uint8Array(0));
    refused(bytes(header(4)).subarray(0, HEADER_LENGTH - 1));
    refused(bytes([2], header(4).slice(1)));
    refused(bytes(header(0)));
    refused(bytes(header(10)));
    refused(bytes(header(4, 0)));
    refused(bytes(header(4, 1, 0)));
  });

  it('refuses wrong field lengths (trailing bytes included) for every fixed-size type', () => {
    refused(bytes(header(4), [0]));
    refused(bytes(header(9), [0]));
    refused(bytes(header(3)));
    refused(bytes(header(3), [2, 2]));
    refused(bytes(header(5), [1, 0]));
    refused(bytes(header(6), [0x0b]));
    refused(bytes(header(6), [0x0b, 0xbd, 0]));
    refused(bytes(header(8), [2]));
    refused(bytes(header(8), [2, 1, 0]));
    refused(bytes(header(2), frame(7)));
    refused(bytes(header(2), frame(9)));
    refused(bytes(header(7)));
    refused(bytes(header(7), [2, 2]));
    refused(bytes(header(7), [1, 2, 3]));
  });

  it('refuses addresses outside their role, unknown close codes and unordered or repeated address lists', () => {
    refused(bytes(header(3), [1]));
    refused(bytes(header(3), [0]));
    refused(bytes(header(5), [0]));
    refused(bytes(header(8), [1, 0]));
    refused(bytes(header(8), [2, 2]));
    refused(bytes(header(6), [0x0b, 0xb8])); // 3000 is not a drop reason
    refused(bytes(header(6), [0x03, 0xe9])); // 1001
    refused(bytes(header(7), [2, 5, 3]));
    refused(bytes(header(7), [2, 5, 5]));
    refused(bytes(header(7), [1, 1]));
  });

  it('refuses a relay with a bad sender id, sender connection 0, a frame of 24 bytes or less, or an oversized one', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    refused(bytes(header(1), enc('A1B2C3D4E5F60718'), [0, 0, 0, 1], frame(30)));
    refused(bytes(header(1), enc('a1b2c3d4e5f6071'), [0, 0, 0, 0, 1], frame(30)));
    refused(bytes(header(1), enc(node), [0, 0, 0, 0], frame(30)));
    refused(bytes(header(1), enc(node), [0, 0, 0, 1], frame(24)));
    refused(bytes(header(1), enc(node), [0, 0, 0, 1], frame(MAX + 1)));
    expect(decodeNodeMessage(bytes(header(1), enc(node), [0, 0, 0, 1], frame(MAX)), MAX).type).toBe('relay');
  });
});

describe('SequenceCheck', () => {
  it('accepts 1, 2, 3 in order', () => {
    const s = new SequenceCheck();
    for (const n of [1, 2, 3]) s.accept(n);
    expect(s.lastAccepted).toBe(3);
  });

  it('refuses a replayed number (cluster.replay) and stays where it was', () => {
    const s = new SequenceCheck();
    s.accept(1);
    s.accept(2);
    for (const n of [2, 1]) expect(() => s.accept(n)).toThrow(expect.objectContaining({ code: 'cluster.replay' }));
    s.accept(3);
    expect(s.lastAccepted).toBe(3);
  });

  it('refuses a skipped number as lost messages (cluster.gap), including a first message other than 1', () => {
    expect(() => new SequenceCheck().accept(2)).toThrow(expect.objectContaining({ code: 'cluster.gap' }));
    const s = new SequenceCheck();
    s.accept(1);
    expect(() => s.accept(3)).toThrow(expect.objectContaining({ code: 'cluster.gap' }));
    expect(s.lastAccepted).toBe(1);
  });
});
