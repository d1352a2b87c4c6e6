// Files through the room drivers (docs/PROTOCOL.md 5.17, protocol/room/file-driver.ts), in memory:
// real machines, real AEAD (node:crypto), a fake link whose files channel the test can cut, tamper
// with or reorder. Member -> owner -> members relay, owner -> members, decline, cancel, removal,
// the owner's history budget, resume after a cut and after a restart, hostile control messages.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initCrypto, sha256, toHex } from '../../crypto/index.ts';
import { encodeFileControl, encodeFileOffer, FILE_CHUNK, type FileId, type FileOffer } from '../../protocol/files/index.ts';
import { DecodeError } from '../../protocol/errors.ts';
import { decodeKnownFiles, encodeKnownFiles } from '../../protocol/room/file-records.ts';
import { encode } from '../../protocol/msgpack.ts';
import type { DriverEvent } from '../../protocol/room/driver-ports.ts';
import { isFileControl, type FilesChannel } from '../../protocol/room/file-driver.ts';
import type { MemberDriver } from '../../protocol/room/member-driver.ts';
import type { OwnerDriver } from '../../protocol/room/owner-driver.ts';
import { Recorder, type Party } from './driver-harness.ts';
import { FilesWorld, framesSent, onFrames, type MemoryFileStore } from './file-driver-harness.ts';

beforeAll(async () => {
  await initCrypto();
});

let world: FilesWorld;
afterEach(async () => {
  onFrames(null);
  await world.close();
});

function bytesOf(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** Offer `size` bytes from `party` (its store serves them). */
async function offerFrom(
  party: Party<OwnerDriver | MemberDriver>,
  size: number,
  name = 'f.bin',
  seed = 1,
): Promise<{ offer: FileOffer; bytes: Uint8Array }> {
  const bytes = bytesOf(size, seed);
  const id = crypto.getRandomValues(new Uint8Array(16)) as FileId;
  world.storeOf(party.identity).add(id, bytes);
  const offer = await party.driver.files!.send({ name, size, mime: 'application/octet-stream', hash: sha256(bytes), id });
  return { offer, bytes };
}

const fileEvents = (rec: Recorder, file: FileId): DriverEvent[] =>
  rec.events.filter((e) => 'kind' in e && e.kind.startsWith('file-') && fileIdOf(e) === toHex(file));
function fileIdOf(e: DriverEvent): string | null {
  if (e.kind === 'file-offered' || e.kind === 'file-received') return toHex(e.offer.file);
  if (e.kind === 'file-progress' || e.kind === 'file-ended') return toHex(e.file);
  return null;
}
const received = (rec: Recorder, file: FileId): boolean => fileEvents(rec, file).some((e) => e.kind === 'file-received');
const ended = (rec: Recorder, file: FileId): string | null => {
  const e = fileEvents(rec, file).find((x) => x.kind === 'file-ended');
  return e?.kind === 'file-ended' ? e.code : null;
};
const storeOf = (p: Party<OwnerDriver | MemberDriver>): MemoryFileStore => world.storeOf(p.identity);

type Member = Awaited<ReturnType<FilesWorld['join']>>;
async function room(n = 2): Promise<{ owner: Party<OwnerDriver>; members: Member[] }> {
  world = new FilesWorld();
  const owner = await world.owner();
  const members: Member[] = [];
  for (let i = 0; i < n; i++) members.push(await world.join(owner, `m${i}`));
  await world.settle();
  return { owner, members };
}

describe('relay (5.17.5)', () => {
  it('member -> owner -> members: the owner fetches at once, serves what it verified; hashes match', async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    const { offer, bytes } = await offerFrom(a, 5 * FILE_CHUNK + 123, 'report.pdf');
    await world.until(() => fileEvents(b.rec, offer.file).some((e) => e.kind === 'file-offered'), 'b sees the offer');
    const offered = fileEvents(b.rec, offer.file)[0]!;
    expect(offered).toMatchObject({ kind: 'file-offered', from: a.driver.state.selfId, name: 'm0' });
    // The owner relays without anyone asking: its copy completes.
    await world.until(() => owner.driver.files!.list().some((k) => k.complete && toHex(k.offer.file) === toHex(offer.file)), 'relay copy');
    expect(toHex(storeOf(owner).bytesOf(offer))).toBe(toHex(bytes));
    // Not accepted by the owner's user: no file-received there.
    expect(received(owner.rec, offer.file)).toBe(false);
    b.driver.files!.accept(offer.file);
    await world.until(() => received(b.rec, offer.file), 'b received');
    expect(toHex(sha256(storeOf(b).bytesOf(offer)))).toBe(toHex(offer.hash));
    const progress = fileEvents(b.rec, offer.file).filter((e) => e.kind === 'file-progress');
    expect(progress.at(-1)).toMatchObject({ direction: 'in', done: 6, count: 6 });
    // The sender saw its chunks go out once (the owner fetched them), never more.
    expect(fileEvents(a.rec, offer.file).filter((e) => e.kind === 'file-progress' && e.direction === 'out')).toHaveLength(6);
    // The owner's user accepts later: its relay copy is handed over at once.
    owner.driver.files!.accept(offer.file);
    expect(received(owner.rec, offer.file)).toBe(true);
  });

  it('a member accepting before the owner has the file waits for what the owner verified', async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    // Hold back the owner's fetch: frames from a's link are lost until released.
    let hold = true;
    const aLink = (): unknown => world.net.members.get(toHex(a.identity.peer.publicKey));
    onFrames((f, from) => (hold && from === aLink() ? null : f));
    const { offer } = await offerFrom(a, 3 * FILE_CHUNK, 'x');
    await world.until(() => fileEvents(b.rec, offer.file).length > 0, 'offered');
    b.driver.files!.accept(offer.file);
    await world.settle();
    expect(received(b.rec, offer.file)).toBe(false);
    expect(framesSent.get(world.net.owner!.links.get(toHex(b.identity.peer.publicKey))!) ?? 0).toBe(0);
    hold = false;
    // A new session asks again from where the owner is (resume on files-open).
    world.net.partition(a.identity.peer.publicKey);
    world.net.heal(a.identity.peer.publicKey);
    await world.until(() => received(b.rec, offer.file), 'b received after the relay caught up');
    expect(owner.rec.lines.some((l) => l.startsWith('error'))).toBe(false);
  });

  it('owner -> members: the owner offers, both members accept and get the same bytes', async () => {
    const { owner, members } = await room(2);
    const { offer, bytes } = await offerFrom(owner, 2 * FILE_CHUNK + 9, 'photo.jpg', 3);
    for (const m of members) await world.until(() => fileEvents(m.rec, offer.file).length > 0, 'offered');
    for (const m of members) m.driver.files!.accept(offer.file);
    for (const m of members) await world.until(() => received(m.rec, offer.file), `${m.name} received`);
    for (const m of members) expect(toHex(storeOf(m).bytesOf(offer))).toBe(toHex(bytes));
  });

  it('an empty file is one empty chunk', async () => {
    const { owner, members } = await room(1);
    const { offer } = await offerFrom(owner, 0, 'empty');
    await world.until(() => fileEvents(members[0]!.rec, offer.file).length > 0, 'offered');
    members[0]!.driver.files!.accept(offer.file);
    await world.until(() => received(members[0]!.rec, offer.file), 'received');
  });
});

