/**
 * The server's permanent NaCl key on disk: the 32-byte secret as 64 lowercase hex characters and a
 * newline, readable by the owner only. Created (mode 0600) when absent; anything else is refused
 * with a KeyFileError that says what is wrong, so a typo never silently makes a new server identity.
 */
import { closeSync, fstatSync, openSync, readFileSync, writeSync, constants as fsc } from 'node:fs';
import { boxKeyPairFromSecret, generateBoxKeyPair, wipe, type BoxKeyPair, type BoxSecretKey } from '../crypto/index.ts';
import { ZeroRoomError } from '../protocol/errors.ts';

export class KeyFileError extends ZeroRoomError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('signaling.key-file', message, options);
  }
}

const KEY_FILE_PATTERN = /^[0-9a-f]{64}\n?$/;

/** Load the key pair in `path`, or create the file with a fresh key if it does not exist. */
export function loadOrCreateKeyFile(path: string): BoxKeyPair {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return createKeyFile(path);
    throw new KeyFileError(`${path}: cannot open: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new KeyFileError(`${path}: not a regular file`);
    // Group/other must not be able to read or write the server's identity (like ssh's private keys).
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new KeyFileError(`${path}: permissions ${(st.mode & 0o777).toString(8)} are too open; run chmod 600 on it`);
    }
    if (st.size > 128) throw new KeyFileError(`${path}: ${st.size} bytes; expected 64 hex characters and a newline`);
    const text = readFileSync(fd, 'latin1');
    if (!KEY_FILE_PATTERN.test(text)) {
      throw new KeyFileError(`${path}: expected exactly 64 lowercase hex characters (a 32-byte secret key) and a newline`);
    }
    const secret = Buffer.from(text.slice(0, 64), 'hex');
    const pair = boxKeyPairFromSecret(new Uint8Array(secret) as BoxSecretKey);
    wipe(secret);
    return pair;
  } finally {
    closeSync(fd);
  }
}

function createKeyFile(path: string): BoxKeyPair {
  const pair = generateBoxKeyPair();
  let fd: number;
  try {
    // O_EXCL: never overwrite a key file that appeared meanwhile.
    fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new KeyFileError(`${path}: cannot create: ${(e as Error).message}`, { cause: e });
  }
  try {
    writeSync(fd, `${Buffer.from(pair.secretKey).toString('hex')}\n`);
  } finally {
    closeSync(fd);
  }
  return pair;
}
