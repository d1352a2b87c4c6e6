/**
 * Control messages of a file transfer, carried as link messages (docs/PROTOCOL.md 5.17.3), with
 * one strict decoder.
 */
import { DecodeError } from '../errors.ts';
import { encode, Fields } from '../msgpack.ts';
import { FILE_ERROR_CODES, type FileErrorCode } from './errors.ts';
import { asFileId, type FileId } from './offer.ts';

/** Most chunks one grant may cover (256 x 64 KiB = 16 MiB). */
export const MAX_GRANT = 256;
const MAX_CONTROL = 256;
const MAX_INDEX = 2 ** 32 - 1;

export type FileControl =
  | { readonly type: 'file-want'; readonly file: FileId; readonly from: number; readonly to: number }
  | { readonly type: 'file-decline'; readonly file: FileId }
  | { readonly type: 'file-cancel'; readonly file: FileId; readonly code: FileErrorCode };

const isFileErrorCode = (s: string): s is FileErrorCode => (FILE_ERROR_CODES as readonly string[]).includes(s);

export const FILE_CONTROL_TYPES: readonly string[] = ['file-want', 'file-decline', 'file-cancel'];

export function encodeFileControl(m: FileControl): Uint8Array {
  return encode({ ...m });
}

export function decodeFileControl(bytes: Uint8Array): FileControl {
  if (bytes.length > MAX_CONTROL) throw new DecodeError(`file control: larger than ${MAX_CONTROL} bytes`);
  const f = Fields.fromBytes(bytes, 'file control');
  const type = f.str('type', 64);
  switch (type) {
    case 'file-want': {
      f.only(['type', 'file', 'from', 'to']);
      const from = f.int('from', { min: 0, max: MAX_INDEX - 1 });
      const to = f.int('to', { min: from + 1, max: Math.min(MAX_INDEX, from + MAX_GRANT) });
      return { type, file: asFileId(f.bin('file', 16)), from, to };
    }
    case 'file-decline':
      f.only(['type', 'file']);
      return { type, file: asFileId(f.bin('file', 16)) };
    case 'file-cancel': {
      f.only(['type', 'file', 'code']);
      const code = f.str('code', 64);
      if (!isFileErrorCode(code)) throw new DecodeError(`file control: unknown cancel code "${code}"`);
      return { type, file: asFileId(f.bin('file', 16)), code };
    }
    default:
      throw new DecodeError(`file control: unknown type "${type}"`);
  }
}
