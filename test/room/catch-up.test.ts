// Catch-up limits (docs/PROTOCOL.md sections 5.9, 5.10): history goes out in pages of at most
// 256 entries / ~512 KiB, the member asks for each next page, and inside a member's catch-up
// window the owner sends no entry twice, however often it is asked.
import { beforeAll, describe, expect, it } from 'vitest';
import { initCrypto } from '../../crypto/index.ts';
import { DecodeError } from '../../protocol/errors.ts';
import { encode } from '../../protocol/msgpack.ts';
import {
  CATCH_UP_INTERVAL_MS,
  MAX_LINK_MESSAGE,
  decodeToMember,
  decodeToOwner,
  encodeMessage,
  type Effect,
  type ToMember,
} from '../../protocol/room/index.ts';
import { Net, device, type MemberNode } from './harness.ts';

beforeAll(async () => {
  await initCrypto();
});

const BIG_ROOM = { rotateEveryMessages: 10_000, maxLogEntries: 10_000 };

/** What the owner sent to `node` in these effects, decoded. */
function sentTo(node: MemberNode, effects: readonly Effect[]): ToMember[] {
  return effects.flatMap((e) => (e.kind === 'send' && e.to === node.peer ? [decodeToMember(e.bytes)] : []));
}

function historyOnWire(net: Net, node: MemberNode): Extract<ToMember, { type: 'history' }>[] {
  return (net.wire.get(node.peer) ?? []).map(decodeToMember).flatMap((m) => (m.type === 'history' ? [m] : []));
}

function ownerSends(net: Net, n: number, text: (i: number) => string = (i) => `m${i}`): void {
  for (let i = 0; i < n; i++) net.owner({ kind: 'send', text: text(i), now: net.now });
}

function messageIdx(node: MemberNode): number[] {
  return node.events.flatMap((e) => (e.type === 'message' ? [e.idx] : []));
}

function joinOne(net: Net, name: string): MemberNode {
  const node = net.join(name, net.invite());
  net.run();
  expect(node.state!.phase).toBe('member');
  return node;
}

function syncFrom(net: Net, node: MemberNode, more = false): ReturnType<Net['owner']> {
  const bytes = encodeMessage({
    type: 'sync',
    last_idx: node.state!.lastIdx,
    epoch: node.state!.epoch,
    chain: node.state!.chain,
    ...(more ? { more: true as const } : {}),
  });
  return net.owner({ kind: 'received', from: node.peer, bytes, now: net.now });
}

