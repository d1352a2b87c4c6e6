/**
 * The web app's own sealed record (docs/PROTOCOL.md section 6): settings. The room records
 * (identity, room, history, outbox) are the shared codecs of protocol/room/records.ts. One strict
 * decoder: closed field lists, sizes, RecordError (`storage.record`) for anything else.
 */
import { DecodeError } from '../../protocol/errors.ts';
import { encode, Fields } from '../../protocol/msgpack.ts';
import { RecordError } from '../../protocol/room/records.ts';
import type { IceServerSetting, Settings } from './types.ts';

const MAX_NAME = 256;
const MAX_URL = 2048;
const INT = { min: 0, max: Number.MAX_SAFE_INTEGER };

/** Keys that sort in numeric order: history and outbox records are listed per room by prefix. */
export function seqKey(roomId: string, seq: number): string {
  return `${roomId}/${seq.toString().padStart(16, '0')}`;
}

const SETTINGS_FIELDS = [
  'v',
  'displayName',
  'signalingUrl',
  'serverKey',
  'iceServers',
  'relayOnly',
  'customIce',
  'everyMessages',
  'everyMinutes',
  'fileLimitMiB',
] as const;
/** The per-file limit when the record has none (written before files): 100 MiB. */
export const DEFAULT_FILE_LIMIT_MIB = 100;
/** Largest per-file limit a setting may name (1 TiB, the largest offer, 5.17.1). */
export const MAX_FILE_LIMIT_MIB = 1024 * 1024;

export function encodeSettings(s: Settings): Uint8Array {
  return encode({
    v: 1,
    displayName: s.displayName,
    signalingUrl: s.signalingUrl,
    serverKey: s.serverKey,
    iceServers: s.iceServers.map((i) => ({ urls: [...i.urls], username: i.username, credential: i.credential })),
    relayOnly: s.relayOnly,
    customIce: s.customIce,
    everyMessages: s.rotation.everyMessages,
    everyMinutes: s.rotation.everyMinutes,
    fileLimitMiB: s.fileLimitMiB,
  });
}

export function decodeSettings(bytes: Uint8Array): Settings {
  const what = 'settings record';
  try {
    const f = Fields.fromBytes(bytes, what).only(SETTINGS_FIELDS);
    const v = f.int('v', INT);
    if (v !== 1) throw new RecordError(`${what}: unknown format version ${v}`);
    const iceServers: IceServerSetting[] = f.arr('iceServers', 32).map((raw, n) => {
      const s = Fields.of(raw, `${what}.iceServers[${n}]`).only(['urls', 'username', 'credential']);
      const urls = s.arr('urls', 16).map((u) => {
        if (u.t !== 'str' || u.v.length > MAX_URL) throw new RecordError(`${what}: ICE server urls must be strings of at most ${MAX_URL}`);
        return u.v;
      });
      const username = s.optional('username', (k) => s.str(k, MAX_NAME));
      const credential = s.optional('credential', (k) => s.str(k, MAX_NAME));
      return { urls, ...(username !== undefined ? { username } : {}), ...(credential !== undefined ? { credential } : {}) };
    });
    return {
      displayName: f.str('displayName', MAX_NAME),
      signalingUrl: f.str('signalingUrl', MAX_URL),
      serverKey: f.str('serverKey', 128),
      iceServers,
      relayOnly: f.bool('relayOnly'),
      customIce: f.bool('customIce'),
      rotation: { everyMessages: f.int('everyMessages', INT), everyMinutes: f.int('everyMinutes', INT) },
      // Optional: records written before files have none (version 1 either way).
      fileLimitMiB: f.optional('fileLimitMiB', (k) => f.int(k, { min: 1, max: MAX_FILE_LIMIT_MIB })) ?? DEFAULT_FILE_LIMIT_MIB,
    };
  } catch (e) {
    if (e instanceof DecodeError) throw new RecordError(`${what}: ${e.message}`, { cause: e });
    throw e;
  }
}
