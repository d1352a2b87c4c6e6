/**
 * The key of a `--state DIR` (docs/PROTOCOL.md 6.5, "--state directories"): kdf.json holds the
 * Argon2id params and the random data key D wrapped by the password key; every other file is sealed
 * under D. A kdf.json written before Argon2id (PBKDF2 params and a check value; the PBKDF2 output K
 * sealed every file) is migrated on the next open with the right password, crash-safe:
 *   1. kdf.json is replaced by the new format plus `legacy` (the old params and check value);
 *   2. every sealed file (`*.bin`) that does not open under D is opened under K and replaced, sealed under D;
 *   3. kdf.json is replaced without `legacy`.
 * An open that finds `legacy` derives both keys and finishes 2-3; a crash anywhere leaves a
 * directory that opens. Files are replaced atomically (writeAtomic).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  AuthError,
  cellOpen,
  cellSeal,
  checkKdfParams,
  checkLegacyKdfParams,
  deriveLegacyStorageKey,
  deriveStorageKey,
  fromBase64url,
  newDataKey,
  newKdfParams,
  toBase64url,
  unwrapDataKey,
  utf8Decode,
  utf8Encode,
  wrapDataKey,
  type KdfParams,
  type LegacyKdfParams,
  type SymmetricKey,
} from '../crypto/index.ts';
import { readOptional, StateDirError, writeAtomic } from './state-dir.ts';

/** Check value of kdf.json before Argon2id (legacy format). */
const LEGACY_CHECK_TEXT = 'zeroroom cli state v1';
const LEGACY_CHECK_CONTEXT = utf8Encode('meta/check');
/** Sealed files' Secure Cell context (the same rule as StateDir's readSealed/writeSealed). */
const fileContext = (name: string): Uint8Array => utf8Encode(`zeroroom-cli/${name}`);

interface Legacy {
  readonly params: LegacyKdfParams;
  readonly check: Uint8Array;
}

type Meta = { kind: 'argon2id'; params: KdfParams; wrapped: Uint8Array; legacy: Legacy | null } | ({ kind: 'legacy' } & Legacy);

/** Opens (or creates) DIR's key; a wrong password is 'state.password', a malformed kdf.json 'state.corrupt'. */
export async function openStateKey(dir: string, password: string): Promise<SymmetricKey> {
  const metaPath = path.join(dir, 'kdf.json');
  const text = await readOptional(metaPath);
  if (text === null) {
    const params = newKdfParams();
    const dataKey = newDataKey();
    await writeMeta(metaPath, params, wrapDataKey(await deriveStorageKey(password, params), dataKey), null);
    return dataKey;
  }
  const meta = parseMeta(utf8Decode(text));
  if (meta.kind === 'legacy') {
    const oldKey = await openLegacy(dir, password, meta);
    const params = newKdfParams();
    const dataKey = newDataKey();
    const wrapped = wrapDataKey(await deriveStorageKey(password, params), dataKey);
    await writeMeta(metaPath, params, wrapped, meta); // step 1
    await finishMigration(dir, metaPath, params, wrapped, dataKey, oldKey);
    return dataKey;
  }
  const passwordKey = await deriveStorageKey(password, meta.params);
  let dataKey: SymmetricKey;
  try {
    dataKey = unwrapDataKey(passwordKey, meta.wrapped);
  } catch (e) {
    if (e instanceof AuthError) throw new StateDirError('state.password', `wrong ZEROROOM_PASSWORD for ${dir}`, { cause: e });
    throw e;
  }
  if (meta.legacy !== null) {
    // A migration was interrupted: finish it (the password opened the new key, so it is the old one too).
    const oldKey = await openLegacy(dir, password, meta.legacy, 'state.corrupt');
    await finishMigration(dir, metaPath, meta.params, meta.wrapped, dataKey, oldKey);
  }
  return dataKey;
}

async function openLegacy(
  dir: string,
  password: string,
  legacy: Legacy,
  wrong: 'state.password' | 'state.corrupt' = 'state.password',
): Promise<SymmetricKey> {
  const key = await deriveLegacyStorageKey(password, legacy.params);
  let text: string;
  try {
    text = utf8Decode(cellOpen(key, legacy.check, LEGACY_CHECK_CONTEXT));
  } catch (e) {
    if (e instanceof AuthError) throw new StateDirError(wrong, `wrong ZEROROOM_PASSWORD for ${dir} (legacy key)`, { cause: e });
    throw e;
  }
  if (text !== LEGACY_CHECK_TEXT) throw new StateDirError('state.corrupt', `${dir}/kdf.json: wrong check value`);
  return key;
}

