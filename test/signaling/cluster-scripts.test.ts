/**
 * The cluster's Lua scripts (signaling/cluster/scripts.ts) run directly on a real redis-server, with
 * a subscriber per node decoding what they publish: slot allocation (lowest free, atomic under
 * concurrent claims, path full), initiator replacement, relay checks, leave, drop, and the reaper
 * for dead nodes. These are the only code that changes shared path state.
 */
import { createClient } from '@redis/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SequenceCheck, decodeNodeMessage, type NodeMessage } from '../../signaling/cluster/messages.ts';
import {
  ALL_SCRIPTS,
  CLAIM_INITIATOR,
  CLAIM_RESPONDER,
  DROP_RESPONDER,
  HEARTBEAT,
  LEAVE,
  REAP,
  REGISTER,
  RELAY,
  type ScriptSource,
} from '../../signaling/cluster/scripts.ts';
import { startRedis, type RedisServer } from './redis-server.ts';

type Client = ReturnType<typeof createClient>;
let redis: RedisServer;
let cmd: Client;
let cmd2: Client;
let sub: Client;
const shas = new Map<string, string>();
const PATH = 'ab'.repeat(32);
const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';

/** Messages each node got, decoded and order-checked. */
const inbox = new Map<string, NodeMessage[]>();
/** FLUSHALL between tests resets the counters, so each test starts a new check. */
const checks = new Map<string, SequenceCheck>();
const waiters: (() => void)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  cmd = createClient({ url: redis.url });
  cmd2 = cmd.duplicate();
  sub = cmd.duplicate();
  await Promise.all([cmd.connect(), cmd2.connect(), sub.connect()]);
  for (const s of ALL_SCRIPTS) shas.set(s.name, String(await cmd.sendCommand(['SCRIPT', 'LOAD', s.lua])));
  for (const n of [A, B]) {
    await sub.subscribe(
      `zr:to:${n}`,
      (m: Buffer) => {
        const msg = decodeNodeMessage(m, 1 << 20);
        checks.get(n)!.accept(msg.seq);
        inbox.get(n)!.push(msg);
        for (const w of waiters.splice(0)) w();
      },
      true,
    );
  }
});
afterAll(async () => {
  cmd.destroy();
  cmd2.destroy();
  sub.destroy();
  await redis.stop();
});
afterEach(async () => {
  await cmd.sendCommand(['FLUSHALL']);
});

async function fresh(...nodes: string[]): Promise<void> {
  inbox.set(A, []);
  inbox.set(B, []);
  checks.set(A, new SequenceCheck());
  checks.set(B, new SequenceCheck());
  for (const n of nodes) await run(REGISTER, n, '60000');
}

function run(s: ScriptSource, ...args: (string | Buffer)[]): Promise<unknown> {
  return cmd.sendCommand(['EVALSHA', shas.get(s.name)!, '0', ...args]);
}

