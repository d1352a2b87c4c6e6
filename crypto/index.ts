// The crypto API every other part codes against (docs/PROTOCOL.md section 1).
export * from './errors.ts';
export * from './random.ts';
export * from './bytes.ts';
export * from './hash.ts';
export { initCrypto } from './init.ts';
export * from './themis.ts';
export * from './nacl.ts';
export * from './kdf.ts';
export * from './aead.ts';
export * from './subkey.ts';
export * from './hash-stream.ts';