describe('decline and cancel', () => {
  it('a declined file is not sent to that member; others still get it', async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    const { offer } = await offerFrom(owner, 3 * FILE_CHUNK, 'x');
    await world.until(() => fileEvents(a.rec, offer.file).length > 0 && fileEvents(b.rec, offer.file).length > 0, 'offered');
    a.driver.files!.decline(offer.file);
    b.driver.files!.accept(offer.file);
    await world.until(() => received(b.rec, offer.file), 'b received');
    expect(ended(a.rec, offer.file)).toBe('file.cancelled');
    expect(framesSent.get(world.net.owner!.links.get(toHex(a.identity.peer.publicKey))!) ?? 0).toBe(0);
    // Accepting after the decline changes nothing.
    a.driver.files!.accept(offer.file);
    await world.settle();
    expect(received(a.rec, offer.file)).toBe(false);
  });

  it('the sender cancels mid-file: the relay stops and the receiver ends with file.cancelled', async () => {
    const { members } = await room(2);
    const [a, b] = members as [Member, Member];
    let sent = 0;
    let cancelled = false;
    const { offer } = await (async () => {
      onFrames((f) => {
        sent++;
        if (sent === 3 && !cancelled) {
          cancelled = true;
          queueMicrotask(() => a.driver.files!.cancel(f.subarray(1, 17).slice() as FileId));
        }
        return f;
      });
      return offerFrom(a, 8 * FILE_CHUNK, 'big');
    })();
    await world.until(() => fileEvents(b.rec, offer.file).length > 0, 'offered');
    b.driver.files!.accept(offer.file);
    await world.until(() => ended(b.rec, offer.file) !== null, 'b ended');
    expect(ended(b.rec, offer.file)).toBe('file.cancelled');
    expect(received(b.rec, offer.file)).toBe(false);
  });

  it('a receiver cancels: its partial copy is dropped, the sender stops sending to it', async () => {
    const { owner, members } = await room(1);
    const [a] = members as [Member];
    let toA = 0;
    const aOwnerLink = (): unknown => world.net.owner!.links.get(toHex(a.identity.peer.publicKey));
    onFrames((f, from) => {
      if (from === aOwnerLink() && ++toA === 2) queueMicrotask(() => a.driver.files!.cancel(f.subarray(1, 17).slice() as FileId));
      return f;
    });
    const { offer } = await offerFrom(owner, 10 * FILE_CHUNK, 'big');
    await world.until(() => fileEvents(a.rec, offer.file).length > 0, 'offered');
    a.driver.files!.accept(offer.file);
    await world.until(() => ended(a.rec, offer.file) !== null, 'a ended');
    await world.settle();
    expect(ended(a.rec, offer.file)).toBe('file.cancelled');
    expect(toA).toBeLessThan(10);
    expect(storeOf(a).chunks.has(toHex(offer.file))).toBe(false);
  });
});

