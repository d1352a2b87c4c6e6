/**
 * The web app's view model and words (issue #13): room states, delivery tracking, message and
 * member order, error sentences, the per-room preferences record (a stored record: strict decoder).
 */
import { describe, expect, it } from 'vitest';
import { encode } from '../../protocol/msgpack.ts';
import { RoomError } from '../../protocol/room/errors.ts';
import { decodePrefs, encodePrefs, type RoomPrefs } from '../../web/prefs.ts';
import type { MemberView, MessageView } from '../../web/session/types.ts';
import { DeliveryTracker } from '../../protocol/room/delivery.ts';
import { canSend, memberRoomState, orderMessages, ownerRoomState, sortMembers, type MemberStatus } from '../../web/session/view-model.ts';
import { errorText, inviteExpiry, pageTitle, UiError } from '../../web/strings.ts';

const base: MemberStatus = { phase: 'member', link: 'direct', refusal: null, lastFailure: null, ownerOnPath: null };

describe('memberRoomState', () => {
  it('says "owner away — talking directly" while members talk without the owner (PROTOCOL.md 5.16)', () => {
    const away: MemberStatus = { ...base, link: 'offline', ownerOnPath: false, away: true };
    expect(memberRoomState(away)).toBe('owner-away');
    expect(canSend('owner-away')).toBe(true);
    // The owner's link wins: back to normal as soon as it is open.
    expect(memberRoomState({ ...away, link: 'direct' })).toBe('member');
    // Refusal and removal still win over away.
    expect(memberRoomState({ ...away, phase: 'removed' })).toBe('removed');
  });
  it('maps machine phase and link to the seven states', () => {
    expect(memberRoomState(base)).toBe('member');
    expect(memberRoomState({ ...base, link: 'relayed' })).toBe('member');
    expect(memberRoomState({ ...base, phase: 'joining', link: 'connecting' })).toBe('joining');
    expect(memberRoomState({ ...base, phase: 'accepted', link: 'direct' })).toBe('joining');
    expect(memberRoomState({ ...base, phase: 'refused', link: 'closed' })).toBe('refused');
    expect(memberRoomState({ ...base, phase: 'removed', link: 'closed' })).toBe('removed');
    expect(memberRoomState({ ...base, phase: 'left', link: 'closed' })).toBe('left');
    expect(memberRoomState({ ...base, link: 'restarting' })).toBe('reconnecting');
  });

  it('a fatal link error is a refusal even before the room machine heard anything', () => {
    expect(memberRoomState({ ...base, phase: 'joining', link: 'closed', refusal: 'saltyrtc.refused' })).toBe('refused');
  });

  it('tells an absent owner from an unreachable signaling server', () => {
    expect(memberRoomState({ ...base, link: 'connecting', ownerOnPath: false })).toBe('owner-offline');
    expect(memberRoomState({ ...base, link: 'offline', lastFailure: 'saltyrtc.server' })).toBe('reconnecting');
    expect(memberRoomState({ ...base, link: 'offline', lastFailure: 'saltyrtc.server', ownerOnPath: false })).toBe('reconnecting');
    // Just dropped, nothing known yet: reconnecting, not a guess that the owner left.
    expect(memberRoomState({ ...base, link: 'offline', lastFailure: '' })).toBe('reconnecting');
    expect(memberRoomState({ ...base, link: 'connecting', ownerOnPath: true })).toBe('reconnecting');
  });

  it('send works (now or from the outbox) only in member, owner-offline and reconnecting', () => {
    expect(['joining', 'refused', 'member', 'owner-offline', 'reconnecting', 'removed', 'left'].filter((s) => canSend(s as never))).toEqual(
      ['member', 'owner-offline', 'reconnecting'],
    );
    expect(ownerRoomState(true)).toBe('member');
    expect(ownerRoomState(false)).toBe('reconnecting');
  });
});

describe('DeliveryTracker', () => {
  it('queued until the link that carried it acks it, then at the owner', () => {
    const t = new DeliveryTracker();
    const a = {};
    const b = {};
    t.sent(a, 1, 10);
    t.sent(a, 2, 11);
    expect(t.state(10)).toBe('queued');
    // An ack on another link object says nothing about these.
    expect(t.acked(b, 5)).toBe(false);
    expect(t.state(10)).toBe('queued');
    expect(t.acked(a, 1)).toBe(true);
    expect([t.state(10), t.state(11)]).toEqual(['at-owner', 'queued']);
    // A repeated ack changes nothing.
    expect(t.acked(a, 1)).toBe(false);
    // Re-sent on a new link after a drop: stays at the owner once it was.
    t.sent(b, 1, 10);
    expect(t.state(10)).toBe('at-owner');
    t.sent(b, 2, 11);
    expect(t.acked(b, 2)).toBe(true);
    expect(t.state(11)).toBe('at-owner');
    t.done(10);
    expect(t.state(10)).toBe('queued');
  });
});

const msg = (key: string, at: number, extra: Partial<MessageView> = {}): MessageView => ({
  key,
  senderId: 's',
  senderName: 'S',
  text: key,
  at,
  pending: false,
  system: false,
  own: false,
  delivery: null,
  idx: null,
  ...extra,
});

