/**
 * File transfers of one peer link, driven (docs/PROTOCOL.md 5.17.2-5.17.4): the sender and receiver
 * machines wired to injected ports (the files data channel, the link for control messages, storage,
 * the AEAD backend). One instance per link end; it holds at most one sealed chunk per outgoing file
 * in memory and processes incoming chunks one at a time, so memory stays bounded whatever the size.
 * No timers, no clock: the host calls `pump()` on `bufferedamountlow` and `resume()` on a new session.
 */
import { equalBytes, toHex, type AeadBackend } from '../../crypto/index.ts';
import { decodeFileControl, encodeFileControl, type FileControl } from './control.ts';
import { FileError, type FileErrorCode } from './errors.ts';
import { chunkCount, type FileOffer } from './offer.ts';
import { openChunk, parseChunkFrame, sealChunk } from './chunk.ts';
import {
  chunkArrived,
  chunkOpened,
  chunkRefused,
  resumeReceive,
  senderCancelled,
  startReceive,
  cancelReceive,
  verified,
  type ReceiveEffect,
  type ReceiveState,
} from './receiver.ts';
import { cancelSend, chunkSent, nextToSend, onControl, startSend, type SendState } from './sender.ts';

/** Stop sealing chunks while the files channel buffers this much. */
export const FILES_HIGH_WATERMARK = 4 * 1024 * 1024;

export type FileEvent =
  | { readonly kind: 'progress'; readonly offer: FileOffer; readonly done: number; readonly count: number }
  | { readonly kind: 'received'; readonly offer: FileOffer }
  | { readonly kind: 'sent-cancelled'; readonly offer: FileOffer; readonly code: FileErrorCode | undefined }
  | { readonly kind: 'failed'; readonly offer: FileOffer; readonly code: FileErrorCode }
  | { readonly kind: 'refused'; readonly offer: FileOffer; readonly error: FileError };

export interface FilePorts {
  readonly aead: AeadBackend;
  sendFrame(frame: Uint8Array): void;
  channelBuffered(): number;
  sendControl(bytes: Uint8Array): void;
  /** Plaintext of chunk `index` of a file we serve (from disk, IndexedDB, or the relay's copy). */
  read(offer: FileOffer, index: number): Promise<Uint8Array>;
  /** How many chunks of `offer` we can serve now (a relaying owner: what it has verified). */
  available?(offer: FileOffer): number;
  /** Store a verified chunk; resolves when it is durable (the resume point moves after it). */
  store(offer: FileOffer, index: number, plaintext: Uint8Array): Promise<void>;
  /** Hash the stored file against `offer.hash`. */
  verify(offer: FileOffer): Promise<boolean>;
  event(e: FileEvent): void;
  /** Work that was queued (not awaited by a caller) failed: a bug or a storage error. */
  fail(e: unknown): void;
}

interface Incoming {
  readonly offer: FileOffer;
  state: ReceiveState;
}
interface Outgoing {
  readonly offer: FileOffer;
  state: SendState;
}

export class FileTransfers {
  private readonly incoming = new Map<string, Incoming>();
  private readonly outgoing = new Map<string, Outgoing>();
  private queue: Promise<void> = Promise.resolve();
  private pumping = false;
  private pumpAgain = false;

  constructor(
    private readonly ports: FilePorts,
    private readonly window?: number,
  ) {}

  /** Serve `offer` to the peer at the other end when it asks (its `file-want`). */
  serve(offer: FileOffer): void {
    const id = toHex(offer.file);
    if (!this.outgoing.has(id)) this.outgoing.set(id, { offer, state: startSend(offer) });
  }

  /** Accept `offer` from the peer, resuming after the `next` chunks already stored. */
  accept(offer: FileOffer, next = 0): void {
    const step = startReceive(offer, next, this.window);
    const t: Incoming = { offer, state: step.state };
    this.incoming.set(toHex(offer.file), t);
    this.apply(t, step.effects);
  }

  decline(offer: FileOffer): void {
    this.ports.sendControl(encodeFileControl({ type: 'file-decline', file: offer.file }));
  }

  /** Stop a transfer in either direction (user cancel, removal). */
  cancel(offer: FileOffer, code: FileErrorCode): void {
    const id = toHex(offer.file);
    const inc = this.incoming.get(id);
    if (inc !== undefined) {
      const step = cancelReceive(inc.state, code);
      inc.state = step.state;
      this.apply(inc, step.effects);
    }
    const out = this.outgoing.get(id);
    if (out !== undefined) {
      const c = cancelSend(out.state, code);
      out.state = c.state;
      if (c.msg !== null) this.ports.sendControl(encodeFileControl(c.msg));
    }
  }

