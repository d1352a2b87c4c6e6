/**
 * node:crypto backend of crypto/aead.ts (AES-256-GCM): synchronous, native, and faster than
 * WebCrypto for many 256 KiB calls (no promise and key import per call).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { AeadBackend } from '../crypto/index.ts';

export const nodeAead: AeadBackend = {
  name: 'node:crypto',
  seal(key, nonce, ad, plaintext) {
    const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(ad);
    const head = c.update(plaintext);
    const tail = c.final();
    const out = new Uint8Array(head.length + tail.length + 16);
    out.set(head, 0);
    out.set(tail, head.length);
    out.set(c.getAuthTag(), head.length + tail.length);
    return out;
  },
  open(key, nonce, ad, sealed) {
    const d = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
    d.setAAD(ad);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const head = d.update(sealed.subarray(0, sealed.length - 16));
    const tail = d.final(); // throws when the tag does not verify
    const out = new Uint8Array(head.length + tail.length);
    out.set(head, 0);
    out.set(tail, head.length);
    return out;
  },
};