describe('orderMessages', () => {
  it('places system lines by time among delivered messages, pending ones last', () => {
    const delivered = [msg('h1', 100, { idx: 0 }), msg('h2', 200, { idx: 1 }), msg('after', 400, { idx: 2 })];
    const joined = msg('you joined', 300, { system: true });
    const early = msg('early note', 50, { system: true });
    const pending = [msg('mine', 500, { pending: true, own: true, delivery: 'queued' })];
    expect(orderMessages(delivered, pending, [joined, early]).map((m) => m.key)).toEqual([
      'early note',
      'h1',
      'h2',
      'you joined',
      'after',
      'mine',
    ]);
  });

  it('keeps room order for delivered messages even when sender clocks disagree', () => {
    const delivered = [msg('a', 300, { idx: 0 }), msg('b', 100, { idx: 1 })];
    expect(orderMessages(delivered, [], []).map((m) => m.key)).toEqual(['a', 'b']);
  });
});

describe('sortMembers', () => {
  const m = (id: string, name: string, isOwner = false): MemberView => ({
    id,
    name,
    fingerprint: '',
    isOwner,
    isSelf: false,
    connection: 'via-owner',
    linkCounts: null,
  });
  it('owner first, then by name, then id: the same order on every device', () => {
    const list = [m('3', 'carol'), m('2', 'Bob'), m('9', 'Olivia', true), m('1', 'carol')];
    expect(sortMembers(list).map((x) => x.id)).toEqual(['9', '2', '1', '3']);
    expect(sortMembers([...list].reverse()).map((x) => x.id)).toEqual(['9', '2', '1', '3']);
  });
});

describe('errorText', () => {
  it('words every refusal code and puts the code only in details', () => {
    for (const code of ['room.invite-used', 'room.invite-expired', 'room.invite-revoked', 'saltyrtc.refused', 'saltyrtc.server-key']) {
      const t = errorText(new RoomError(code as never, 'internal message'));
      expect(t.details).toBe(code);
      expect(t.text).not.toContain(code);
      expect(t.text).not.toContain('internal message');
      expect(t.text).toMatch(/^[A-Z].*\.$/);
    }
  });

  it('never shows an error message, even for unknown errors', () => {
    const t = errorText(new Error('invite URL: base64url: non-canonical trailing bits'));
    expect(t.text).not.toContain('base64url');
    expect(t.details).toBe('Error');
    expect(errorText(new UiError('name-missing')).text).toContain('name');
  });

  it('reads storage.password by context', () => {
    const e = { code: 'storage.password', message: 'wrong password' };
    expect(errorText(e, 'unlock').text).toContain('password is not right');
    expect(errorText(e, 'first-run').text).toContain('at least 8');
    expect(errorText(e, 'change-password').text).toContain('current password');
  });

  it('a broken invite link reads as a damaged invite when joining', () => {
    expect(errorText({ code: 'crypto.encoding' }, 'join').text).toContain('invite link');
  });
});

describe('inviteExpiry and pageTitle', () => {
  it('says how long an invite has left the way people say it', () => {
    const now = 1_000_000;
    expect(inviteExpiry(now + 9 * 60_000 + 30_000, now)).toBe('Expires in 9 minutes');
    expect(inviteExpiry(now + 60 * 60_000, now)).toBe('Expires in 60 minutes');
    expect(inviteExpiry(now + 24 * 60 * 60_000, now)).toBe('Expires in 24 hours');
    expect(inviteExpiry(now + 3 * 24 * 60 * 60_000, now)).toBe('Expires in 3 days');
    expect(inviteExpiry(now + 20_000, now)).toBe('Expires in 20 seconds');
    expect(inviteExpiry(now - 1, now)).toBe('This invite has expired.');
    expect(pageTitle(0)).toBe('ZeroRoom');
    expect(pageTitle(3)).toBe('(3) ZeroRoom');
  });
});

describe('per-room preferences record', () => {
  const prefs = new Map<string, RoomPrefs>([
    ['ab12', { read: 4, notify: true }],
    ['cd34', { read: -1, notify: false }],
  ]);

  it('round-trips', () => {
    expect(decodePrefs(encodePrefs(prefs))).toEqual(prefs);
  });

  it('refuses malformed, oversized and unexpected input', () => {
    const bad: unknown[] = [
      { v: 2, rooms: [] },
      { v: 1 },
      { v: 1, rooms: [], extra: 1 },
      { v: 1, rooms: [{ id: 'ab12', read: 1 }] },
      { v: 1, rooms: [{ id: 'ab12', read: 1, notify: 'yes' }] },
      { v: 1, rooms: [{ id: 'ab12', read: -2, notify: true }] },
      { v: 1, rooms: [{ id: 'AB12', read: 1, notify: true }] },
      { v: 1, rooms: [{ id: 'x'.repeat(65), read: 1, notify: true }] },
      { v: 1, rooms: [{ id: 'ab12', read: 1, notify: true, more: 1 }] },
      {
        v: 1,
        rooms: [
          { id: 'ab12', read: 1, notify: true },
          { id: 'ab12', read: 2, notify: false },
        ],
      },
      { v: 1, rooms: Array.from({ length: 10_001 }, (_, i) => ({ id: i.toString(16), read: 0, notify: false })) },
    ];
    for (const b of bad) expect(() => decodePrefs(encode(b as never))).toThrow();
    expect(() => decodePrefs(new Uint8Array([0xc1]))).toThrow();
    const good = encodePrefs(prefs);
    expect(() => decodePrefs(new Uint8Array([...good, 0]))).toThrow();
  });
});
