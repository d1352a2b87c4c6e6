// SaltyRTC client state machine (protocol/saltyrtc/client-machine.ts) against a scripted server
// built from the shared server-message codecs: happy paths, then malformed and out-of-order input.
import { describe, expect, it } from 'vitest';
import {
  box,
  boxOpen,
  concatBytes,
  generateBoxKeyPair,
  systemRandom,
  boxBefore,
  type BoxKeyPair,
  type BoxPublicKey,
} from '../../crypto/index.ts';
import { decodeNonce, encodeNonce, initialCsn } from '../../protocol/saltyrtc/nonce.ts';
import * as sm from '../../protocol/saltyrtc/server-messages.ts';
import * as pm from '../../protocol/saltyrtc/peer-messages.ts';
import { encode } from '../../protocol/msgpack.ts';
import {
  initialState,
  step,
  type ClientContext,
  type ClientEffect,
  type ClientEvent,
  type ClientState,
} from '../../protocol/saltyrtc/client-machine.ts';

const taskData = { exclude: [], handover: true };

function context(role: 'initiator' | 'responder', permanent: BoxKeyPair, extra: Partial<ClientContext> = {}): ClientContext {
  return { role, permanent, random: systemRandom, taskData, sharedWith: (pub) => boxBefore(pub, permanent.secretKey), ...extra };
}

/** One client plus the scripted server's view of it. */
class Party {
  state: ClientState;
  readonly out: Uint8Array[] = [];
  /** Frames the client addressed to the server after its handshake (drop-responder...). */
  readonly toServer: Uint8Array[] = [];
  readonly effects: ClientEffect[] = [];
  readonly session = generateBoxKeyPair();
  readonly cookie = systemRandom(16);
  csn = initialCsn(systemRandom);
  address = 0;
  constructor(
    readonly ctx: ClientContext,
    readonly server: BoxKeyPair,
  ) {
    this.state = initialState(ctx);
  }
  feed(ev: ClientEvent): ClientEffect[] {
    const before = this.state;
    const peersBefore = before.peers.size;
    const r = step(this.ctx, this.state, ev);
    expect(before.peers.size).toBe(peersBefore); // the input state is not mutated
    this.state = r.state;
    for (const e of r.effects) if (e.type === 'send') this.out.push(e.bytes);
    this.effects.push(...r.effects);
    return [...r.effects];
  }
  take(): Uint8Array[] {
    return this.out.splice(0);
  }
  /** A frame from the server, encrypted to this client unless `plain`. */
  fromServer(payload: Uint8Array, dest: number, plain = false): Uint8Array {
    const nonce = encodeNonce({ cookie: this.cookie, source: 0, destination: dest, csn: this.csn++ });
    return concatBytes(nonce, plain ? payload : box(payload, nonce, this.ctx.permanent.publicKey, this.session.secretKey));
  }
  /** Open a client-to-server frame the client sent. */
  openToServer(frame: Uint8Array): Uint8Array {
    return boxOpen(frame.subarray(24), frame.subarray(0, 24), this.ctx.permanent.publicKey, this.session.secretKey);
  }
  /** Run the server handshake; returns the effects of server-auth. */
  handshake(
    address: number,
    extra: { initiatorConnected?: boolean; responders?: number[]; signed?: 'good' | 'bad' | 'none' } = {},
  ): ClientEffect[] {
    this.feed({ type: 'frame', bytes: this.fromServer(sm.encodeServerHello({ key: this.session.publicKey }), 0, true) });
    const sent = this.take();
    const auth = sm.decodeClientAuth(this.openToServer(sent[sent.length - 1]!));
    expect(auth.yourCookie).toEqual(this.cookie);
    this.address = address;
    const nonce = encodeNonce({ cookie: this.cookie, source: 0, destination: address, csn: this.csn++ });
    const signedPlain = concatBytes(this.session.publicKey, this.ctx.permanent.publicKey);
    const signedKeys =
      extra.signed === 'none'
        ? undefined
        : box(extra.signed === 'bad' ? signedPlain.reverse() : signedPlain, nonce, this.ctx.permanent.publicKey, this.server.secretKey);
    const msg = sm.encodeServerAuth({
      yourCookie: decodeNonce(sent[0]!.subarray(0, 24)).cookie,
      signedKeys,
      ...(this.ctx.role === 'initiator'
        ? { responders: extra.responders ?? [] }
        : { initiatorConnected: extra.initiatorConnected ?? true }),
    });
    const bytes = concatBytes(nonce, box(msg, nonce, this.ctx.permanent.publicKey, this.session.secretKey));
    return this.feed({ type: 'frame', bytes });
  }
}

