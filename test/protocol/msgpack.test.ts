import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import msgpackLite from 'msgpack-lite';
import { decode, encode, Fields, peekType, type Encodable } from '../../protocol/msgpack.ts';
import { DecodeError } from '../../protocol/errors.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

describe('msgpack encode', () => {
  // msgpack-lite writes integers beyond int32 as float64; we keep them ints (uint32/uint64).
  it('uses the smallest int form, like msgpack-lite within int32', () => {
    for (const v of [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31)]) {
      expect(Buffer.from(encode(v)).toString('hex'), String(v)).toBe(msgpackLite.encode(v).toString('hex'));
    }
  });

  it('keeps integers beyond int32 as ints', () => {
    expect(encode(2 ** 32 - 1)).toEqual(hex('ce ffffffff'));
    expect(encode(2 ** 32)).toEqual(hex('cf 0000000100000000'));
    expect(encode(-(2 ** 31) - 1)).toEqual(hex('d3 ffffffff7fffffff'));
  });

  it('writes Uint8Array as bin and strings as str', () => {
    expect(encode(new Uint8Array([1, 2]))).toEqual(hex('c4 02 01 02'));
    expect(encode('ab')).toEqual(hex('a2 61 62'));
  });

  it('leaves out undefined fields and keeps insertion order', () => {
    expect(encode({ type: 'x', a: undefined, b: true })).toEqual(hex('82 a4 74797065 a1 78 a1 62 c3'));
  });

  it('refuses unsafe integers and unsupported values', () => {
    expect(() => encode(2 ** 60)).toThrow(TypeError);
    expect(() => encode((() => 1) as unknown as Encodable)).toThrow(TypeError);
  });

  it('is read back by msgpack-lite (the official SaltyRTC client codec)', () => {
    const value = { type: 'client-auth', your_cookie: new Uint8Array(16).fill(7), subprotocols: ['v1.saltyrtc.org'], ping_interval: 20 };
    const back = msgpackLite.decode(Buffer.from(encode(value)));
    expect(back.type).toBe('client-auth');
    expect(Buffer.isBuffer(back.your_cookie)).toBe(true);
    expect(back.ping_interval).toBe(20);
  });
});

