/**
 * AES-256-GCM for bulk data (files, docs/PROTOCOL.md 5.17.2), behind an injected backend: WebCrypto
 * in browsers (`webCryptoAead`), node:crypto in Node (signaling/aead-node.ts, synchronous and
 * faster for many small calls). Both produce the same bytes. The wrapper checks every length before
 * the backend runs and fails closed: a ciphertext that does not authenticate raises AuthError and no
 * plaintext is returned. Nonces are the caller's (file chunks use their index under a per-file key,
 * which is unique by construction); this module never reuses a key across files itself.
 */
import type { Brand } from './brand.ts';
import { copyBytes, requireBytes, type Bytes } from './bytes.ts';
import { AuthError, InputError, KeyError } from './errors.ts';
import { systemRandom, type RandomBytes } from './random.ts';

export type AeadKey = Brand<Bytes, 'AeadKey'>;
export const AEAD_KEY_LENGTH = 32;
export const AEAD_NONCE_LENGTH = 12;
export const AEAD_TAG_LENGTH = 16;
/** Largest plaintext one call takes (a file chunk is 64 KiB; this leaves room). */
export const AEAD_MAX_PLAINTEXT = 16 * 1024 * 1024;

/** What a platform provides: raw AES-256-GCM with a 16-byte tag appended to the ciphertext. */
export interface AeadBackend {
  readonly name: string;
  seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> | Uint8Array;
  /** Throws (any error) when the tag does not verify. */
  open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> | Uint8Array;
}

export function asAeadKey(bytes: Uint8Array, name = 'aead key'): AeadKey {
  requireBytes(bytes, name);
  if (bytes.length !== AEAD_KEY_LENGTH) throw new KeyError(`${name}: expected ${AEAD_KEY_LENGTH} bytes, got ${bytes.length}`);
  return copyBytes(bytes) as AeadKey;
}

export function generateAeadKey(random: RandomBytes = systemRandom): AeadKey {
  const raw = random(AEAD_KEY_LENGTH);
  const key = asAeadKey(raw, 'generated key');
  raw.fill(0);
  return key;
}

function check(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, data: Uint8Array, dataName: string): void {
  requireBytes(key, 'key');
  if (key.length !== AEAD_KEY_LENGTH) throw new KeyError(`key: expected ${AEAD_KEY_LENGTH} bytes, got ${key.length}`);
  requireBytes(nonce, 'nonce');
  if (nonce.length !== AEAD_NONCE_LENGTH) throw new InputError(`nonce: expected ${AEAD_NONCE_LENGTH} bytes, got ${nonce.length}`);
  requireBytes(ad, 'ad');
  requireBytes(data, dataName);
  if (data.length > AEAD_MAX_PLAINTEXT + AEAD_TAG_LENGTH) throw new InputError(`${dataName}: ${data.length} bytes is above the limit`);
}

export async function aeadSeal(
  backend: AeadBackend,
  key: AeadKey,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
): Promise<Bytes> {
  check(key, nonce, ad, plaintext, 'plaintext');
  if (plaintext.length > AEAD_MAX_PLAINTEXT) throw new InputError(`plaintext: ${plaintext.length} bytes is above the limit`);
  const out = await backend.seal(key, nonce, ad, plaintext);
  if (out.length !== plaintext.length + AEAD_TAG_LENGTH) throw new InputError(`${backend.name}: sealed length ${out.length} is wrong`);
  return out instanceof Uint8Array && out.byteOffset === 0 && out.buffer.byteLength === out.length && out.buffer instanceof ArrayBuffer
    ? (out as Bytes)
    : copyBytes(out);
}

export async function aeadOpen(backend: AeadBackend, key: AeadKey, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Promise<Bytes> {
  check(key, nonce, ad, sealed, 'sealed');
  if (sealed.length < AEAD_TAG_LENGTH) throw new AuthError(`sealed: shorter than the ${AEAD_TAG_LENGTH}-byte tag`);
  let out: Uint8Array;
  try {
    out = await backend.open(key, nonce, ad, sealed);
  } catch (e) {
    throw new AuthError(`aead: authentication failed (tampered, truncated, wrong key, nonce or associated data)`, { cause: e });
  }
  if (out.length !== sealed.length - AEAD_TAG_LENGTH) throw new AuthError(`${backend.name}: opened length ${out.length} is wrong`);
  return copyBytes(out);
}

/** An ArrayBuffer-backed view (WebCrypto refuses views of a SharedArrayBuffer); copies only when needed. */
const plain = (b: Uint8Array): Bytes => (b.buffer instanceof ArrayBuffer ? (b as Bytes) : copyBytes(b));

/**
 * Imported keys, by the key array they came from (an AeadKey is never changed after it is made):
 * importing once per file instead of once per chunk. Non-extractable; collected with the array.
 */
/** WebCrypto's key type, named through the API (Node's types have no global CryptoKey). */
type ImportedKey = Awaited<ReturnType<typeof globalThis.crypto.subtle.importKey>>;
const imported = new WeakMap<Uint8Array, Promise<ImportedKey>>();
function importAes(key: Uint8Array): Promise<ImportedKey> {
  let k = imported.get(key);
  if (k === undefined) {
    k = globalThis.crypto.subtle.importKey('raw', plain(key), { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
    imported.set(key, k);
  }
  return k;
}

/** WebCrypto AES-GCM (browsers; Node >= 19 has it too). */
export const webCryptoAead: AeadBackend = {
  name: 'webcrypto',
  async seal(key, nonce, ad, plaintext) {
    const k = await importAes(key);
    return new Uint8Array(
      await globalThis.crypto.subtle.encrypt(
        { name: 'AES-GCM', iv: plain(nonce), additionalData: plain(ad), tagLength: 128 },
        k,
        plain(plaintext),
      ),
    );
  },
  async open(key, nonce, ad, sealed) {
    const k = await importAes(key);
    return new Uint8Array(
      await globalThis.crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: plain(nonce), additionalData: plain(ad), tagLength: 128 },
        k,
        plain(sealed),
      ),
    );
  },
};