const serverKeys = generateBoxKeyPair();

/** Forward client-to-client frames; keep frames for the server (destination 0x00) aside. */
function relay(from: Party, to: Party): void {
  for (const f of from.take()) {
    if (f[17] === 0) from.toServer.push(f);
    else to.feed({ type: 'frame', bytes: f });
  }
}

function setup(
  opts: {
    token?: Uint8Array;
    pending?: Uint8Array[];
    accept?: (t: Uint8Array) => boolean;
    trusted?: BoxPublicKey[];
    refusedTokens?: Uint8Array[];
    refusedKeys?: BoxPublicKey[];
    responderToken?: Uint8Array | null;
    memberKeys?: BoxKeyPair;
  } = {},
) {
  const ownerKeys = generateBoxKeyPair();
  const memberKeys = opts.memberKeys ?? generateBoxKeyPair();
  const token = systemRandom(32);
  const pending = opts.pending ?? [token];
  const used = new Set<string>();
  const initiator = new Party(
    context('initiator', ownerKeys, {
      serverKey: serverKeys.publicKey,
      pendingTokens: () => pending,
      acceptToken: opts.accept ?? ((t) => (used.has(t.join()) ? false : (used.add(t.join()), true))),
      trustedKeys: () => opts.trusted ?? [],
      refusedTokens: () => opts.refusedTokens ?? [],
      refusedKeys: () => opts.refusedKeys ?? [],
    }),
    serverKeys,
  );
  const responderToken = opts.responderToken === null ? undefined : (opts.responderToken ?? token);
  const responder = new Party(
    context('responder', memberKeys, {
      serverKey: serverKeys.publicKey,
      initiatorKey: ownerKeys.publicKey,
      ...(responderToken !== undefined ? { token: responderToken } : {}),
    }),
    serverKeys,
  );
  return { initiator, responder, ownerKeys, memberKeys, token };
}

/** Both server handshakes, then the client handshake relayed until quiet. */
function connect(s: ReturnType<typeof setup>): void {
  expect(s.initiator.handshake(1).some((e) => e.type === 'server-ready')).toBe(true);
  s.responder.handshake(2);
  s.initiator.feed({ type: 'frame', bytes: s.initiator.fromServer(sm.encodeNewResponder({ id: 2 }), 1) });
  for (let i = 0; i < 4; i++) {
    relay(s.responder, s.initiator);
    relay(s.initiator, s.responder);
  }
}

const find = <T extends ClientEffect['type']>(p: Party, t: T) =>
  p.effects.filter((e): e is Extract<ClientEffect, { type: T }> => e.type === t);

/** The drop-responder the initiator sent to the server (last frame to 0x00), decoded. */
function lastDrop(p: Party): sm.DropResponder | undefined {
  const toServer = [...p.toServer, ...p.out.filter((f) => f[17] === 0)];
  const last = toServer[toServer.length - 1];
  return last === undefined ? undefined : sm.decodeDropResponder(p.openToServer(last));
}

