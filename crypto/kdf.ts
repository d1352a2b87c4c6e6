import { argon2id } from 'hash-wasm';
import { copyBytes, requireBytes, utf8Encode, wipe, type Bytes } from './bytes.ts';
import { KdfParamsError, InputError } from './errors.ts';
import { systemRandom, type RandomBytes } from './random.ts';
import { asSymmetricKey, cellOpen, cellSeal, generateSymmetricKey, SYMMETRIC_KEY_LENGTH, type SymmetricKey } from './themis.ts';

/**
 * Password-key derivation parameters (docs/PROTOCOL.md 1.5), stored in clear next to the wrapped
 * data key so the cost can be raised later (a new password or new params rewrap one key). Argon2id
 * (RFC 9106, version 0x13) from hash-wasm: WebAssembly, the same code in Node and in the browser,
 * allowed by the CSP's 'wasm-unsafe-eval'.
 */
export interface KdfParams {
  readonly alg: 'argon2id';
  /** Memory in KiB (Argon2's m). */
  readonly memoryKiB: number;
  /** Passes over the memory (Argon2's t). */
  readonly passes: number;
  /** Lanes (Argon2's p); hash-wasm computes them one after the other. */
  readonly parallelism: number;
  readonly salt: Bytes;
}

/**
 * Parameters of stores written before Argon2id: PBKDF2-HMAC-SHA256, whose output was the key of every
 * record. Accepted only to open such a store once and migrate it (PROTOCOL.md 6.4); never created.
 */
export interface LegacyKdfParams {
  readonly alg: 'pbkdf2-sha256';
  readonly iterations: number;
  readonly salt: Bytes;
}

/**
 * Defaults: 64 MiB, 3 passes, 1 lane. Measured with `npm run bench:crypto` on the reference machine
 * (2-core VM): about as long as the former 1.5M-iteration PBKDF2 unlock, inside the 250-500 ms budget.
 */
export const DEFAULT_MEMORY_KIB = 64 * 1024;
export const DEFAULT_PASSES = 3;
export const DEFAULT_PARALLELISM = 1;
/** Bounds of the strict decoder: nothing weaker than the policy, nothing costlier than ~11 default unlocks. */
export const MIN_MEMORY_KIB = 64 * 1024;
export const MAX_MEMORY_KIB = 256 * 1024;
export const MIN_PASSES = 2;
export const MAX_PASSES = 8;
export const MAX_PARALLELISM = 4;
export const SALT_LENGTH = 16;
export const MAX_SALT_LENGTH = 64;
export const MAX_PASSWORD_BYTES = 4096;
/** Legacy PBKDF2 bounds (as before Argon2id). */
export const LEGACY_MIN_ITERATIONS = 600_000;
// At most twice what the old code wrote (1.5M; 2M in older drafts): a tampered meta record or kdf.json
// cannot make an unlock take tens of seconds.
export const LEGACY_MAX_ITERATIONS = 3_000_000;

const KDF_FIELDS = ['alg', 'memoryKiB', 'passes', 'parallelism', 'salt'];
const LEGACY_FIELDS = ['alg', 'iterations', 'salt'];

export function newKdfParams(random: RandomBytes = systemRandom, cost: { memoryKiB?: number; passes?: number } = {}): KdfParams {
  const params: KdfParams = {
    alg: 'argon2id',
    memoryKiB: cost.memoryKiB ?? DEFAULT_MEMORY_KIB,
    passes: cost.passes ?? DEFAULT_PASSES,
    parallelism: DEFAULT_PARALLELISM,
    salt: copyBytes(random(SALT_LENGTH)),
  };
  checkKdfParams(params);
  return params;
}

function fields(params: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new KdfParamsError('kdf params must be an object');
  const p = params as Record<string, unknown>;
  for (const k of Object.keys(p)) if (!allowed.includes(k)) throw new KdfParamsError(`kdf params: unknown field ${k}`);
  return p;
}

function int(p: Record<string, unknown>, name: string, min: number, max: number): number {
  const v = p[name];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new KdfParamsError(`kdf params: ${name} must be an integer`);
  if (v < min) throw new KdfParamsError(`kdf params: ${name} ${v} below the minimum ${min}`);
  if (v > max) throw new KdfParamsError(`kdf params: ${name} ${v} above the maximum ${max}`);
  return v;
}

function salt(p: Record<string, unknown>): void {
  if (!(p.salt instanceof Uint8Array)) throw new KdfParamsError('kdf params: salt must be a Uint8Array');
  if (p.salt.length < SALT_LENGTH || p.salt.length > MAX_SALT_LENGTH) {
    throw new KdfParamsError(`kdf params: salt must be ${SALT_LENGTH}-${MAX_SALT_LENGTH} bytes, got ${p.salt.length}`);
  }
}