/** Resolves once node `n` has received `count` messages in total (published in the same step, so one round trip). */
async function received(n: string, count: number): Promise<NodeMessage[]> {
  while (inbox.get(n)!.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
  return inbox.get(n)!;
}

const strip = (m: NodeMessage): Record<string, unknown> => {
  const { seq: _seq, ...rest } = m;
  return rest;
};

describe('claims', () => {
  it('gives responders the lowest free address and tells the initiator first', async () => {
    await fresh(A, B);
    await run(CLAIM_INITIATOR, PATH, A, '1');
    expect(strip((await received(A, 1))[0]!)).toEqual({ type: 'granted-initiator', conn: 1, responders: [] });
    expect(await run(CLAIM_RESPONDER, PATH, B, '5')).toBe(2);
    expect(await run(CLAIM_RESPONDER, PATH, A, '6')).toBe(3);
    await run(LEAVE, PATH, B, '5');
    expect(await run(CLAIM_RESPONDER, PATH, B, '7')).toBe(2);
    // Exact order: A's channel got grant, new-responder(2), new-responder(3), grant(3), disconnected(2), new-responder(2).
    expect((await received(A, 6)).map(strip)).toEqual([
      { type: 'granted-initiator', conn: 1, responders: [] },
      { type: 'new-responder', conn: 1, id: 2 },
      { type: 'new-responder', conn: 1, id: 3 },
      { type: 'granted-responder', conn: 6, address: 3, initiatorConnected: true },
      { type: 'disconnected', conn: 1, id: 2 },
      { type: 'new-responder', conn: 1, id: 2 },
    ]);
    expect((await received(B, 2)).map(strip)).toEqual([
      { type: 'granted-responder', conn: 5, address: 2, initiatorConnected: true },
      { type: 'granted-responder', conn: 7, address: 2, initiatorConnected: true },
    ]);
  });

  it('is atomic: 300 concurrent claims from two connections hand out 254 distinct addresses and 46 path-full', async () => {
    await fresh(A, B);
    const claims = Array.from({ length: 300 }, (_, k) =>
      (k % 2 === 0 ? cmd : cmd2).sendCommand(['EVALSHA', shas.get(CLAIM_RESPONDER.name)!, '0', PATH, k % 2 === 0 ? A : B, String(k + 1)]),
    );
    const results = (await Promise.all(claims)) as unknown as number[];
    const given = results.filter((r) => r !== 0);
    expect(given.length).toBe(254);
    expect([...given].sort((x, y) => x - y)).toEqual(Array.from({ length: 254 }, (_, k) => k + 2));
    expect(results.filter((r) => r === 0).length).toBe(46);
    const msgs = [...(await received(A, 150)), ...(await received(B, 150))];
    expect(msgs.filter((m) => m.type === 'path-full').length).toBe(46);
  });

  it('a new initiator drops the old one (3004, no disconnected) and tells every responder', async () => {
    await fresh(A, B);
    await run(CLAIM_RESPONDER, PATH, B, '2');
    await run(CLAIM_INITIATOR, PATH, A, '1');
    await run(CLAIM_INITIATOR, PATH, B, '3');
    expect((await received(A, 2)).map(strip)).toEqual([
      { type: 'granted-initiator', conn: 1, responders: [2] },
      { type: 'dropped', conn: 1, code: 3004 },
    ]);
    expect((await received(B, 4)).map(strip)).toEqual([
      { type: 'granted-responder', conn: 2, address: 2, initiatorConnected: false },
      { type: 'new-initiator', conn: 2 },
      { type: 'new-initiator', conn: 2 },
      { type: 'granted-initiator', conn: 3, responders: [2] },
    ]);
    // The dropped initiator's leave finds nothing to free: no disconnected for it.
    expect(await run(LEAVE, PATH, A, '1')).toBe(0);
  });

  it('refuses claims from a node whose lease is gone', async () => {
    await fresh(A);
    await expect(run(CLAIM_RESPONDER, PATH, B, '1')).rejects.toThrow(/ZRLOST/);
    await expect(run(CLAIM_INITIATOR, PATH, B, '1')).rejects.toThrow(/ZRLOST/);
    expect(await run(HEARTBEAT, B, '1000')).toBe(0);
    expect(await run(HEARTBEAT, A, '1000')).toBe(1);
  });
});

describe('relay, drop', () => {
  it('relays verbatim to the holder, answers send-error when nobody holds it, ignores a sender without its address', async () => {
    await fresh(A, B);
    await run(CLAIM_INITIATOR, PATH, A, '1');
    await run(CLAIM_RESPONDER, PATH, B, '9');
    const frame = Buffer.from(Array.from({ length: 40 }, (_, k) => k));
    frame[16] = 1;
    frame[17] = 2;
    expect(await run(RELAY, PATH, A, '1', '1', '2', frame)).toBe(1);
    expect(await run(RELAY, PATH, A, '1', '1', '3', frame)).toBe(2);
    expect(await run(RELAY, PATH, A, '99', '1', '2', frame)).toBe(0);
    const atB = await received(B, 2);
    const { frame: got, ...rest } = strip(atB[1]!);
    expect(rest).toEqual({ type: 'relay', conn: 9, fromNode: A, fromConn: 1 });
    expect(Buffer.from(got as Uint8Array)).toEqual(frame);
    const atA = await received(A, 3);
    expect(strip(atA[2]!)).toEqual({ type: 'send-error', conn: 1, id: new Uint8Array(frame.subarray(16, 24)) });
  });

  it('drop-responder works only for the path initiator and sends no disconnected', async () => {
    await fresh(A, B);
    await run(CLAIM_INITIATOR, PATH, A, '1');
    await run(CLAIM_RESPONDER, PATH, B, '9');
    expect(await run(DROP_RESPONDER, PATH, B, '9', '2', '3004')).toBe(0);
    expect(await run(DROP_RESPONDER, PATH, A, '1', '7', '3004')).toBe(0);
    expect(await run(DROP_RESPONDER, PATH, A, '1', '2', '3005')).toBe(1);
    expect(strip((await received(B, 2))[1]!)).toEqual({ type: 'dropped', conn: 9, code: 3005 });
    expect(await run(LEAVE, PATH, B, '9')).toBe(0);
    expect((await received(A, 2)).map((m) => m.type)).toEqual(['granted-initiator', 'new-responder']);
  });
});

describe('reaper', () => {
  it('frees the slots of a node whose lease expired and tells its peers; leaves live nodes alone', async () => {
    await fresh(A, B);
    await run(CLAIM_INITIATOR, PATH, A, '1');
    await run(CLAIM_RESPONDER, PATH, B, '2');
    await run(CLAIM_RESPONDER, PATH, B, '3');
    const other = 'cd'.repeat(32);
    await run(CLAIM_RESPONDER, other, B, '4');
    await run(CLAIM_INITIATOR, other, A, '5');
    expect(await run(REAP, '500', '')).toBe(0);
    expect(await cmd.sendCommand(['HLEN', `zr:path:${PATH}`])).toBe(3);
    // B's lease ends (as if it died): the reaper sweeps it.
    await cmd.sendCommand(['DEL', `zr:node:${B}`]);
    expect(await run(REAP, '500', '')).toBe(0);
    expect(await cmd.sendCommand(['HGETALL', `zr:path:${PATH}`])).toEqual({ '1': `${A}:1` });
    expect(await cmd.sendCommand(['SISMEMBER', 'zr:nodes', B])).toBe(0);
    expect(await cmd.sendCommand(['EXISTS', `zr:nodepaths:${B}`])).toBe(0);
    const atA = (await received(A, 7)).map(strip);
    expect(atA.slice(-3)).toEqual(
      expect.arrayContaining([
        { type: 'disconnected', conn: 1, id: 2 },
        { type: 'disconnected', conn: 1, id: 3 },
        { type: 'disconnected', conn: 5, id: 2 },
      ]),
    );
    // Retiring A by name frees the rest; nobody is left to tell.
    expect(await run(REAP, '500', A)).toBe(0);
    expect(await cmd.sendCommand(['EXISTS', `zr:path:${PATH}`, `zr:path:${other}`, `zr:node:${A}`])).toBe(0);
  });

  it('works in budgets: a dead node with more paths than the budget is finished by later calls', async () => {
    await fresh(A, B);
    for (let k = 0; k < 12; k++) await run(CLAIM_RESPONDER, k.toString(16).padStart(64, '0'), B, String(k + 1));
    await cmd.sendCommand(['DEL', `zr:node:${B}`]);
    expect(await run(REAP, '5', '')).toBe(1);
    expect(await run(REAP, '5', '')).toBe(1);
    expect(await run(REAP, '5', '')).toBe(0);
    expect(await cmd.sendCommand(['KEYS', 'zr:path:*'])).toEqual([]);
  });
});
