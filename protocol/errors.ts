// The base class lives in crypto/ (the lowest layer); every layer above uses it from here.
import { ZeroRoomError } from '../crypto/errors.ts';

export { ZeroRoomError };

/** Malformed wire data: wrong msgpack type, wrong length, unknown field value, trailing bytes. */
export class DecodeError extends ZeroRoomError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('decode', message, options);
  }
}