describe('msgpack decode: one test per rule', () => {
  it('tags every type so callers can tell int from float and bin from str', () => {
    expect(decode(hex('01'))).toEqual({ t: 'int', v: 1 });
    expect(decode(hex('cb 3ff0000000000000'))).toEqual({ t: 'float', v: 1 });
    expect(decode(hex('ca 3f800000'))).toEqual({ t: 'float', v: 1 });
    expect(decode(hex('c4 01 61'))).toEqual({ t: 'bin', v: new Uint8Array([0x61]) });
    expect(decode(hex('a1 61'))).toEqual({ t: 'str', v: 'a' });
    expect(decode(hex('c0'))).toEqual({ t: 'nil' });
    expect(decode(hex('c2'))).toEqual({ t: 'bool', v: false });
  });

  it('decodes every int width', () => {
    const cases: [string, number][] = [
      ['cc ff', 255],
      ['cd ffff', 65535],
      ['ce ffffffff', 2 ** 32 - 1],
      ['cf 001fffffffffffff', Number.MAX_SAFE_INTEGER],
      ['d0 80', -128],
      ['d1 8000', -32768],
      ['d2 80000000', -(2 ** 31)],
      ['d3 ffe0000000000001', Number.MIN_SAFE_INTEGER],
      ['ff', -1],
    ];
    for (const [h, v] of cases) expect(decode(hex(h)), h).toEqual({ t: 'int', v });
  });

  it('rejects trailing bytes', () => {
    expect(() => decode(hex('01 02'))).toThrow(/trailing/);
  });

  it('rejects truncated input at every cut', () => {
    const full = encode({ type: 'server-hello', key: new Uint8Array(32).fill(1) });
    for (let cut = 0; cut < full.length; cut++) {
      expect(() => decode(full.subarray(0, cut)), `cut ${cut}`).toThrow(DecodeError);
    }
  });

  it('rejects lengths larger than the input before allocating', () => {
    expect(() => decode(hex('dd ffffffff'))).toThrow(/truncated/);
    expect(() => decode(hex('df ffffffff'))).toThrow(/truncated/);
    expect(() => decode(hex('c6 ffffffff'))).toThrow(/truncated/);
  });

  it('rejects duplicate map keys', () => {
    expect(() => decode(hex('82 a1 61 01 a1 61 02'))).toThrow(/duplicate/);
  });

  it('rejects non-string map keys', () => {
    expect(() => decode(hex('81 01 01'))).toThrow(/not a string/);
    expect(() => decode(hex('81 c4 01 61 01'))).toThrow(/not a string/);
  });

  it('rejects ext types and the reserved byte', () => {
    for (const h of ['d4 01 00', 'c7 01 01 00', 'c1']) expect(() => decode(hex(h)), h).toThrow(/unsupported/);
  });

  it('rejects nesting deeper than 16', () => {
    expect(() => decode(new Uint8Array(18).fill(0x91))).toThrow(/deep/);
    expect(decode(Uint8Array.from([...new Array(16).fill(0x91), 0x01])).t).toBe('arr');
  });

  it('rejects integers outside the safe range', () => {
    expect(() => decode(hex('cf 0020000000000000'))).toThrow(/safe range/);
    expect(() => decode(hex('d3 8000000000000000'))).toThrow(/safe range/);
  });

  it('rejects strings that are not UTF-8', () => {
    expect(() => decode(hex('a2 c3 28'))).toThrow(/UTF-8/);
  });

  it('round-trips any encodable value (property)', () => {
    const leaf = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.maxSafeInteger(),
      fc.string(),
      fc.uint8Array({ maxLength: 70000 / 100 }),
      fc.double({ noNaN: true }).filter((d) => !Number.isInteger(d)),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', maxDepth: 4 },
        leaf,
        fc.array(tie('node'), { maxLength: 20 }),
        fc.dictionary(fc.string(), tie('node'), { maxKeys: 20 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        const bytes = encode(v as Encodable);
        expect(msgpackLite.decode(Buffer.from(bytes))).toBeDefined();
        expect(encode(toPlain(decode(bytes)) as Encodable)).toEqual(bytes);
      }),
    );
  });

  it('never throws anything but DecodeError on random bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decode(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('Fields', () => {
  const msg = encode({ type: 'client-auth', your_cookie: new Uint8Array(16), ping_interval: 20, name: 'x', flag: true, list: [1, 2] });

  it('reads typed fields', () => {
    const f = Fields.fromBytes(msg, 'client-auth');
    f.type('client-auth');
    expect(f.bin('your_cookie', 16)).toHaveLength(16);
    expect(f.int('ping_interval', { min: 0, max: 2 ** 31 })).toBe(20);
    expect(f.bool('flag')).toBe(true);
    expect(f.arr('list', 2)).toHaveLength(2);
    expect(f.optional('missing', (k) => f.str(k))).toBeUndefined();
  });

  it('names the field and the rule it broke', () => {
    const f = Fields.fromBytes(msg, 'client-auth');
    expect(() => f.bin('your_cookie', 32)).toThrow('client-auth: field "your_cookie" must be 32 bytes, got 16');
    expect(() => f.str('your_cookie')).toThrow(/must be str, got bin/);
    expect(() => f.bin('name', 1)).toThrow(/must be bin, got str/);
    expect(() => f.int('ping_interval', { min: 0, max: 10 })).toThrow(/out of range/);
    expect(() => f.int('flag', { min: 0, max: 1 })).toThrow(/must be int, got bool/);
    expect(() => f.arr('list', 1)).toThrow(/more than 1/);
    expect(() => f.raw('nope')).toThrow(/missing field "nope"/);
    expect(() => f.type('server-auth')).toThrow(/type must be "server-auth"/);
    expect(() => f.only(['type'])).toThrow(/unexpected field/);
    expect(() => f.str('name', 0)).toThrow(/longer than 0/);
  });

  it('refuses a float where an int is expected', () => {
    const f = Fields.fromBytes(hex('81 a1 6e cb 4034000000000000'), 'm');
    expect(() => f.int('n', { min: 0, max: 100 })).toThrow(/must be int, got float/);
  });

  it('refuses a message that is not a map', () => {
    expect(() => Fields.fromBytes(hex('90'), 'm')).toThrow(/expected a map, got arr/);
    expect(() => peekType(hex('80'), 'm')).toThrow(/missing field "type"/);
  });
});

function toPlain(v: ReturnType<typeof decode>): unknown {
  switch (v.t) {
    case 'nil':
      return null;
    case 'arr':
      return v.v.map(toPlain);
    case 'map':
      return Object.fromEntries([...v.v].map(([k, x]) => [k, toPlain(x)]));
    default:
      return v.v;
  }
}
