/**
 * `npm run bench:web`: gzip sizes of the built app (initial JS, the Themis chunk, the wasm) and the
 * time from opening an invite link to the first decrypted message in Chromium, next to a bare
 * WebRTC page pair connecting through a plain WebSocket relay, measured in the same run.
 *
 * The ZeroRoom time includes everything a new member's browser does: load the page, choose a
 * password (Argon2id password key, strength check), load Themis, SaltyRTC handshake, WebRTC, the room join and the
 * first message from the room's history.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import {
  buildApp,
  createRoom,
  launchChromium,
  newContext,
  newInvite,
  openApp,
  PASSWORD,
  sendMessage,
  startServer,
} from '../test/e2e/harness.ts';
import { startBaseline } from './web-baseline.ts';
import { labJoinLatency } from './web-lab.ts';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);

function gz(file: string): number {
  return gzipSync(readFileSync(file), { level: 9 }).length;
}

function kb(n: number): string {
  return `${(n / 1024).toFixed(1)} kB`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function sizes(dir: string): void {
  const html = readFileSync(path.join(dir, 'index.html'), 'utf8');
  const initial = [...html.matchAll(/(?:src|href)="\/?(assets\/[^"]+\.js)"/g)].map((m) => m[1] as string);
  const assets = readdirSync(path.join(dir, 'assets'));
  const js = assets.filter((f) => f.endsWith('.js'));
  // The Emscripten glue of wasm-themis (the app chunk only references the wasm's URL).
  const themis = js.filter((f) => readFileSync(path.join(dir, 'assets', f), 'utf8').includes('themis_secure_cell'));
  const wasm = assets.filter((f) => f.endsWith('.wasm'));
  // zxcvbn-ts and its password list: loaded only when a new password is chosen (first run, change).
  const estimator = js.filter((f) => f.startsWith('password-estimator-'));
  const sum = (files: string[]): number => files.reduce((n, f) => n + gz(path.join(dir, f.startsWith('assets/') ? f : `assets/${f}`)), 0);
  const rest = js.filter((f) => !initial.includes(`assets/${f}`) && !themis.includes(f) && !estimator.includes(f));
  console.log('bundle (gzip -9):');
  console.log(`  initial JS      ${kb(sum(initial))}  (${initial.join(', ')})`);
  console.log(`  Themis chunk    ${kb(sum(themis))}  (${themis.join(', ')})`);
  console.log(`  Themis wasm     ${kb(sum(wasm))}  (${wasm.join(', ')})`);
  console.log(`  other lazy JS   ${kb(sum(rest))}  (${rest.join(', ')})`);
  console.log(`  password check  ${kb(sum(estimator))}  (${estimator.join(', ')}; only when a new password is chosen)`);
}

interface Phases {
  total: number;
  lockScreen: number;
  unlock: number;
  join: number;
}

async function zeroRoomOnce(browser: Browser, appUrl: string): Promise<Phases> {
  const ownerCtx = await newContext(browser);
  const memberCtx = await newContext(browser);
  try {
    const owner = await ownerCtx.newPage();
    await openApp(owner, appUrl);
    await createRoom(owner, 'bench', 'owner');
    await sendMessage(owner, 'first message');
    const invite = await newInvite(owner);
    const member = await memberCtx.newPage();
    const t0 = performance.now();
    await member.goto(invite);
    await member.getByTestId('password-input').fill(PASSWORD);
    const t1 = performance.now();
    await member.getByTestId('password-confirm-input').fill(PASSWORD);
    await member.getByTestId('unlock-button').click();
    // A new device has no display name yet: the app asks for one with the invite prefilled.
    await member.getByTestId('display-name-input').fill('member');
    const t2 = performance.now();
    await member.getByTestId('join-button').click();
    await member.getByTestId('message-text').filter({ hasText: 'first message' }).waitFor({ timeout: 30_000 });
    const t3 = performance.now();
    return { total: t3 - t0, lockScreen: t1 - t0, unlock: t2 - t1, join: t3 - t2 };
  } finally {
    await memberCtx.close();
    await ownerCtx.close();
  }
}

async function bareOnce(browser: Browser, url: string): Promise<number> {
  const waitCtx = await newContext(browser);
  const joinCtx = await newContext(browser);
  try {
    const waiting = await waitCtx.newPage();
    await waiting.goto(`${url}#wait`);
    await waiting.waitForFunction(() => document.readyState === 'complete');
    const joiner = await joinCtx.newPage();
    const t0 = performance.now();
    await joiner.goto(`${url}#join`);
    await joiner.waitForFunction(() => (window as unknown as { __received?: unknown }).__received !== undefined, undefined, {
      timeout: 30_000,
    });
    return performance.now() - t0;
  } finally {
    await joinCtx.close();
    await waitCtx.close();
  }
}

async function main(): Promise<void> {
  const dir = await buildApp();
  sizes(dir);
  const server = await startServer(dir);
  const baseline = await startBaseline();
  const browser = await launchChromium();
  try {
    const zr: Phases[] = [];
    const bare: number[] = [];
    // Interleaved so both see the same machine load.
    for (let i = 0; i < RUNS; i++) {
      bare.push(await bareOnce(browser, baseline.url));
      zr.push(await zeroRoomOnce(browser, server.url));
    }
    const z = median(zr.map((p) => p.total));
    const b = median(bare);
    console.log(`invite link -> first decrypted message (median of ${RUNS}, Chromium, 127.0.0.1):`);
    console.log(`  ZeroRoom        ${z.toFixed(0)} ms  (runs: ${zr.map((x) => x.total.toFixed(0)).join(', ')})`);
    console.log(
      `    medians: page to lock screen ${median(zr.map((p) => p.lockScreen)).toFixed(0)} ms, first-run unlock (strength check + Argon2id + Themis load) ${median(zr.map((p) => p.unlock)).toFixed(0)} ms, join to first message (SaltyRTC, WebRTC, room join, history) ${median(zr.map((p) => p.join)).toFixed(0)} ms`,
    );
    console.log(
      `  bare WebRTC     ${b.toFixed(0)} ms  (plain ws relay, no crypto/storage; runs: ${bare.map((x) => x.toFixed(0)).join(', ')})`,
    );
    console.log(`  ratio           ${(z / b).toFixed(2)}x`);
  } finally {
    await browser.close();
    await baseline.close();
    await server.stop();
  }
}

await main();
// The same figure in the network lab (root only; BENCH_LAB=0 leaves it out).
if (process.env['BENCH_LAB'] !== '0') await labJoinLatency(RUNS);
