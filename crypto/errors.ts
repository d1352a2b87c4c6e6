/**
 * Base class of every error ZeroRoom throws on purpose. `code` is stable and documented in
 * docs/PROTOCOL.md ("Error codes"); `message` is for people and may change. It lives in the lowest
 * layer (crypto imports nothing of ours); protocol/errors.ts re-exports it.
 */
export class ZeroRoomError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * Base class of every error the crypto layer throws on purpose. Codes are stable and listed in
 * docs/PROTOCOL.md section 7. Subclasses below cover the cases callers branch on.
 */
export class CryptoError extends ZeroRoomError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Wrong key length or format (also: a Themis key of the wrong kind). */
export class KeyError extends CryptoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('crypto.key', message, options);
  }
}

/** Authentication failed: tampered or truncated data, wrong key, wrong context, wrong sender. */
export class AuthError extends CryptoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('crypto.auth', message, options);
  }
}

/** Malformed hex / base64url / UTF-8 text, or an encoded value of the wrong length. */
export class EncodingError extends CryptoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('crypto.encoding', message, options);
  }
}

/** A non-key parameter is unusable: wrong nonce length, empty or oversized context, not bytes. */
export class InputError extends CryptoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('crypto.input', message, options);
  }
}

/** KDF parameters are malformed or weaker than the minimum this code accepts. */
export class KdfParamsError extends CryptoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('crypto.kdf-params', message, options);
  }
}

/** A Themis wrapper was called before `initCrypto()` resolved. */
export class NotReadyError extends CryptoError {
  constructor(message = 'initCrypto() has not completed; call and await it first') {
    super('crypto.not-ready', message);
  }
}

/** Loading wasm-themis failed. */
export class InitError extends CryptoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('crypto.init', message, options);
  }
}
