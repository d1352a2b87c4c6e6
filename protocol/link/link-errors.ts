/** Errors of the PeerLink API shared by peer-link.ts and the files channel (files-channel.ts). */
import { ZeroRoomError } from '../errors.ts';

export class LinkClosedError extends ZeroRoomError {
  constructor() {
    super('link.closed', 'the peer link is closed');
  }
}
