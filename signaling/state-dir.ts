/**
 * `--state DIR` of `zeroroom host` / `zeroroom join`: the room's identity keys and the room
 * machine's state (for the owner that includes the room's log of signed envelopes, its history),
 * each a file sealed with Secure Cell under a random data key wrapped by a key derived from
 * ZEROROOM_PASSWORD (Argon2id, the same scheme as the web app's storage, docs/PROTOCOL.md section 6). Files are mode 0600 in a 0700 directory and are
 * replaced atomically (write a temporary file, fsync, rename), so a crash leaves the old or the new
 * version, never half of one.
 *
 * Layout: kdf.json (KDF parameters and the wrapped data key, in clear; signaling/state-kdf.ts),
 * identity.bin, room.bin, outbox.bin.
 * One room per directory; two processes must not share a directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  AuthError,
  asBoxPublicKey,
  asBoxSecretKey,
  asEcPrivateKey,
  asEcPublicKey,
  cellOpen,
  cellSeal,
  utf8Encode,
  type BoxKeyPair,
  type IdentityKeyPair,
  type SymmetricKey,
} from '../crypto/index.ts';
import { ZeroRoomError } from '../protocol/errors.ts';
import { encode, Fields } from '../protocol/msgpack.ts';
import { MAX_LINK_MESSAGE, MAX_TEXT } from '../protocol/room/codec.ts';
import { MAX_STATE_BYTES, decodeRoomState, encodeMemberState, encodeOwnerState } from '../protocol/room/state-codec.ts';
import type { MemberState, OwnerState } from '../protocol/room/types.ts';
import { openStateKey } from './state-kdf.ts';

export class StateDirError extends ZeroRoomError {}

/** One room's persistent state. */
export interface RoomFile {
  readonly role: 'owner' | 'member';
  /** Signaling server URL and its pinned key (hex, '' when not pinned). */
  readonly server: string;
  readonly serverKey: string;
  /** Owner: the web app origin used in invites. */
  readonly appUrl: string;
  readonly state: OwnerState | MemberState;
}

/** A member's own message not yet delivered back by the owner: re-sent on every new link. */
export interface OutboxEntry {
  readonly seq: number;
  readonly text: string;
  /** The exact bytes sent (the owner's per-sender sequence check drops a copy it has). */
  readonly wire: Uint8Array;
}

/** Undelivered messages a member keeps; the next send is refused until the owner catches up. */
export const MAX_OUTBOX = 1000;

export interface RoomKeys {
  readonly identity: IdentityKeyPair;
  readonly peer: BoxKeyPair;
}

export class StateDir {
  private constructor(
    readonly dir: string,
    private readonly key: SymmetricKey,
  ) {}

