import { describe, expect, it } from 'vitest';
import {
  asEcPrivateKey,
  asEcPublicKey,
  asSymmetricKey,
  cellOpen,
  cellSeal,
  CryptoError,
  generateIdentity,
  initCrypto,
  NotReadyError,
  openFrom,
  sealTo,
  sign,
  verify,
  type EcPrivateKey,
  type EcPublicKey,
} from '../../crypto/index.ts';
import { expectThrows } from './expect-error.ts';

// One file, one process (vitest forks): this file sees Themis before and after initCrypto().
describe('initCrypto', () => {
  it('every Themis wrapper throws crypto.not-ready before init', () => {
    const key = asSymmetricKey(new Uint8Array(32)); // pure length check, no Themis needed
    const priv = new Uint8Array(45) as EcPrivateKey;
    const pub = new Uint8Array(45) as EcPublicKey;
    const m = new Uint8Array([1]);
    const calls: Array<() => unknown> = [
      () => generateIdentity(),
      () => sign(priv, m),
      () => verify(pub, m),
      () => sealTo(priv, pub, m),
      () => openFrom(priv, pub, m),
      () => cellSeal(key, m, m),
      () => cellOpen(key, m, m),
      () => asEcPublicKey(pub),
      () => asEcPrivateKey(priv),
    ];
    for (const call of calls) {
      const err = expectThrows(call, NotReadyError, 'crypto.not-ready');
      expect(err).toBeInstanceOf(CryptoError);
    }
  });

  it('is idempotent, restores fetch and leaves no process handlers behind', async () => {
    const fetchBefore = globalThis.fetch;
    const rejectionBefore = process.listeners('unhandledRejection');
    const exceptionBefore = process.listeners('uncaughtException');
    const first = initCrypto();
    const second = initCrypto({ wasmUrl: 'ignored-when-cached' });
    expect(second).toBe(first);
    await Promise.all([first, second]);
    expect(globalThis.fetch).toBe(fetchBefore);
    expect(process.listeners('unhandledRejection')).toEqual(rejectionBefore);
    expect(process.listeners('uncaughtException')).toEqual(exceptionBefore);
    await initCrypto();
  });

  it('Themis works after init', () => {
    const id = generateIdentity();
    const m = new Uint8Array([1, 2, 3]);
    expect(verify(id.publicKey, sign(id.privateKey, m))).toEqual(m);
  });
});
