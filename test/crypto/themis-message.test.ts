import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  asEcPrivateKey,
  asEcPublicKey,
  AuthError,
  concatBytes,
  EC_KEY_LENGTH,
  fromBase64url,
  generateIdentity,
  initCrypto,
  InputError,
  KeyError,
  openFrom,
  sealTo,
  sign,
  utf8Decode,
  utf8Encode,
  verify,
  type EcPrivateKey,
  type EcPublicKey,
  type IdentityKeyPair,
} from '../../crypto/index.ts';
import vectors from '../vectors/themis.json' with { type: 'json' };
import { expectThrows, flipByte } from './expect-error.ts';

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

let alice: IdentityKeyPair;
let bob: IdentityKeyPair;
let eve: IdentityKeyPair;

beforeAll(async () => {
  await initCrypto();
  alice = generateIdentity();
  bob = generateIdentity();
  eve = generateIdentity();
});

describe('identity keys', () => {
  it('generates 45-byte Themis EC keys (UEC2 / REC2) in plain buffers, different each time', () => {
    expect(alice.publicKey.length).toBe(EC_KEY_LENGTH);
    expect(alice.privateKey.length).toBe(EC_KEY_LENGTH);
    expect(utf8Decode(alice.publicKey.subarray(0, 4))).toBe('UEC2');
    expect(utf8Decode(alice.privateKey.subarray(0, 4))).toBe('REC2');
    expect(alice.publicKey.buffer).toBeInstanceOf(ArrayBuffer);
    expect(alice.publicKey).not.toEqual(bob.publicKey);
  });
  it('asEcPublicKey / asEcPrivateKey accept valid keys and copy them', () => {
    const pub = asEcPublicKey(alice.publicKey);
    expect(pub).toEqual(alice.publicKey);
    expect(pub).not.toBe(alice.publicKey);
    expect(asEcPrivateKey(alice.privateKey)).toEqual(alice.privateKey);
  });
  it('reject wrong length, wrong kind, bad CRC and non-bytes', () => {
    expectThrows(() => asEcPublicKey(alice.publicKey.subarray(0, 44)), KeyError, 'crypto.key', 'publicKey');
    expectThrows(() => asEcPublicKey(alice.privateKey), KeyError, 'crypto.key');
    expectThrows(() => asEcPrivateKey(alice.publicKey), KeyError, 'crypto.key');
    expectThrows(() => asEcPublicKey(flipByte(alice.publicKey, 10, 1)), KeyError, 'crypto.key', 'invalid');
    expectThrows(() => asEcPublicKey(flipByte(alice.publicKey, 30, 1)), KeyError, 'crypto.key');
    expectThrows(() => asEcPrivateKey(new Uint8Array(32)), KeyError, 'crypto.key');
    expectThrows(() => asEcPublicKey('key' as unknown as Uint8Array), InputError, 'crypto.input');
  });
});

describe('sign / verify', () => {
  it('round-trips and the signed form carries the message in clear', () => {
    const m = utf8Encode('member list v7');
    const signed = sign(alice.privateKey, m);
    expect(verify(alice.publicKey, signed)).toEqual(m);
    expect(Buffer.from(signed).includes(Buffer.from(m))).toBe(true);
  });
  it('rejects a signature by someone else', () => {
    const signed = sign(eve.privateKey, utf8Encode('hi'));
    expectThrows(() => verify(alice.publicKey, signed), AuthError, 'crypto.auth');
  });
  it('rejects trailing bytes (Themis alone would accept them)', () => {
    const signed = sign(alice.privateKey, utf8Encode('hi'));
    expectThrows(() => verify(alice.publicKey, concatBytes(signed, new Uint8Array([0]))), AuthError, 'crypto.auth', 'lengths');
  });
  it('rejects an encrypted message passed as a signed one', () => {
    const sealed = sealTo(alice.privateKey, bob.publicKey, utf8Encode('hi'));
    expectThrows(() => verify(alice.publicKey, sealed), AuthError, 'crypto.auth');
  });
  it('rejects bad input: empty/oversized message, wrong keys, garbage', () => {
    expectThrows(() => sign(alice.privateKey, new Uint8Array(0)), InputError, 'crypto.input', 'message');
    expectThrows(() => sign(alice.publicKey as unknown as EcPrivateKey, utf8Encode('x')), KeyError, 'crypto.key', 'privateKey');
    expectThrows(() => verify(alice.privateKey as unknown as EcPublicKey, sign(alice.privateKey, utf8Encode('x'))), KeyError, 'crypto.key');
    for (const junk of [new Uint8Array(0), new Uint8Array(11), new Uint8Array(200)]) {
      expectThrows(() => verify(alice.publicKey, junk), AuthError, 'crypto.auth');
    }
    expectThrows(() => verify(alice.publicKey, 'x' as unknown as Uint8Array), InputError, 'crypto.input');
  });
  it('any single-byte change or truncation is rejected (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (m, pos, mask) => {
        const signed = sign(alice.privateKey, m);
        expect(verify(alice.publicKey, signed)).toEqual(m);
        expectThrows(() => verify(alice.publicKey, flipByte(signed, pos % signed.length, mask)), AuthError, 'crypto.auth');
        expectThrows(() => verify(alice.publicKey, signed.subarray(0, pos % signed.length)), AuthError, 'crypto.auth');
      }),
      { numRuns: 60 },
    );
  });
  it('verifies a message signed by another Themis implementation (GoThemis test vector)', () => {
    const v = vectors.secureMessageSigned;
    const pub = asEcPublicKey(b64(v.publicBase64));
    expect(utf8Decode(verify(pub, b64(v.signedBase64)))).toBe(v.messageUtf8);
    expectThrows(() => verify(alice.publicKey, b64(v.signedBase64)), AuthError, 'crypto.auth');
  });
});

