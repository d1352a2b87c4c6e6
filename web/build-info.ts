/**
 * The build hash shown in Settings (docs/PROTOCOL.md section 8). The literal below is replaced by the
 * hash when web/vite.config.ts builds the app (it must occur exactly once in the bundle); a dev server
 * or a test keeps the placeholder.
 */
const BUILD_HASH: string = '__ZEROROOM_BUILD_HASH__';

/** The 64-hex build hash, or null when this code was not built by `npm run build:web`. */
export function buildHash(): string | null {
  return /^[0-9a-f]{64}$/.test(BUILD_HASH) ? BUILD_HASH : null;
}
