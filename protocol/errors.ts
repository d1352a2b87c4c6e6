/**
 * Base class of every error ZeroRoom throws on purpose. `code` is stable and documented in
 * docs/PROTOCOL.md ("Error codes"); `message` is for people and may change.
 */
export class ZeroRoomError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Malformed wire data: wrong msgpack type, wrong length, unknown field value, trailing bytes. */
export class DecodeError extends ZeroRoomError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('decode', message, options);
  }
}
