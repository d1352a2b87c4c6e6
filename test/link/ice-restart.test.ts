// ICE restart of an open link session (docs/PROTOCOL.md 4.6): the ICE-restart task's codec and
// negotiation in the SaltyRTC client machine, the restart id, and the restart's signaling machine
// (protocol/link/ice-restart.ts) with malformed, out-of-order and replayed input. The restart itself
// needs a browser's RTCPeerConnection (test/e2e/ice-restart.test.ts); libdatachannel cannot restart.
import msgpack from 'msgpack-lite';
import { describe, expect, it } from 'vitest';
import {
  box,
  boxBefore,
  boxOpen,
  concatBytes,
  generateBoxKeyPair,
  systemRandom,
  asSharedKey,
  type BoxKeyPair,
} from '../../crypto/index.ts';
import { DecodeError } from '../../protocol/errors.ts';
import { decode, encode } from '../../protocol/msgpack.ts';
import {
  iceRestartRequest,
  initialState,
  step,
  type ClientContext,
  type ClientEffect,
  type ClientEvent,
  type ClientState,
} from '../../protocol/saltyrtc/client-machine.ts';
import { decodeNonce, encodeNonce, initialCsn } from '../../protocol/saltyrtc/nonce.ts';
import * as pm from '../../protocol/saltyrtc/peer-messages.ts';
import * as sm from '../../protocol/saltyrtc/server-messages.ts';
import {
  IceRestartError,
  newRestart,
  restartIdOf,
  restartStep,
  type RestartEvent,
  type RestartState,
} from '../../protocol/link/ice-restart.ts';

const taskData = { exclude: [], handover: true };
const session = new Uint8Array(16).fill(7);
const cookie = new Uint8Array(16).fill(6);

describe('ICE-restart task codec', () => {
  it('a restart request offers the ICE-restart task first, the WebRTC task as fallback (msgpack-lite view)', () => {
    const bytes = pm.encodeAuthToInitiator(cookie, [pm.WEBRTC_TASK], taskData, { session });
    expect(msgpack.decode(Buffer.from(bytes))).toEqual({
      type: 'auth',
      your_cookie: Buffer.from(cookie),
      tasks: ['v1.ice-restart.zeroroom', 'v1.webrtc.tasks.saltyrtc.org'],
      data: { 'v1.ice-restart.zeroroom': { session: Buffer.from(session) }, 'v1.webrtc.tasks.saltyrtc.org': taskData },
    });
    const auth = pm.decodeAuthFromResponder(bytes);
    expect(iceRestartRequest(auth)).toEqual({ session });
    // Without a request the message is exactly what it always was (the official client's view).
    expect(msgpack.decode(Buffer.from(pm.encodeAuthToInitiator(cookie, [pm.WEBRTC_TASK], taskData))).tasks).toEqual([pm.WEBRTC_TASK]);
    expect(iceRestartRequest(pm.decodeAuthFromResponder(pm.encodeAuthToInitiator(cookie, [pm.WEBRTC_TASK], taskData)))).toBeNull();
    const reply = pm.decodeAuthFromInitiator(pm.encodeAuthToResponderIceRestart(cookie, { session }));
    expect(reply.task).toBe(pm.ICE_RESTART_TASK);
    expect(pm.decodeIceRestartTaskData(reply.data.get(pm.ICE_RESTART_TASK))).toEqual({ session });
  });

  it('task data is exactly {session: bin 16}', () => {
    const d = (v: unknown) => pm.decodeIceRestartTaskData(decode(encode(v as never)));
    expect(d({ session })).toEqual({ session });
    for (const bad of [
      {},
      { session: new Uint8Array(15) },
      { session: new Uint8Array(17) },
      { session: 'x'.repeat(16) },
      { session, extra: 1 },
      [session],
      'session',
    ]) {
      expect(() => d(bad)).toThrow(DecodeError);
    }
    expect(() => pm.decodeIceRestartTaskData(undefined)).toThrow(DecodeError);
  });

  it('the ICE-restart task must come first and only beside the WebRTC task', () => {
    const auth = (tasks: string[]) =>
      pm.decodeAuthFromResponder(
        encode({
          type: 'auth',
          your_cookie: cookie,
          tasks,
          data: Object.fromEntries(tasks.map((t) => [t, t === pm.WEBRTC_TASK ? taskData : { session }])),
        }),
      );
    expect(() => iceRestartRequest(auth([pm.WEBRTC_TASK, pm.ICE_RESTART_TASK]))).toThrow(/must be offered first/);
    expect(() => iceRestartRequest(auth([pm.ICE_RESTART_TASK]))).toThrow(/must be offered first/);
    expect(() => iceRestartRequest(auth([pm.ICE_RESTART_TASK, pm.WEBRTC_TASK, 'v1.other']))).toThrow(/must be offered first/);
  });
});

