/**
 * A strict MessagePack codec for the subset the SaltyRTC and room protocols use.
 *
 * Why our own: general decoders turn float 1.0 and int 1 into the same JS number and accept
 * duplicate map keys; SaltyRTC requires bin (not str) for keys and cookies and int (not float)
 * for numbers. `decode` returns tagged values so every decoder can check the exact wire type,
 * and it rejects trailing bytes, duplicate keys, non-string map keys, ext types and deep nesting.
 */
import { DecodeError } from './errors.ts';

export type MsgValue =
  | { readonly t: 'nil' }
  | { readonly t: 'bool'; readonly v: boolean }
  | { readonly t: 'int'; readonly v: number }
  | { readonly t: 'float'; readonly v: number }
  | { readonly t: 'str'; readonly v: string }
  | { readonly t: 'bin'; readonly v: Uint8Array }
  | { readonly t: 'arr'; readonly v: readonly MsgValue[] }
  | { readonly t: 'map'; readonly v: ReadonlyMap<string, MsgValue> };

/** Values `encode` accepts: integers become int, other numbers float64, Uint8Array bin, objects maps. */
export type Encodable =
  null | boolean | number | string | Uint8Array | readonly Encodable[] | { readonly [key: string]: Encodable | undefined };

const MAX_DEPTH = 16;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Encoder

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }
  i8(v: number): void {
    this.ensure(1);
    this.view.setInt8(this.pos, v);
    this.pos += 1;
  }
  i16(v: number): void {
    this.ensure(2);
    this.view.setInt16(this.pos, v);
    this.pos += 2;
  }
  i32(v: number): void {
    this.ensure(4);
    this.view.setInt32(this.pos, v);
    this.pos += 4;
  }
  u64(v: number): void {
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt(v));
    this.pos += 8;
  }
  i64(v: number): void {
    this.ensure(8);
    this.view.setBigInt64(this.pos, BigInt(v));
    this.pos += 8;
  }
  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

function writeInt(w: Writer, v: number): void {
  if (v >= 0) {
    if (v < 0x80) w.u8(v);
    else if (v < 0x100) (w.u8(0xcc), w.u8(v));
    else if (v < 0x10000) (w.u8(0xcd), w.u16(v));
    else if (v < 0x100000000) (w.u8(0xce), w.u32(v));
    else (w.u8(0xcf), w.u64(v));
  } else {
    if (v >= -32) w.i8(v);
    else if (v >= -0x80) (w.u8(0xd0), w.i8(v));
    else if (v >= -0x8000) (w.u8(0xd1), w.i16(v));
    else if (v >= -0x80000000) (w.u8(0xd2), w.i32(v));
    else (w.u8(0xd3), w.i64(v));
  }
}

function writeLength(w: Writer, n: number, fix: number | null, fixMax: number, c8: number | null, c16: number, c32: number): void {
  if (fix !== null && n <= fixMax) w.u8(fix | n);
  else if (c8 !== null && n < 0x100) (w.u8(c8), w.u8(n));
  else if (n < 0x10000) (w.u8(c16), w.u16(n));
  else (w.u8(c32), w.u32(n));
}

function writeValue(w: Writer, value: Encodable, depth: number): void {
  if (depth > MAX_DEPTH) throw new TypeError('msgpack: value nested too deeply');
  if (value === null) return w.u8(0xc0);
  if (value === true) return w.u8(0xc3);
  if (value === false) return w.u8(0xc2);
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return writeInt(w, value);
    if (Number.isInteger(value)) throw new TypeError('msgpack: integer outside the safe range');
    w.u8(0xcb);
    return w.f64(value);
  }
  if (typeof value === 'string') {
    const b = utf8Encoder.encode(value);
    writeLength(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
    return w.bytes(b);
  }
  if (value instanceof Uint8Array) {
    writeLength(w, value.length, null, 0, 0xc4, 0xc5, 0xc6);
    return w.bytes(value);
  }
  if (Array.isArray(value)) {
    const arr = value as readonly Encodable[];
    writeLength(w, arr.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const item of arr) writeValue(w, item, depth + 1);
    return;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as { [k: string]: Encodable | undefined }).filter(
      (e): e is [string, Encodable] => e[1] !== undefined,
    );
    writeLength(w, entries.length, 0x80, 15, null, 0xde, 0xdf);
    for (const [k, v] of entries) {
      writeValue(w, k, depth + 1);
      writeValue(w, v, depth + 1);
    }
    return;
  }
  throw new TypeError(`msgpack: cannot encode ${typeof value}`);
}

