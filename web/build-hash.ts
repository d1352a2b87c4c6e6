/**
 * The build hash of the web app (docs/PROTOCOL.md section 8, "Build hash"): SHA-256 over the
 * `sha256sum`-style list of every built file, sorted by path, with the hash itself replaced by a
 * placeholder in the one file that shows it (Settings). web/vite.config.ts computes it at build time,
 * writes it to dist/build-hash.txt and puts it into the bundle; anyone can recompute it from the
 * files an origin serves with buildHashOfFiles (or with sha256sum, see the section).
 * Pure: no Node or DOM types, so the build config, the tests and an auditor's script share it.
 */
import { toHex, utf8Encode } from '../crypto/bytes.ts';
import { sha256 } from '../crypto/hash.ts';

/** What the bundle carries until the build replaces it with the hash (web/build-info.ts). */
export const BUILD_HASH_PLACEHOLDER = '__ZEROROOM_BUILD_HASH__';
/** The published hash, beside the files and not covered by the hash. */
export const BUILD_HASH_FILE = 'build-hash.txt';

export interface BuiltFile {
  /** Path relative to the build directory, `/` separators. */
  readonly path: string;
  readonly bytes: Uint8Array;
}

/** Every occurrence of `needle` in `hay` replaced by `by` (bytes; a new array only when one is found). */
export function replaceBytes(hay: Uint8Array, needle: Uint8Array, by: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let from = 0;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    parts.push(hay.subarray(from, i), by);
    from = i + needle.length;
    i = from - 1;
  }
  if (parts.length === 0) return hay;
  parts.push(hay.subarray(from));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * The build hash of `files`. `claimed`: the hash the files are said to carry (from build-hash.txt or
 * Settings); its occurrences are put back to the placeholder first. At build time the files still
 * hold the placeholder, so `claimed` is left out.
 */
export function buildHashOfFiles(files: readonly BuiltFile[], claimed?: string): string {
  if (claimed !== undefined && !/^[0-9a-f]{64}$/.test(claimed)) throw new RangeError('a build hash is 64 lowercase hex digits');
  const needle = claimed === undefined ? null : utf8Encode(claimed);
  const placeholder = utf8Encode(BUILD_HASH_PLACEHOLDER);
  const lines = files
    .filter((f) => f.path !== BUILD_HASH_FILE)
    .map((f) => {
      if (f.path.includes('\n') || f.path.startsWith('/') || f.path.includes('\\'))
        throw new RangeError(`bad path ${JSON.stringify(f.path)}`);
      const bytes = needle === null ? f.bytes : replaceBytes(f.bytes, needle, placeholder);
      return { path: f.path, line: `${toHex(sha256(bytes))}  ${f.path}\n` };
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const seen = new Set<string>();
  for (const l of lines) {
    if (seen.has(l.path)) throw new RangeError(`file ${l.path} listed twice`);
    seen.add(l.path);
  }
  return toHex(sha256(utf8Encode(lines.map((l) => l.line).join(''))));
}
