/**
 * Fallback through the signaling server (docs/PROTOCOL.md 4.8), without sockets: an owner and a
 * member PeerLinkImpl whose peer connections never connect (a fake RTCPeerConnection), wired
 * through in-memory "server" ports that carry the SaltyRTC post-auth messages. The member falls
 * back at its deadline, the owner follows, and the frames keep every rule of 4.4/4.5: replayed,
 * reordered, forged or malformed input ends the session with a typed error, never plaintext.
 */
import { describe, expect, it } from 'vitest';
import { boxBefore, generateBoxKeyPair, systemRandom } from '../../crypto/index.ts';
import { decode } from '../../protocol/msgpack.ts';
import { decodeFallbackData, encodeFallbackStart, FallbackError, probeDelay, PROBE_MAX_MS } from '../../protocol/link/fallback.ts';
import { PeerLinkImpl, type PeerLink } from '../../protocol/link/peer-link.ts';
import type { TaskPort } from '../../protocol/link/session.ts';
import { decodePostAuth, encodeApplication, encodeHandover } from '../../protocol/saltyrtc/peer-messages.ts';
import type { Timers } from '../../protocol/saltyrtc/client-driver.ts';

/** An RTCPeerConnection that never connects: ICE can produce no pair. */
class NeverConnects {
  /** What every new instance reports as its ICE state (a test may pretend ICE found a pair). */
  static ice = 'new';
  connectionState = 'new';
  iceConnectionState = NeverConnects.ice;
  signalingState = 'stable';
  onicecandidate: unknown = null;
  oniceconnectionstatechange: unknown = null;
  onicegatheringstatechange: unknown = null;
  onconnectionstatechange: unknown = null;
  onsignalingstatechange: unknown = null;
  ondatachannel: unknown = null;
  ontrack: unknown = null;
  createDataChannel(): object {
    return {
      readyState: 'connecting',
      binaryType: 'arraybuffer',
      bufferedAmount: 0,
      close: () => undefined,
      // The files channel (5.17.3) listens for its events; this one never opens.
      addEventListener: () => undefined,
    };
  }
  createOffer(): Promise<never> {
    return new Promise(() => undefined);
  }
  createAnswer(): Promise<never> {
    return new Promise(() => undefined);
  }
  setLocalDescription(): Promise<void> {
    return Promise.resolve();
  }
  setRemoteDescription(): Promise<void> {
    return Promise.resolve();
  }
  addIceCandidate(): Promise<void> {
    return Promise.resolve();
  }
  getStats(): Promise<Map<string, unknown>> {
    return Promise.resolve(new Map());
  }
  getSenders(): unknown[] {
    return [];
  }
  static readonly live: NeverConnects[] = [];
  private readonly listeners: Array<() => void> = [];
  constructor() {
    NeverConnects.live.push(this);
  }
  addEventListener(type: string, f: () => void): void {
    if (type === 'connectionstatechange') this.listeners.push(f);
  }
  removeEventListener(): void {}
  /** The peer connection gives up (as when ICE fails). */
  fail(): void {
    this.connectionState = 'failed';
    for (const f of this.listeners) f();
  }
  close(): void {
    this.connectionState = 'closed';
  }
}
const wrtc = { RTCPeerConnection: NeverConnects, RTCSessionDescription: class {}, RTCIceCandidate: class {} };

/** Manual clock: timers run when the test advances time. */
function manualTimers(): Timers & { advance(ms: number): void } {
  let now = 0;
  let seq = 0;
  const pending = new Map<number, { at: number; f: () => void }>();
  return {
    now: () => now,
    setTimeout: (f, ms) => {
      pending.set(++seq, { at: now + ms, f });
      return seq;
    },
    clearTimeout: (h) => void pending.delete(h as number),
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const next = [...pending.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (next === undefined) break;
        pending.delete(next[0]);
        now = next[1].at;
        next[1].f();
      }
      now = end;
    },
  };
}

interface Wire {
  /** Post-auth messages each side sent, in order (the "server" relays them). */
  readonly toOwner: Uint8Array[];
  readonly toMember: Uint8Array[];
  closed: { owner: boolean; member: boolean };
}

