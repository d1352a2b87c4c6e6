/**
 * Plaintext formats of the sealed storage records (docs/PROTOCOL.md section 6). Each record is one
 * msgpack map with a `v` version field; one strict decoder per record kind, like wire messages.
 */
import { encode, Fields } from '../../protocol/msgpack.ts';
import type { IceServerSetting, Settings } from './types.ts';

const MAX_TEXT = 64 * 1024;
const MAX_NAME = 256;
const MAX_URL = 2048;
const INT = { min: 0, max: Number.MAX_SAFE_INTEGER };

/** Keys that sort in numeric order: history and outbox records are listed per room by prefix. */
export function seqKey(roomId: string, seq: number): string {
  return `${roomId}/${seq.toString().padStart(16, '0')}`;
}

// ---- settings -------------------------------------------------------------------------------

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
  });
}

export function decodeSettings(bytes: Uint8Array): Settings {
  const f = Fields.fromBytes(bytes, 'settings record');
  f.int('v', { min: 1, max: 1 });
  const iceServers: IceServerSetting[] = f.arr('iceServers', 32).map((raw) => {
    const s = Fields.of(raw, 'settings.iceServers[]');
    const urls = s.arr('urls', 16).map((u) => {
      if (u.t !== 'str' || u.v.length > MAX_URL) throw new TypeError('settings: ICE url must be a string');
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
  };
}

// ---- history ---------------------------------------------------------------------------------

export interface HistoryRecord {
  /** Room index (section 5.6): the record key and the display order. */
  readonly idx: number;
  readonly senderId: string;
  readonly senderName: string;
  readonly seq: number;
  readonly text: string;
  readonly at: number;
  readonly system: boolean;
  /** Owner rooms only: the signed envelope and its epoch, i.e. the owner's log entry (section 5.9). */
  readonly epoch?: number;
  readonly env?: Uint8Array;
}

export function encodeHistory(r: HistoryRecord): Uint8Array {
  return encode({ v: 1, ...r });
}

export function decodeHistory(bytes: Uint8Array): HistoryRecord {
  const f = Fields.fromBytes(bytes, 'history record');
  f.int('v', { min: 1, max: 1 });
  return {
    idx: f.int('idx', INT),
    senderId: f.str('senderId', 256),
    senderName: f.str('senderName', MAX_NAME),
    seq: f.int('seq', INT),
    text: f.str('text', MAX_TEXT),
    at: f.int('at', INT),
    system: f.bool('system'),
    ...(f.has('env') ? { epoch: f.int('epoch', INT), env: f.bin('env', { min: 1, max: 128 * 1024 }) } : {}),
  };
}

// ---- outbox ----------------------------------------------------------------------------------

export interface OutboxRecord {
  /** The sender sequence number the room machine gave this message (section 5.6). */
  readonly seq: number;
  readonly text: string;
  readonly at: number;
  /** The exact `send` message bytes: re-sent unchanged, so the owner's replay check drops a copy. */
  readonly wire: Uint8Array;
}

export function encodeOutbox(r: OutboxRecord): Uint8Array {
  return encode({ v: 1, ...r });
}

export function decodeOutbox(bytes: Uint8Array): OutboxRecord {
  const f = Fields.fromBytes(bytes, 'outbox record');
  f.int('v', { min: 1, max: 1 });
  return { seq: f.int('seq', INT), text: f.str('text', MAX_TEXT), at: f.int('at', INT), wire: f.bin('wire', { min: 1, max: 1024 * 1024 }) };
}