/** Encode a plain value. Keys whose value is `undefined` are left out (optional fields). */
export function encode(value: Encodable): Uint8Array {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.result();
}

// ---------------------------------------------------------------------------------------------
// Decoder

class Reader {
  pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new DecodeError('msgpack: truncated input');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  i8(): number {
    this.need(1);
    return this.view.getInt8(this.pos++);
  }
  i16(): number {
    this.need(2);
    const v = this.view.getInt16(this.pos);
    this.pos += 2;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError('msgpack: integer outside the safe range');
    return Number(v);
  }
  i64(): number {
    this.need(8);
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new DecodeError('msgpack: integer outside the safe range');
    }
    return Number(v);
  }
  f32(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

function readStr(r: Reader, n: number): MsgValue {
  try {
    return { t: 'str', v: utf8Decoder.decode(r.bytes(n)) };
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError('msgpack: string is not valid UTF-8');
  }
}

function readArr(r: Reader, n: number, depth: number): MsgValue {
  // Each element takes at least one byte: refuse lengths the input cannot hold before allocating.
  r.need(n);
  const v: MsgValue[] = [];
  for (let i = 0; i < n; i++) v.push(readValue(r, depth + 1));
  return { t: 'arr', v };
}

function readMap(r: Reader, n: number, depth: number): MsgValue {
  r.need(n * 2);
  const v = new Map<string, MsgValue>();
  for (let i = 0; i < n; i++) {
    const key = readValue(r, depth + 1);
    if (key.t !== 'str') throw new DecodeError('msgpack: map key is not a string');
    if (v.has(key.v)) throw new DecodeError(`msgpack: duplicate map key "${key.v}"`);
    v.set(key.v, readValue(r, depth + 1));
  }
  return { t: 'map', v };
}

function readValue(r: Reader, depth: number): MsgValue {
  if (depth > MAX_DEPTH) throw new DecodeError('msgpack: nested too deeply');
  const b = r.u8();
  if (b < 0x80) return { t: 'int', v: b };
  if (b >= 0xe0) return { t: 'int', v: b - 0x100 };
  if ((b & 0xf0) === 0x80) return readMap(r, b & 0x0f, depth);
  if ((b & 0xf0) === 0x90) return readArr(r, b & 0x0f, depth);
  if ((b & 0xe0) === 0xa0) return readStr(r, b & 0x1f);
  switch (b) {
    case 0xc0:
      return { t: 'nil' };
    case 0xc2:
      return { t: 'bool', v: false };
    case 0xc3:
      return { t: 'bool', v: true };
    case 0xc4:
      return { t: 'bin', v: r.bytes(r.u8()) };
    case 0xc5:
      return { t: 'bin', v: r.bytes(r.u16()) };
    case 0xc6:
      return { t: 'bin', v: r.bytes(r.u32()) };
    case 0xca:
      return { t: 'float', v: r.f32() };
    case 0xcb:
      return { t: 'float', v: r.f64() };
    case 0xcc:
      return { t: 'int', v: r.u8() };
    case 0xcd:
      return { t: 'int', v: r.u16() };
    case 0xce:
      return { t: 'int', v: r.u32() };
    case 0xcf:
      return { t: 'int', v: r.u64() };
    case 0xd0:
      return { t: 'int', v: r.i8() };
    case 0xd1:
      return { t: 'int', v: r.i16() };
    case 0xd2:
      return { t: 'int', v: r.i32() };
    case 0xd3:
      return { t: 'int', v: r.i64() };
    case 0xd9:
      return readStr(r, r.u8());
    case 0xda:
      return readStr(r, r.u16());
    case 0xdb:
      return readStr(r, r.u32());
    case 0xdc:
      return readArr(r, r.u16(), depth);
    case 0xdd:
      return readArr(r, r.u32(), depth);
    case 0xde:
      return readMap(r, r.u16(), depth);
    case 0xdf:
      return readMap(r, r.u32(), depth);
    default:
      throw new DecodeError(`msgpack: unsupported type byte 0x${b.toString(16)}`);
  }
}

/** Decode exactly one value that fills `bytes`; anything left over is an error. */
export function decode(bytes: Uint8Array): MsgValue {
  const r = new Reader(bytes);
  const value = readValue(r, 0);
  if (r.pos !== bytes.length) throw new DecodeError(`msgpack: ${bytes.length - r.pos} trailing bytes`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Field access for message decoders: each getter checks the exact wire type and names the field.

export interface IntRange {
  readonly min: number;
  readonly max: number;
}

export class Fields {
  private constructor(
    private readonly map: ReadonlyMap<string, MsgValue>,
    private readonly what: string,
  ) {}

  /** Decode `bytes` as a map (the shape of every message we speak). */
  static fromBytes(bytes: Uint8Array, what: string): Fields {
    return Fields.of(decode(bytes), what);
  }

  static of(value: MsgValue, what: string): Fields {
    if (value.t !== 'map') throw new DecodeError(`${what}: expected a map, got ${value.t}`);
    return new Fields(value.v, what);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  keys(): string[] {
    return [...this.map.keys()];
  }

  /** Refuse fields outside `allowed` (for messages whose spec lists every field). */
  only(allowed: readonly string[]): this {
    for (const k of this.map.keys()) {
      if (!allowed.includes(k)) throw new DecodeError(`${this.what}: unexpected field "${k}"`);
    }
    return this;
  }

  raw(key: string): MsgValue {
    const v = this.map.get(key);
    if (v === undefined) throw new DecodeError(`${this.what}: missing field "${key}"`);
    return v;
  }

  private typed<T extends MsgValue['t']>(key: string, t: T): Extract<MsgValue, { t: T }> {
    const v = this.raw(key);
    if (v.t !== t) throw new DecodeError(`${this.what}: field "${key}" must be ${t}, got ${v.t}`);
    return v as Extract<MsgValue, { t: T }>;
  }

  str(key: string, maxLength = 1024): string {
    const v = this.typed(key, 'str').v;
    if (v.length > maxLength) throw new DecodeError(`${this.what}: field "${key}" longer than ${maxLength}`);
    return v;
  }

  /** A bin field; `length` is exact (number) or a {min,max} range. */
  bin(key: string, length: number | IntRange): Uint8Array {
    const v = this.typed(key, 'bin').v;
    checkLength(this.what, key, v.length, length);
    return v;
  }

  int(key: string, range: IntRange): number {
    const v = this.typed(key, 'int').v;
    if (v < range.min || v > range.max) {
      throw new DecodeError(`${this.what}: field "${key}" out of range [${range.min}, ${range.max}]`);
    }
    return v;
  }

  bool(key: string): boolean {
    return this.typed(key, 'bool').v;
  }

  map_(key: string): Fields {
    return Fields.of(this.raw(key), `${this.what}.${key}`);
  }

  arr(key: string, maxItems: number): readonly MsgValue[] {
    const v = this.typed(key, 'arr').v;
    if (v.length > maxItems) throw new DecodeError(`${this.what}: field "${key}" has more than ${maxItems} items`);
    return v;
  }

  /** The value of "type", checked against the expected message type. */
  type(expected: string): void {
    const t = this.str('type', 64);
    if (t !== expected) throw new DecodeError(`${this.what}: type must be "${expected}", got "${t}"`);
  }

  /** Run `get` only when `key` is present and not nil (optional fields). */
  optional<T>(key: string, get: (key: string) => T): T | undefined {
    const v = this.map.get(key);
    if (v === undefined || v.t === 'nil') return undefined;
    return get(key);
  }
}

export function checkLength(what: string, key: string, actual: number, length: number | IntRange): void {
  if (typeof length === 'number') {
    if (actual !== length) throw new DecodeError(`${what}: field "${key}" must be ${length} bytes, got ${actual}`);
  } else if (actual < length.min || actual > length.max) {
    throw new DecodeError(`${what}: field "${key}" must be ${length.min}..${length.max} bytes, got ${actual}`);
  }
}

/** The "type" field of a message, for dispatch before the specific decoder runs. */
export function peekType(bytes: Uint8Array, what: string): { type: string; fields: Fields } {
  const fields = Fields.fromBytes(bytes, what);
  return { type: fields.str('type', 64), fields };
}