describe('removal (5.17.5)', () => {
  it('removing the sender cancels the relay to the others (file.removed) and refuses its wants', async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    let fromA = 0;
    const aLink = (): unknown => world.net.members.get(toHex(a.identity.peer.publicKey));
    const aId = a.driver.state.selfId;
    onFrames((f, from) => {
      if (from === aLink() && ++fromA === 3) queueMicrotask(() => void owner.driver.kick(aId));
      return f;
    });
    const { offer } = await offerFrom(a, 12 * FILE_CHUNK, 'big');
    await world.until(() => fileEvents(b.rec, offer.file).length > 0, 'offered');
    b.driver.files!.accept(offer.file);
    await world.until(() => ended(b.rec, offer.file) !== null, 'b ended');
    expect(ended(b.rec, offer.file)).toBe('file.removed');
    expect(ended(owner.rec, offer.file)).toBe('file.removed');
    expect(storeOf(owner).chunks.has(toHex(offer.file))).toBe(false);
    expect(fromA).toBeLessThan(12);
    await world.advance(3000); // the removed member's link lingers (LINGER_MS)
  });

  it('removing a receiver stops what the owner sends it; a want from its key is refused', async () => {
    const { owner, members } = await room(2);
    const [a, b] = members as [Member, Member];
    const { offer } = await offerFrom(owner, 12 * FILE_CHUNK, 'big');
    let toB = 0;
    const bKey = b.identity.peer.publicKey;
    const bOwnerLink = world.net.owner!.links.get(toHex(bKey));
    onFrames((f, from) => {
      if (from === bOwnerLink && ++toB === 3) queueMicrotask(() => void owner.driver.kick(b.driver.state.selfId));
      return f;
    });
    await world.until(() => fileEvents(b.rec, offer.file).length > 0 && fileEvents(a.rec, offer.file).length > 0, 'offered');
    a.driver.files!.accept(offer.file);
    b.driver.files!.accept(offer.file);
    await world.until(() => received(a.rec, offer.file) && b.driver.state.phase === 'removed', 'a received, b removed');
    expect(received(b.rec, offer.file)).toBe(false);
    expect(ended(b.rec, offer.file)).toBe('file.removed');
    expect(toB).toBeLessThan(12);
    // Its key asks again (a replayed want): refused, nothing sent.
    const before = framesSent.get(bOwnerLink!) ?? 0;
    owner.driver.files!.control(toHex(bKey) as never, encodeFileControl({ type: 'file-want', file: offer.file, from: 0, to: 2 }));
    await world.settle();
    expect(framesSent.get(bOwnerLink!) ?? 0).toBe(before);
    expect(owner.rec.lines.some((l) => l.includes('not a member'))).toBe(true);
    await world.advance(3000); // the removed member's link lingers (LINGER_MS)
  });
});

describe('history budget (5.17.5)', () => {
  it('keeps relay copies up to historyBytes, oldest out; a want for a dropped file gets file.gone', async () => {
    world = new FilesWorld();
    world.historyBytes = 5 * FILE_CHUNK;
    const owner = await world.owner();
    const a = await world.join(owner, 'a');
    const b = await world.join(owner, 'b');
    const one = await offerFrom(a, 2 * FILE_CHUNK, 'one', 1);
    await world.until(() => owner.driver.files!.list().some((k) => k.complete && k.offer.name === 'one'), 'one kept');
    const two = await offerFrom(a, 2 * FILE_CHUNK, 'two', 2);
    await world.until(() => owner.driver.files!.list().some((k) => k.complete && k.offer.name === 'two'), 'two kept');
    const three = await offerFrom(a, 2 * FILE_CHUNK, 'three', 3);
    await world.until(() => owner.driver.files!.list().some((k) => k.complete && k.offer.name === 'three'), 'three kept');
    expect(ended(owner.rec, one.offer.file)).toBe('file.gone');
    expect(owner.driver.files!.list().map((k) => k.offer.name)).toEqual(['two', 'three']);
    expect(storeOf(owner).chunks.has(toHex(one.offer.file))).toBe(false);
    b.driver.files!.accept(one.offer.file);
    b.driver.files!.accept(three.offer.file);
    await world.until(() => ended(b.rec, one.offer.file) !== null && received(b.rec, three.offer.file), 'b: one gone, three in');
    expect(ended(b.rec, one.offer.file)).toBe('file.gone');
    expect(received(b.rec, two.offer.file)).toBe(false);
  });
});