describe('restart id', () => {
  it('is 16 bytes, stable per session key, different between keys', () => {
    const k1 = asSharedKey(systemRandom(32));
    const k2 = asSharedKey(systemRandom(32));
    expect(restartIdOf(k1)).toHaveLength(16);
    expect(restartIdOf(k1)).toEqual(restartIdOf(asSharedKey(k1.slice())));
    expect(restartIdOf(k1)).not.toEqual(restartIdOf(k2));
    expect(restartIdOf(k1)).not.toEqual(k1.subarray(0, 16));
  });
});

// --- the SaltyRTC client machine choosing the task (scripted server, trusted-key path) -----------

class Party {
  state: ClientState;
  readonly out: Uint8Array[] = [];
  readonly effects: ClientEffect[] = [];
  readonly session = generateBoxKeyPair();
  readonly cookie = systemRandom(16);
  csn = initialCsn(systemRandom);
  constructor(readonly ctx: ClientContext) {
    this.state = initialState(ctx);
  }
  feed(ev: ClientEvent): ClientEffect[] {
    const r = step(this.ctx, this.state, ev);
    this.state = r.state;
    for (const e of r.effects) if (e.type === 'send') this.out.push(e.bytes);
    this.effects.push(...r.effects);
    return [...r.effects];
  }
  fromServer(payload: Uint8Array, dest: number, plain = false): Uint8Array {
    const nonce = encodeNonce({ cookie: this.cookie, source: 0, destination: dest, csn: this.csn++ });
    return concatBytes(nonce, plain ? payload : box(payload, nonce, this.ctx.permanent.publicKey, this.session.secretKey));
  }
  handshake(address: number): void {
    this.feed({ type: 'frame', bytes: this.fromServer(sm.encodeServerHello({ key: this.session.publicKey }), 0, true) });
    const sent = this.out.splice(0);
    const yourCookie = decodeNonce(sent[0]!.subarray(0, 24)).cookie;
    boxOpen(
      sent[sent.length - 1]!.subarray(24),
      sent[sent.length - 1]!.subarray(0, 24),
      this.ctx.permanent.publicKey,
      this.session.secretKey,
    );
    const msg = sm.encodeServerAuth({ yourCookie, ...(this.ctx.role === 'initiator' ? { responders: [] } : { initiatorConnected: true }) });
    const nonce = encodeNonce({ cookie: this.cookie, source: 0, destination: address, csn: this.csn++ });
    this.feed({ type: 'frame', bytes: concatBytes(nonce, box(msg, nonce, this.ctx.permanent.publicKey, this.session.secretKey)) });
  }
  authenticated(): Extract<ClientEffect, { type: 'peer-authenticated' }>[] {
    return this.effects.filter((e): e is Extract<ClientEffect, { type: 'peer-authenticated' }> => e.type === 'peer-authenticated');
  }
}

function ctxOf(role: 'initiator' | 'responder', permanent: BoxKeyPair, extra: Partial<ClientContext>): ClientContext {
  // defineProperties, not spread: a test's getter must stay a getter (read at each use).
  return Object.defineProperties(
    { role, permanent, random: systemRandom, taskData, sharedWith: (pub: BoxKeyPair['publicKey']) => boxBefore(pub, permanent.secretKey) },
    Object.getOwnPropertyDescriptors(extra),
  ) as ClientContext;
}

/** Owner and member on the trusted-key path, relayed until quiet. */
function negotiate(
  member: Partial<ClientContext>,
  owner: Partial<ClientContext>,
): { initiator: Party; responder: Party; asked: pm.IceRestartTaskData[] } {
  const ownerKeys = generateBoxKeyPair();
  const memberKeys = generateBoxKeyPair();
  const asked: pm.IceRestartTaskData[] = [];
  const initiator = new Party(
    ctxOf('initiator', ownerKeys, { trustedKeys: () => [memberKeys.publicKey], pendingTokens: () => [], ...owner }),
  );
  const responder = new Party(
    ctxOf(
      'responder',
      memberKeys,
      Object.defineProperties({ initiatorKey: ownerKeys.publicKey }, Object.getOwnPropertyDescriptors(member)),
    ),
  );
  initiator.handshake(1);
  responder.handshake(2);
  initiator.out.splice(0);
  responder.out.splice(0, responder.out.length - 1); // keep only the 'key' to the initiator
  initiator.feed({ type: 'frame', bytes: initiator.fromServer(sm.encodeNewResponder({ id: 2 }), 1) });
  for (let i = 0; i < 4; i++) {
    for (const f of responder.out.splice(0)) if (f[17] !== 0) initiator.feed({ type: 'frame', bytes: f });
    for (const f of initiator.out.splice(0)) if (f[17] !== 0) responder.feed({ type: 'frame', bytes: f });
  }
  return { initiator, responder, asked };
}