describe('client handshake', () => {
  it("token path: both sides authenticate and learn each other's permanent key", () => {
    const s = setup();
    connect(s);
    const a = find(s.initiator, 'peer-authenticated');
    const b = find(s.responder, 'peer-authenticated');
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(1);
    expect(a[0]!.peerKey).toEqual(s.memberKeys.publicKey);
    expect(b[0]!.peerKey).toEqual(s.ownerKeys.publicKey);
    expect(a[0]!.sessionShared).toEqual(b[0]!.sessionShared);
    expect(a[0]!.taskData).toEqual(taskData);
  });

  it('tries several pending tokens', () => {
    const token = systemRandom(32);
    const s = setup({ pending: [systemRandom(32), systemRandom(32), token], responderToken: token });
    connect(s);
    expect(find(s.initiator, 'peer-authenticated')).toHaveLength(1);
  });

  it('trusted path: no token, the initiator finds the key among its trusted keys', () => {
    const memberPlaceholder = generateBoxKeyPair();
    const s0 = setup({ responderToken: null, pending: [], trusted: [] });
    // rebuild with the member key trusted
    const s = setup({ responderToken: null, pending: [], trusted: [memberPlaceholder.publicKey, s0.memberKeys.publicKey] });
    Object.assign(s, { memberKeys: s0.memberKeys });
    (s as { responder: Party }).responder = new Party(
      context('responder', s0.memberKeys, { serverKey: serverKeys.publicKey, initiatorKey: s.ownerKeys.publicKey }),
      serverKeys,
    );
    connect(s);
    expect(find(s.initiator, 'peer-authenticated')[0]?.peerKey).toEqual(s0.memberKeys.publicKey);
    expect(find(s.responder, 'peer-authenticated')).toHaveLength(1);
  });

  it('refuses a wrong token with drop-responder 3005; the joiner gets nothing', () => {
    const s = setup({ responderToken: systemRandom(32) });
    connect(s);
    expect(lastDrop(s.initiator)).toEqual({ type: 'drop-responder', id: 2, reason: 3005 });
    expect(find(s.initiator, 'peer-authenticated')).toHaveLength(0);
    expect(find(s.responder, 'peer-authenticated')).toHaveLength(0);
    expect(s.responder.out).toHaveLength(0);
    expect(find(s.initiator, 'peer-lost')[0]?.error.code).toBe('saltyrtc.refused');
  });

  it('refuses a token the application no longer accepts (reused) with the authenticated refusal', () => {
    const s = setup({ accept: () => false });
    connect(s);
    expect(lastDrop(s.initiator)?.reason).toBe(3004);
    expect(find(s.initiator, 'peer-authenticated')).toHaveLength(0);
    expect(find(s.responder, 'peer-authenticated')).toHaveLength(0);
    expect(find(s.responder, 'failed')[0]?.error.code).toBe('saltyrtc.initiator-refused');
  });

  it('refuses an untrusted responder without a token', () => {
    const s = setup({ responderToken: null });
    connect(s);
    expect(lastDrop(s.initiator)?.reason).toBe(3005);
  });

  it('a responder learns the refusal from the close code', () => {
    const s = setup({ responderToken: systemRandom(32) });
    connect(s);
    const effects = s.responder.feed({ type: 'ws-closed', code: 3005 });
    expect(effects.find((e) => e.type === 'failed')).toMatchObject({ error: { code: 'saltyrtc.refused' } });
  });
});