  /** A new session: ask again for what is missing. */
  resume(): void {
    for (const t of this.incoming.values()) {
      const step = resumeReceive(t.state, this.window);
      t.state = step.state;
      this.apply(t, step.effects);
    }
  }

  /** A control message from the peer (a link message). Throws DecodeError / FileError on bad input. */
  control(bytes: Uint8Array): void {
    const m: FileControl = decodeFileControl(bytes);
    const id = toHex(m.file);
    if (m.type === 'file-cancel') {
      const inc = this.incoming.get(id);
      if (inc !== undefined && equalBytes(inc.offer.file, m.file)) {
        const step = senderCancelled(inc.state, m.code);
        inc.state = step.state;
        this.apply(inc, step.effects);
      }
    }
    const out = this.outgoing.get(id);
    if (out === undefined) {
      if (m.type === 'file-cancel') return;
      throw new FileError('file.unknown', 'control message for a file we do not serve');
    }
    const before = out.state.status;
    out.state = onControl(out.state, m);
    if (before !== out.state.status && (out.state.status === 'cancelled' || out.state.status === 'declined'))
      this.ports.event({ kind: 'sent-cancelled', offer: out.offer, code: out.state.code });
    this.pump();
  }

  /** A message on the files data channel. Chunks are handled one after another, in arrival order. */
  frame(frame: Uint8Array): Promise<void> {
    const p = this.queue.then(() => this.handleFrame(frame));
    this.queue = p.catch(() => undefined); // the caller gets this frame's error; later frames still run
    return p;
  }

  private async handleFrame(frame: Uint8Array): Promise<void> {
    const c = parseChunkFrame(frame);
    const t = this.incoming.get(toHex(c.file));
    if (t === undefined) throw new FileError('file.unknown', 'chunk of a file not in transfer');
    const a = chunkArrived(t.state, c.index, this.window);
    t.state = a.state;
    await this.applyAsync(t, a.effects);
    if (!a.open) return;
    let plain: Uint8Array;
    try {
      plain = await openChunk(this.ports.aead, t.offer, c);
    } catch (e) {
      if (!(e instanceof FileError)) throw e;
      const step = chunkRefused(t.state, e, this.window);
      t.state = step.state;
      await this.applyAsync(t, step.effects);
      return;
    }
    await this.ports.store(t.offer, c.index, plain);
    const step = chunkOpened(t.state, c.index, plain, this.window);
    t.state = step.state;
    await this.applyAsync(t, step.effects);
  }

  /** Seal and send granted chunks while the channel has room (call on `bufferedamountlow`). */
  pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pumpLoop()
      .catch((e: unknown) => this.ports.fail(e))
      .finally(() => {
        this.pumping = false;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.pump();
        }
      });
  }

  private async pumpLoop(): Promise<void> {
    for (const o of this.outgoing.values()) {
      const avail = (): number => this.ports.available?.(o.offer) ?? chunkCount(o.offer.size);
      for (let i = nextToSend(o.state, avail()); i !== null; i = nextToSend(o.state, avail())) {
        if (this.ports.channelBuffered() >= FILES_HIGH_WATERMARK) return;
        const frame = await sealChunk(this.ports.aead, o.offer, i, await this.ports.read(o.offer, i));
        if (nextToSend(o.state, avail()) !== i) continue; // a want restarted the transfer meanwhile
        this.ports.sendFrame(frame);
        o.state = chunkSent(o.state, i);
      }
    }
  }

  /** Effects of a step taken outside the frame queue: run them in queue order. */
  private apply(t: Incoming, effects: readonly ReceiveEffect[]): void {
    this.queue = this.queue.then(() => this.applyAsync(t, effects)).catch((e: unknown) => this.ports.fail(e));
  }

  private async applyAsync(t: Incoming, effects: readonly ReceiveEffect[]): Promise<void> {
    for (const e of effects) {
      switch (e.kind) {
        case 'send':
          this.ports.sendControl(encodeFileControl(e.msg));
          break;
        case 'progress':
          this.ports.event({ kind: 'progress', offer: t.offer, done: e.next, count: e.count });
          break;
        case 'refused':
          this.ports.event({ kind: 'refused', offer: t.offer, error: e.error });
          break;
        case 'verify': {
          const step = verified(t.state, await this.ports.verify(t.offer));
          t.state = step.state;
          await this.applyAsync(t, step.effects);
          break;
        }
        case 'finished':
          this.ports.event(
            e.ok ? { kind: 'received', offer: t.offer } : { kind: 'failed', offer: t.offer, code: e.code ?? 'file.cancelled' },
          );
          break;
        case 'store':
          break; // stored before the machine counted it (handleFrame)
      }
    }
  }

  /** Resume point of an incoming file (persist it with the stored chunks). */
  nextOf(offer: FileOffer): number | undefined {
    return this.incoming.get(toHex(offer.file))?.state.next;
  }
}
