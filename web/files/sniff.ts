/**
 * What kind of image a received file is, from its first bytes only: the sender's `mime` and name are
 * advisory and never decide how a file is shown (docs/PROTOCOL.md 5.17.1, section 8). Only PNG, JPEG,
 * GIF and WebP are shown as thumbnails; everything else (SVG and HTML included, whatever they claim
 * to be) is a download.
 */
export type ImageKind = 'png' | 'jpeg' | 'gif' | 'webp';

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0): boolean =>
  b.length >= at + sig.length && sig.every((x, i) => b[at + i] === x);

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** The image kind of a file whose first bytes are `head` (at least 12 needed), or null. */
export function sniffImage(head: Uint8Array): ImageKind | null {
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(head, ascii('GIF87a')) || startsWith(head, ascii('GIF89a'))) return 'gif';
  if (startsWith(head, ascii('RIFF')) && startsWith(head, ascii('WEBP'), 8)) return 'webp';
  return null;
}

/** Bytes of the head `sniffImage` needs. */
export const SNIFF_BYTES = 12;