describe('sealTo / openFrom (Secure Message encrypt)', () => {
  it('round-trips between two identities and hides the plaintext', () => {
    const m = utf8Encode('room key for you');
    const sealed = sealTo(alice.privateKey, bob.publicKey, m);
    expect(Buffer.from(sealed).includes(Buffer.from(m))).toBe(false);
    expect(openFrom(bob.privateKey, alice.publicKey, sealed)).toEqual(m);
    expect(sealTo(alice.privateKey, bob.publicKey, m)).not.toEqual(sealed); // random IV
  });
  it('rejects the wrong recipient key and the wrong claimed sender', () => {
    const sealed = sealTo(alice.privateKey, bob.publicKey, utf8Encode('x'));
    expectThrows(() => openFrom(eve.privateKey, alice.publicKey, sealed), AuthError, 'crypto.auth');
    expectThrows(() => openFrom(bob.privateKey, eve.publicKey, sealed), AuthError, 'crypto.auth');
  });
  it('rejects a merely signed message (readable by anyone) as if it were sealed', () => {
    const signed = sign(alice.privateKey, utf8Encode('public announcement'));
    expectThrows(() => openFrom(bob.privateKey, alice.publicKey, signed), AuthError, 'crypto.auth', 'not an EC-encrypted');
  });
  it('rejects trailing bytes and bad input', () => {
    const sealed = sealTo(alice.privateKey, bob.publicKey, utf8Encode('x'));
    expectThrows(() => openFrom(bob.privateKey, alice.publicKey, concatBytes(sealed, new Uint8Array([0]))), AuthError, 'crypto.auth');
    expectThrows(() => sealTo(alice.privateKey, bob.publicKey, new Uint8Array(0)), InputError, 'crypto.input', 'plaintext');
    expectThrows(
      () => sealTo(alice.publicKey as unknown as EcPrivateKey, bob.publicKey, utf8Encode('x')),
      KeyError,
      'crypto.key',
      'senderPrivate',
    );
    expectThrows(
      () => sealTo(alice.privateKey, bob.privateKey as unknown as EcPublicKey, utf8Encode('x')),
      KeyError,
      'crypto.key',
      'recipientPublic',
    );
    expectThrows(
      () => openFrom(bob.publicKey as unknown as EcPrivateKey, alice.publicKey, sealed),
      KeyError,
      'crypto.key',
      'recipientPrivate',
    );
    expectThrows(() => openFrom(bob.privateKey, new Uint8Array(45) as EcPublicKey, sealed), KeyError, 'crypto.key', 'senderPublic');
    expectThrows(() => openFrom(bob.privateKey, alice.publicKey, new Uint8Array(0)), AuthError, 'crypto.auth');
  });
  it('any single-byte change or truncation is rejected (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (m, pos, mask) => {
        const sealed = sealTo(alice.privateKey, bob.publicKey, m);
        expect(openFrom(bob.privateKey, alice.publicKey, sealed)).toEqual(m);
        expectThrows(
          () => openFrom(bob.privateKey, alice.publicKey, flipByte(sealed, pos % sealed.length, mask)),
          AuthError,
          'crypto.auth',
        );
        expectThrows(() => openFrom(bob.privateKey, alice.publicKey, sealed.subarray(0, pos % sealed.length)), AuthError, 'crypto.auth');
      }),
      { numRuns: 40 },
    );
  });
  it('opens a message encrypted by another Themis implementation (JavaThemis example)', () => {
    const v = vectors.secureMessageEncrypted;
    const priv = asEcPrivateKey(b64(v.recipientPrivateBase64));
    const pub = asEcPublicKey(b64(v.senderPublicBase64));
    expect(utf8Decode(openFrom(priv, pub, b64(v.ciphertextBase64)))).toBe(v.plaintextUtf8);
    expectThrows(() => openFrom(bob.privateKey, pub, b64(v.ciphertextBase64)), AuthError, 'crypto.auth');
  });
  it('keys survive a base64url round trip (storage / wire form)', () => {
    const back = fromBase64url(Buffer.from(bob.publicKey).toString('base64url'), EC_KEY_LENGTH);
    const sealed = sealTo(alice.privateKey, asEcPublicKey(back), utf8Encode('x'));
    expect(utf8Decode(openFrom(bob.privateKey, alice.publicKey, sealed))).toBe('x');
  });
});
