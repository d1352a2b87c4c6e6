// stdin of `zeroroom host` / `zeroroom join`: the bounded line splitter and the strict command
// decoders, one test per rule; hostile input yields CommandError, never anything else.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_TEXT } from '../../protocol/room/codec.ts';
import { CommandError, LineSplitter, MAX_LINE, parseHostCommand, parseJoinCommand, roomEventJson } from '../../signaling/json-lines.ts';

function split(chunks: string[], max = MAX_LINE): { lines: string[]; oversized: number } {
  const lines: string[] = [];
  let oversized = 0;
  const s = new LineSplitter(
    (l) => lines.push(l),
    () => oversized++,
    max,
  );
  for (const c of chunks) s.push(c);
  s.end();
  return { lines, oversized };
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CommandError);
    return (e as CommandError).code;
  }
  throw new Error('expected a CommandError');
}

describe('LineSplitter', () => {
  it('joins chunks into lines, strips CR, keeps a last line without newline', () => {
    expect(split(['{"a":', '1}\r\n{"b"', ':2}\n', '{"c":3}']).lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it('reports an oversized line once, skips it to its newline, and goes on', () => {
    const r = split(['x'.repeat(6), 'y'.repeat(6), 'z\nok\n'], 10);
    expect(r).toEqual({ lines: ['ok'], oversized: 1 });
  });

  it('a line of exactly the limit passes', () => {
    expect(split(['a'.repeat(10) + '\n'], 10)).toEqual({ lines: ['a'.repeat(10)], oversized: 0 });
  });

  it('lines come out the same however the input is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, '')),
          { maxLength: 10 },
        ),
        fc.integer({ min: 1, max: 7 }),
        (lines, size) => {
          const text = lines.map((l) => l + '\n').join('');
          const chunks: string[] = [];
          for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
          expect(split(chunks).lines).toEqual(lines);
        },
      ),
    );
  });
});

