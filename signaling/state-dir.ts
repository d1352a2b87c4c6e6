/**
 * `--state DIR` of `zeroroom host` / `zeroroom join` (docs/PROTOCOL.md 5.13): the room's identity keys,
 * the room record (the room machine's state; for the owner it includes the room's log) and a
 * member's outbox, each a file sealed with Secure Cell under a random data key wrapped by a key
 * derived from ZEROROOM_PASSWORD (Argon2id, the same scheme as the web app's storage, section 6;
 * signaling/state-kdf.ts). The plaintexts are the shared record codecs
 * of protocol/room/records.ts. Files are mode 0600 in a 0700 directory and are replaced atomically
 * (write a temporary file, fsync, rename), so a crash leaves the old or the new version, never half
 * of one; a new room's files are created without ever replacing an existing file.
 *
 * Layout: kdf.json (KDF parameters and the wrapped data key, in clear), identity.bin, room.bin,
 * generation.bin (room.bin's generation mark, PROTOCOL.md 6.6: an older room.bin written back is
 * refused with 'state.rollback'), outbox.bin (members). One room per directory; two processes must
 * not share a directory.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { AuthError, cellOpen, cellSeal, toHex, utf8Encode, type SymmetricKey } from '../crypto/index.ts';
import { ZeroRoomError } from '../protocol/errors.ts';
import type { RoomStore } from '../protocol/room/driver-ports.ts';
import {
  RollbackError,
  checkGeneration,
  decodeGenerationMark,
  decodeOutboxList,
  decodeRoomIdentity,
  decodeStoredRoom,
  encodeGenerationMark,
  pendingKeysOf,
  encodeOutboxList,
  encodeRoomIdentity,
  encodeRoomRecord,
  type OutboxRecord,
  type RoomIdentity,
  type RoomRecord,
} from '../protocol/room/records.ts';
import type { MemberState, OwnerState } from '../protocol/room/types.ts';
import { openStateKey } from './state-kdf.ts';

/**
 * `state.password` (none, or wrong), `state.corrupt` (a file that does not open or a wrong check
 * value), `state.partial` (identity.bin or room.bin missing while the other exists), `state.path`
 * (DIR is not a directory, or a file of it is not a file), `state.rollback` (room.bin older than its
 * generation mark: an earlier copy written back), `state.io` (any other file-system error).
 */
export class StateDirError extends ZeroRoomError {}

const FILES = {
  identity: 'identity.bin',
  /** A member key update's new keys until the switch (PROTOCOL.md 5.8.1); one zero byte when none. */
  pending: 'pending.bin',
  room: 'room.bin',
  generation: 'generation.bin',
  outbox: 'outbox.bin',
  /** Files this client takes part in and its own files' paths (signaling/file-store.ts, PROTOCOL.md 5.17.4). */
  files: 'files.bin',
  kdf: 'kdf.json',
} as const;

/** What a state directory holds once it has a room. */
export interface SavedRoom {
  readonly keys: RoomIdentity;
  readonly record: RoomRecord;
}

export class StateDir {
  /** The generation of room.bin as last read or written (null before either). */
  private gen: number | null = null;

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
    const kind = await kindOf(dir);
    if (kind !== null && kind !== 'directory') throw new StateDirError('state.path', `--state ${dir} is a ${kind}, not a directory`);
    await fsCall(dir, () => mkdir(dir, { recursive: true, mode: 0o700 }));
    // kdf.json: Argon2id params and the wrapped data key; a legacy PBKDF2 one is migrated (state-kdf.ts).
    return new StateDir(dir, await openStateKey(dir, password));
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private async readSealed(name: string): Promise<Uint8Array | null> {
    const sealed = await readOptional(this.file(name));
    if (sealed === null) return null;
    try {
      return cellOpen(this.key, sealed, utf8Encode(`zeroroom-cli/${name}`));
    } catch (e) {
      if (e instanceof AuthError)
        throw new StateDirError('state.corrupt', `${name} does not open (tampered, or from another directory)`, { cause: e });
      throw e;
    }
  }

