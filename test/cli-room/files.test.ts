// Files through `zeroroom host` / `zeroroom join` over real WebRTC on 127.0.0.1 (docs/PROTOCOL.md
// 5.17, README "Headless client"): member -> owner -> other member and owner -> members with
// --download-dir (hash matches, safe names, never overwriting), a member killed mid-file and
// restarted from --state resumes, and a removed member's offer reaches nobody.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliRoom, isEvent, type Client, type Ev } from './clients.ts';

const room = cliRoom('files', 'files test password');

async function sha256File(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(p)) h.update(c as Buffer);
  return h.digest('hex');
}

const fileEvent = (name: string, file: string) => (e: Ev) => e.event === name && e.file === file;

describe('files through the CLI', () => {
  let host: Client;
  const dirs: Record<string, string> = {};
  const dl: Record<string, string> = {};
  let a: Client;
  let b: Client;
  let urls: string[] = [];

  function startMember(name: string, url?: string): Client {
    return room.client(name, [
      'join',
      ...(url !== undefined ? [url] : []),
      '--name',
      name,
      '--state',
      dirs[name]!,
      '--download-dir',
      dl[name]!,
    ]);
  }

  it('a member sends a file: the owner relays it, the other member writes it to --download-dir; hashes match', async () => {
    for (const n of ['host', 'a', 'b', 'c']) {
      dirs[n] = path.join(room.tmp, n);
      dl[n] = path.join(room.tmp, `dl-${n}`);
    }
    host = room.client('host', ['host', '--server', room.serve.wsUrl, '--state', dirs.host!]);
    await host.waitFor(isEvent('ready'), 'host ready', 60_000);
    urls = [];
    for (let i = 0; i < 3; i++) urls.push(String((await host.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite')).url));
    a = startMember('a', urls[0]);
    b = startMember('b', urls[1]);
    await Promise.all([a, b].map((m) => m.waitFor(isEvent('joined'), 'joined', 120_000)));

    const src = path.join(room.tmp, 'report.bin');
    await writeFile(src, randomBytes(3 * 65_536 + 1234));
    const want = await sha256File(src);
    const sent = await a.request({ cmd: 'send-file', path: src }, isEvent('file-sent'), 'file-sent');
    const id = String(sent.file);
    const offered = await b.waitFor(fileEvent('file-offered', id), 'b offered');
    expect(offered).toMatchObject({ name: 'report.bin', size: 3 * 65_536 + 1234, sender: 'a' });
    await host.waitFor(fileEvent('file-offered', id), 'host offered');
    const got = await b.waitFor(fileEvent('file-received', id), 'b received', 60_000);
    expect(got.path).toBe(path.join(dl.b!, 'report.bin'));
    expect(await sha256File(String(got.path))).toBe(want);
    // The message line names the file, never its key.
    const msg = b.events.find((e) => e.event === 'message' && (e.file as { id?: string } | undefined)?.id === id)!;
    expect(JSON.stringify(msg)).not.toMatch(/fkey/);
    // The sender saw its chunks leave; progress lines are throttled but the last one prints.
    expect(b.events.filter(fileEvent('file-progress', id)).at(-1)).toMatchObject({ done: 4, count: 4, direction: 'in' });
  }, 180_000);

  it('the owner sends to both members; a second file of the same name does not overwrite the first', async () => {
    const src = path.join(room.tmp, 'report.bin');
    const again = await host.request({ cmd: 'send-file', path: src }, isEvent('file-sent'), 'file-sent');
    const id = String(again.file);
    const [ga, gb] = await Promise.all([a, b].map((m) => m.waitFor(fileEvent('file-received', id), 'received', 60_000)));
    expect(ga!.path).toBe(path.join(dl.a!, 'report.bin')); // a sent the first one: its own download dir was empty
    expect(gb!.path).toBe(path.join(dl.b!, 'report (1).bin'));
    expect(await sha256File(String(gb!.path))).toBe(await sha256File(src));
    expect((await readdir(dl.b!)).sort()).toEqual(['report (1).bin', 'report.bin']);
  }, 180_000);

  it('a member killed mid-file and restarted from --state resumes; the hash matches', async () => {
    const src = path.join(room.tmp, 'big.bin');
    await writeFile(src, randomBytes(48 * 1024 * 1024));
    const want = await sha256File(src);
    const sent = await host.request({ cmd: 'send-file', path: src }, isEvent('file-sent'), 'file-sent');
    const id = String(sent.file);
    const first = await b.waitFor((e) => fileEvent('file-progress', id)(e) && Number(e.done) >= 8, 'b mid-file', 60_000);
    expect(Number(first.done)).toBeLessThan(Number(first.count));
    await b.kill();
    b = startMember('b');
    const got = await b.waitFor(fileEvent('file-received', id), 'b received after the restart', 120_000);
    expect(await sha256File(String(got.path))).toBe(want);
    // Resumed, not restarted: the restarted process's first progress line is past the start.
    const firstAfter = b.events.find(fileEvent('file-progress', id))!;
    expect(Number(firstAfter.done)).toBeGreaterThan(1);
    await a.waitFor(fileEvent('file-received', id), 'a received', 120_000);
  }, 180_000);

  it("a removed member's offer reaches nobody", async () => {
    const c = startMember('c', urls[2]);
    const ready = await c.waitFor(isEvent('ready'), 'c ready', 120_000);
    await c.waitFor(isEvent('joined'), 'c joined', 120_000);
    await c.kill();
    await host.request({ cmd: 'kick', member: ready.member }, isEvent('member-left', { member: ready.member }), 'kicked');
    const src = path.join(room.tmp, 'late.bin');
    await mkdir(path.dirname(src), { recursive: true });
    await writeFile(src, randomBytes(1000));
    // Restarted from its state (it never heard of the removal), it offers a file at once.
    const c2 = startMember('c');
    c2.send({ cmd: 'send-file', path: src });
    await c2.waitFor((e) => e.event === 'error' || e.event === 'removed', 'c refused', 120_000);
    // Something the host and the members do see after it: nothing of c's file came before it.
    await host.request({ cmd: 'send', text: 'after c' }, isEvent('message', { text: 'after c' }), 'after c');
    await b.waitFor(isEvent('message', { text: 'after c' }), 'b after c', 60_000);
    for (const m of [host, a, b]) expect(m.events.some((e) => e.event === 'file-offered' && e.name === 'late.bin')).toBe(false);
  }, 180_000);

  it('quits cleanly', async () => {
    for (const m of [a, b]) expect(await m.quit()).toBe(0);
    expect(await host.quit()).toBe(0);
  }, 60_000);
});
