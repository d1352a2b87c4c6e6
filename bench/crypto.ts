/**
 * npm run bench:crypto — issue 2 item 7. One run prints:
 *  - seal+open per second for 256 B and 64 KiB with Themis Secure Cell (Seal, key mode) and NaCl
 *    secretbox (tweetnacl), each with its ratio to Node's native AES-256-GCM on the same size;
 *  - Secure Message sign / verify (and encrypt / decrypt) per second;
 *  - the unlock cost: deriveStorageKey (Argon2id) with the default KdfParams, and its ratio to the
 *    former PBKDF2 unlock (1.5M iterations).
 * Each figure is a time-boxed loop (~0.8 s) after a warm-up, single-threaded, on whatever else the
 * machine is doing: compare ratios, not absolute numbers, across machines.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import os from 'node:os';
import {
  cellOpen,
  cellSeal,
  deriveLegacyStorageKey,
  deriveStorageKey,
  generateIdentity,
  generateSecretboxKey,
  generateSymmetricKey,
  initCrypto,
  newKdfParams,
  openFrom,
  randomNonce,
  sealTo,
  secretbox,
  secretboxOpen,
  sign,
  utf8Encode,
  verify,
  type LegacyKdfParams,
} from '../crypto/index.ts';

/** The unlock before Argon2id (PROTOCOL.md 1.5): the baseline of the unlock ratio. */
const FORMER_PBKDF2_ITERATIONS = 1_500_000;

const SLICE_MS = 800;

/** Runs `op` repeatedly for ~SLICE_MS and returns operations per second. */
function rate(op: () => void): number {
  for (let i = 0; i < 20; i++) op(); // warm-up (JIT, wasm heap growth)
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < SLICE_MS) {
    for (let i = 0; i < 10; i++) op();
    n += 10;
    elapsed = performance.now() - start;
  }
  return (n * 1000) / elapsed;
}

function aesGcmSealOpen(key: Buffer, plaintext: Uint8Array): () => void {
  return () => {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const sealed = Buffer.concat([c.update(plaintext), c.final()]);
    const tag = c.getAuthTag();
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAuthTag(tag);
    const opened = Buffer.concat([d.update(sealed), d.final()]);
    if (opened.length !== plaintext.length) throw new Error('aes-gcm round trip failed');
  };
}

const fmt = (x: number): string => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));
const mbps = (opsPerSec: number, size: number): string => `${((opsPerSec * size) / 1e6).toFixed(1)} MB/s`;

async function main(): Promise<void> {
  const t0 = performance.now();
  const initStart = performance.now();
  await initCrypto();
  const initMs = performance.now() - initStart;
  console.log(`ZeroRoom crypto bench — node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu?'} x${os.cpus().length}`);
  console.log(`wasm-themis init: ${initMs.toFixed(0)} ms\n`);

  const context = utf8Encode('room:bench|epoch:1');
  const cellKey = generateSymmetricKey();
  const boxKey = generateSecretboxKey();
  const aesKey = randomBytes(32);

  console.log('seal+open per second (one seal and one open = 1 op); ratio = this / Node AES-256-GCM');
  console.log('size    | AES-256-GCM (node)     | Secure Cell Seal              | secretbox (tweetnacl)');
  for (const size of [256, 64 * 1024]) {
    const plaintext = randomBytes(size);
    const aes = rate(aesGcmSealOpen(aesKey, plaintext));
    const cell = rate(() => {
      const sealed = cellSeal(cellKey, plaintext, context);
      cellOpen(cellKey, sealed, context);
    });
    const sbox = rate(() => {
      const nonce = randomNonce();
      secretboxOpen(secretbox(plaintext, nonce, boxKey), nonce, boxKey);
    });
    const label = size === 256 ? '256 B ' : '64 KiB';
    console.log(
      `${label}  | ${fmt(aes).padStart(8)}/s ${mbps(aes, size).padStart(11)} | ` +
        `${fmt(cell).padStart(8)}/s ${mbps(cell, size).padStart(10)} x${(cell / aes).toFixed(3)} | ` +
        `${fmt(sbox).padStart(8)}/s ${mbps(sbox, size).padStart(10)} x${(sbox / aes).toFixed(3)}`,
    );
  }

  const alice = generateIdentity();
  const bob = generateIdentity();
  const msg = randomBytes(256);
  const signed = sign(alice.privateKey, msg);
  const sealed = sealTo(alice.privateKey, bob.publicKey, msg);
  console.log('\nSecure Message (EC P-256), 256 B message');
  console.log(`  sign:    ${fmt(rate(() => sign(alice.privateKey, msg)))}/s`);
  console.log(`  verify:  ${fmt(rate(() => verify(alice.publicKey, signed)))}/s`);
  console.log(`  encrypt: ${fmt(rate(() => sealTo(alice.privateKey, bob.publicKey, msg)))}/s`);
  console.log(`  decrypt: ${fmt(rate(() => openFrom(bob.privateKey, alice.publicKey, sealed)))}/s`);
  console.log(`  identity key pair: ${fmt(rate(() => generateIdentity()))}/s`);

  // Unlock: the Argon2id password key of the default params, next to the former PBKDF2 unlock
  // (1.5M iterations, WebCrypto), interleaved so both see the same machine load.
  const params = newKdfParams();
  const legacy: LegacyKdfParams = { alg: 'pbkdf2-sha256', iterations: FORMER_PBKDF2_ITERATIONS, salt: params.salt };
  const argon: number[] = [];
  const pbkdf2: number[] = [];
  await deriveStorageKey('correct horse battery staple', params); // warm-up: wasm compile
  for (let i = 0; i < 5; i++) {
    let s = performance.now();
    await deriveStorageKey('correct horse battery staple', params);
    argon.push(performance.now() - s);
    s = performance.now();
    await deriveLegacyStorageKey('correct horse battery staple', legacy);
    pbkdf2.push(performance.now() - s);
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const runs = (xs: number[]): string => xs.map((t) => t.toFixed(0)).join(', ');
  console.log(
    `\nunlock: deriveStorageKey, Argon2id (hash-wasm) m=${params.memoryKiB / 1024} MiB t=${params.passes} p=${params.parallelism}`,
  );
  console.log(`  median ${med(argon).toFixed(0)} ms (runs: ${runs(argon)} ms; target 250-500 ms)`);
  console.log(
    `  former PBKDF2-HMAC-SHA256 unlock, ${FORMER_PBKDF2_ITERATIONS.toLocaleString('en-US')} iterations: median ${med(pbkdf2).toFixed(0)} ms (runs: ${runs(pbkdf2)} ms)`,
  );
  console.log(`  ratio Argon2id / PBKDF2: x${(med(argon) / med(pbkdf2)).toFixed(2)} (medians)`);
  console.log(`\ntotal bench time ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

await main();