  /** Opens (or creates) DIR; a wrong password fails on the check value with 'state.password'. */
  static async open(dir: string, password: string | undefined): Promise<StateDir> {
    if (password === undefined || password === '') {
      throw new StateDirError(
        'state.password',
        '--state needs the ZEROROOM_PASSWORD environment variable (the state is encrypted with a key derived from it)',
      );
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // kdf.json: Argon2id params and the wrapped data key; a legacy PBKDF2 one is migrated (state-kdf.ts).
    return new StateDir(dir, await openStateKey(dir, password));
  }

  private async readSealed(name: string): Promise<Uint8Array | null> {
    const sealed = await readOptional(path.join(this.dir, name));
    if (sealed === null) return null;
    try {
      return cellOpen(this.key, sealed, utf8Encode(`zeroroom-cli/${name}`));
    } catch (e) {
      if (e instanceof AuthError)
        throw new StateDirError('state.corrupt', `${name} does not open (tampered, or from another directory)`, { cause: e });
      throw e;
    }
  }

  private async writeSealed(name: string, plain: Uint8Array): Promise<void> {
    await writeAtomic(path.join(this.dir, name), cellSeal(this.key, plain, utf8Encode(`zeroroom-cli/${name}`)));
  }

  async readKeys(): Promise<RoomKeys | null> {
    const bytes = await this.readSealed('identity.bin');
    if (bytes === null) return null;
    const f = Fields.fromBytes(bytes, 'identity.bin').only(['v', 'ipub', 'ipriv', 'npub', 'nsec']);
    f.int('v', { min: 1, max: 1 });
    return {
      identity: { publicKey: asEcPublicKey(f.bin('ipub', 45)), privateKey: asEcPrivateKey(f.bin('ipriv', 45)) },
      peer: { publicKey: asBoxPublicKey(f.bin('npub', 32)), secretKey: asBoxSecretKey(f.bin('nsec', 32)) },
    };
  }

  writeKeys(k: RoomKeys): Promise<void> {
    return this.writeSealed(
      'identity.bin',
      encode({ v: 1, ipub: k.identity.publicKey, ipriv: k.identity.privateKey, npub: k.peer.publicKey, nsec: k.peer.secretKey }),
    );
  }

  async readRoom(): Promise<RoomFile | null> {
    const bytes = await this.readSealed('room.bin');
    if (bytes === null) return null;
    const f = Fields.fromBytes(bytes, 'room.bin').only(['v', 'role', 'server', 'serverKey', 'appUrl', 'state']);
    f.int('v', { min: 1, max: 1 });
    const role = f.str('role', 8);
    if (role !== 'owner' && role !== 'member') throw new StateDirError('state.corrupt', `room.bin: bad role ${role}`);
    // The room's strict state decoder (section 5.15): room.bad-state for anything off.
    const state = decodeRoomState(f.bin('state', { min: 1, max: MAX_STATE_BYTES }));
    if (state.role !== role) throw new StateDirError('state.corrupt', 'room.bin: machine state does not match the role');
    return { role, server: f.str('server', 2048), serverKey: f.str('serverKey', 64), appUrl: f.str('appUrl', 2048), state };
  }

  writeRoom(r: RoomFile): Promise<void> {
    return this.writeSealed(
      'room.bin',
      encode({
        v: 1,
        role: r.role,
        server: r.server,
        serverKey: r.serverKey,
        appUrl: r.appUrl,
        state: r.state.role === 'owner' ? encodeOwnerState(r.state) : encodeMemberState(r.state),
      }),
    );
  }

  /** outbox.bin: the member's undelivered messages, in send order (empty when absent). */
  async readOutbox(): Promise<OutboxEntry[]> {
    const bytes = await this.readSealed('outbox.bin');
    if (bytes === null) return [];
    const f = Fields.fromBytes(bytes, 'outbox.bin').only(['v', 'entries']);
    f.int('v', { min: 1, max: 1 });
    const entries = f.arr('entries', MAX_OUTBOX).map((v, i) => outboxEntryFrom(Fields.of(v, `outbox.bin entries[${i}]`)));
    for (let i = 1; i < entries.length; i++) {
      if (entries[i]!.seq <= entries[i - 1]!.seq) throw new StateDirError('state.corrupt', 'outbox.bin: entries out of order');
    }
    return entries;
  }

  writeOutbox(entries: readonly OutboxEntry[]): Promise<void> {
    return this.writeSealed('outbox.bin', encode({ v: 1, entries: entries.map((e) => ({ seq: e.seq, text: e.text, wire: e.wire })) }));
  }
}

function outboxEntryFrom(f: Fields): OutboxEntry {
  f.only(['seq', 'text', 'wire']);
  return {
    seq: f.int('seq', { min: 1, max: Number.MAX_SAFE_INTEGER }),
    text: f.str('text', MAX_TEXT),
    wire: f.bin('wire', { min: 1, max: MAX_LINK_MESSAGE }),
  };
}

export async function readOptional(file: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Write tmp (0600) + fsync + rename: readers and crashes see the old or the new file. */
export async function writeAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, file);
}
