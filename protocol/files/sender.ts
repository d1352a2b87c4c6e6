/**
 * Sending (or relaying) one file to one peer (docs/PROTOCOL.md 5.17.3) as a pure state machine: the
 * peer's `file-want` sets the grant; the driver sends `nextToSend` while the files channel has room
 * and reports `chunkSent`. A relaying owner also bounds the grant by what it has verified itself
 * (`available`). No per-receiver state survives beyond the grant: a resume is just a new want.
 */
import { equalBytes } from '../../crypto/index.ts';
import type { FileControl } from './control.ts';
import { FileError, type FileErrorCode } from './errors.ts';
import { chunkCount, type FileId, type FileOffer } from './offer.ts';

export interface SendState {
  readonly file: FileId;
  readonly count: number;
  /** Next chunk to send and end (exclusive) of the peer's grant. */
  readonly next: number;
  readonly to: number;
  readonly status: 'offered' | 'sending' | 'declined' | 'cancelled';
  readonly code?: FileErrorCode;
}

export function startSend(offer: FileOffer): SendState {
  return { file: offer.file, count: chunkCount(offer.size), next: 0, to: 0, status: 'offered' };
}

/** A control message from the receiving peer. Throws FileError for another file or a grant beyond the file. */
export function onControl(s: SendState, m: FileControl): SendState {
  if (!equalBytes(m.file, s.file)) throw new FileError('file.unknown', 'control message for another file');
  if (s.status === 'declined' || s.status === 'cancelled') return s;
  switch (m.type) {
    case 'file-want': {
      if (m.to > s.count) throw new FileError('file.frame', `grant up to ${m.to} beyond ${s.count} chunks`);
      // A want that starts after our next chunk and within our grant extends it (we still owe the
      // chunks before `from`); any other want restarts at `from` (accept, resume, re-request).
      const extends_ = s.status === 'sending' && m.from > s.next && m.from <= s.to;
      return { ...s, next: extends_ ? s.next : m.from, to: m.to, status: 'sending' };
    }
    case 'file-decline':
      return { ...s, status: 'declined' };
    case 'file-cancel':
      return { ...s, status: 'cancelled', code: m.code };
  }
}

/** Index of the chunk to send now, or null (nothing granted, or `available` chunks are all we have). */
export function nextToSend(s: SendState, available = s.count): number | null {
  if (s.status !== 'sending') return null;
  return s.next < s.to && s.next < available ? s.next : null;
}

export function chunkSent(s: SendState, index: number): SendState {
  if (index !== s.next) throw new RangeError(`chunkSent(${index}) while next is ${s.next}`);
  return { ...s, next: index + 1 };
}

/** We stop sending (user cancel, the peer or the sender was removed): the message to send. */
export function cancelSend(s: SendState, code: FileErrorCode): { state: SendState; msg: FileControl | null } {
  if (s.status === 'declined' || s.status === 'cancelled') return { state: s, msg: null };
  return { state: { ...s, status: 'cancelled', code }, msg: { type: 'file-cancel', file: s.file, code } };
}