describe('server handshake', () => {
  it('accepts valid signed_keys and refuses bad or missing ones when the server key is pinned', () => {
    for (const [signed, ok] of [
      ['good', true],
      ['bad', false],
      ['none', false],
    ] as const) {
      const s = setup();
      const effects = s.initiator.handshake(1, { signed });
      expect(
        effects.some((e) => e.type === 'server-ready'),
        signed,
      ).toBe(ok);
      if (!ok) expect(effects.find((e) => e.type === 'failed')).toMatchObject({ error: { code: 'saltyrtc.server-key' } });
    }
  });

  it('refuses an address that does not fit the role', () => {
    const s = setup();
    const e = s.initiator.handshake(5);
    expect(e.find((x) => x.type === 'close-ws')).toEqual({ type: 'close-ws', code: 3001 });
  });

  it('refuses short frames, replayed and reordered server messages, changed cookies', () => {
    const s = setup();
    expect(s.initiator.feed({ type: 'frame', bytes: new Uint8Array(24) }).find((e) => e.type === 'close-ws')).toEqual({
      type: 'close-ws',
      code: 3001,
    });

    const t = setup();
    t.initiator.handshake(1);
    const f = t.initiator.fromServer(sm.encodeNewResponder({ id: 2 }), 1);
    t.initiator.feed({ type: 'frame', bytes: f });
    expect(t.initiator.feed({ type: 'frame', bytes: f }).find((e) => e.type === 'close-ws')).toEqual({ type: 'close-ws', code: 3001 });

    const u = setup();
    u.initiator.handshake(1);
    u.initiator.csn += 1; // skip one
    expect(
      u.initiator
        .feed({ type: 'frame', bytes: u.initiator.fromServer(sm.encodeNewResponder({ id: 2 }), 1) })
        .some((e) => e.type === 'failed'),
    ).toBe(true);

    const v = setup();
    v.initiator.handshake(1);
    v.initiator.cookie.set(systemRandom(16));
    expect(
      v.initiator
        .feed({ type: 'frame', bytes: v.initiator.fromServer(sm.encodeNewResponder({ id: 2 }), 1) })
        .some((e) => e.type === 'failed'),
    ).toBe(true);
  });

  it('refuses malformed server messages', () => {
    const s = setup();
    s.initiator.feed({ type: 'frame', bytes: s.initiator.fromServer(encode({ type: 'server-hello', key: 'not bytes' }), 0, true) });
    expect(find(s.initiator, 'failed')[0]?.error.code).toBe('saltyrtc.protocol');
    const t = setup();
    t.initiator.handshake(1);
    t.initiator.feed({ type: 'frame', bytes: t.initiator.fromServer(encode({ type: 'new-responder', id: 1 }), 1) });
    expect(find(t.initiator, 'failed')).toHaveLength(1);
    const u = setup();
    // server-auth before server-hello (out of order): not a valid server-hello
    u.initiator.feed({
      type: 'frame',
      bytes: u.initiator.fromServer(encode({ type: 'server-auth', your_cookie: new Uint8Array(16), responders: [] }), 0, true),
    });
    expect(find(u.initiator, 'failed')).toHaveLength(1);
  });

  it('maps every close code to a typed error', () => {
    const codes: [number, string][] = [
      [1001, 'saltyrtc.peer-closed'],
      [1002, 'saltyrtc.subprotocol'],
      [3000, 'saltyrtc.path-full'],
      [3001, 'saltyrtc.protocol'],
      [3002, 'saltyrtc.server'],
      [3003, 'saltyrtc.peer-closed'],
      [3004, 'saltyrtc.dropped'],
      [3005, 'saltyrtc.refused'],
      [3006, 'saltyrtc.no-task'],
      [3007, 'saltyrtc.server-key'],
      [3008, 'saltyrtc.timeout'],
      [1006, 'saltyrtc.server'],
    ];
    for (const [code, err] of codes) {
      const s = setup();
      const e = s.responder.feed({ type: 'ws-closed', code });
      expect(
        e.find((x) => x.type === 'failed'),
        String(code),
      ).toMatchObject({ error: { code: err, closeCode: code } });
    }
  });
});

