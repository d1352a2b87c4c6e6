// Client-to-client and WebRTC task message codecs (protocol/saltyrtc/peer-messages.ts).
import msgpack from 'msgpack-lite';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../protocol/errors.ts';
import { encode } from '../../protocol/msgpack.ts';
import * as pm from '../../protocol/saltyrtc/peer-messages.ts';

const key = new Uint8Array(32).fill(5);
const cookie = new Uint8Array(16).fill(6);
const taskData = { exclude: [], handover: true };

describe('encoders', () => {
  it('produce what the official client expects (msgpack-lite view)', () => {
    expect(msgpack.decode(Buffer.from(pm.encodeToken(key)))).toEqual({ type: 'token', key: Buffer.from(key) });
    expect(msgpack.decode(Buffer.from(pm.encodeAuthToInitiator(cookie, [pm.WEBRTC_TASK], taskData)))).toEqual({
      type: 'auth',
      your_cookie: Buffer.from(cookie),
      tasks: ['v1.webrtc.tasks.saltyrtc.org'],
      data: { 'v1.webrtc.tasks.saltyrtc.org': { exclude: [], handover: true } },
    });
    expect(msgpack.decode(Buffer.from(pm.encodeCandidates([{ candidate: 'c', sdpMid: '0', sdpMLineIndex: 0 }, null])))).toEqual({
      type: 'candidates',
      candidates: [{ candidate: 'c', sdpMid: '0', sdpMLineIndex: 0 }, null],
    });
  });
});

describe('decoders', () => {
  it('round-trip', () => {
    expect(pm.decodeToken(pm.encodeToken(key)).key).toEqual(key);
    expect(pm.decodeKey(pm.encodeKey(key)).key).toEqual(key);
    const a = pm.decodeAuthFromResponder(pm.encodeAuthToInitiator(cookie, [pm.WEBRTC_TASK], taskData));
    expect(a.tasks).toEqual([pm.WEBRTC_TASK]);
    expect(pm.decodeWebRtcTaskData(a.data.get(pm.WEBRTC_TASK))).toEqual(taskData);
    const b = pm.decodeAuthFromInitiator(pm.encodeAuthToResponder(cookie, pm.WEBRTC_TASK, taskData));
    expect(b.task).toBe(pm.WEBRTC_TASK);
    expect(pm.decodePostAuth(pm.encodeOffer({ type: 'offer', sdp: 'v=0' }))).toEqual({
      type: 'offer',
      offer: { type: 'offer', sdp: 'v=0' },
    });
    expect(pm.decodePostAuth(pm.encodeClose(3001))).toEqual({ type: 'close', reason: 3001 });
    expect(pm.decodePostAuth(pm.encodeHandover())).toEqual({ type: 'handover' });
    expect(pm.decodePostAuth(pm.encodeApplication({ hi: 1 }))).toEqual({
      type: 'application',
      data: { t: 'map', v: new Map([['hi', { t: 'int', v: 1 }]]) },
    });
  });

  it('refuse malformed input', () => {
    const bad: [string, () => unknown][] = [
      ['key as str', () => pm.decodeToken(encode({ type: 'token', key: 'x'.repeat(32) }))],
      ['short key', () => pm.decodeKey(encode({ type: 'key', key: new Uint8Array(31) }))],
      ['wrong type', () => pm.decodeKey(encode({ type: 'token', key }))],
      ['trailing bytes', () => pm.decodeKey(new Uint8Array([...pm.encodeKey(key), 0]))],
      [
        'auth: short cookie',
        () => pm.decodeAuthFromResponder(encode({ type: 'auth', your_cookie: new Uint8Array(15), tasks: ['a'], data: { a: null } })),
      ],
      ['auth: empty tasks', () => pm.decodeAuthFromResponder(encode({ type: 'auth', your_cookie: cookie, tasks: [], data: {} }))],
      ['auth: task not in data', () => pm.decodeAuthFromResponder(encode({ type: 'auth', your_cookie: cookie, tasks: ['a'], data: {} }))],
      [
        'auth: both task and tasks',
        () => pm.decodeAuthFromInitiator(encode({ type: 'auth', your_cookie: cookie, task: 'a', tasks: ['a'], data: { a: null } })),
      ],
      ['auth: data not a map', () => pm.decodeAuthFromInitiator(encode({ type: 'auth', your_cookie: cookie, task: 'a', data: [] }))],
      [
        'task data: negative exclude',
        () =>
          pm.decodeWebRtcTaskData({
            t: 'map',
            v: new Map([
              ['exclude', { t: 'arr', v: [{ t: 'int', v: -1 }] }],
              ['handover', { t: 'bool', v: true }],
            ]),
          }),
      ],
      ['task data: nil', () => pm.decodeWebRtcTaskData({ t: 'nil' })],
      ['offer: bad sdp type', () => pm.decodePostAuth(encode({ type: 'offer', offer: { type: 'bogus', sdp: '' } }))],
      ['offer: sdp too long', () => pm.decodePostAuth(encode({ type: 'offer', offer: { type: 'offer', sdp: 'x'.repeat(70000) } }))],
      ['candidates: empty', () => pm.decodePostAuth(encode({ type: 'candidates', candidates: [] }))],
      ['candidates: not a map', () => pm.decodePostAuth(encode({ type: 'candidates', candidates: [5] }))],
      ['close: reason out of range', () => pm.decodePostAuth(encode({ type: 'close', reason: 70000 }))],
      ['unknown type', () => pm.decodePostAuth(encode({ type: 'token', key }))],
      ['not a map', () => pm.decodePostAuth(encode([1, 2]))],
    ];
    for (const [what, f] of bad) expect(f, what).toThrow(DecodeError);
  });
});
