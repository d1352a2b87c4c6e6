/**
 * Owner and members in separate browser contexts over the real signaling server and WebRTC:
 * create, invite by link, join, chat; peer-supplied HTML stays inert; the signaling server never
 * sees message texts; reload + unlock restores rooms, history and links; a message typed while the
 * owner was offline arrives exactly once; kick.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  buildApp,
  createRoom,
  enterRoom,
  joinByLink,
  launchChromium,
  messageTexts,
  newContext,
  newInvite,
  openApp,
  printLogsOnFailure,
  sendMessage,
  setSignalingUrl,
  startServer,
  unlock,
  waitMembers,
  waitMessage,
  watchErrors,
  type ServerHandle,
} from './harness.ts';
import { startFrameRecorder, type FrameRecorder } from './services.ts';

const EVIL_NAME = '<img src=x onerror="window.__xss=1">';
const EVIL_TEXT = '<script>window.__xss=2</script><b onmouseover="window.__xss=3">hover</b>';

let server: ServerHandle;
let recorder: FrameRecorder;
let browser: Browser;
const contexts: BrowserContext[] = [];
let owner: Page;
let ann: Page;
let bob: Page;
let ownerContext: BrowserContext;
let bobContext: BrowserContext;
let annInvite = '';
const pageErrors: string[][] = [];

async function device(label: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await newContext(browser);
  contexts.push(context);
  const page = await context.newPage();
  pageErrors.push(watchErrors(page, label));
  return { context, page };
}

async function memberIdOf(page: Page, name: string): Promise<string> {
  const el = page.getByTestId('member').filter({ hasText: name }).first();
  return (await el.getAttribute('data-member-id')) ?? '';
}

async function badgeOf(page: Page, memberId: string): Promise<string | null> {
  return page.locator(`[data-testid="connection-status"][data-member-id="${memberId}"]`).getAttribute('data-state');
}

beforeAll(async () => {
  const webDir = await buildApp();
  recorder = await startFrameRecorder();
  server = await startServer(webDir, ['--connect-origin', recorder.origin]);
  recorder.setTarget(server.url.replace(/^http/, 'ws'));
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await recorder?.close();
  await server?.stop();
});

describe('a room with an owner and two members', () => {
  beforeEach((ctx) =>
    printLogsOnFailure(
      ctx,
      () => ({ owner, ann, bob }),
      () => server,
    ),
  );

  it('create, invite by link, join, and everyone exchanges messages in the same order', async () => {
    ({ context: ownerContext, page: owner } = await device('owner'));
    ({ page: ann } = await device('ann'));
    ({ context: bobContext, page: bob } = await device('bob'));
    await openApp(owner, server.url);
    await setSignalingUrl(owner, recorder.url);
    await createRoom(owner, 'Team room', 'Olivia');

    annInvite = await newInvite(owner);
    await joinByLink(ann, annInvite, 'Ann');
    await waitMembers(ann, 2);
    // The invite's secret left the address bar (and the history entry) once read.
    expect(ann.url()).not.toContain('#join=');
    expect(await ann.evaluate(() => location.hash)).toBe('');
    await joinByLink(bob, await newInvite(owner), EVIL_NAME);
    for (const p of [owner, ann, bob]) await waitMembers(p, 3);

    const lines = ['hello from the owner, line one', 'hi from Ann on her own device', EVIL_TEXT];
    const senders: Page[] = [owner, ann, bob];
    for (const [i, text] of lines.entries()) {
      await sendMessage(senders[i] as Page, text);
      for (const p of [owner, ann, bob]) await waitMessage(p, text.slice(0, 20));
    }
    for (const p of [owner, ann, bob]) expect(await messageTexts(p)).toEqual(lines);

    // Same room view everywhere: safety code, epoch, members; the owner is marked once.
    const codes = await Promise.all([owner, ann, bob].map((p) => p.getByTestId('safety-code').textContent()));
    expect(codes[0]).toMatch(/^\d{5}( \d{5}){5}$/);
    expect(new Set(codes).size).toBe(1);
    const epochs = await Promise.all([owner, ann, bob].map((p) => p.getByTestId('epoch').textContent()));
    expect(new Set(epochs).size).toBe(1);
    for (const p of [owner, ann, bob]) expect(await p.getByTestId('owner-mark').count()).toBe(1);
    const fingerprints = await owner.getByTestId('fingerprint').allTextContents();
    expect(fingerprints).toHaveLength(3);
    for (const f of fingerprints) expect(f).toMatch(/^[0-9a-f]{4}( [0-9a-f]{4}){7}$/);

    // The owner sees a badge per member link; members see theirs to the owner.
    const annId = await memberIdOf(owner, 'Ann');
    await expect.poll(() => badgeOf(owner, annId)).toBe('direct');
    const ownerId = await memberIdOf(ann, 'Olivia');
    await expect.poll(() => badgeOf(ann, ownerId)).toBe('direct');

    // Peer-supplied name and text are text, not markup, on every page.
    for (const p of [owner, ann, bob]) {
      expect(await p.getByTestId('member').filter({ hasText: EVIL_NAME }).count()).toBe(1);
      const injected = await p.evaluate(() => ({
        xss: (window as unknown as { __xss?: number }).__xss ?? null,
        tags: document.querySelectorAll('#app img, #app script, #app b').length,
      }));
      expect(injected).toEqual({ xss: null, tags: 0 });
    }

    // The signaling server relayed the handshakes and nothing readable.
    expect(recorder.frames.length).toBeGreaterThan(10);
    const all = Buffer.concat(recorder.frames);
    for (const text of [...lines, 'Team room', 'Olivia']) expect(all.includes(Buffer.from(text))).toBe(false);
  }, 120_000);

  it('reload + unlock restores rooms, history and links on the owner and on a member', async () => {
    // Bob is away while the owner writes and then restarts: he catches up from the owner's
    // restored log when he comes back (sync + history, section 5.10).
    await bob.close();
    await sendMessage(owner, 'written while Bob was away');
    await waitMessage(ann, 'written while Bob was away');
    await owner.reload();
    await unlock(owner);
    await enterRoom(owner, 'Team room');
    expect((await messageTexts(owner)).length).toBe(4);
    const annId = await memberIdOf(owner, 'Ann');
    await expect.poll(() => badgeOf(owner, annId), { timeout: 30_000 }).toBe('direct');
    await sendMessage(owner, 'owner is back after a reload');
    await waitMessage(ann, 'owner is back after a reload');
    bob = await bobContext.newPage();
    pageErrors.push(watchErrors(bob, 'bob'));
    await openApp(bob, server.url);
    await enterRoom(bob, 'Team room');
    await waitMessage(bob, 'owner is back after a reload');
    expect((await messageTexts(bob)).slice(-2)).toEqual(['written while Bob was away', 'owner is back after a reload']);

    await ann.reload();
    await unlock(ann);
    await enterRoom(ann, 'Team room');
    expect(await messageTexts(ann)).toContain('owner is back after a reload');
    await sendMessage(ann, 'Ann is back after a reload');
    for (const p of [owner, bob]) await waitMessage(p, 'Ann is back after a reload');
  }, 90_000);

  it('a message typed while the owner was offline arrives exactly once', async () => {
    await owner.close();
    const ownerId = await memberIdOf(ann, 'Olivia');
    await expect.poll(() => badgeOf(ann, ownerId), { timeout: 30_000 }).not.toBe('direct');
    const text = 'typed while the owner was offline';
    await sendMessage(ann, text);
    await ann.locator('.message.pending').filter({ hasText: text }).waitFor();

    owner = await ownerContext.newPage();
    pageErrors.push(watchErrors(owner, 'owner'));
    await openApp(owner, server.url);
    await enterRoom(owner, 'Team room');
    for (const p of [owner, ann, bob]) await waitMessage(p, text);
    // Flush: one more message behind it, then count.
    await sendMessage(owner, 'owner confirms receipt');
    for (const p of [owner, ann, bob]) await waitMessage(p, 'owner confirms receipt');
    for (const p of [owner, ann, bob]) expect((await messageTexts(p)).filter((t) => t === text)).toHaveLength(1);
    expect(await ann.locator('.message.pending').count()).toBe(0);
  }, 90_000);

  it('a used invite and a revoked invite admit nobody', async () => {
    // The owner reloaded above: it still refuses both invites with its authenticated refusal (final
    // for the joiner, PROTOCOL.md 4.1), since its state keeps the auth tokens of retired invites.
    const { page: mallory } = await device('mallory');
    await joinByLink(mallory, annInvite, 'Mallory');
    await expect.poll(() => mallory.getByTestId('room-status').getAttribute('data-state'), { timeout: 30_000 }).toBe('refused');

    const revoked = await newInvite(owner);
    await owner.getByTestId('revoke-invite').click();
    await owner.getByTestId('invite-link').waitFor({ state: 'hidden' });
    const { page: trudy } = await device('trudy');
    await joinByLink(trudy, revoked, 'Trudy');
    await expect.poll(() => trudy.getByTestId('room-status').getAttribute('data-state'), { timeout: 30_000 }).toBe('refused');

    for (const p of [owner, ann, bob]) expect(await p.getByTestId('member').count()).toBe(3);
    for (const p of [mallory, trudy]) expect(await messageTexts(p)).toEqual([]);
  }, 90_000);

  it('kick: the removed member sees it was removed and receives nothing new; the key rotates', async () => {
    const epochBefore = Number(await owner.getByTestId('epoch').textContent());
    const bobId = await memberIdOf(owner, EVIL_NAME);
    await owner.locator(`[data-testid="member"][data-member-id="${bobId}"] [data-testid="kick-button"]`).click();
    // Removing someone asks first.
    await owner.getByTestId('confirm-yes').click();
    await expect.poll(() => bob.getByTestId('room-status').getAttribute('data-state'), { timeout: 30_000 }).toBe('removed');
    expect(await bob.getByTestId('room-status-text').textContent()).toContain('You were removed');
    await waitMembers(owner, 2);
    await waitMembers(ann, 2);
    await expect.poll(async () => Number(await owner.getByTestId('epoch').textContent())).toBeGreaterThan(epochBefore);
    await expect.poll(() => ann.getByTestId('epoch').textContent()).toBe(await owner.getByTestId('epoch').textContent());

    const before = await messageTexts(bob);
    await sendMessage(owner, 'secret after the kick');
    await sendMessage(ann, 'Ann also says something after the kick');
    await waitMessage(ann, 'Ann also says something after the kick');
    await waitMessage(owner, 'Ann also says something after the kick');
    expect(await messageTexts(bob)).toEqual(before);
    expect(await bob.getByTestId('message-input').isVisible()).toBe(false);

    // Rotate now: a fresh epoch on both remaining devices, and the room keeps working.
    const epochAfterKick = Number(await owner.getByTestId('epoch').textContent());
    await owner.getByTestId('rotate-button').click();
    await expect.poll(async () => Number(await owner.getByTestId('epoch').textContent())).toBe(epochAfterKick + 1);
    await expect.poll(async () => Number(await ann.getByTestId('epoch').textContent())).toBe(epochAfterKick + 1);
    await sendMessage(ann, 'after a manual rotation');
    await waitMessage(owner, 'after a manual rotation');
    expect(await messageTexts(bob)).toEqual(before);
  }, 90_000);

  it('left no page errors', () => {
    expect(pageErrors.flat().filter((e) => !e.includes('Permissions-Policy'))).toEqual([]);
  });
});
