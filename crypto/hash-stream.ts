/**
 * SHA-256 over data that arrives in pieces (a file read slice by slice), so no caller ever holds a
 * whole file to hash it. hash-wasm (WebAssembly, the same code in Node and in browsers; also our
 * Argon2id) does the work; `digest` ends the stream and hands back a fresh copy.
 */
import { createSHA256 } from 'hash-wasm';
import { copyBytes, requireBytes, type Bytes } from './bytes.ts';
import { InputError } from './errors.ts';

export interface Sha256Stream {
  update(bytes: Uint8Array): void;
  /** The hash of everything given to `update`; the stream cannot be used afterwards. */
  digest(): Bytes;
}

export async function sha256Stream(): Promise<Sha256Stream> {
  const h = await createSHA256();
  h.init();
  let done = false;
  return {
    update(bytes) {
      requireBytes(bytes, 'bytes');
      if (done) throw new InputError('sha256 stream: update after digest');
      h.update(bytes);
    },
    digest() {
      if (done) throw new InputError('sha256 stream: digest called twice');
      done = true;
      return copyBytes(h.digest('binary'));
    },
  };
}
