/**
 * The room driver's store over the sealed IndexedDB vault (docs/PROTOCOL.md 6.2-6.4), and loading a
 * room back from it. Record plaintexts are the shared codecs of protocol/room/records.ts.
 *
 * The owner's state is stored with an empty log: each log entry is written once, inside its
 * message's history record, and the log is rebuilt from them on load. History and outbox records
 * written by a step whose state never got saved (the state is the commit point) are dropped on load.
 */
import type { AuthError } from '../../crypto/index.ts';
import type { RoomStore } from '../../protocol/room/driver-ports.ts';
import {
  RecordError,
  committedIndex,
  decodeHistoryRecord,
  decodeOutboxRecord,
  decodeRoomIdentity,
  decodeRoomRecord,
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
  /** Committed history, in index order. */
  readonly history: HistoryRecord[];
}

/** Room `id` from the vault: record, identity and committed history (owner: with its log rebuilt). */
export async function loadRoom(vault: Vault, id: string, refused: (store: string) => Refused): Promise<LoadedRoom> {
  const bytes = await vault.get('rooms', id);
  if (bytes === undefined) throw new RecordError(`room ${id} has no room record`);
  const stored = decodeRoomRecord(bytes);
  if (roomIdOf(stored.state) !== id) throw new RecordError(`room record ${id} holds room ${roomIdOf(stored.state)}`);
  const identity = await vault.get('identities', id);
  if (identity === undefined) throw new RecordError(`room ${id} has no identity record`);
  const keys = decodeRoomIdentity(identity);
  const all = (await vault.list('history', `${id}/`, refused('history'))).map((r) => decodeHistoryRecord(r.value));
  const last = committedIndex(stored.state);
  for (const h of all) if (h.idx > last) await vault.delete('history', seqKey(id, h.idx));
  const history = all.filter((h) => h.idx <= last).sort((a, b) => a.idx - b.idx);
  const state = stored.state.role === 'owner' ? restoreOwnerLog(stored.state, history) : stored.state;
  return { record: { ...stored, state }, keys, history };
}

/** A new room's records. */
export async function saveNewRoom(vault: Vault, keys: RoomIdentity, record: RoomRecord): Promise<void> {
  const id = roomIdOf(record.state);
  await vault.put('identities', id, encodeRoomIdentity(keys));
  await vault.put('rooms', id, encodeRoomRecord(stripLog(record)));
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
  return {
    save: (state) => vault.put('rooms', id, encodeRoomRecord(stripLog({ ...meta, state }))),
    appendHistory: (record) => vault.put('history', seqKey(id, record.idx), encodeHistoryRecord(record)),
    putOutbox: (record) => vault.put('outbox', seqKey(id, record.seq), encodeOutboxRecord(record)),
    removeOutbox: (seq) => vault.delete('outbox', seqKey(id, seq)),
    listOutbox: async () => (await vault.list('outbox', `${id}/`, refused)).map((r) => decodeOutboxRecord(r.value)),
  };
}