describe('client-to-client: malformed and out-of-order', () => {
  it('discards messages from an unannounced responder address', () => {
    const s = setup();
    s.initiator.handshake(1);
    s.responder.handshake(2);
    relay(s.responder, s.initiator); // no new-responder yet
    expect(find(s.initiator, 'warning').length).toBeGreaterThan(0);
    expect(find(s.initiator, 'peer-lost')).toHaveLength(0);
  });

  it('a responder refuses an auth before the key (closes 3001)', () => {
    const s = setup();
    s.responder.handshake(2);
    s.responder.take();
    // Initiator-side frame with a fresh cookie but garbage content, as if 'auth' came first.
    const nonce = encodeNonce({ cookie: systemRandom(16), source: 1, destination: 2, csn: 1 });
    const bytes = concatBytes(nonce, box(encode({ type: 'auth' }), nonce, s.memberKeys.publicKey, s.ownerKeys.secretKey));
    const e = s.responder.feed({ type: 'frame', bytes });
    expect(e.find((x) => x.type === 'close-ws')).toEqual({ type: 'close-ws', code: 3001 });
  });

  it('replayed client-to-client frame after authentication ends the peer with close 3001', () => {
    const s = setup();
    connect(s);
    s.initiator.feed({ type: 'send', peer: 2, payload: pm.encodeHandover() });
    const [frame] = s.initiator.take();
    s.responder.feed({ type: 'frame', bytes: frame! });
    expect(find(s.responder, 'peer-message')).toHaveLength(1);
    const e = s.responder.feed({ type: 'frame', bytes: frame! });
    expect(e.find((x) => x.type === 'failed')).toMatchObject({ error: { code: 'saltyrtc.protocol' } });
    // A 'close' 3001 went to the initiator before leaving.
    const closeFrame = s.responder.take().pop()!;
    s.initiator.feed({ type: 'frame', bytes: closeFrame });
    expect(find(s.initiator, 'peer-lost')[0]?.error.closeCode).toBe(3001);
  });

  it('tampered post-auth message ends the peer', () => {
    const s = setup();
    connect(s);
    s.responder.feed({ type: 'send', peer: 1, payload: pm.encodeHandover() });
    const [frame] = s.responder.take();
    frame![40] = frame![40]! ^ 1;
    s.initiator.feed({ type: 'frame', bytes: frame! });
    expect(find(s.initiator, 'peer-lost')).toHaveLength(1);
    expect(find(s.initiator, 'peer-message')).toHaveLength(0);
  });

  it('send-error and disconnected end the peer; new-responder on a used address resets it', () => {
    const s = setup();
    connect(s);
    s.initiator.feed({
      type: 'frame',
      bytes: s.initiator.fromServer(sm.encodeSendError({ id: Uint8Array.of(1, 2, 0, 0, 0, 0, 0, 9) }), 1),
    });
    expect(find(s.initiator, 'peer-lost')).toHaveLength(1);
    s.initiator.feed({ type: 'frame', bytes: s.initiator.fromServer(sm.encodeNewResponder({ id: 2 }), 1) });
    expect(s.initiator.state.peers.get(2)?.stage).toBe('await-token-or-key');
    s.initiator.feed({ type: 'frame', bytes: s.initiator.fromServer(sm.encodeDisconnected({ id: 2 }), 1) });
    expect(find(s.initiator, 'peer-lost')).toHaveLength(2);
  });

  it('sending before authentication is refused with a warning, not a frame', () => {
    const s = setup();
    s.initiator.handshake(1);
    s.initiator.take();
    s.initiator.feed({ type: 'send', peer: 2, payload: pm.encodeHandover() });
    expect(s.initiator.take()).toHaveLength(0);
  });

  it('handover: the responder leaves with 3003', () => {
    const s = setup();
    connect(s);
    expect(s.responder.feed({ type: 'handover-done', peer: 1 })).toContainEqual({ type: 'close-ws', code: 3003 });
  });

  it("'application' reaches the other side; 'close' ends the peer as the spec says", () => {
    const s = setup();
    connect(s);
    s.responder.feed({ type: 'send', peer: 1, payload: pm.encodeApplication('ping') });
    relay(s.responder, s.initiator);
    expect(find(s.initiator, 'peer-message')[0]?.message).toEqual({ type: 'application', data: { t: 'str', v: 'ping' } });
    // The owner closes this member: 'close' to the peer, then drop-responder to the server.
    s.initiator.feed({ type: 'close-peer', peer: 2, reason: 1001 });
    const [closeFrame, dropFrame] = s.initiator.take();
    expect(sm.decodeDropResponder(s.initiator.openToServer(dropFrame!))).toEqual({ type: 'drop-responder', id: 2, reason: 3004 });
    const e = s.responder.feed({ type: 'frame', bytes: closeFrame! });
    expect(e).toContainEqual({ type: 'close-ws', code: 1001 });
    expect(find(s.responder, 'peer-lost')[0]?.error.closeCode).toBe(1001);
    expect(s.initiator.state.peers.has(2)).toBe(false);
  });
});

