/** A tiny msgpack byte builder for malformed-input tests: each value is given as its exact wire form. */
import msgpack from 'msgpack-lite';

export type Wire = Uint8Array;
const u8 = (...b: number[]): Wire => new Uint8Array(b);
const cat = (parts: Wire[]): Wire => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};

export const mp = {
  int: (n: number): Wire => new Uint8Array(msgpack.encode(n)),
  /** uint32 form (0xce), whatever the value's size. */
  u32: (n: number): Wire => {
    const b = new Uint8Array(5);
    b[0] = 0xce;
    new DataView(b.buffer).setUint32(1, n);
    return b;
  },
  /** float64, even for integral values (1.0 must not pass as int 1). */
  f64: (n: number): Wire => {
    const b = new Uint8Array(9);
    b[0] = 0xcb;
    new DataView(b.buffer).setFloat64(1, n);
    return b;
  },
  str: (s: string): Wire => new Uint8Array(msgpack.encode(s)),
  bin: (b: Uint8Array): Wire => new Uint8Array(msgpack.encode(Buffer.from(b))),
  nil: (): Wire => u8(0xc0),
  bool: (v: boolean): Wire => u8(v ? 0xc3 : 0xc2),
  arr: (items: Wire[]): Wire => cat([u8(0x90 | items.length), ...items]),
  /** A map from [key, wire value] pairs, in order. */
  map: (entries: [string, Wire][]): Wire => cat([u8(0x80 | entries.length), ...entries.flatMap(([k, v]) => [mp.str(k), v])]),
  cat,
};
