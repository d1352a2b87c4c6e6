/**
 * Room-machine states are plain data (protocol/room/types.ts) and are stored as msgpack inside a
 * sealed record. This turns the decoded, tagged msgpack value back into plain data. The record was
 * authenticated by Secure Cell with our own storage key, so it is our own earlier output; the
 * caller still checks the discriminating fields before using it.
 */
import type { MsgValue } from '../../protocol/msgpack.ts';

export function toPlain(value: MsgValue): unknown {
  switch (value.t) {
    case 'nil':
      return null;
    case 'arr':
      return value.v.map(toPlain);
    case 'map': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of value.v) out[k] = toPlain(v);
      return out;
    }
    default:
      return value.v;
  }
}
