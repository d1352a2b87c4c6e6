/**
 * The adapter between the views and everything below them: it owns the vault (encrypted storage),
 * the settings and one RoomRuntime per room, and publishes RoomViews to the store.
 *
 * Until the room protocol and the peer link are wired in, rooms run locally (the owner's own
 * messages, invites and members are real records; nobody else can join).
 */
import { generateIdentity, systemRandom, toHex, sha256, utf8Encode } from '../../crypto/index.ts';
import { encode, Fields } from '../../protocol/msgpack.ts';
import type { Vault } from '../storage/vault.ts';
import { decodeHistory, decodeOutbox, decodeSettings, encodeHistory, encodeSettings, seqKey, type HistoryRecord, type OutboxRecord } from './records.ts';
import type { InviteView, MemberView, RoomView, ServerConfig, Settings } from './types.ts';

export type RoomsListener = (rooms: ReadonlyMap<string, RoomView>) => void;

export function defaultSettings(config: ServerConfig | null): Settings {
  return {
    displayName: '',
    signalingUrl: config?.signalingUrl ?? '',
    serverKey: config?.serverKey ?? '',
    iceServers: config?.iceServers ?? [],
    relayOnly: false,
    rotation: { everyMessages: 100, everyMinutes: 60 },
  };
}

/** Groups hex into blocks of 4 for reading aloud. */
export function groupHex(hex: string): string {
  return (hex.match(/.{1,4}/g) ?? []).join(' ');
}

interface RoomRecord {
  readonly id: string;
  readonly name: string;
  readonly role: 'owner' | 'member';
  readonly selfId: string;
  readonly selfName: string;
  readonly epoch: number;
  readonly createdAt: number;
  readonly publicKey: Uint8Array;
}

function encodeRoom(r: RoomRecord): Uint8Array {
  return encode({ v: 1, ...r });
}

function decodeRoom(bytes: Uint8Array): RoomRecord {
  const f = Fields.fromBytes(bytes, 'room record');
  f.int('v', { min: 1, max: 1 });
  const role = f.str('role', 16);
  if (role !== 'owner' && role !== 'member') throw new TypeError(`room record: bad role ${role}`);
  return {
    id: f.str('id', 64),
    name: f.str('name', 256),
    role,
    selfId: f.str('selfId', 64),
    selfName: f.str('selfName', 256),
    epoch: f.int('epoch', { min: 0, max: 2 ** 32 }),
    createdAt: f.int('createdAt', { min: 0, max: Number.MAX_SAFE_INTEGER }),
    publicKey: f.bin('publicKey', { min: 1, max: 256 }),
  };
}

class LocalRoom {
  invites: InviteView[] = [];
  constructor(
    public record: RoomRecord,
    public history: HistoryRecord[],
    public outbox: OutboxRecord[],
  ) {}

  nextSeq(): number {
    const last = Math.max(0, ...this.history.filter((m) => m.senderId === this.record.selfId).map((m) => m.seq), ...this.outbox.map((o) => o.seq));
    return last + 1;
  }

  view(): RoomView {
    const self: MemberView = {
      id: this.record.selfId,
      name: this.record.selfName,
      fingerprint: groupHex(toHex(sha256(this.record.publicKey)).slice(0, 32)),
      isOwner: this.record.role === 'owner',
      isSelf: true,
      connection: 'self',
    };
    return {
      id: this.record.id,
      name: this.record.name,
      role: this.record.role,
      selfId: this.record.selfId,
      epoch: this.record.epoch,
      safetyCode: safetyCode(this.record.id, [this.record.publicKey]),
      members: [self],
      messages: [
        ...this.history.map((m) => ({ key: `${m.senderId}/${m.seq}`, senderId: m.senderId, senderName: m.senderName, text: m.text, at: m.at, pending: false, system: m.system })),
        ...this.outbox.map((o) => ({ key: `${this.record.selfId}/${o.seq}`, senderId: this.record.selfId, senderName: this.record.selfName, text: o.text, at: o.at, pending: true, system: false })),
      ],
      invites: this.invites,
      removed: false,
      connection: 'offline',
    };
  }
}

/** Stand-in until protocol/room provides the spec's safety code: digits from a hash of the keys. */
function safetyCode(roomId: string, keys: Uint8Array[]): string {
  const digest = sha256(utf8Encode(roomId + keys.map((k) => toHex(k)).sort().join('')));
  const groups: string[] = [];
  for (let i = 0; i < 6; i++) groups.push((((digest[2 * i] ?? 0) << 8) | (digest[2 * i + 1] ?? 0)).toString().padStart(5, '0'));
  return groups.join(' ');
}