describe('history paging', () => {
  it('a new member gets a long since-rotation history page by page, every entry exactly once', () => {
    const net = new Net(device('owner-pages'), BIG_ROOM);
    ownerSends(net, 520);
    const a = joinOne(net, 'a');
    const pages = historyOnWire(net, a);
    expect(pages.map((p) => [p.from_idx, p.entries.length, p.more === true])).toEqual([
      [0, 256, true],
      [256, 256, true],
      [512, 8, false],
    ]);
    // Each entry went over the wire once, and the member shows each message once, in order.
    expect(pages.flatMap((p) => p.entries.map((e) => e.idx))).toEqual(Array.from({ length: 520 }, (_, i) => i));
    expect(messageIdx(a)).toEqual(Array.from({ length: 520 }, (_, i) => i));
    expect(a.texts()[519]).toBe('m519');
    // Page requests at the chain head get no resync (nothing about membership can be missing):
    // the only one is the join's, which brought a's own admission.
    expect((net.wire.get(a.peer) ?? []).map(decodeToMember).filter((m) => m.type === 'resync')).toHaveLength(1);
    expect(a.state!.syncAt).toBeNull(); // the last page's progress cleared the request
  });

  it('a returning member pages through what it missed, exactly once, after resync', () => {
    const net = new Net(device('owner-return'), BIG_ROOM);
    const a = joinOne(net, 'a');
    net.take(a, 'down'); // nothing in flight
    ownerSends(net, 300);
    net.take(a, 'down'); // a's link was down: every deliver is lost
    net.reconnect(a);
    net.run();
    const wire = (net.wire.get(a.peer) ?? []).map(decodeToMember);
    expect(wire.map((m) => (m.type === 'history' ? `history ${m.from_idx}+${m.entries.length}${m.more ? ' more' : ''}` : m.type))).toEqual([
      'owner-key',
      'join-accept',
      'welcome',
      'resync',
      'resync',
      'history 0+256 more',
      'history 256+44',
    ]);
    expect(messageIdx(a)).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('cuts pages by size as well: big envelopes make smaller pages, each under the link limit', () => {
    const net = new Net(device('owner-bytes'), BIG_ROOM);
    ownerSends(net, 40, (i) => `${i}:`.padEnd(16 * 1024, 'x'));
    const a = joinOne(net, 'a');
    const pages = historyOnWire(net, a);
    expect(pages.length).toBeGreaterThan(1);
    for (const p of pages) expect(p.entries.length).toBeLessThan(40);
    for (const bytes of net.wire.get(a.peer) ?? []) expect(bytes.length).toBeLessThanOrEqual(MAX_LINK_MESSAGE);
    expect(messageIdx(a)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });
});

describe('catch-up limit', () => {
  it('a burst of syncs gets history once (and resync each time)', () => {
    const net = new Net(device('owner-burst'), BIG_ROOM);
    const a = joinOne(net, 'a');
    net.now += CATCH_UP_INTERVAL_MS; // the join's window is over
    ownerSends(net, 10);
    net.take(a, 'down'); // lost with the link
    const answers = Array.from({ length: 5 }, () => sentTo(a, syncFrom(net, a).effects));
    expect(answers.map((ms) => ms.map((m) => m.type))).toEqual([['resync', 'history'], ['resync'], ['resync'], ['resync'], ['resync']]);
    const first = answers[0]![1] as Extract<ToMember, { type: 'history' }>;
    expect(first.entries.map((e) => e.idx)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(net.ownerErrors).toEqual([]);
    // Page requests that go back are limited too, and answered with nothing.
    expect(syncFrom(net, a, true).effects).toEqual([]);
  });

  it('within the window only entries never sent go out; after the interval a full catch-up again', () => {
    const net = new Net(device('owner-window'), BIG_ROOM);
    const a = joinOne(net, 'a');
    net.now += CATCH_UP_INTERVAL_MS;
    ownerSends(net, 3);
    net.take(a, 'down');
    const start = net.now;
    expect(sentTo(a, syncFrom(net, a).effects).map((m) => m.type)).toEqual(['resync', 'history']);
    // New messages since: a request from after what was sent gets just those.
    ownerSends(net, 2);
    net.take(a, 'down');
    const later = encodeMessage({ type: 'sync', last_idx: 2, epoch: a.state!.epoch, chain: a.state!.chain });
    const page = sentTo(a, net.owner({ kind: 'received', from: a.peer, bytes: later, now: net.now }).effects)[1];
    expect(page?.type === 'history' && page.entries.map((e) => e.idx)).toEqual([3, 4]);
    // The member lost all of it (its link dropped again): inside the window, resync only.
    // (Each delivery in the simulator advances the clock by 1 ms.)
    net.now = start + CATCH_UP_INTERVAL_MS - 10;
    net.reconnect(a);
    net.run();
    expect(messageIdx(a)).toEqual([]);
    // One interval after the window started, the same request is a new catch-up.
    net.now = start + CATCH_UP_INTERVAL_MS - 1;
    net.reconnect(a);
    net.run();
    expect(messageIdx(a)).toEqual([0, 1, 2, 3, 4]);
    expect(a.errors).toEqual([]);
  });

  it('a clock that went back does not stretch the window', () => {
    const net = new Net(device('owner-clock'), BIG_ROOM);
    const a = joinOne(net, 'a');
    net.now += CATCH_UP_INTERVAL_MS;
    ownerSends(net, 2);
    net.take(a, 'down');
    expect(sentTo(a, syncFrom(net, a).effects).map((m) => m.type)).toEqual(['resync', 'history']);
    net.now -= 10 * CATCH_UP_INTERVAL_MS;
    expect(sentTo(a, syncFrom(net, a).effects).map((m) => m.type)).toEqual(['resync', 'history']);
  });

  it('a repeated join-confirm inside the window gets the welcome again, without the history twice', () => {
    const net = new Net(device('owner-confirm'), BIG_ROOM);
    ownerSends(net, 5);
    const y = net.join('y', net.invite());
    net.hello(y);
    net.deliverUp(y);
    const accept = net.take(y, 'down');
    net.member(y, { kind: 'received', bytes: accept[0]!, now: net.now });
    const [confirm] = net.take(y, 'up');
    const first = net.owner({ kind: 'received', from: y.peer, bytes: confirm!, now: net.now });
    expect(sentTo(y, first.effects).map((m) => m.type)).toEqual(['welcome', 'resync', 'history']);
    net.take(y, 'down'); // lost: y reconnects and confirms again
    const again = net.owner({ kind: 'received', from: y.peer, bytes: confirm!, now: net.now + 1 });
    expect(sentTo(y, again.effects).map((m) => m.type)).toEqual(['welcome', 'resync']);
    // After the interval, the history comes with the welcome again.
    const late = net.owner({ kind: 'received', from: y.peer, bytes: confirm!, now: net.now + CATCH_UP_INTERVAL_MS });
    expect(sentTo(y, late.effects).map((m) => m.type)).toEqual(['welcome', 'resync', 'history']);
  });
});

describe('page requests and epochs', () => {
  it('a page request from behind the chain head gets resync (with the rotation and its key) before its page', () => {
    const net = new Net(device('owner-more-epoch'), BIG_ROOM);
    const a = joinOne(net, 'a');
    net.owner({ kind: 'rotate', now: net.now });
    ownerSends(net, 2);
    net.take(a, 'down'); // the rotation and both delivers are lost
    const answer = sentTo(a, syncFrom(net, a, true).effects);
    expect(answer.map((m) => m.type)).toEqual(['resync', 'history']);
    expect(answer[0]?.type === 'resync' && [answer[0].anns.length, answer[0].keys.length]).toEqual([1, 1]);
    // At the chain head the same request gets the page alone.
    ownerSends(net, 1);
    net.take(a, 'down');
    const current = encodeMessage({
      type: 'sync',
      last_idx: 1,
      epoch: net.ownerState.epoch,
      chain: net.ownerState.chain.at(-1)!.n,
      more: true,
    });
    expect(sentTo(a, net.owner({ kind: 'received', from: a.peer, bytes: current, now: net.now }).effects).map((m) => m.type)).toEqual([
      'history',
    ]);
  });
});

describe('wire: the more flags', () => {
  const id = '0123456789abcdef0123456789abcdef';
  it('round-trips sync.more and history.more', () => {
    const sync = { type: 'sync', last_idx: 4, epoch: 1, chain: 3, more: true } as const;
    expect(decodeToOwner(encodeMessage(sync))).toEqual(sync);
    const history = {
      type: 'history',
      from_idx: 3,
      log_start: 0,
      entries: [{ idx: 3, from: id, env: new Uint8Array([1]) }],
      more: true,
    } as const;
    expect(decodeToMember(encode(history))).toEqual(history);
    expect(decodeToOwner(encodeMessage({ type: 'sync', last_idx: 4, epoch: 1, chain: 3 }))).not.toHaveProperty('more');
  });
  it('refuses more: false and a non-bool more (one encoding per meaning)', () => {
    for (const more of [false, 1, 'yes', null]) {
      expect(() => decodeToOwner(encode({ type: 'sync', last_idx: 4, epoch: 1, chain: 3, more }))).toThrow(DecodeError);
      expect(() => decodeToMember(encode({ type: 'history', from_idx: 0, log_start: 0, entries: [], more }))).toThrow(DecodeError);
    }
  });
});
