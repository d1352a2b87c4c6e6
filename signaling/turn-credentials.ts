import { createHmac, randomBytes } from 'node:crypto';

/** One RTCIceServer entry as the browser's RTCPeerConnection takes it. */
export interface IceServer {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/**
 * Short-lived TURN credentials in the "TURN REST API" form (draft-uberti-behave-turn-rest-00) that coturn
 * checks with `--use-auth-secret --static-auth-secret=SECRET`:
 *   username   = "<unix expiry time>:<random id>"
 *   credential = base64(HMAC-SHA1(SECRET, username))
 * coturn recomputes the HMAC from the username and refuses it once the expiry time has passed, so the
 * app never holds a long-lived TURN password. The random id only keeps usernames distinct; it is not a secret.
 */
export function turnCredentials(opts: {
  secret: string;
  urls: readonly string[];
  ttlSeconds: number;
  nowMs: number;
  random?: (n: number) => Uint8Array;
}): { server: IceServer; expiresAt: number } {
  const expiresAt = Math.floor(opts.nowMs / 1000) + opts.ttlSeconds;
  const id = Buffer.from((opts.random ?? randomBytes)(9)).toString('base64url');
  const username = `${expiresAt}:${id}`;
  const credential = createHmac('sha1', opts.secret).update(username).digest('base64');
  return { server: { urls: [...opts.urls], username, credential }, expiresAt };
}
