/**
 * Owner away through the shared driver (docs/PROTOCOL.md 5.16; protocol/room/mesh-driver.ts, the
 * member and owner drivers): owner and three members over the fake link layer, plus a fake mesh
 * that admits a dialer only when the host's trusted keys (its roster) list it, like the SaltyRTC
 * initiator of protocol/link/owner.ts. The machines and crypto are the real ones.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { equalBytes, initCrypto, toHex, type BoxPublicKey } from '../../crypto/index.ts';
import { ZeroRoomError } from '../../protocol/errors.ts';
import type { PeerLink } from '../../protocol/link/peer-link.ts';
import { SaltyClientError } from '../../protocol/saltyrtc/client-errors.ts';
import { AWAY_AFTER_MS } from '../../protocol/room/away.ts';
import type { MeshHostHooks, MeshLinkPort } from '../../protocol/room/driver-ports.ts';
import { MemberDriver } from '../../protocol/room/member-driver.ts';
import type { OwnerDriver } from '../../protocol/room/owner-driver.ts';
import type { MemberState, OwnerState } from '../../protocol/room/index.ts';
import { FakeLink, type FakeNet, type MemoryStore, Recorder, World, type Party } from './driver-harness.ts';
import type { RoomIdentity } from '../../protocol/room/records.ts';

beforeAll(async () => {
  await initCrypto();
});

/** Member paths on the fake signaling server: a host admits only the keys its roster trusts. */
class FakeMesh {
  readonly hosts = new Map<string, { hooks: MeshHostHooks; links: Map<string, FakeLink> }>();
  /** Dialers a host refused: [dialer hex, host hex]. */
  readonly refused: [string, string][] = [];

  constructor(private readonly net: FakeNet) {}

  port(self: BoxPublicKey): MeshLinkPort {
    const selfHex = toHex(self);
    return {
      host: (hooks) => {
        const side = { hooks, links: new Map<string, FakeLink>() };
        this.hosts.set(selfHex, side);
        return {
          close: () => {
            for (const l of [...side.links.values()]) l.close();
            if (this.hosts.get(selfHex) === side) this.hosts.delete(selfHex);
          },
        };
      },
      dial: (peer) =>
        new Promise<PeerLink>((resolve, reject) => {
          this.net.later(() => {
            const side = this.hosts.get(toHex(peer));
            if (side === undefined) return reject(new SaltyClientError('saltyrtc.timeout', 'nobody on that path'));
            if (![...side.hooks.trustedKeys()].some((k) => equalBytes(k, self))) {
              this.refused.push([selfHex, toHex(peer)]);
              return reject(new ZeroRoomError('saltyrtc.initiator-refused', 'the initiator does not trust our key'));
            }
            const mine = new FakeLink(peer, this.net, self);
            const theirs = new FakeLink(self, this.net);
            side.links.get(selfHex)?.close();
            side.links.set(selfHex, theirs);
            theirs.on('close', () => {
              if (side.links.get(selfHex) === theirs) side.links.delete(selfHex);
            });
            mine.peer = theirs;
            theirs.peer = mine;
            mine.setState('direct');
            theirs.setState('direct');
            side.hooks.onLink(theirs);
            resolve(mine);
            mine.flush();
            theirs.flush();
          });
        }),
    };
  }
}

class MeshWorld extends World {
  readonly mesh = new FakeMesh(this.net);

  override memberDriver(state: MemberState, store: MemoryStore<MemberState>, identity: RoomIdentity, rec: Recorder): MemberDriver {
    const d = new MemberDriver(state, store, this.env(rec), {
      identity,
      link: this.net.memberPort(identity.peer.publicKey),
      mesh: this.mesh.port(identity.peer.publicKey),
    });
    this.drivers.push(d);
    return d;
  }
}

type Member = Party<MemberDriver> & { store: MemoryStore<MemberState> };
type Owner = Party<OwnerDriver> & { store: MemoryStore<OwnerState> };

let world: MeshWorld;
afterEach(async () => {
  await world?.close();
});

