/**
 * bench:web in the network lab (test/lab/lab.ts, needs root): join latency of a phone on the
 * owner's Wi-Fi, with Chromium running inside the phone's namespace and `zeroroom serve --lan` on
 * the owner's laptop, next to a bare WebRTC page pair in the same lab. Pages have no permissions
 * (mDNS host candidates), as a real member who opened a link.
 *
 * Split of "invite opened -> first decrypted message": lock screen, first-run unlock (PBKDF2,
 * Themis), signaling and ICE (started while the key is derived: web/session/prewarm.ts; from
 * the page's performance marks), and room join (join pressed -> first message). The part after
 * unlock is what the member waits once it has unlocked; the target is <= 2x the bare connect.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildApp, CHROMIUM_ARGS, createRoom, newInvite, openApp, PASSWORD, ROOT, sendMessage } from '../test/e2e/harness.ts';
import { ADDR, createLab, NS, type Lab, type Ns } from '../test/lab/lab.ts';

const ARGS = [
  ...CHROMIUM_ARGS.filter((a) => !a.startsWith('--host-resolver-rules')),
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 10.99.*, EXCLUDE *.local',
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

async function waitFor(child: ChildProcess, pattern: RegExp, what: string): Promise<string> {
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (c: Buffer): void => {
      out += c.toString();
      const m = pattern.exec(out);
      if (m !== null) resolve(m[1] ?? m[0]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}:\n${out}`)));
  });
}

interface Split {
  total: number;
  lockScreen: number;
  unlock: number;
  signaling: number;
  ice: number;
  join: number;
  linkOpenBeforeJoin: boolean;
}

async function zeroRoomOnce(owner: Browser, phone: Browser, appUrl: string): Promise<Split> {
  const ownerCtx = await owner.newContext({ ignoreHTTPSErrors: true });
  const memberCtx = await phone.newContext({ ignoreHTTPSErrors: true });
  try {
    const o = await ownerCtx.newPage();
    await openApp(o, appUrl);
    await createRoom(o, 'bench', 'owner');
    await sendMessage(o, 'first message');
    const invite = await newInvite(o);
    const m: Page = await memberCtx.newPage();
    const t0 = Date.now();
    await m.goto(invite, { waitUntil: 'domcontentloaded', timeout: 120_000 });
    await m.getByTestId('password-input').fill(PASSWORD, { timeout: 120_000 });
    const t1 = Date.now();
    await m.getByTestId('password-confirm-input').fill(PASSWORD);
    await m.getByTestId('unlock-button').click();
    await m.getByTestId('display-name-input').fill('member');
    const t2 = Date.now();
    await m.getByTestId('join-button').click();
    await m.getByTestId('message-text').filter({ hasText: 'first message' }).waitFor({ timeout: 60_000 });
    const t3 = Date.now();
    const marks = await m.evaluate(() =>
      Object.fromEntries(performance.getEntriesByType('mark').map((e) => [e.name, performance.timeOrigin + e.startTime])),
    );
    const pre = marks['zr:prewarm'] ?? NaN;
    const sig = marks['zr:signaling-ready'] ?? NaN;
    const open = marks['zr:link-open'] ?? NaN;
    return {
      total: t3 - t0,
      lockScreen: t1 - t0,
      unlock: t2 - t1,
      signaling: sig - pre,
      ice: open - sig,
      join: t3 - t2,
      linkOpenBeforeJoin: open <= t2,
    };
  } finally {
    await memberCtx.close();
    await ownerCtx.close();
  }
}

async function bareOnce(owner: Browser, phone: Browser, url: string): Promise<number> {
  const waitCtx = await owner.newContext();
  const joinCtx = await phone.newContext();
  try {
    const waiting = await waitCtx.newPage();
    await waiting.goto(`${url}#wait`);
    await waiting.waitForFunction(() => document.readyState === 'complete');
    const joiner = await joinCtx.newPage();
    const t0 = Date.now();
    await joiner.goto(`${url}#join`, { waitUntil: 'domcontentloaded', timeout: 120_000 });
    await joiner.waitForFunction(() => (window as unknown as { __received?: unknown }).__received !== undefined, undefined, {
      timeout: 30_000,
    });
    return Date.now() - t0;
  } finally {
    await joinCtx.close();
    await waitCtx.close();
  }
}

export async function labJoinLatency(runs: number): Promise<void> {
  let lab: Lab;
  try {
    lab = createLab();
  } catch (e) {
    console.log(`lab join latency: skipped (${e instanceof Error ? e.message : String(e)})`);
    return;
  }
  const keyDir = await mkdtemp(path.join(tmpdir(), 'zrl-bench-'));
  const browsers: Browser[] = [];
  try {
    const webDir = await buildApp();
    const server = lab.spawnIn(NS.owner, process.execPath, [
      path.join(ROOT, 'bin/zeroroom.js'),
      'serve',
      '--lan',
      '--port',
      '8443',
      '--ice-server',
      'none',
      '--quiet',
      '--web',
      webDir,
      '--key-file',
      path.join(keyDir, 'server.key'),
    ]);
    const appUrl = await waitFor(server, /zeroroom: LAN URL (https:\/\/\S+)/, 'zeroroom serve');
    const baseline = lab.spawnIn(NS.owner, path.join(ROOT, 'node_modules/.bin/tsx'), [
      path.join(ROOT, 'bench/web-baseline.ts'),
      '--serve',
      ADDR.owner,
      '8600',
    ]);
    const bareUrl = await waitFor(baseline, /baseline: listening on (\S+)/, 'baseline');
    const launch = (ns: Ns): Promise<Browser> => chromium.launch({ executablePath: lab.chromiumIn(ns), args: ARGS, headless: true });
    const owner = await launch(NS.owner);
    const phone = await launch(NS.phone);
    browsers.push(owner, phone);
    const zr: Split[] = [];
    const bare: number[] = [];
    let failed = 0;
    for (let i = 0; i < runs; i++) {
      try {
        bare.push(await bareOnce(owner, phone, bareUrl));
        zr.push(await zeroRoomOnce(owner, phone, appUrl));
      } catch (e) {
        failed++;
        console.log(`  run ${i + 1} failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      }
    }
    if (zr.length === 0 || bare.length === 0) {
      console.log('lab join latency: no complete run');
      return;
    }
    if (failed > 0) console.log(`  (${failed} of ${runs} runs failed and are left out)`);
    const med = (f: (s: Split) => number): number => median(zr.map(f));
    const b = median(bare);
    const afterUnlock = med((s) => s.join);
    console.log(`lab: phone on the owner's Wi-Fi, Chromium in its namespace, no permissions (median of ${runs}):`);
    console.log(
      `  invite opened -> first decrypted message  ${med((s) => s.total).toFixed(0)} ms  (runs: ${zr.map((s) => s.total.toFixed(0)).join(', ')})`,
    );
    console.log(`    page to lock screen                    ${med((s) => s.lockScreen).toFixed(0)} ms`);
    console.log(`    first-run unlock (PBKDF2, Themis)      ${med((s) => s.unlock).toFixed(0)} ms`);
    console.log(`    signaling (while unlocking)            ${med((s) => s.signaling).toFixed(0)} ms`);
    console.log(`    ICE + data channel (while unlocking)   ${med((s) => s.ice).toFixed(0)} ms`);
    console.log(
      `    room join (join pressed -> message)    ${afterUnlock.toFixed(0)} ms  (link already open in ${zr.filter((s) => s.linkOpenBeforeJoin).length}/${runs} runs)`,
    );
    console.log(`  bare WebRTC connect, same lab           ${b.toFixed(0)} ms  (runs: ${bare.map((x) => x.toFixed(0)).join(', ')})`);
    console.log(`  ratio after unlock / bare               ${(afterUnlock / b).toFixed(2)}x  (target <= 2x)`);
    console.log(`  ratio total / bare                      ${(med((s) => s.total) / b).toFixed(2)}x`);
  } finally {
    for (const br of browsers) await br.close().catch(() => undefined);
    await lab.teardown();
    await rm(keyDir, { recursive: true, force: true });
  }
}