describe('ICE-restart task negotiation (client machine)', () => {
  it('an owner that can restart that session chooses the ICE-restart task; both sides learn it', () => {
    const asked: Uint8Array[] = [];
    const { initiator, responder } = negotiate({ iceRestart: { session } }, { acceptIceRestart: (_k, r) => (asked.push(r.session), true) });
    expect(asked).toEqual([session]);
    expect(initiator.authenticated()[0]?.iceRestart).toEqual({ session });
    expect(responder.authenticated()[0]?.iceRestart).toEqual({ session });
    expect(initiator.authenticated()[0]?.sessionShared).toEqual(responder.authenticated()[0]?.sessionShared);
  });

  it('an owner that cannot restart it (or has no such decision) chooses the WebRTC task: a new peer connection', () => {
    for (const owner of [{ acceptIceRestart: () => false }, {}]) {
      const { initiator, responder } = negotiate({ iceRestart: { session } }, owner);
      expect(initiator.authenticated()[0]?.iceRestart).toBeNull();
      expect(responder.authenticated()).toHaveLength(1);
      expect(responder.authenticated()[0]?.iceRestart).toBeNull();
    }
  });

  it('a member that asks for nothing is never offered a restart (official-client behaviour unchanged)', () => {
    let asked = 0;
    const { initiator, responder } = negotiate({}, { acceptIceRestart: () => (asked++, true) });
    expect(asked).toBe(0);
    expect(initiator.authenticated()[0]?.iceRestart).toBeNull();
    expect(responder.authenticated()[0]?.iceRestart).toBeNull();
  });

  it('malformed restart data: the owner drops the responder (3001), nobody is authenticated', () => {
    let asked = 0;
    const { initiator, responder } = negotiate({ iceRestart: { session: new Uint8Array(5) } }, { acceptIceRestart: () => (asked++, true) });
    expect(asked).toBe(0);
    expect(initiator.authenticated()).toHaveLength(0);
    expect(responder.authenticated()).toHaveLength(0);
    // Protocol error of an unauthenticated responder: drop-responder 3001.
    expect(initiator.effects.find((e) => e.type === 'peer-lost')).toMatchObject({ error: { code: 'saltyrtc.dropped', closeCode: 3001 } });
  });

  it('an owner echoing another session than the one asked for is refused by the member', () => {
    const other = new Uint8Array(16).fill(9);
    let reads = 0;
    // The member's request goes out with `session`; its check then sees `other` (as if the echo differed).
    const member: Partial<ClientContext> = {
      get iceRestart() {
        return { session: reads++ === 0 ? session : other };
      },
    };
    const { responder } = negotiate(member, { acceptIceRestart: () => true });
    expect(responder.authenticated()).toHaveLength(0);
    expect(responder.effects.find((e) => e.type === 'failed')).toMatchObject({ error: { code: 'saltyrtc.protocol' } });
  });

  it('a member that did not ask for a restart refuses an owner choosing the ICE-restart task', () => {
    // The owner's auth reply is encoded for a request; the member built without one must not accept it.
    let reads = 0;
    const member: Partial<ClientContext> = {
      get iceRestart() {
        return reads++ === 0 ? { session } : undefined;
      },
    };
    const { responder } = negotiate(member, { acceptIceRestart: () => true });
    expect(responder.authenticated()).toHaveLength(0);
    expect(responder.effects.find((e) => e.type === 'failed')).toMatchObject({ error: { code: 'saltyrtc.no-task' } });
  });
});

// --- the restart's signaling machine ---------------------------------------------------------------

const cand = (n: number) => ({ candidate: `candidate:${n} 1 udp 1 127.0.0.1 ${50000 + n} typ relay`, sdpMid: '0', sdpMLineIndex: 0 });
const offer: RestartEvent = { type: 'remote', message: { type: 'offer', offer: { type: 'offer', sdp: 'v=0 offer' } } };
const answer: RestartEvent = { type: 'remote', message: { type: 'answer', answer: { type: 'answer', sdp: 'v=0 answer' } } };
const candidates = (...ns: number[]): RestartEvent => ({ type: 'remote', message: { type: 'candidates', candidates: ns.map(cand) } });

/** Runs events, checking that no input state is mutated; returns the final state and all effects. */
function run(s: RestartState, events: RestartEvent[]) {
  const effects = [];
  for (const ev of events) {
    const frozen = JSON.stringify(s);
    const r = restartStep(s, ev);
    expect(JSON.stringify(s)).toBe(frozen);
    s = r.state;
    effects.push(...r.effects);
  }
  return { state: s, effects };
}