  private async writeSealed(name: string, plain: Uint8Array, opts: { create?: boolean } = {}): Promise<void> {
    await writeAtomic(this.file(name), cellSeal(this.key, plain, utf8Encode(`zeroroom-cli/${name}`)), opts);
  }

  /** files.bin (signaling/file-store.ts): null before the first file. */
  readFiles(): Promise<Uint8Array | null> {
    return this.readSealed(FILES.files);
  }

  writeFiles(plain: Uint8Array): Promise<void> {
    return this.writeSealed(FILES.files, plain);
  }

  /** Where partial and relayed files live (plaintext chunks, like --download-dir; mode 0700). */
  get filesDir(): string {
    return path.join(this.dir, 'files');
  }

  /** The pending keys of a member key update (5.8.1), null when none (or the switch already stored them). */
  async readPendingKeys(): Promise<RoomIdentity | null> {
    const bytes = await this.readSealed(FILES.pending);
    if (bytes === null || (bytes.length === 1 && bytes[0] === 0)) return null;
    const pending = decodeRoomIdentity(bytes);
    const keys = await this.readKeys();
    return keys === null ? pending : pendingKeysOf(keys, pending);
  }

  /** Pending keys first (before the request leaves); at the switch the identity, then no pending. */
  private async saveKeys(keys: { readonly identity: RoomIdentity; readonly pending: RoomIdentity | null }): Promise<void> {
    if (keys.pending !== null) {
      await this.writeSealed(FILES.pending, encodeRoomIdentity(keys.pending));
      return;
    }
    await this.writeSealed(FILES.identity, encodeRoomIdentity(keys.identity));
    await this.writeSealed(FILES.pending, Uint8Array.of(0)); // none
  }

  async readKeys(): Promise<RoomIdentity | null> {
    const bytes = await this.readSealed(FILES.identity);
    return bytes === null ? null : decodeRoomIdentity(bytes);
  }

  private async readMark(): Promise<number | null> {
    const bytes = await this.readSealed(FILES.generation);
    return bytes === null ? null : decodeGenerationMark(bytes);
  }

  /**
   * room.bin, refused with 'state.rollback' when it is older than generation.bin (an earlier copy
   * written back, PROTOCOL.md 6.6); nothing is changed then.
   */
  async readRoom(): Promise<RoomRecord | null> {
    const bytes = await this.readSealed(FILES.room);
    if (bytes === null) return null;
    const { record, gen } = decodeStoredRoom(bytes);
    const mark = await this.readMark();
    let markBehind: boolean;
    try {
      markBehind = checkGeneration(gen, mark, toHex(record.state.room));
    } catch (e) {
      if (!(e instanceof RollbackError)) throw e;
      throw new StateDirError(
        'state.rollback',
        `${this.file(FILES.room)} is an older copy than this directory saved (generation ${gen}, ${FILES.generation} says ${mark ?? 'nothing'}): refusing it, nothing was changed (put the newest room.bin back)`,
        { cause: e },
      );
    }
    if (markBehind) await this.writeSealed(FILES.generation, encodeGenerationMark(gen));
    this.gen = gen;
    return record;
  }

  /** room.bin with the next generation, then generation.bin (so a crash leaves the mark behind, never ahead). */
  async writeRoom(r: RoomRecord): Promise<void> {
    const next = (this.gen ?? (await this.readMark()) ?? 0) + 1;
    await this.writeSealed(FILES.room, encodeRoomRecord(r, next));
    await this.writeSealed(FILES.generation, encodeGenerationMark(next));
    this.gen = next;
  }

  /**
   * The room this directory holds, or null when it holds none yet. Half a room (keys without the
   * room or the reverse, an outbox without a room) is refused with 'state.partial' naming the
   * missing file: starting a new room there would replace what is left.
   */
  async load(): Promise<SavedRoom | null> {
    const record = await this.readRoom();
    const keys = await this.readKeys();
    if (record !== null && keys !== null) return { keys, record };
    const present: (string | null)[] = [record !== null ? FILES.room : null, keys !== null ? FILES.identity : null];
    if (record === null && (await kindOf(this.file(FILES.outbox))) !== null) present.push(FILES.outbox);
    const found = present.filter((f) => f !== null);
    if (found.length === 0) return null;
    const missing = record === null ? FILES.room : FILES.identity;
    throw new StateDirError(
      'state.partial',
      `${this.dir} holds ${found.join(' and ')} but no ${missing}: not starting a new room over it (restore ${missing}, or use a new --state directory)`,
    );
  }