/** Owner and member links with one session each, joined by in-memory ports (no relay until `pump`). */
function pair(opts: { fallback?: false } = {}): {
  owner: PeerLinkImpl;
  member: PeerLinkImpl;
  timers: ReturnType<typeof manualTimers>;
  wire: Wire;
  deliver(): void;
  reattach(): void;
} {
  const timers = manualTimers();
  const ownerKeys = generateBoxKeyPair();
  const memberKeys = generateBoxKeyPair();
  const shared = boxBefore(memberKeys.publicKey, ownerKeys.secretKey);
  const rtc = { iceServers: [], wrtc, ...(opts.fallback === false ? { fallback: false as const } : { fallback: { afterMs: 1000 } }) };
  const owner = new PeerLinkImpl(memberKeys.publicKey, { random: systemRandom, timers, rtc });
  const member = new PeerLinkImpl(ownerKeys.publicKey, { random: systemRandom, timers, rtc });
  const wire: Wire = { toOwner: [], toMember: [], closed: { owner: false, member: false } };
  const port = (out: Uint8Array[], side: 'owner' | 'member'): TaskPort => ({
    send: (p) => out.push(p),
    handoverDone: () => undefined,
    close: () => {
      wire.closed[side] = true;
    },
    bufferedAmount: () => 0,
  });
  let ownerSession = owner.attach(shared, true, port(wire.toMember, 'owner'));
  let memberSession = member.attach(shared, false, port(wire.toOwner, 'member'));
  const hand = (bytes: Uint8Array, to: typeof ownerSession): void => {
    const msg = decodePostAuth(bytes);
    if (msg.type === 'application') to.onApplication(msg.data);
    else if (msg.type !== 'close') to.onTaskMessage(msg);
  };
  return {
    owner,
    member,
    timers,
    wire,
    reattach() {
      // A reconnect: a new client handshake gives both sides a new session.
      wire.toOwner.length = 0;
      wire.toMember.length = 0;
      ownerSession = owner.attach(shared, true, port(wire.toMember, 'owner'));
      memberSession = member.attach(shared, false, port(wire.toOwner, 'member'));
    },
    deliver() {
      // Relay everything queued, both ways, until quiet (the order of each direction is kept).
      while (wire.toOwner.length > 0 || wire.toMember.length > 0) {
        for (const b of wire.toOwner.splice(0)) hand(b, ownerSession);
        for (const b of wire.toMember.splice(0)) hand(b, memberSession);
      }
    },
  };
}

function received(link: PeerLink): string[] {
  const got: string[] = [];
  link.on('message', (m) => got.push(new TextDecoder().decode(m)));
  return got;
}

const flushMicrotasks = (): Promise<void> => new Promise((r) => setTimeout(r, 0));
const errors = (link: PeerLink): string[] => {
  const out: string[] = [];
  link.on('error', (e) => out.push((e as { code?: string }).code ?? e.message));
  return out;
};

describe('fallback messages (strict decoder)', () => {
  it('accepts {link: "fallback"} and 41..65536-byte frames only', () => {
    const data = (b: Uint8Array) => {
      const m = decodePostAuth(b);
      if (m.type !== 'application') throw new Error('not application');
      return m.data;
    };
    expect(decodeFallbackData(data(encodeFallbackStart()))).toEqual({ kind: 'start' });
    expect(decodeFallbackData(data(encodeApplication(new Uint8Array(41)))).kind).toBe('frame');
    expect(decodeFallbackData(data(encodeApplication(new Uint8Array(65536)))).kind).toBe('frame');
    for (const bad of [
      encodeApplication(new Uint8Array(40)),
      encodeApplication(new Uint8Array(65537)),
      encodeApplication({ link: 'fallback', extra: 1 }),
      encodeApplication({ link: 'direct' }),
      encodeApplication({ link: 1 }),
      encodeApplication({}),
      encodeApplication('fallback'),
      encodeApplication(7),
      encodeApplication(null),
      encodeApplication([new Uint8Array(50)]),
    ]) {
      expect(() => decodeFallbackData(data(bad)), JSON.stringify(decode(bad))).toThrow(FallbackError);
    }
  });

  it('probes back off from 30 s to at most 15 minutes', () => {
    expect(probeDelay(0)).toBe(30_000);
    expect(probeDelay(1)).toBe(60_000);
    expect(probeDelay(50)).toBe(PROBE_MAX_MS);
    expect(probeDelay(0, 500)).toBe(500);
  });
});

