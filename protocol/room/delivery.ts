/**
 * Where a member's own message is between send and delivery (docs/PROTOCOL.md 5.13): 'queued'
 * until the owner's link layer acknowledged it (PeerLink 'acked'), then 'at-owner' until the
 * owner's room order delivers it back (the driver then forgets it). Tickets are per link object; a
 * message re-sent on a new link gets a new ticket and keeps 'at-owner' once it had it.
 */
export type OutboxDelivery = 'queued' | 'at-owner';

export class DeliveryTracker {
  private readonly inFlight = new Map<number, { readonly link: object; readonly ticket: number }>();
  private readonly atOwner = new Set<number>();

  /** `seq` went out on `link` as `ticket`. */
  sent(link: object, ticket: number, seq: number): void {
    if (!this.atOwner.has(seq)) this.inFlight.set(seq, { link, ticket });
  }

  /** `link` says the peer has every ticket up to `ticket`; returns whether anything changed. */
  acked(link: object, ticket: number): boolean {
    let changed = false;
    for (const [seq, f] of this.inFlight) {
      if (f.link === link && f.ticket <= ticket) {
        this.inFlight.delete(seq);
        this.atOwner.add(seq);
        changed = true;
      }
    }
    return changed;
  }

  /** Delivered back (or dropped): forget it. */
  done(seq: number): void {
    this.inFlight.delete(seq);
    this.atOwner.delete(seq);
  }

  state(seq: number): OutboxDelivery {
    return this.atOwner.has(seq) ? 'at-owner' : 'queued';
  }
}
