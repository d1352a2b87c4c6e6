/**
 * The owner's file history budget and removals (docs/PROTOCOL.md 5.17.5), as pure decisions over
 * plain lists: which kept files to drop to stay within `fileHistoryBytes`, and which transfers stop
 * when a member is removed.
 */
import type { FileErrorCode } from './errors.ts';

export const DEFAULT_FILE_HISTORY_BYTES = 1024 * 1024 * 1024;

export interface KeptFile {
  readonly id: string;
  readonly size: number;
  /** Room index of its offer: lower is older. */
  readonly idx: number;
}

/** Files to drop, oldest first, so that the rest plus `incoming` bytes fit in `budget`. */
export function evictForBudget(kept: readonly KeptFile[], incoming: number, budget: number): string[] {
  let total = kept.reduce((a, f) => a + f.size, 0) + incoming;
  const drop: string[] = [];
  for (const f of [...kept].sort((a, b) => a.idx - b.idx)) {
    if (total <= budget) break;
    drop.push(f.id);
    total -= f.size;
  }
  return drop;
}

export interface Transfer {
  readonly file: string;
  /** The peer (member id) at the other end of this transfer, and whose file it is. */
  readonly peer: string;
  readonly sender: string;
  readonly direction: 'in' | 'out';
  readonly complete: boolean;
}

/**
 * A member was removed: every transfer with it stops, and every incomplete relay of a file it was
 * sending stops for the other members too (its bytes can no longer arrive). Returns the transfers to
 * cancel with their code; completed files stay.
 */
export function transfersToStop(transfers: readonly Transfer[], removed: string): { transfer: Transfer; code: FileErrorCode }[] {
  const incompleteFromRemoved = new Set(
    transfers.filter((t) => t.sender === removed && t.direction === 'in' && !t.complete).map((t) => t.file),
  );
  return transfers
    .filter((t) => !t.complete && (t.peer === removed || incompleteFromRemoved.has(t.file)))
    .map((t) => ({ transfer: t, code: 'file.removed' as const }));
}