async function room(names: string[]): Promise<{ owner: Owner; members: Member[] }> {
  world = new MeshWorld();
  const owner = await world.owner();
  const list: Member[] = [];
  for (const n of names) list.push(await world.join(owner, n));
  await world.until(() => owner.driver.state.members.length === names.length + 1, 'everyone admitted');
  return { owner, members: list };
}

/** The owner goes, and every member talks directly to every other one. */
async function ownerLeaves(owner: Owner, members: Member[]): Promise<void> {
  await owner.driver.stop();
  await meshUp(members);
}

async function meshUp(members: Member[], peers = (_m: Member) => members.length - 1): Promise<void> {
  await world.advance(AWAY_AFTER_MS + 500, 500);
  for (let i = 0; i < 60 && !members.every((m) => linked(m) === members.length - 1); i++) await world.advance(1000, 1000);
  for (const m of members) {
    expect(m.driver.away!.active, m.name).toBe(true);
    expect(ready(m), m.name).toBe(peers(m));
  }
}

const linked = (m: Member): number => m.driver.away!.peers.filter((p) => p.status !== 'hello').length;

const ready = (m: Member): number => m.driver.away!.peers.filter((p) => p.status === 'ready').length;
const provisional = (m: Member): string[] => m.driver.away!.held.map((h) => h.text);
/** The stored history (what a reload shows): idx:text in index order. */
const history = (p: { store: MemoryStore<MemberState> | MemoryStore<OwnerState> }): string[] =>
  [...p.store.history.values()].sort((a, b) => a.idx - b.idx).map((h) => `${h.idx}:${h.text}`);

async function ownerReturns(owner: Owner): Promise<Owner> {
  const rec = new Recorder();
  const back: Owner = { ...owner, rec, driver: world.ownerDriver(owner.store.saved, owner.store, owner.identity, rec) };
  await back.driver.start();
  return back;
}