  /** A new room's files; never replaces an existing file ('state.partial' if one appeared meanwhile). */
  async create(room: SavedRoom): Promise<void> {
    await this.writeSealed(FILES.room, encodeRoomRecord(room.record, 1), { create: true });
    await this.writeSealed(FILES.identity, encodeRoomIdentity(room.keys), { create: true });
    await this.writeSealed(FILES.generation, encodeGenerationMark(1));
    this.gen = 1;
  }

  /** outbox.bin: the member's undelivered messages, in send order (empty when absent). */
  async readOutbox(): Promise<OutboxRecord[]> {
    const bytes = await this.readSealed(FILES.outbox);
    return bytes === null ? [] : decodeOutboxList(bytes);
  }

  writeOutbox(entries: readonly OutboxRecord[]): Promise<void> {
    return this.writeSealed(FILES.outbox, encodeOutboxList(entries));
  }

  /**
   * The room driver's store over this directory: room.bin holds the whole state (the owner's log
   * included, so history records are not kept apart), outbox.bin the whole outbox.
   */
  roomStore<S extends OwnerState | MemberState>(meta: Omit<RoomRecord, 'state'>): RoomStore<S> {
    let outbox: OutboxRecord[] | null = null;
    const entries = async (): Promise<OutboxRecord[]> => (outbox ??= await this.readOutbox());
    return {
      save: (state) => this.writeRoom({ ...meta, state }),
      appendHistory: async () => undefined,
      putOutbox: async (record) => {
        const next = [...(await entries()).filter((o) => o.seq !== record.seq), record].sort((a, b) => a.seq - b.seq);
        await this.writeOutbox(next);
        outbox = next;
      },
      removeOutbox: async (seq) => {
        const list = await entries();
        if (!list.some((o) => o.seq === seq)) return;
        const next = list.filter((o) => o.seq !== seq);
        await this.writeOutbox(next);
        outbox = next;
      },
      listOutbox: async () => [...(await entries())],
      saveKeys: (keys) => this.saveKeys(keys),
    };
  }
}

type Kind = 'file' | 'directory' | 'special file';

async function kindOf(p: string): Promise<Kind | null> {
  try {
    const s = await stat(p);
    return s.isDirectory() ? 'directory' : s.isFile() ? 'file' : 'special file';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(p, e);
  }
}

/** A file-system error as one typed line naming the path (never a stack trace). */
function ioError(p: string, e: unknown): StateDirError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EISDIR') return new StateDirError('state.path', `${p} is a directory, not a file`, { cause: e });
  if (code === 'ENOTDIR' || code === 'EEXIST')
    return new StateDirError('state.path', `${p}: a path component is not a directory`, { cause: e });
  return new StateDirError('state.io', `${p}: ${code ?? (e instanceof Error ? e.message : String(e))}`, { cause: e });
}

async function fsCall<T>(p: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ZeroRoomError) throw e;
    throw ioError(p, e);
  }
}

export async function readOptional(file: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(file, e);
  }
}

/**
 * Write tmp (0600) + fsync + rename: readers and crashes see the old or the new file. With `create`
 * the file must not exist: the temporary file is hard-linked into place, which fails if it does.
 */
export async function writeAtomic(file: string, bytes: Uint8Array, opts: { create?: boolean } = {}): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await fsCall(file, () => open(tmp, 'wx', 0o600));
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw ioError(file, e);
  }
  await fh.close();
  if (opts.create !== true) {
    await fsCall(file, () => rename(tmp, file));
    return;
  }
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new StateDirError('state.partial', `${file} exists already: a new room never replaces state files`, { cause: e });
    throw ioError(file, e);
  } finally {
    await rm(tmp, { force: true });
  }
}
