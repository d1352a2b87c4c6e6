/** docs/PROTOCOL.md section 7 mirrors the one close-code table in protocol/saltyrtc/close-codes.ts. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODE_TABLE, CloseCode, DROP_RESPONDER_REASONS, isDropResponderReason } from '../../protocol/saltyrtc/close-codes.ts';
import { defaultLimits } from '../../signaling/server.ts';

const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
const section = (name: string): string => {
  const m = new RegExp(`<!-- section:${name} -->([\\s\\S]*?)<!-- /section:${name} -->`).exec(doc);
  if (m === null) throw new Error(`no section ${name}`);
  return m[1]!;
};

describe('close-code table', () => {
  const codes = section('codes');
  it('every table entry has its row in section 7', () => {
    for (const e of CLOSE_CODE_TABLE) {
      expect(codes).toContain(`| ${e.code} | WebSocket close | ${e.name}. Server: ${e.server}. Client: ${e.client}. |`);
    }
  });
  it('section 7 lists no close code the table lacks', () => {
    const documented = [...codes.matchAll(/^\| (\d{4}) \| WebSocket close \|/gm)].map((m) => Number(m[1]));
    expect(documented.sort()).toEqual(CLOSE_CODE_TABLE.map((e) => e.code).sort());
  });
  it('CloseCode and the table hold the same codes', () => {
    expect(Object.values(CloseCode).sort()).toEqual(CLOSE_CODE_TABLE.map((e) => e.code).sort());
  });
  it('drop-responder reasons are the spec set', () => {
    expect([...DROP_RESPONDER_REASONS].sort()).toEqual([3001, 3002, 3004, 3005]);
    expect(isDropResponderReason(3003)).toBe(false);
  });
  it('section 3 documents every limit', () => {
    const sig = section('signaling');
    for (const name of Object.keys(defaultLimits)) expect(sig).toContain(`| \`${name}\``);
  });
});