describe('resume (5.17.4)', () => {
  it('the link is cut mid-file: the new session resumes from the last stored chunk; hash matches', async () => {
    const { owner, members } = await room(1);
    const [a] = members as [Member];
    const aKey = a.identity.peer.publicKey;
    let toA = 0;
    onFrames((f, from) => {
      if (from === world.net.owner?.links.get(toHex(aKey)) && ++toA === 4) queueMicrotask(() => world.net.partition(aKey));
      return f;
    });
    const { offer, bytes } = await offerFrom(owner, 9 * FILE_CHUNK + 1, 'cut');
    await world.until(() => fileEvents(a.rec, offer.file).length > 0, 'offered');
    a.driver.files!.accept(offer.file);
    await world.until(() => world.net.partitioned.size > 0, 'cut');
    await world.settle();
    expect(received(a.rec, offer.file)).toBe(false);
    const stored = (storeOf(a).chunks.get(toHex(offer.file)) ?? []).filter(Boolean).length;
    expect(stored).toBeGreaterThan(0);
    world.net.heal(aKey);
    await world.until(() => received(a.rec, offer.file), 'received after the cut');
    expect(toHex(storeOf(a).bytesOf(offer))).toBe(toHex(bytes));
    // Resumed, not restarted: fewer frames than twice the file.
    expect(toA).toBeLessThan(2 * 10);
  });

  it('a member restarts mid-file: its known-files record and stored chunks resume the transfer', async () => {
    const { owner, members } = await room(1);
    const [a] = members as [Member];
    const aKey = a.identity.peer.publicKey;
    let toA = 0;
    onFrames((f, from) => {
      if (from === world.net.owner?.links.get(toHex(aKey)) && ++toA === 3) queueMicrotask(() => world.net.crashMember(aKey));
      return f;
    });
    const { offer, bytes } = await offerFrom(owner, 7 * FILE_CHUNK, 'restart');
    await world.until(() => fileEvents(a.rec, offer.file).length > 0, 'offered');
    a.driver.files!.accept(offer.file);
    await world.until(() => !world.net.members.has(toHex(aKey)), 'crashed');
    await world.settle();
    world.stuck.add(a.driver); // the dead process's driver is abandoned
    const rec = new Recorder();
    const restarted = world.memberDriver(a.store.saved, a.store, a.identity, rec);
    await restarted.start();
    await world.advance(5000, 500);
    await world.until(() => received(rec, offer.file), 'received after the restart');
    expect(toHex(storeOf(a).bytesOf(offer))).toBe(toHex(bytes));
    expect(rec.events.some((e) => e.kind === 'file-offered')).toBe(false); // not offered twice
  });
});