/** Throws KdfParamsError unless `params` is exactly a KdfParams inside the bounds of PROTOCOL.md 1.5. */
export function checkKdfParams(params: unknown): asserts params is KdfParams {
  const p = fields(params, KDF_FIELDS);
  if (p.alg !== 'argon2id') throw new KdfParamsError(`kdf params: unsupported alg ${String(p.alg)}`);
  int(p, 'memoryKiB', MIN_MEMORY_KIB, MAX_MEMORY_KIB);
  int(p, 'passes', MIN_PASSES, MAX_PASSES);
  int(p, 'parallelism', 1, MAX_PARALLELISM);
  salt(p);
}

/** Throws KdfParamsError unless `params` is exactly a LegacyKdfParams (PBKDF2, migration only). */
export function checkLegacyKdfParams(params: unknown): asserts params is LegacyKdfParams {
  const p = fields(params, LEGACY_FIELDS);
  if (p.alg !== 'pbkdf2-sha256') throw new KdfParamsError(`kdf params: unsupported alg ${String(p.alg)}`);
  int(p, 'iterations', LEGACY_MIN_ITERATIONS, LEGACY_MAX_ITERATIONS);
  salt(p);
}

/** PBKDF2-HMAC-SHA256 via WebCrypto, no parameter policy: also used for the RFC 7914 vectors. */
export async function pbkdf2Sha256(password: Uint8Array, salt: Uint8Array, iterations: number, length: number): Promise<Bytes> {
  requireBytes(password, 'password');
  requireBytes(salt, 'salt');
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined) throw new KdfParamsError('WebCrypto subtle is unavailable (insecure context?)');
  const base = await subtle.importKey('raw', copyBytes(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: copyBytes(salt), iterations }, base, length * 8);
  return new Uint8Array(bits);
}

/** Argon2id (version 0x13) via hash-wasm, no parameter policy: also used for the reference vectors. */
export async function argon2idRaw(
  password: Uint8Array,
  salt: Uint8Array,
  o: { memoryKiB: number; passes: number; parallelism: number; length: number; secret?: Uint8Array },
): Promise<Bytes> {
  requireBytes(password, 'password');
  requireBytes(salt, 'salt');
  const out = await argon2id({
    password: copyBytes(password),
    salt: copyBytes(salt),
    memorySize: o.memoryKiB,
    iterations: o.passes,
    parallelism: o.parallelism,
    hashLength: o.length,
    ...(o.secret !== undefined ? { secret: copyBytes(o.secret) } : {}),
    outputType: 'binary',
  });
  const copy = copyBytes(out);
  wipe(out);
  return copy;
}

function passwordBytes(password: string): Bytes {
  if (typeof password !== 'string' || password.length === 0) throw new InputError('password must be a non-empty string');
  // NFC so the same password typed on different systems gives the same key.
  const pw = utf8Encode(password.normalize('NFC'));
  if (pw.length > MAX_PASSWORD_BYTES) {
    wipe(pw);
    throw new InputError(`password is longer than ${MAX_PASSWORD_BYTES} bytes`);
  }
  return pw;
}

/** Derives the 32-byte password key (it wraps the data key, PROTOCOL.md 1.5) once per unlock. */
export async function deriveStorageKey(password: string, params: KdfParams): Promise<SymmetricKey> {
  checkKdfParams(params);
  const pw = passwordBytes(password);
  try {
    const raw = await argon2idRaw(pw, params.salt, {
      memoryKiB: params.memoryKiB,
      passes: params.passes,
      parallelism: params.parallelism,
      length: SYMMETRIC_KEY_LENGTH,
    });
    const key = asSymmetricKey(raw, 'derived key');
    wipe(raw);
    return key;
  } finally {
    wipe(pw);
  }
}

/** The key of every record of a store written before Argon2id (PBKDF2), to migrate it (PROTOCOL.md 6.4). */
export async function deriveLegacyStorageKey(password: string, params: LegacyKdfParams): Promise<SymmetricKey> {
  checkLegacyKdfParams(params);
  const pw = passwordBytes(password);
  try {
    const raw = await pbkdf2Sha256(pw, params.salt, params.iterations, SYMMETRIC_KEY_LENGTH);
    const key = asSymmetricKey(raw, 'derived key');
    wipe(raw);
    return key;
  } finally {
    wipe(pw);
  }
}

/** Context of the wrapped data key (web `meta/key`, CLI `kdf.json` "key"). */
export const DATA_KEY_CONTEXT = utf8Encode('meta/key');

/** A new random data key: it seals every record; only its wrapped form is stored. */
export function newDataKey(random: RandomBytes = systemRandom): SymmetricKey {
  return generateSymmetricKey(random);
}

/** cellSeal(passwordKey, dataKey, "meta/key"): the only thing the password key ever seals. */
export function wrapDataKey(passwordKey: SymmetricKey, dataKey: SymmetricKey): Bytes {
  return cellSeal(passwordKey, asSymmetricKey(dataKey, 'data key'), DATA_KEY_CONTEXT);
}

/** The data key; AuthError (crypto.auth) for a wrong password, or a tampered or moved wrapped key. */
export function unwrapDataKey(passwordKey: SymmetricKey, wrapped: Uint8Array): SymmetricKey {
  return asSymmetricKey(cellOpen(passwordKey, wrapped, DATA_KEY_CONTEXT), 'data key');
}
