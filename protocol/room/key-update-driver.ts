/**
 * The member driver's keys across a key update (docs/PROTOCOL.md 5.8.1): the keys in use, and the
 * pending new ones from the moment they are made (stored before the request leaves) until the
 * machine switched to them (stored again, as the keys in use). Which peer key a new link uses.
 */
import { generateBoxKeyPair, generateIdentity, type BoxKeyPair, type RandomBytes } from '../../crypto/index.ts';
import { DriverError, type RoomStore } from './driver-ports.ts';
import { memberIdOf } from './ids.ts';
import type { RoomIdentity } from './records.ts';
import type { MemberCtx, MemberState } from './types.ts';

export class KeyUpdateKeys {
  /** Set when the owner refused our current peer key while an update was pending: links use the pending one. */
  private usePending = false;

  constructor(
    public current: RoomIdentity,
    public pending: RoomIdentity | null,
    private readonly state: { readonly selfId: MemberState['selfId'] },
  ) {}

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

  /** At start: a state saved after the switch whose keys record still names the pending keys as pending. */
  async settle(store: RoomStore<MemberState>): Promise<void> {
    if (this.pending !== null && memberIdOf(this.pending.identity.publicKey) === this.state.selfId) await this.switched(store);
  }

  /** Makes new keys (unless some are pending) and stores them before anything leaves. */
  async prepare(store: RoomStore<MemberState>): Promise<void> {
    if (store.saveKeys === undefined) throw new DriverError('room.no-key-store', 'this store cannot keep new keys');
    if (this.pending !== null) return;
    const pending: RoomIdentity = { identity: generateIdentity(), peer: generateBoxKeyPair() };
    await store.saveKeys({ identity: this.current, pending });
    this.pending = pending;
  }

  /** The machine switched to the pending keys: they become ours, durably. */
  async switched(store: RoomStore<MemberState>): Promise<void> {
    const next = this.pending;
    if (next === null) return;
    if (store.saveKeys === undefined) throw new DriverError('room.no-key-store', 'this store cannot keep new keys');
    await store.saveKeys({ identity: next, pending: null });
    this.current = next;
    this.pending = null;
    this.usePending = false;
  }
}