/** Steps 2 and 3: every sealed file under the data key, then kdf.json without `legacy`. */
async function finishMigration(
  dir: string,
  metaPath: string,
  params: KdfParams,
  wrapped: Uint8Array,
  dataKey: SymmetricKey,
  oldKey: SymmetricKey,
): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile() || !e.name.endsWith('.bin')) continue;
    const file = path.join(dir, e.name);
    const sealed = await readOptional(file);
    if (sealed === null) continue;
    const ctx = fileContext(e.name);
    try {
      cellOpen(dataKey, sealed, ctx);
      continue; // moved before an interruption
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
    }
    let plain: Uint8Array;
    try {
      plain = cellOpen(oldKey, sealed, ctx);
    } catch (err) {
      if (err instanceof AuthError)
        throw new StateDirError('state.corrupt', `${e.name} opens under neither key (tampered?)`, { cause: err });
      throw err;
    }
    await writeAtomic(file, cellSeal(dataKey, plain, ctx));
  }
  await writeMeta(metaPath, params, wrapped, null);
}

async function writeMeta(metaPath: string, params: KdfParams, wrapped: Uint8Array, legacy: Legacy | null): Promise<void> {
  const json = {
    alg: params.alg,
    memoryKiB: params.memoryKiB,
    passes: params.passes,
    parallelism: params.parallelism,
    salt: toBase64url(params.salt),
    key: toBase64url(wrapped),
    ...(legacy !== null
      ? { legacy: { iterations: legacy.params.iterations, salt: toBase64url(legacy.params.salt), check: toBase64url(legacy.check) } }
      : {}),
  };
  await writeAtomic(metaPath, utf8Encode(JSON.stringify(json) + '\n'));
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StateDirError('state.corrupt', `${what} is not an object`);
  return v as Record<string, unknown>;
}

function only(o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new StateDirError('state.corrupt', `${what}: unknown field ${k}`);
}

function b64(o: Record<string, unknown>, name: string, what: string): Uint8Array {
  const v = o[name];
  if (typeof v !== 'string') throw new StateDirError('state.corrupt', `${what}: ${name} missing`);
  try {
    return fromBase64url(v);
  } catch (e) {
    throw new StateDirError('state.corrupt', `${what}: ${name} is not base64url`, { cause: e });
  }
}

/** crypto's strict, bounded decoder (KdfParamsError, crypto.kdf-params): a tampered file can neither weaken nor stall the unlock. */
function kdf<T>(check: (p: unknown) => asserts p is T, p: unknown): T {
  check(p);
  return p;
}

function legacyOf(o: Record<string, unknown>, what: string): Legacy {
  const params = kdf(checkLegacyKdfParams, { alg: 'pbkdf2-sha256', iterations: o.iterations, salt: b64(o, 'salt', what) });
  return { params, check: b64(o, 'check', what) };
}

/** The strict decoder of kdf.json: the Argon2id format (with `legacy` mid-migration) or the legacy one. */
export function parseMeta(text: string): Meta {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StateDirError('state.corrupt', 'kdf.json is not JSON', { cause: e });
  }
  const o = object(raw, 'kdf.json');
  if (o.alg === 'pbkdf2-sha256') {
    only(o, ['alg', 'iterations', 'salt', 'check'], 'kdf.json');
    return { kind: 'legacy', ...legacyOf(o, 'kdf.json') };
  }
  only(o, ['alg', 'memoryKiB', 'passes', 'parallelism', 'salt', 'key', 'legacy'], 'kdf.json');
  const params = kdf(checkKdfParams, {
    alg: o.alg,
    memoryKiB: o.memoryKiB,
    passes: o.passes,
    parallelism: o.parallelism,
    salt: b64(o, 'salt', 'kdf.json'),
  });
  let legacy: Legacy | null = null;
  if (o.legacy !== undefined) {
    const l = object(o.legacy, 'kdf.json legacy');
    only(l, ['iterations', 'salt', 'check'], 'kdf.json legacy');
    legacy = legacyOf(l, 'kdf.json legacy');
  }
  return { kind: 'argon2id', params, wrapped: b64(o, 'key', 'kdf.json'), legacy };
}