describe('a session that ICE cannot connect', () => {
  it('falls back at the member deadline; both sides carry messages through the server, in order, exactly once', async () => {
    const { owner, member, timers, wire, deliver } = pair();
    const atOwner = received(owner);
    const atMember = received(member);
    member.send(new TextEncoder().encode('queued before the fallback'));
    timers.advance(999);
    expect(member.state).toBe('connecting');
    timers.advance(1);
    expect(member.state).toBe('fallback');
    // The first message to the owner is the fallback request, then the member's RESUME frame.
    expect(decodePostAuth(wire.toOwner[0] as Uint8Array)).toEqual({
      type: 'application',
      data: { t: 'map', v: new Map([['link', { t: 'str', v: 'fallback' }]]) },
    });
    deliver();
    expect(owner.state).toBe('fallback');
    for (let i = 0; i < 5; i++) owner.send(new TextEncoder().encode(`owner ${i}`));
    member.send(new TextEncoder().encode('member 1'));
    deliver();
    await flushMicrotasks();
    expect(atOwner).toEqual(['queued before the fallback', 'member 1']);
    expect(atMember).toEqual(['owner 0', 'owner 1', 'owner 2', 'owner 3', 'owner 4']);
    // A 200 KiB message crosses in several 64 KiB frames.
    const big = new Uint8Array(200 * 1024).map((_, i) => i % 251);
    const gotBig: Uint8Array[] = [];
    owner.on('message', (m) => gotBig.push(m));
    member.send(big);
    deliver();
    expect(gotBig.at(-1)).toEqual(big);
    owner.close();
    member.close();
  });

  it('waits longer when ICE is connected and only the data channel is late (a loaded machine)', () => {
    NeverConnects.ice = 'connected';
    try {
      const { member, timers } = pair();
      timers.advance(1000);
      expect(member.state).toBe('connecting');
      timers.advance(17_999);
      expect(member.state).toBe('connecting');
      timers.advance(1);
      expect(member.state).toBe('fallback');
      member.close();
    } finally {
      NeverConnects.ice = 'new';
    }
  });

  it('a first early failure of the peer connection gets a new session; a second one falls back at once', () => {
    const { member, timers, reattach } = pair();
    const errs = errors(member);
    NeverConnects.live.at(-1)?.fail(); // the member's peer connection (made last)
    expect(member.state).toBe('offline');
    expect(errs).toEqual(['link.connect']);
    timers.advance(300);
    reattach();
    expect(member.state).toBe('offline');
    NeverConnects.live.at(-1)?.fail();
    expect(member.state).toBe('fallback');
    member.close();
  });

  it('without fallback the session ends at the connect timeout as before', () => {
    const { member, timers } = pair({ fallback: false });
    const errs = errors(member);
    timers.advance(20_000);
    expect(member.state).toBe('offline');
    expect(errs).toEqual(['link.timeout']);
    member.close();
  });

  function inFallback(): ReturnType<typeof pair> & { lastToMember(): Uint8Array } {
    const p = pair();
    p.timers.advance(1000);
    p.deliver();
    expect(p.owner.state).toBe('fallback');
    return { ...p, lastToMember: () => p.wire.toMember.at(-1) as Uint8Array };
  }

  /** Hand one application message to the member's session directly (a hostile or broken server). */
  function inject(member: PeerLinkImpl, bytes: Uint8Array): void {
    const m = decodePostAuth(bytes);
    if (m.type === 'application') member.session?.onApplication(m.data);
    else if (m.type !== 'close') member.session?.onTaskMessage(m);
  }

  it('refuses a replayed frame (link.replay) and ends the session', () => {
    const { owner, member, wire, deliver } = inFallback();
    const errs = errors(member);
    owner.send(new TextEncoder().encode('once'));
    const frame = wire.toMember.at(-1) as Uint8Array;
    deliver();
    inject(member, frame);
    expect(errs).toEqual(['link.replay']);
    expect(member.state).toBe('offline');
  });

  it('refuses a frame out of order (link.reorder) and a forged one (link.auth)', () => {
    const a = inFallback();
    const errs = errors(a.member);
    a.owner.send(new TextEncoder().encode('one'));
    a.owner.send(new TextEncoder().encode('two'));
    const [first, second] = a.wire.toMember.splice(0, 2);
    inject(a.member, second as Uint8Array);
    expect(errs).toEqual(['link.reorder']);
    void first;

    const b = inFallback();
    const errsB = errors(b.member);
    b.owner.send(new TextEncoder().encode('secret text'));
    const sent = decodePostAuth(b.wire.toMember.pop() as Uint8Array);
    if (sent.type !== 'application' || sent.data.t !== 'bin') throw new Error('expected a frame');
    const forged = sent.data.v.slice();
    forged[forged.length - 1] = (forged[forged.length - 1] ?? 0) ^ 1;
    inject(b.member, encodeApplication(forged));
    expect(errsB).toEqual(['link.auth']);
  });

  it('refuses malformed, oversized and out-of-place fallback messages (link.fallback)', () => {
    for (const bad of [
      encodeApplication(new Uint8Array(40)),
      encodeApplication(new Uint8Array(70_000)),
      encodeApplication({ link: 'nope' }),
      encodeFallbackStart(), // from the owner, or a second one
      encodeHandover(), // a handover on a session in fallback
    ]) {
      const { member } = inFallback();
      const errs = errors(member);
      inject(member, bad);
      expect(errs, String(bad.length)).toEqual(['link.fallback']);
      expect(member.state).toBe('offline');
    }
  });

  it('the owner refuses frames before any fallback request', () => {
    const { owner } = pair();
    const errs = errors(owner);
    owner.session?.onApplication({ t: 'bin', v: new Uint8Array(100) });
    expect(errs).toEqual(['link.fallback']);
  });

  it('leaves the SaltyRTC peer when a fallback session ends, so the other side does not wait', () => {
    const { member, wire } = inFallback();
    member.session?.detachPort(new Error('signaling gone'));
    expect(member.state).toBe('offline');
    // A session whose port was detached does not close it again; one that ends otherwise does.
    expect(wire.closed.member).toBe(false);
    const other = inFallback();
    other.owner.dropSession(new Error('test'));
    expect(other.wire.closed.owner).toBe(true);
  });

  it('does not mutate what it is given', () => {
    const { owner, member, wire, deliver } = inFallback();
    const msg = new TextEncoder().encode('unchanged');
    const copy = msg.slice();
    owner.send(msg);
    const frame = wire.toMember.at(-1) as Uint8Array;
    const frameCopy = frame.slice();
    deliver();
    expect(msg).toEqual(copy);
    expect(frame).toEqual(frameCopy); // the receiver did not touch the relayed bytes
    member.close();
  });
});
