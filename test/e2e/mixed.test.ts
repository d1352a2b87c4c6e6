/**
 * Mixed clients: a browser joins a room hosted by `zeroroom host`, and `zeroroom join` joins a room
 * created in the browser; messages flow both ways in both rooms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildApp,
  createRoom,
  enterRoom,
  joinByLink,
  launchChromium,
  newContext,
  newInvite,
  openApp,
  ROOT,
  sendMessage,
  startServer,
  waitMembers,
  waitMessage,
  type ServerHandle,
} from './harness.ts';

type Event = Record<string, unknown> & { event?: string };

/** A `zeroroom host|join` child speaking JSON lines; waits for events by predicate (no sleeps). */
class CliPeer {
  readonly events: Event[] = [];
  private waiters: Array<{ pred: (e: Event) => boolean; resolve: (e: Event) => void }> = [];
  readonly exited: Promise<void>;
  stderr = '';

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let e: Event;
      try {
        e = JSON.parse(line) as Event;
      } catch (err) {
        throw new Error(`not a JSON line from the CLI: ${line}`, { cause: err });
      }
      this.events.push(e);
      for (const w of [...this.waiters]) {
        if (w.pred(e)) {
          this.waiters = this.waiters.filter((x) => x !== w);
          w.resolve(e);
        }
      }
    });
    child.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static start(args: string[]): CliPeer {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/zeroroom.js'), ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    return new CliPeer(child);
  }

  send(cmd: Record<string, unknown>): void {
    this.child.stdin?.write(JSON.stringify(cmd) + '\n');
  }

  waitFor(pred: (e: Event) => boolean, what: string, timeoutMs = 30_000): Promise<Event> {
    const seen = this.events.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`CLI: no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.events)}\n${this.stderr}`)),
        timeoutMs,
      );
      this.waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.send({ cmd: 'quit' });
      this.child.stdin?.end();
    }
    await this.exited;
  }
}

let server: ServerHandle;
let browser: Browser;
const contexts: BrowserContext[] = [];
const clis: CliPeer[] = [];

beforeAll(async () => {
  const webDir = await buildApp();
  server = await startServer(webDir);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  for (const c of clis) await c.stop();
  await browser?.close();
  await server?.stop();
});

async function page(): Promise<Page> {
  const context = await newContext(browser);
  contexts.push(context);
  return context.newPage();
}

const isMessage = (text: string) => (e: Event) => e.event === 'message' && e.text === text;

describe('browser and command-line clients in one room', () => {
  it('a browser joins a room hosted by `zeroroom host`', async () => {
    const ws = server.url.replace(/^http/, 'ws');
    const host = CliPeer.start([
      'host',
      '--server',
      ws,
      '--server-key',
      server.publicKeyHex,
      '--app-url',
      server.url,
      '--loopback',
      '--name',
      'cli-owner',
      '--room-name',
      'CLI room',
    ]);
    clis.push(host);
    host.send({ cmd: 'invite', ttl: 600 });
    const invite = await host.waitFor((e) => e.event === 'invite', 'invite');
    const member = await page();
    await joinByLink(member, String(invite.url), 'browser-member');
    await waitMembers(member, 2);

    host.send({ cmd: 'send', text: 'hello from the command line' });
    await waitMessage(member, 'hello from the command line');
    await sendMessage(member, 'hello from the browser');
    await host.waitFor(isMessage('hello from the browser'), 'the browser message');
    expect(await member.getByTestId('room-name').textContent()).toBe('CLI room');
  }, 90_000);

  it('`zeroroom join` joins a room created in the browser', async () => {
    const owner = await page();
    await openApp(owner, server.url);
    await createRoom(owner, 'Browser room', 'browser-owner');
    const invite = await newInvite(owner);
    const joiner = CliPeer.start(['join', invite, '--loopback', '--name', 'cli-member']);
    clis.push(joiner);
    await waitMembers(owner, 2);

    await sendMessage(owner, 'hello to the command line');
    await joiner.waitFor(isMessage('hello to the command line'), 'the browser message');
    joiner.send({ cmd: 'send', text: 'hello back from the command line' });
    await waitMessage(owner, 'hello back from the command line');
    // Same safety code on both sides.
    joiner.send({ cmd: 'safety-code' });
    const code = await joiner.waitFor((e) => e.event === 'safety-code', 'safety code');
    expect(JSON.stringify(code)).toContain(String(await owner.getByTestId('safety-code').textContent()));
  }, 90_000);

  it('a browser member replaces its keys from Settings (PROTOCOL.md 5.8.1) and keeps chatting', async () => {
    const ws = server.url.replace(/^http/, 'ws');
    const host = CliPeer.start([
      'host',
      '--server',
      ws,
      '--server-key',
      server.publicKeyHex,
      '--app-url',
      server.url,
      '--loopback',
      '--name',
      'cli-owner',
      '--room-name',
      'Rekey room',
    ]);
    clis.push(host);
    host.send({ cmd: 'invite', ttl: 600 });
    const invite = await host.waitFor((e) => e.event === 'invite', 'invite');
    const member = await page();
    await joinByLink(member, String(invite.url), 'browser-member');
    await waitMembers(member, 2);
    const joined = await host.waitFor((e) => e.event === 'member-joined', 'member-joined');

    await member.getByTestId('nav-settings').click();
    await member.getByTestId('replace-keys').click();
    const updated = await host.waitFor((e) => e.event === 'keys-updated', 'keys-updated', 60_000);
    expect(updated.old).toBe(joined.member);
    expect(updated.member).not.toBe(joined.member);

    await enterRoom(member, 'Rekey room');
    await sendMessage(member, 'hello with new keys');
    await host.waitFor((e) => isMessage('hello with new keys')(e) && e.from === updated.member, 'the message under the new id', 60_000);
    host.send({ cmd: 'send', text: 'still reaching you' });
    await waitMessage(member, 'still reaching you');
  }, 120_000);

  it('a browser owner replaces its keys from Settings (PROTOCOL.md 5.8.1 step 5); the CLI member follows and keeps chatting', async () => {
    const owner = await page();
    await openApp(owner, server.url);
    await createRoom(owner, 'Owner rekey room', 'browser-owner');
    const invite = await newInvite(owner);
    const joiner = CliPeer.start(['join', invite, '--loopback', '--name', 'cli-member']);
    clis.push(joiner);
    await waitMembers(owner, 2);
    await joiner.waitFor((e) => e.event === 'ready', 'ready');

    await owner.getByTestId('nav-settings').click();
    await owner.getByTestId('replace-keys').click();
    const moved = await joiner.waitFor((e) => e.event === 'keys-updated' && e.owner === true, 'the member follows the owner', 60_000);
    expect(moved.self).toBe(false);

    await enterRoom(owner, 'Owner rekey room');
    await sendMessage(owner, 'from the new owner keys');
    await joiner.waitFor(isMessage('from the new owner keys'), 'the member reads the owner', 60_000);
    joiner.send({ cmd: 'send', text: 'to the new owner path' });
    await waitMessage(owner, 'to the new owner path');
  }, 120_000);
});