describe('hostile chunks and controls', () => {
  it('a tampered chunk is refused (file.auth) and asked for again through the driver', async () => {
    const { owner, members } = await room(1);
    const [a] = members as [Member];
    let n = 0;
    onFrames((f) => {
      if (++n === 2) f[f.length - 1]! ^= 1;
      return f;
    });
    const { offer, bytes } = await offerFrom(owner, 4 * FILE_CHUNK, 't');
    await world.until(() => fileEvents(a.rec, offer.file).length > 0, 'offered');
    a.driver.files!.accept(offer.file);
    await world.until(() => received(a.rec, offer.file), 'received');
    expect(toHex(storeOf(a).bytesOf(offer))).toBe(toHex(bytes));
    expect(a.rec.lines.some((l) => l.includes('file.auth'))).toBe(true);
  });

  it('reordered chunks are refused (file.order) and asked for again; the file still matches', async () => {
    const { owner, members } = await room(1);
    const [a] = members as [Member];
    let held: Uint8Array | null = null;
    let n = 0;
    // The held chunk goes out on the owner's channel after the next one.
    onFrames((f, from) => {
      n++;
      if (n === 1) {
        held = f;
        return null;
      }
      if (n === 2) {
        const late = held!;
        queueMicrotask(() => (from.files as FilesChannel | null)!.send(late));
      }
      return f;
    });
    const { offer, bytes } = await offerFrom(owner, 4 * FILE_CHUNK, 'r');
    await world.until(() => fileEvents(a.rec, offer.file).length > 0, 'offered');
    a.driver.files!.accept(offer.file);
    await world.until(() => received(a.rec, offer.file), 'received');
    expect(toHex(storeOf(a).bytesOf(offer))).toBe(toHex(bytes));
    expect(a.rec.lines.some((l) => l.includes('file.order'))).toBe(true);
  });

  it('malformed, oversized and unknown controls and chunks are refused without effect', async () => {
    const { owner, members } = await room(1);
    const [a] = members as [Member];
    const { offer } = await offerFrom(owner, 2 * FILE_CHUNK, 'x');
    const peer = toHex(a.identity.peer.publicKey) as never;
    const files = owner.driver.files!;
    const bad = [
      encode({ type: 'file-want', file: offer.file, from: 0, to: 300 }), // grant above 256
      encode({ type: 'file-want', file: offer.file, from: 0, to: 9 }), // beyond the file's 2 chunks
      encode({ type: 'file-want', file: offer.file.slice(0, 8), from: 0, to: 1 }), // short id
      encode({ type: 'file-cancel', file: offer.file, code: 'nope' }), // unknown code
      encode({ type: 'file-decline', file: offer.file, extra: 1 }), // extra field
      new Uint8Array(300).fill(0x80), // oversized
    ];
    for (const b of bad) files.control(peer, b);
    // A want for a file never offered: cancelled as gone.
    files.control(peer, encodeFileControl({ type: 'file-want', file: new Uint8Array(16).fill(9) as FileId, from: 0, to: 1 }));
    // Chunks for files not in transfer, and garbage frames.
    files.frame(peer, new Uint8Array(10));
    files.frame(peer, Uint8Array.of(0x46, ...new Uint8Array(40)));
    await world.settle();
    const warnings = owner.rec.lines.filter((l) => l.startsWith('warn: files'));
    expect(warnings.length).toBeGreaterThanOrEqual(bad.length - 1);
    expect(owner.rec.events.some((e) => e.kind === 'error')).toBe(false);
    // The transfer itself still works afterwards.
    await world.until(() => fileEvents(a.rec, offer.file).length > 0, 'offered');
    a.driver.files!.accept(offer.file);
    await world.until(() => received(a.rec, offer.file), 'received');
    expect(isFileControl(encode({ type: 'send', env: new Uint8Array(1) }))).toBe(false);
    expect(isFileControl(encodeFileControl({ type: 'file-decline', file: offer.file }))).toBe(true);
  });

  it('a local offer that breaks the offer rules is refused before it is sent', async () => {
    const { owner } = await room(0);
    await expect(owner.driver.files!.send({ name: '', size: 1, mime: '', hash: new Uint8Array(32) })).rejects.toMatchObject({
      code: 'room.file',
    });
    await expect(owner.driver.files!.send({ name: 'x', size: 1, mime: '', hash: new Uint8Array(31) })).rejects.toMatchObject({
      code: 'room.file',
    });
    expect(() => owner.driver.files!.accept(new Uint8Array(16) as FileId)).toThrow(/no such file/);
  });
});

describe('known-files record (file-records.ts)', () => {
  it('round-trips and refuses unknown versions, extra fields, duplicates and bad offers', async () => {
    const { owner } = await room(0);
    const { offer } = await offerFrom(owner, 10, 'k');
    const list = owner.driver.files!.list();
    expect(decodeKnownFiles(encodeKnownFiles(list))).toEqual(list);
    const entry = { offer: encodeFileOffer(offer), from: list[0]!.from, idx: 0, mine: true, accepted: true, complete: true };
    const bad: [string, Uint8Array][] = [
      ['version 2', encode({ v: 2, files: [entry] })],
      ['extra field', encode({ v: 1, files: [{ ...entry, more: 1 }] })],
      ['twice', encode({ v: 1, files: [entry, entry] })],
      ['bad member id', encode({ v: 1, files: [{ ...entry, from: 'x' }] })],
      ['bad offer', encode({ v: 1, files: [{ ...entry, offer: encode({ type: 'file' }) }] })],
      ['idx below -1', encode({ v: 1, files: [{ ...entry, idx: -2 }] })],
    ];
    for (const [what, bytes] of bad) expect(() => decodeKnownFiles(bytes), what).toThrow(DecodeError);
  });
});
