/** Typed errors of file transfers (docs/PROTOCOL.md 5.17, codes in section 7). */
import { ZeroRoomError } from '../errors.ts';

export type FileErrorCode =
  | 'file.frame'
  | 'file.unknown'
  | 'file.order'
  | 'file.chunk-size'
  | 'file.auth'
  | 'file.corrupt'
  | 'file.hash'
  | 'file.too-large'
  | 'file.gone'
  | 'file.removed'
  | 'file.no-path'
  | 'file.cancelled';

export const FILE_ERROR_CODES: readonly FileErrorCode[] = [
  'file.frame',
  'file.unknown',
  'file.order',
  'file.chunk-size',
  'file.auth',
  'file.corrupt',
  'file.hash',
  'file.too-large',
  'file.gone',
  'file.removed',
  'file.no-path',
  'file.cancelled',
];

export class FileError extends ZeroRoomError {
  declare readonly code: FileErrorCode;
  constructor(code: FileErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
