/**
 * The room driver's store over the sealed IndexedDB vault (docs/PROTOCOL.md 6.2-6.4), and loading a
 * room back from it. Record plaintexts are the shared codecs of protocol/room/records.ts.
 *
 * The owner's state is stored with an empty log: each log entry is written once, inside its
 * message's history record, and the log is rebuilt from them on load. History and outbox records
 * written by a step whose state never got saved (the state is the commit point) are dropped on load.
 *
 * Rollback guard (PROTOCOL.md 6.6): each save writes the room record with the next generation and the
 * room's generation mark (`keys/<roomId>/generation`) in one transaction; a load refuses a room
 * record older than its mark with `storage.rollback` and deletes nothing.
 */
import type { AuthError } from '../../crypto/index.ts';
import type { RoomStore } from '../../protocol/room/driver-ports.ts';
import {
  RecordError,
  checkGeneration,
  committedIndex,
  decodeGenerationMark,
  decodeStoredRoom,
  decodeHistoryRecord,
  decodeOutboxRecord,
  decodeRoomIdentity,
  encodeGenerationMark,
  pendingKeysOf,
  encodeHistoryRecord,
  encodeOutboxRecord,
  encodeRoomIdentity,
  encodeRoomRecord,
  restoreOwnerLog,
  roomIdOf,
  type HistoryRecord,
  type RoomIdentity,
  type RoomRecord,
} from '../../protocol/room/records.ts';
import type { MemberState, OwnerState } from '../../protocol/room/types.ts';
import type { Vault } from '../storage/vault.ts';
import { seqKey } from './records.ts';

/** A record that did not open (tampered or moved): reported, never shown. */
export type Refused = (key: string, error: AuthError) => void;

export interface LoadedRoom {
  readonly record: RoomRecord;
  readonly keys: RoomIdentity;
  /** A member key update's new keys not yet switched to (PROTOCOL.md 5.8.1); null when none. */
  readonly pending: RoomIdentity | null;
  /** Committed history, in index order. */
  readonly history: HistoryRecord[];
}

/** Room `id` from the vault: record, identity and committed history (owner: with its log rebuilt). */
export async function loadRoom(vault: Vault, id: string, refused: (store: string) => Refused): Promise<LoadedRoom> {
  const bytes = await vault.get('rooms', id);
  if (bytes === undefined) throw new RecordError(`room ${id} has no room record`);
  const { record: stored, gen } = decodeStoredRoom(bytes);
  if (roomIdOf(stored.state) !== id) throw new RecordError(`room record ${id} holds room ${roomIdOf(stored.state)}`);
  const markBytes = await vault.get('keys', markKey(id));
  const mark = markBytes === undefined ? null : decodeGenerationMark(markBytes);
  if (checkGeneration(gen, mark, id)) await vault.put('keys', markKey(id), encodeGenerationMark(gen));
  const identity = await vault.get('identities', id);
  if (identity === undefined) throw new RecordError(`room ${id} has no identity record`);
  const keys = decodeRoomIdentity(identity);
  const pendingBytes = await vault.get('keys', pendingKey(id));
  const pending = pendingKeysOf(keys, pendingBytes === undefined ? null : decodeRoomIdentity(pendingBytes));
  const all = (await vault.list('history', `${id}/`, refused('history'))).map((r) => decodeHistoryRecord(r.value));
  const last = committedIndex(stored.state);
  for (const h of all) if (h.idx > last) await vault.delete('history', seqKey(id, h.idx));
  const history = all.filter((h) => h.idx <= last).sort((a, b) => a.idx - b.idx);
  const state = stored.state.role === 'owner' ? restoreOwnerLog(stored.state, history) : stored.state;
  return { record: { ...stored, state }, keys, history, pending };
}

/** Where room `id`'s pending key-update keys live (deleted with the room's `keys/<id>/` records). */
export function pendingKey(id: string): string {
  return `${id}/pending`;
}

/** Where room `id`'s generation mark lives (PROTOCOL.md 6.6). */
export function markKey(id: string): string {
  return `${id}/generation`;
}

/** The room record of generation `gen` and the mark that says so, in one transaction. */
function putRoom(vault: Vault, id: string, record: RoomRecord, gen: number): Promise<void> {
  return vault.putAll([
    { store: 'rooms', key: id, plaintext: encodeRoomRecord(stripLog(record), gen) },
    { store: 'keys', key: markKey(id), plaintext: encodeGenerationMark(gen) },
  ]);
}

/** A new room's records (generation 1). */
export async function saveNewRoom(vault: Vault, keys: RoomIdentity, record: RoomRecord): Promise<void> {
  const id = roomIdOf(record.state);
  await vault.put('identities', id, encodeRoomIdentity(keys));
  await putRoom(vault, id, record, 1);
}

function stripLog(record: RoomRecord): RoomRecord {
  return record.state.role === 'owner' ? { ...record, state: { ...record.state, log: [] } } : record;
}

/** The driver's store for room `id` (`meta`: the room record without its state). */
export function vaultStore<S extends OwnerState | MemberState>(
  vault: Vault,
  id: string,
  meta: Omit<RoomRecord, 'state'>,
  refused: Refused,
): RoomStore<S> {
  // The generation this store saved last: read from the mark before the first save (loadRoom and
  // saveNewRoom left it equal to the record's), then counted here (the driver saves one at a time).
  let gen: number | null = null;
  return {
    save: async (state) => {
      if (gen === null) {
        const mark = await vault.get('keys', markKey(id));
        gen = mark === undefined ? 0 : decodeGenerationMark(mark);
      }
      await putRoom(vault, id, { ...meta, state }, gen + 1);
      gen += 1;
    },
    appendHistory: (record) => vault.put('history', seqKey(id, record.idx), encodeHistoryRecord(record)),
    putOutbox: (record) => vault.put('outbox', seqKey(id, record.seq), encodeOutboxRecord(record)),
    removeOutbox: (seq) => vault.delete('outbox', seqKey(id, seq)),
    listOutbox: async () => (await vault.list('outbox', `${id}/`, refused)).map((r) => decodeOutboxRecord(r.value)),
    // Key updates (PROTOCOL.md 5.8.1): the pending keys before the request leaves; at the switch
    // the identity record, then no pending record.
    saveKeys: async ({ identity, pending }) => {
      if (pending !== null) return vault.put('keys', pendingKey(id), encodeRoomIdentity(pending));
      await vault.put('identities', id, encodeRoomIdentity(identity));
      await vault.delete('keys', pendingKey(id));
    },
  };
}
