import { copyBytes, requireBytes, utf8Encode, wipe, type Bytes } from './bytes.ts';
import { KdfParamsError, InputError } from './errors.ts';
import { systemRandom, type RandomBytes } from './random.ts';
import { asSymmetricKey, SYMMETRIC_KEY_LENGTH, type SymmetricKey } from './themis.ts';

/**
 * Storage-key derivation parameters, stored next to the encrypted data so the cost can be raised
 * later (re-encrypt under new params on unlock). PBKDF2-HMAC-SHA256 through WebCrypto: the same
 * native code path in Node and in the browser, no wasm needed before unlock.
 */
export interface KdfParams {
  alg: 'pbkdf2-sha256';
  iterations: number;
  salt: Bytes;
}

/**
 * Measured on the reference machine (2-core AMD EPYC VM, Node 20, WebCrypto PBKDF2): 170-200 ns per
 * iteration when idle, 270-310 ns when the other core is busy, so 1,500,000 iterations cost ~260 ms
 * idle to ~450 ms loaded: inside the 250-500 ms unlock budget (docs/PROTOCOL.md section 1).
 * MIN refuses params a corrupted or hostile store could use to weaken the key; MAX refuses params
 * that would hang the unlock.
 */
export const DEFAULT_ITERATIONS = 1_500_000;
export const MIN_ITERATIONS = 600_000; // OWASP 2023 floor for PBKDF2-HMAC-SHA256
export const MAX_ITERATIONS = 100_000_000;
export const SALT_LENGTH = 16;
export const MAX_SALT_LENGTH = 64;
export const MAX_PASSWORD_BYTES = 4096;

export function newKdfParams(random: RandomBytes = systemRandom, iterations = DEFAULT_ITERATIONS): KdfParams {
  const params: KdfParams = { alg: 'pbkdf2-sha256', iterations, salt: copyBytes(random(SALT_LENGTH)) };
  checkKdfParams(params);
  return params;
}

/** Throws KdfParamsError unless `params` is a well-formed, strong enough KdfParams. */
export function checkKdfParams(params: unknown): asserts params is KdfParams {
  if (typeof params !== 'object' || params === null) throw new KdfParamsError('kdf params must be an object');
  const p = params as Record<string, unknown>;
  if (p.alg !== 'pbkdf2-sha256') throw new KdfParamsError(`kdf params: unsupported alg ${String(p.alg)}`);
  const it = p.iterations;
  if (typeof it !== 'number' || !Number.isSafeInteger(it)) throw new KdfParamsError('kdf params: iterations must be an integer');
  if (it < MIN_ITERATIONS) throw new KdfParamsError(`kdf params: iterations ${it} below the minimum ${MIN_ITERATIONS}`);
  if (it > MAX_ITERATIONS) throw new KdfParamsError(`kdf params: iterations ${it} above the maximum ${MAX_ITERATIONS}`);
  if (!(p.salt instanceof Uint8Array)) throw new KdfParamsError('kdf params: salt must be a Uint8Array');
  if (p.salt.length < SALT_LENGTH || p.salt.length > MAX_SALT_LENGTH) {
    throw new KdfParamsError(`kdf params: salt must be ${SALT_LENGTH}-${MAX_SALT_LENGTH} bytes, got ${p.salt.length}`);
  }
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

/** Derives the 32-byte storage key (a Secure Cell key) from the user's password, once per unlock. */
export async function deriveStorageKey(password: string, params: KdfParams): Promise<SymmetricKey> {
  checkKdfParams(params);
  if (typeof password !== 'string' || password.length === 0) throw new InputError('password must be a non-empty string');
  // NFC so the same password typed on different systems gives the same key.
  const pw = utf8Encode(password.normalize('NFC'));
  if (pw.length > MAX_PASSWORD_BYTES) throw new InputError(`password is longer than ${MAX_PASSWORD_BYTES} bytes`);
  try {
    const raw = await pbkdf2Sha256(pw, params.salt, params.iterations, SYMMETRIC_KEY_LENGTH);
    const key = asSymmetricKey(raw, 'derived key');
    wipe(raw);
    return key;
  } finally {
    wipe(pw);
  }
}