function refuses(s: RestartState, ev: RestartEvent, why: RegExp): void {
  const frozen = JSON.stringify(s);
  let error: unknown;
  try {
    restartStep(s, ev);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(IceRestartError);
  expect((error as IceRestartError).code).toBe('link.ice-restart');
  expect((error as Error).message).toMatch(why);
  expect(JSON.stringify(s)).toBe(frozen);
}

describe('restart signaling: owner (offerer)', () => {
  it('sends its offer, then the candidates it held; applies one answer, then candidates', () => {
    const r = run(newRestart('offerer'), [
      { type: 'local-candidate', candidate: cand(1) },
      { type: 'local-description', sdpType: 'offer', sdp: 'v=0 offer' },
      { type: 'local-candidate', candidate: cand(2) },
      answer,
      { type: 'remote', message: { type: 'candidates', candidates: [cand(3), null] } },
    ]);
    expect(r.effects).toEqual([
      { type: 'send-description', sdpType: 'offer', sdp: 'v=0 offer' },
      { type: 'send-candidate', candidate: cand(1) },
      { type: 'send-candidate', candidate: cand(2) },
      { type: 'apply-description', sdpType: 'answer', sdp: 'v=0 answer' },
      { type: 'apply-candidate', candidate: cand(3) },
    ]);
    expect(r.state).toMatchObject({ localSent: true, remoteApplied: true, held: [] });
  });

  it('a redundant second local offer is not sent', () => {
    const r = run(newRestart('offerer'), [
      { type: 'local-description', sdpType: 'offer', sdp: 'one' },
      { type: 'local-description', sdpType: 'offer', sdp: 'two' },
    ]);
    expect(r.effects).toEqual([{ type: 'send-description', sdpType: 'offer', sdp: 'one' }]);
  });

  it('refuses an answer before its offer, a replayed answer, an offer, early candidates and handover', () => {
    const fresh = newRestart('offerer');
    refuses(fresh, answer, /answer before our offer/);
    const offered = run(fresh, [{ type: 'local-description', sdpType: 'offer', sdp: 'o' }]).state;
    refuses(offered, candidates(1), /candidates before the answer/);
    refuses(offered, offer, /restart offer sent to the offerer/);
    refuses(offered, { type: 'remote', message: { type: 'handover' } }, /handover/);
    refuses(offered, { type: 'remote', message: { type: 'answer', answer: { type: 'pranswer', sdp: 'x' } } }, /sdp of type pranswer/);
    const answered = run(offered, [answer]).state;
    refuses(answered, answer, /second restart answer/);
  });
});

describe('restart signaling: member (answerer)', () => {
  it('applies one offer, then candidates; sends its answer, then the candidates it held', () => {
    const r = run(newRestart('answerer'), [
      offer,
      candidates(1),
      { type: 'local-candidate', candidate: cand(2) },
      { type: 'local-description', sdpType: 'answer', sdp: 'v=0 answer' },
      { type: 'local-candidate', candidate: cand(3) },
    ]);
    expect(r.effects).toEqual([
      { type: 'apply-description', sdpType: 'offer', sdp: 'v=0 offer' },
      { type: 'apply-candidate', candidate: cand(1) },
      { type: 'send-description', sdpType: 'answer', sdp: 'v=0 answer' },
      { type: 'send-candidate', candidate: cand(2) },
      { type: 'send-candidate', candidate: cand(3) },
    ]);
  });

  it('refuses candidates before the offer, a replayed offer, an answer, handover, an offer carrying an answer sdp', () => {
    const fresh = newRestart('answerer');
    refuses(fresh, candidates(1), /candidates before the offer/);
    refuses(fresh, answer, /restart answer sent to the answerer/);
    refuses(fresh, { type: 'remote', message: { type: 'handover' } }, /handover/);
    refuses(fresh, { type: 'remote', message: { type: 'offer', offer: { type: 'answer', sdp: 'x' } } }, /sdp of type answer/);
    refuses(fresh, { type: 'local-description', sdpType: 'answer', sdp: 'a' }, /local answer before the restart offer/);
    const applied = run(fresh, [offer]).state;
    refuses(applied, offer, /second restart offer/);
    const done = run(applied, [{ type: 'local-description', sdpType: 'answer', sdp: 'a' }]).state;
    refuses(done, offer, /second restart offer/);
  });

  it('a local offer (not its role) is ignored, not sent', () => {
    expect(run(newRestart('answerer'), [offer, { type: 'local-description', sdpType: 'offer', sdp: 'x' }]).effects).toEqual([
      { type: 'apply-description', sdpType: 'offer', sdp: 'v=0 offer' },
    ]);
  });
});