describe('command decoders', () => {
  it('accepts every documented command', () => {
    expect(parseHostCommand('{"cmd":"invite"}')).toEqual({ cmd: 'invite' });
    expect(parseHostCommand('{"cmd":"invite","ttl":60}')).toEqual({ cmd: 'invite', ttlSeconds: 60 });
    expect(parseHostCommand('{"cmd":"send","text":"hi"}')).toEqual({ cmd: 'send', text: 'hi' });
    expect(parseHostCommand(`{"cmd":"kick","member":"${'a'.repeat(32)}"}`)).toEqual({ cmd: 'kick', member: 'a'.repeat(32) });
    expect(parseHostCommand(`{"cmd":"revoke","invite":"${'b'.repeat(64)}"}`)).toEqual({ cmd: 'revoke', invite: 'b'.repeat(64) });
    for (const cmd of ['rotate', 'members', 'safety-code', 'update-keys', 'quit'])
      expect(parseHostCommand(JSON.stringify({ cmd }))).toEqual({ cmd });
    for (const cmd of ['leave', 'members', 'safety-code', 'update-keys', 'quit'])
      expect(parseJoinCommand(JSON.stringify({ cmd }))).toEqual({ cmd });
    expect(codeOf(() => parseJoinCommand('{"cmd":"update-keys","now":true}'))).toBe('cli.command');
    expect(codeOf(() => parseHostCommand('{"cmd":"update-keys","now":true}'))).toBe('cli.command');
    expect(parseJoinCommand('{"cmd":"send","text":""}')).toEqual({ cmd: 'send', text: '' });
  });

  it('refuses what is not a JSON object', () => {
    for (const line of ['', '{', 'null', '[]', '"send"', '42', '{"cmd":"send","text":"x"} trailing'])
      expect(codeOf(() => parseHostCommand(line))).toBe('cli.command');
  });

  it('refuses unknown commands and commands of the other client', () => {
    expect(codeOf(() => parseHostCommand('{"cmd":"leave"}'))).toBe('cli.command');
    expect(codeOf(() => parseJoinCommand('{"cmd":"kick","member":"00000000000000000000000000000000"}'))).toBe('cli.command');
    expect(codeOf(() => parseJoinCommand('{"cmd":"invite"}'))).toBe('cli.command');
    expect(codeOf(() => parseHostCommand('{"cmd":1}'))).toBe('cli.command');
    expect(codeOf(() => parseHostCommand('{"text":"no cmd"}'))).toBe('cli.command');
    expect(codeOf(() => parseHostCommand('{"cmd":"__proto__"}'))).toBe('cli.command');
  });

  it('refuses unknown fields', () => {
    expect(codeOf(() => parseHostCommand('{"cmd":"rotate","now":1}'))).toBe('cli.command');
    expect(codeOf(() => parseJoinCommand('{"cmd":"send","text":"x","to":"y"}'))).toBe('cli.command');
  });

  it('checks field types and ranges', () => {
    expect(codeOf(() => parseHostCommand('{"cmd":"send"}'))).toBe('cli.command');
    expect(codeOf(() => parseHostCommand('{"cmd":"send","text":5}'))).toBe('cli.command');
    expect(codeOf(() => parseHostCommand(JSON.stringify({ cmd: 'send', text: 'x'.repeat(MAX_TEXT + 1) })))).toBe('cli.command');
    expect(parseHostCommand(JSON.stringify({ cmd: 'send', text: 'x'.repeat(MAX_TEXT) }))).toMatchObject({ cmd: 'send' });
    for (const ttl of [0, -1, 1.5, '60', 31 * 24 * 3600, null])
      expect(codeOf(() => parseHostCommand(JSON.stringify({ cmd: 'invite', ttl })))).toBe('cli.command');
    for (const member of ['A'.repeat(32), 'a'.repeat(31), 'a'.repeat(33), 'g'.repeat(32), 7]) {
      expect(codeOf(() => parseHostCommand(JSON.stringify({ cmd: 'kick', member })))).toBe('cli.command');
    }
    expect(codeOf(() => parseHostCommand(JSON.stringify({ cmd: 'revoke', invite: 'a'.repeat(63) })))).toBe('cli.command');
  });

  it('refuses an oversized line before parsing it', () => {
    expect(codeOf(() => parseHostCommand(' '.repeat(MAX_LINE + 1)))).toBe('cli.line-too-long');
  });

  it('any string in gives a command or a CommandError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (line) => {
        for (const parse of [parseHostCommand, parseJoinCommand]) {
          try {
            parse(line);
          } catch (e) {
            expect(e).toBeInstanceOf(CommandError);
          }
        }
      }),
    );
  });
});

describe('event output', () => {
  it('a refused send is an error event with the code and sequence number', () => {
    expect(roomEventJson({ type: 'send-refused', code: 'room.epoch-expired', seq: 3 })).toMatchObject({
      event: 'error',
      code: 'room.epoch-expired',
      seq: 3,
    });
  });

  it('an event type the client does not know yet is passed on under its own name', () => {
    const future = { type: 'file-offered', id: 'f1', size: 3, hash: new Uint8Array([0xab, 0xcd]) } as unknown as Parameters<
      typeof roomEventJson
    >[0];
    expect(roomEventJson(future)).toEqual({ event: 'file-offered', id: 'f1', size: 3, hash: 'abcd' });
  });

  it('a warning about the owner names its code, count and member (docs/PROTOCOL.md 5.13)', () => {
    const member = { id: 'ab'.repeat(16) as never, name: 'bob', owner: false };
    expect(roomEventJson({ type: 'warning', code: 'message-withheld', count: 1, member })).toEqual({
      event: 'warning',
      code: 'message-withheld',
      count: 1,
      member: member.id,
      name: 'bob',
    });
    expect(roomEventJson({ type: 'warning', code: 'membership-withheld', count: 2, member: null })).toEqual({
      event: 'warning',
      code: 'membership-withheld',
      count: 2,
      member: null,
      name: null,
    });
  });
  it('a message supplied late for a sender-chain gap says so', () => {
    const base = {
      type: 'message',
      idx: 3,
      from: 'ab'.repeat(16) as never,
      name: 'b',
      text: 't',
      ts: 0,
      epoch: 0,
      seq: 2,
      history: true,
    } as const;
    expect(roomEventJson({ ...base, late: true })).toMatchObject({ event: 'message', late: true });
    expect(roomEventJson(base)).not.toHaveProperty('late');
  });
});
