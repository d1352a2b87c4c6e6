/**
 * The member driver's keys across a key update (docs/PROTOCOL.md 5.8.1): the keys in use, and the
 * pending new ones from the moment they are made (stored before the request leaves) until the
 * machine switched to them (stored again, as the keys in use). Which peer key a new link uses.
 */
import { generateBoxKeyPair, generateIdentity, type BoxKeyPair, type RandomBytes } from '../../crypto/index.ts';
import { DriverError, type RoomStore } from './driver-ports.ts';
import { memberIdOf } from './ids.ts';
import type { RoomIdentity } from './records.ts';
import type { MemberCtx, MemberId, MemberState, OwnerState } from './types.ts';

/**
 * Keys in use and pending new ones across a key update, for members and the owner alike (5.8.1):
 * new keys are stored before anything leaves, and stored again as the keys in use once the state
 * that runs on them is saved.
 */
export class PendingKeys<S extends OwnerState | MemberState> {
  constructor(
    public current: RoomIdentity,
    public pending: RoomIdentity | null,
  ) {}

  /** At start: a state saved after the switch whose keys record still names the pending keys as pending. */
  async settle(store: RoomStore<S>, selfId: MemberId): Promise<void> {
    if (this.pending !== null && memberIdOf(this.pending.identity.publicKey) === selfId) await this.switched(store);
  }

  /** New keys (unless some are pending from an attempt that never got saved), stored before anything leaves. */
  async prepare(store: RoomStore<S>): Promise<RoomIdentity> {
    if (store.saveKeys === undefined) throw new DriverError('room.no-key-store', 'this store cannot keep new keys');
    if (this.pending !== null) return this.pending;
    const pending: RoomIdentity = { identity: generateIdentity(), peer: generateBoxKeyPair() };
    await store.saveKeys({ identity: this.current, pending });
    this.pending = pending;
    return pending;
  }

  /** The saved state runs on the pending keys: they become the keys in use, durably. */
  async switched(store: RoomStore<S>): Promise<void> {
    const next = this.pending;
    if (next === null) return;
    if (store.saveKeys === undefined) throw new DriverError('room.no-key-store', 'this store cannot keep new keys');
    await store.saveKeys({ identity: next, pending: null });
    this.current = next;
    this.pending = null;
  }
}

/** A member's keys: also which peer key a new link presents. */
export class KeyUpdateKeys extends PendingKeys<MemberState> {
  /** Set when the owner refused our current peer key while an update was pending: links use the pending one. */
  private usePending = false;

  ctx(random: RandomBytes): MemberCtx {
    const base = { random, identity: this.current.identity, peerKey: this.current.peer.publicKey };
    return this.pending === null ? base : { ...base, pending: { identity: this.pending.identity, peerKey: this.pending.peer.publicKey } };
  }

  /** The peer key pair a new link presents. */
  linkKeys(): { permanentKeys: BoxKeyPair } {
    return { permanentKeys: this.usePending && this.pending !== null ? this.pending.peer : this.current.peer };
  }

  /** After a refusal of our current key: use the pending keys for the next link (once). */
  tryPending(): boolean {
    if (this.pending === null || this.usePending) return false;
    this.usePending = true;
    return true;
  }

  override async switched(store: RoomStore<MemberState>): Promise<void> {
    await super.switched(store);
    this.usePending = false;
  }
}