describe('authenticated refusal (docs/PROTOCOL.md 4.1)', () => {
  /** Everything the responder got from the initiator, for replay. */
  function refusedRun(opts: Parameters<typeof setup>[0]) {
    const s = setup(opts);
    connect(s);
    return s;
  }

  it('a refused token (used, revoked, expired invite): the handshake reaches the session keys, then the refusal', () => {
    const refused = systemRandom(32);
    const s = refusedRun({ pending: [systemRandom(32)], refusedTokens: [refused], responderToken: refused });
    expect(find(s.initiator, 'peer-authenticated')).toHaveLength(0);
    expect(find(s.responder, 'peer-authenticated')).toHaveLength(0);
    const failed = find(s.responder, 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.error.code).toBe('saltyrtc.initiator-refused');
    expect(failed[0]!.error.closeCode).toBe(3004);
    expect(lastDrop(s.initiator)).toEqual({ type: 'drop-responder', id: 2, reason: 3004 });
    expect(find(s.initiator, 'warning').some((w) => w.message.includes('refused responder 2'))).toBe(true);
  });

  it('a refused key (e.g. a removed member) on the trusted-key path gets the refusal', () => {
    const member = generateBoxKeyPair();
    const s = refusedRun({
      pending: [],
      responderToken: null,
      memberKeys: member,
      refusedKeys: [generateBoxKeyPair().publicKey, member.publicKey],
    });
    expect(find(s.responder, 'failed')[0]?.error.code).toBe('saltyrtc.initiator-refused');
    expect(find(s.initiator, 'peer-authenticated')).toHaveLength(0);
  });

  it('a refused or no-longer-accepted token from a trusted key continues as a trusted reconnect', () => {
    const member = generateBoxKeyPair();
    const spent = systemRandom(32);
    const a = refusedRun({ pending: [], refusedTokens: [spent], responderToken: spent, memberKeys: member, trusted: [member.publicKey] });
    expect(find(a.initiator, 'peer-authenticated')[0]?.peerKey).toEqual(member.publicKey);
    expect(find(a.responder, 'peer-authenticated')).toHaveLength(1);
    const b = refusedRun({ accept: () => false, memberKeys: member, trusted: [member.publicKey] });
    expect(find(b.responder, 'peer-authenticated')).toHaveLength(1);
    expect(find(b.responder, 'failed')).toHaveLength(0);
  });

  it('an unknown token stays a 3005 drop: not final', () => {
    const s = refusedRun({ refusedTokens: [systemRandom(32)], responderToken: systemRandom(32) });
    expect(lastDrop(s.initiator)?.reason).toBe(3005);
    expect(find(s.responder, 'failed')).toHaveLength(0);
    expect(s.responder.feed({ type: 'ws-closed', code: 3005 }).find((e) => e.type === 'failed')).toMatchObject({
      error: { code: 'saltyrtc.refused' },
    });
  });

  it('only the initiator can refuse: a refusal replayed into a new handshake does not open; server close codes are only codes', () => {
    const refused = systemRandom(32);
    const member = generateBoxKeyPair();
    const first = setup({ pending: [], refusedTokens: [refused], responderToken: refused, memberKeys: member });
    expect(first.initiator.handshake(1).some((e) => e.type === 'server-ready')).toBe(true);
    first.responder.handshake(2);
    first.initiator.feed({ type: 'frame', bytes: first.initiator.fromServer(sm.encodeNewResponder({ id: 2 }), 1) });
    const recorded: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      relay(first.responder, first.initiator);
      const frames = first.initiator.take();
      for (const f of frames) {
        if (f[17] === 0) first.initiator.toServer.push(f);
        else {
          recorded.push(f);
          first.responder.feed({ type: 'frame', bytes: f });
        }
      }
    }
    expect(find(first.responder, 'failed')[0]?.error.code).toBe('saltyrtc.initiator-refused');
    expect(recorded).toHaveLength(2); // the owner's key, then the refusal

    // The server replays the owner's key and refusal to the same member in a later handshake (same
    // permanent keys, new session key): the key opens (boxed with permanent keys) but the refusal
    // was sealed to the old session key and does not open, so the member does not give up.
    const again = new Party(
      context('responder', member, { serverKey: serverKeys.publicKey, initiatorKey: first.ownerKeys.publicKey, token: refused }),
      serverKeys,
    );
    again.handshake(2);
    again.take();
    again.feed({ type: 'frame', bytes: recorded[0]! });
    expect(find(again, 'failed')).toHaveLength(0); // the replayed key opened: the member sent its auth
    expect(again.take().length).toBe(1);
    again.feed({ type: 'frame', bytes: recorded[1]! });
    expect(find(again, 'failed').map((f) => f.error.code)).toEqual(['saltyrtc.protocol']);

    // A responder at await-auth accepts a close only as exactly {type: close, reason: 3004}.
    expect(() => pm.decodeInitiatorAnswer(encode({ type: 'close', reason: 3005 }))).toThrow();
    expect(() => pm.decodeInitiatorAnswer(encode({ type: 'close', reason: 3004, extra: 1 }))).toThrow();
    expect(pm.decodeInitiatorAnswer(encode({ type: 'close', reason: 3004 }))).toEqual({ type: 'refusal', reason: 3004 });
  });
});