describe('the room keeps talking while the owner is away (driver)', () => {
  it('owner leaves, members chat, a member restarts, the owner returns: four identical histories, each message once', async () => {
    const { owner, members } = await room(['m0', 'm1', 'm2']);
    const [m0, m1, m2] = members as [Member, Member, Member];
    await owner.driver.send('before');
    await world.until(() => members.every((m) => m.rec.texts().includes('before')), 'before everywhere');

    await ownerLeaves(owner, members);
    for (const m of members) expect(m.rec.events.some((e) => e.kind === 'away' && e.active)).toBe(true);
    await m0.driver.send('m0 away 1');
    await m1.driver.send('m1 away 1');
    await m2.driver.send('m2 away 1');
    const first = ['m0 away 1', 'm1 away 1', 'm2 away 1'];
    await world.until(() => members.every((m) => first.every((t) => provisional(m).includes(t))), 'everyone reads everyone directly');

    // m2 reloads while the owner is away: its provisional view comes back from its peers.
    await m2.driver.stop();
    const rec = new Recorder();
    const m2b: Member = { ...m2, rec, driver: world.memberDriver(m2.store.saved, m2.store, m2.identity, rec) };
    await m2b.driver.start();
    await m0.driver.send('m0 away 2');
    const all = [m0, m1, m2b];
    await meshUp(all);
    const said = [...first, 'm0 away 2'];
    await world.until(() => all.every((m) => said.every((t) => provisional(m).includes(t))), 'the restarted member has it all again');
    await m2b.driver.send('m2 after its restart');
    said.push('m2 after its restart');
    await world.until(() => all.every((m) => said.every((t) => provisional(m).includes(t))), 'and says more');

    // The owner comes back.
    const back = await ownerReturns(owner);
    await world.advance(60_000, 1000);
    await world.until(
      () => all.every((m) => !m.driver.away!.active && m.driver.outbox.length === 0 && m.driver.away!.held.length === 0),
      'handed over and settled',
    );
    const ordered = history(back);
    expect(ordered.map((h) => h.replace(/^\d+:/, ''))).toEqual(expect.arrayContaining(['before', ...said]));
    expect(new Set(ordered.map((h) => h.replace(/^\d+:/, ''))).size).toBe(ordered.length);
    for (const m of all) expect(history(m), m.name).toEqual(ordered);
    // Every provisional message was settled by its ordered copy (none withdrawn).
    for (const m of [m0, m1]) {
      const settled = m.rec.events.flatMap((e) => (e.kind === 'mesh' && e.event.type === 'away-settled' ? [e.event.idx] : []));
      expect(settled.length).toBeGreaterThan(0);
      expect(settled.every((i) => i !== null)).toBe(true);
    }
    for (const m of all)
      expect(
        m.rec.events.some((e) => e.kind === 'away' && !e.active),
        m.name,
      ).toBe(true);
  });

  it("a removed member's key cannot join the mesh", async () => {
    const { owner, members } = await room(['m0', 'm1', 'm2']);
    const [m0, m1, m2] = members as [Member, Member, Member];
    await owner.driver.kick(m2.driver.state.selfId);
    await world.until(() => m2.driver.state.phase === 'removed', 'm2 removed');
    await world.advance(2500); // the lingering closes
    const stay = [m0, m1];
    await ownerLeaves(owner, stay);
    // The removed member never goes away-mode ...
    expect(m2.driver.away!.active).toBe(false);
    // ... and dialing the host path of a remaining member with its key is refused by the link layer.
    const host = [...world.mesh.hosts.keys()];
    expect(host.length).toBeGreaterThan(0);
    for (const h of host) {
      const key = stay.find((m) => toHex(m.identity.peer.publicKey) === h)!.identity.peer.publicKey;
      await expect(world.mesh.port(m2.identity.peer.publicKey).dial(key, { permanentKeys: m2.identity.peer })).rejects.toMatchObject({
        code: 'saltyrtc.initiator-refused',
      });
    }
    await m0.driver.send('without m2');
    await world.until(() => provisional(m1).includes('without m2'), 'm1 reads m0');
    expect(m2.rec.texts()).not.toContain('without m2');
  });

  it('two members who disagree about the epoch: neither talks to the other; the owner reconciles them on return', async () => {
    const { owner, members } = await room(['m0', 'm1', 'm2']);
    const [m0, m1, m2] = members as [Member, Member, Member];
    // m1 is cut off while the owner rotates, then the owner leaves.
    world.net.partition(m1.identity.peer.publicKey);
    await owner.driver.rotate();
    await world.until(
      () => m0.driver.state.epoch === owner.driver.state.epoch && m2.driver.state.epoch === m0.driver.state.epoch,
      'rotated',
    );
    expect(m1.driver.state.epoch).toBe(m0.driver.state.epoch - 1);
    await owner.driver.stop();
    world.net.heal(m1.identity.peer.publicKey);
    await meshUp(members, (m) => (m === m1 ? 0 : 1));
    expect(m0.driver.away!.peers.find((p) => p.member === m1.driver.state.selfId)!.status).toBe('stale');
    expect(m1.driver.away!.peers.every((p) => p.status === 'ahead')).toBe(true);

    await m0.driver.send('m0 in the new epoch');
    await m1.driver.send('m1 in the old epoch');
    await world.until(() => provisional(m2).includes('m0 in the new epoch'), 'm2 reads m0');
    expect(provisional(m2)).not.toContain('m1 in the old epoch');
    expect(provisional(m1)).toEqual([]);

    // The owner comes back after the grace window: m1 catches up, its message is sealed again and ordered once.
    await world.advance(60_000, 5000);
    const back = await ownerReturns(owner);
    await world.advance(60_000, 1000);
    await world.until(() => members.every((m) => m.driver.outbox.length === 0 && !m.driver.away!.active), 'reconciled');
    const ordered = history(back);
    expect(ordered.filter((h) => h.endsWith(':m1 in the old epoch'))).toHaveLength(1);
    expect(ordered.filter((h) => h.endsWith(':m0 in the new epoch'))).toHaveLength(1);
    for (const m of members) {
      expect(history(m), m.name).toEqual(ordered);
      expect(m.driver.state.epoch, m.name).toBe(back.driver.state.epoch);
      expect(m.driver.safetyCode(), m.name).toBe(back.driver.safetyCode());
    }
  });
});
