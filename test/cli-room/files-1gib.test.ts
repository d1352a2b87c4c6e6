// A 1 GiB sparse file from `zeroroom host` to a `zeroroom join --download-dir` over real WebRTC on
// 127.0.0.1 (issue 11, docs/PROTOCOL.md 5.17): memory stays bounded whatever the size (both ends
// stream from and to disk and hash with node:crypto streaming). Prints the peak RSS (VmHWM) of the
// sender and the receiver and the time; the hash of the written file matches.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliRoom, isEvent } from './clients.ts';

const room = cliRoom('files-1gib', 'files 1 GiB test password');
const SIZE = 1024 * 1024 * 1024;

async function sha256File(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(p, { highWaterMark: 1024 * 1024 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Peak resident set of a process so far (Linux VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error('no VmHWM');
  return Number(m[1]) * 1024;
}

describe('1 GiB through the CLI', () => {
  it('a sparse 1 GiB file arrives whole with bounded memory on both ends', async () => {
    const src = path.join(room.tmp, 'sparse.bin');
    const fh = await open(src, 'w');
    await fh.truncate(SIZE);
    await fh.write(Buffer.from('end'), 0, 3, SIZE - 3); // not all zeros: the last chunk matters too
    await fh.close();
    const dl = path.join(room.tmp, 'dl');
    const host = room.client('host', ['host', '--server', room.serve.wsUrl]);
    await host.waitFor(isEvent('ready'), 'host ready', 60_000);
    const url = String((await host.request({ cmd: 'invite', ttl: 600 }, isEvent('invite'), 'invite')).url);
    const member = room.client('m', ['join', url, '--download-dir', dl]);
    await member.waitFor(isEvent('joined'), 'joined', 60_000);
    const t0 = performance.now();
    const sent = await host.request({ cmd: 'send-file', path: src }, isEvent('file-sent'), 'file-sent', 60_000);
    const got = await member.waitFor((e) => e.event === 'file-received' && e.file === sent.file, 'received', 110_000);
    const seconds = (performance.now() - t0) / 1000;
    const [senderPeak, receiverPeak] = await Promise.all([peakRss(host.child.pid!), peakRss(member.child.pid!)]);
    console.log(
      `1 GiB through zeroroom host -> join: ${seconds.toFixed(1)} s incl. hashing on both ends (${(SIZE / seconds / 1e6).toFixed(1)} MB/s); ` +
        `peak RSS sender ${(senderPeak / 1e6).toFixed(0)} MB, receiver ${(receiverPeak / 1e6).toFixed(0)} MB`,
    );
    expect(got.size).toBe(SIZE);
    expect(await sha256File(String(got.path))).toBe(await sha256File(src));
    // Bounded: far below the file's size (a process that buffered it would exceed 1 GiB).
    expect(senderPeak).toBeLessThan(400 * 1024 * 1024);
    expect(receiverPeak).toBeLessThan(400 * 1024 * 1024);
    expect(await member.quit()).toBe(0);
    expect(await host.quit()).toBe(0);
    await rm(dl, { recursive: true, force: true });
  }, 180_000);
});