export class Session {
  private readonly rooms = new Map<string, LocalRoom>();
  private listener: RoomsListener = () => undefined;

  private constructor(
    readonly vault: Vault,
    public settings: Settings,
    readonly config: ServerConfig | null,
  ) {}

  static async open(vault: Vault, config: ServerConfig | null): Promise<Session> {
    const stored = await vault.get('settings', 'settings');
    const session = new Session(vault, stored === undefined ? defaultSettings(config) : decodeSettings(stored), config);
    for (const { key, value } of await vault.list('rooms')) {
      const record = decodeRoom(value);
      if (record.id !== key) throw new TypeError(`room record ${key} carries id ${record.id}`);
      const history = (await vault.list('history', `${key}/`)).map((r) => decodeHistory(r.value));
      const outbox = (await vault.list('outbox', `${key}/`)).map((r) => decodeOutbox(r.value));
      session.rooms.set(key, new LocalRoom(record, history, outbox));
    }
    return session;
  }

  onChange(fn: RoomsListener): void {
    this.listener = fn;
    this.publish();
  }

  private publish(): void {
    const views = new Map<string, RoomView>();
    for (const [id, room] of this.rooms) views.set(id, room.view());
    this.listener(views);
  }

  async saveSettings(settings: Settings): Promise<void> {
    await this.vault.put('settings', 'settings', encodeSettings(settings));
    this.settings = settings;
  }

  async createRoom(name: string): Promise<string> {
    const id = toHex(systemRandom(16));
    const identity = generateIdentity();
    const record: RoomRecord = {
      id,
      name,
      role: 'owner',
      selfId: toHex(sha256(identity.publicKey)).slice(0, 16),
      selfName: this.settings.displayName,
      epoch: 0,
      createdAt: Date.now(),
      publicKey: identity.publicKey,
    };
    await this.vault.put('identities', id, encode({ v: 1, publicKey: identity.publicKey, privateKey: identity.privateKey }));
    await this.vault.put('rooms', id, encodeRoom(record));
    this.rooms.set(id, new LocalRoom(record, [], []));
    this.publish();
    return id;
  }

  async join(inviteUrl: string): Promise<string> {
    throw new Error(`joining is not available yet (${inviteUrl.length} characters read)`);
  }

  async send(roomId: string, text: string): Promise<void> {
    const room = this.room(roomId);
    const msg: HistoryRecord = { senderId: room.record.selfId, senderName: room.record.selfName, seq: room.nextSeq(), text, at: Date.now(), system: false };
    await this.vault.put('history', seqKey(roomId, room.history.length + 1), encodeHistory(msg));
    room.history.push(msg);
    this.publish();
  }

  async createInvite(roomId: string, ttlMinutes: number): Promise<InviteView> {
    const room = this.room(roomId);
    const token = toHex(systemRandom(16));
    const base = this.config?.appUrl ?? location.origin;
    const invite: InviteView = { id: token, url: `${base}/#join=${token}`, expiresAt: Date.now() + ttlMinutes * 60_000 };
    room.invites = [...room.invites, invite];
    this.publish();
    return invite;
  }

  async revokeInvite(roomId: string, inviteId: string): Promise<void> {
    const room = this.room(roomId);
    room.invites = room.invites.filter((i) => i.id !== inviteId);
    this.publish();
  }

  async kick(roomId: string, memberId: string): Promise<void> {
    throw new Error(`kick ${memberId} in ${roomId}: not available yet`);
  }

  async rotateNow(roomId: string): Promise<void> {
    const room = this.room(roomId);
    room.record = { ...room.record, epoch: room.record.epoch + 1 };
    await this.vault.put('rooms', roomId, encodeRoom(room.record));
    this.publish();
  }

  async forget(roomId: string): Promise<void> {
    this.room(roomId);
    await this.vault.delete('rooms', roomId);
    await this.vault.delete('identities', roomId);
    await this.vault.deletePrefix('history', `${roomId}/`);
    await this.vault.deletePrefix('outbox', `${roomId}/`);
    await this.vault.deletePrefix('keys', `${roomId}/`);
    this.rooms.delete(roomId);
    this.publish();
  }

  close(): void {
    this.listener = () => undefined;
  }

  private room(roomId: string): LocalRoom {
    const room = this.rooms.get(roomId);
    if (room === undefined) throw new Error(`no room ${roomId}`);
    return room;
  }
}
