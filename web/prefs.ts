/**
 * Per-room preferences of this device's user (issue #13): how far each room was read (for unread
 * counts across reloads) and whether it notifies. One sealed record, `settings/ui` in the vault
 * (docs/PROTOCOL.md section 6), with one strict decoder like every stored record.
 *
 *   {v: 1, rooms: [{id: str <= 64, read: int >= -1, notify: bool}, ...]}   (at most MAX_ROOMS)
 */
import { encode, Fields } from '../protocol/msgpack.ts';

export const PREFS_KEY = 'ui';
export const MAX_ROOMS = 10_000;

export interface RoomPrefs {
  /** Highest room index the user has seen in this room (-1: none). */
  readonly read: number;
  readonly notify: boolean;
}

export type Prefs = ReadonlyMap<string, RoomPrefs>;

export function encodePrefs(p: Prefs): Uint8Array {
  return encode({ v: 1, rooms: [...p].map(([id, r]) => ({ id, read: r.read, notify: r.notify })) });
}

export function decodePrefs(bytes: Uint8Array): Prefs {
  const f = Fields.fromBytes(bytes, 'ui record').only(['v', 'rooms']);
  f.int('v', { min: 1, max: 1 });
  const out = new Map<string, RoomPrefs>();
  for (const raw of f.arr('rooms', MAX_ROOMS)) {
    const r = Fields.of(raw, 'ui record.rooms[]').only(['id', 'read', 'notify']);
    const id = r.str('id', 64);
    if (!/^[0-9a-f]+$/.test(id)) throw new TypeError('ui record: room id must be lowercase hex');
    if (out.has(id)) throw new TypeError('ui record: a room is listed twice');
    out.set(id, { read: r.int('read', { min: -1, max: Number.MAX_SAFE_INTEGER }), notify: r.bool('notify') });
  }
  return out;
}
