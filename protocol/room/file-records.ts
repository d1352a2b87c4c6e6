/**
 * The files a device takes part in, kept across restarts (docs/PROTOCOL.md 5.17.4): each offer with
 * who sent it, its room index, and where this device stands (its own file, a file it accepted, a
 * relay copy the owner keeps). One strict decoder, like every stored record (section 6.3): the list
 * holds file keys, so a store seals it (the CLI's --state directory: files.bin).
 */
import { DecodeError } from '../errors.ts';
import { decodeFileOffer, encodeFileOffer, type FileOffer } from '../files/offer.ts';
import { Fields, encode, type MsgValue } from '../msgpack.ts';
import { memberIdValue } from './codec.ts';
import type { MemberId } from './types.ts';

export interface KnownFile {
  readonly offer: FileOffer;
  /** The member who offered it. */
  readonly from: MemberId;
  /** Room index of its offer (-1 until our own offer is ordered): lower is older. */
  readonly idx: number;
  /** This device offered it (it serves it from its own copy). */
  readonly mine: boolean;
  /** The user accepted it (a member receives it; an owner hands its relay copy over). */
  readonly accepted: boolean;
  /** Every chunk is stored and the hash matched. */
  readonly complete: boolean;
}

/** At most this many files are remembered (oldest out first). */
export const MAX_KNOWN_FILES = 4096;
const MAX_KNOWN_BYTES = MAX_KNOWN_FILES * 1200;

export function encodeKnownFiles(list: readonly KnownFile[]): Uint8Array {
  return encode({
    v: 1,
    files: list.map((k) => ({
      offer: encodeFileOffer(k.offer),
      from: k.from,
      idx: k.idx,
      mine: k.mine,
      accepted: k.accepted,
      complete: k.complete,
    })),
  });
}

export function decodeKnownFiles(bytes: Uint8Array): KnownFile[] {
  if (bytes.length > MAX_KNOWN_BYTES) throw new DecodeError(`known files: larger than ${MAX_KNOWN_BYTES} bytes`);
  const f = Fields.fromBytes(bytes, 'known files').only(['v', 'files']);
  f.int('v', { min: 1, max: 1 });
  const seen = new Set<string>();
  return f.arr('files', MAX_KNOWN_FILES).map((v: MsgValue, i) => {
    const what = `known files[${i}]`;
    const e = Fields.of(v, what).only(['offer', 'from', 'idx', 'mine', 'accepted', 'complete']);
    const offer = decodeFileOffer(e.bin('offer', { min: 1, max: 1024 }));
    const id = Array.from(offer.file, (b) => b.toString(16).padStart(2, '0')).join('');
    if (seen.has(id)) throw new DecodeError(`${what}: a file listed twice`);
    seen.add(id);
    return {
      offer,
      from: memberIdValue(e.str('from', 32), `${what}.from`),
      idx: e.int('idx', { min: -1, max: Number.MAX_SAFE_INTEGER }),
      mine: e.bool('mine'),
      accepted: e.bool('accepted'),
      complete: e.bool('complete'),
    };
  });
}
