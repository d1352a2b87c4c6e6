/**
 * `zeroroom host`: a headless room owner (README "Headless client"). Creates, or with --state
 * restores, the owner's identity and room, keeps its SaltyRTC path open so members can join and
 * reconnect, and speaks JSON lines: commands on stdin, events on stdout.
 */
import {
  asBoxPublicKey,
  equalBytes,
  fromHex,
  generateBoxKeyPair,
  generateIdentity,
  initCrypto,
  systemRandom,
  toHex,
} from '../crypto/index.ts';
import { startOwner, type OwnerHandle } from '../protocol/link/owner.ts';
import type { PeerLink } from '../protocol/link/peer-link.ts';
import { createRoom, memberPeerKeys, ownerSafetyCode, ownerStep, pendingAuthTokens } from '../protocol/room/index.ts';
import type { OwnerCtx, OwnerState, PeerKeyHex, RoomConfig } from '../protocol/room/types.ts';
import { flagBool, flagInt, flagList, flagString, formatFlagHelp, parseFlags, UsageError, type FlagSpec } from './cli-args.ts';
import { CliError, EXIT_OK, type Command } from './cli.ts';
import { commandLineHandler, parseHostCommand, type HostCommand } from './json-lines.ts';
import {
  closeWebRtc,
  driverIo,
  keepStdoutForJson,
  lingerClose,
  nodeLinkEnv,
  RoomDriver,
  startLifecycle,
  type DriverIo,
} from './room-driver.ts';
import { StateDir, type RoomKeys } from './state-dir.ts';

export const HOST_FLAGS: readonly FlagSpec[] = [
  {
    name: 'server',
    kind: 'string',
    valueName: 'URL',
    help: 'signaling server, ws://HOST:PORT or wss://... (required unless restoring --state)',
  },
  { name: 'name', kind: 'string', valueName: 'NAME', help: "the owner's display name", defaultText: 'owner' },
  { name: 'room-name', kind: 'string', valueName: 'NAME', help: 'room name shown to joiners' },
  { name: 'state', kind: 'string', valueName: 'DIR', help: 'keep keys and the room (encrypted with ZEROROOM_PASSWORD) and resume from it' },
  { name: 'rotate-every', kind: 'int', valueName: 'N', min: 1, help: 'rotate the room key after N messages', defaultText: '100' },
  {
    name: 'rotate-after',
    kind: 'int',
    valueName: 'SECONDS',
    min: 0,
    help: 'rotate the room key after SECONDS (0 = never)',
    defaultText: '3600',
  },
  { name: 'server-key', kind: 'string', valueName: 'HEX', help: "pin the signaling server's public key (64 hex digits; put in invites)" },
  {
    name: 'app-url',
    kind: 'string',
    valueName: 'URL',
    help: 'web app origin used in invite links',
    defaultText: 'the http(s) origin of --server',
  },
  { name: 'ice-server', kind: 'list', valueName: 'URL', help: 'STUN/TURN server URL', defaultText: 'none (host candidates only)' },
  { name: 'loopback', kind: 'bool', help: 'bind WebRTC to 127.0.0.1 (host and members on one machine, tests)' },
];

/** Rotation timer and invite expiry run on ticks of the owner's clock (section 5.7). */
function tickInterval(rotateAfterMs: number): number {
  return rotateAfterMs > 0 ? Math.min(15_000, Math.max(250, Math.floor(rotateAfterMs / 4))) : 15_000;
}

function serverKeyFlag(hex: string | undefined): string {
  if (hex === undefined) return '';
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new UsageError('--server-key: expected 64 hex digits');
  return hex.toLowerCase();
}

function wsUrlFlag(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new UsageError(`--server: not a URL: ${url} (${e instanceof Error ? e.message : String(e)})`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new UsageError('--server: expected a ws:// or wss:// URL');
  return url.replace(/\/+$/, '');
}

/** The app origin that serves invites by default: the signaling server's own http(s) origin. */
function defaultAppUrl(server: string): string {
  const u = new URL(server);
  return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}/`;
}

export class HostDriver extends RoomDriver<OwnerState> {
  private handle: OwnerHandle | null = null;
  private tickTimer: ReturnType<typeof setInterval> | null = null;
  private announced = false;
  private stopping = false;
  readonly ctx: OwnerCtx;

  constructor(
    state: OwnerState,
    io: DriverIo,
    save: ((s: OwnerState) => Promise<void>) | null,
    private readonly keys: RoomKeys,
    private readonly opts: {
      server: string;
      serverKey: string;
      appUrl: string;
      loopback: boolean;
      iceServers: readonly string[];
      restored: boolean;
    },
  ) {
    super(state, io, save);
    this.ctx = {
      random: systemRandom,
      identity: keys.identity,
      peerKey: keys.peer.publicKey,
      invites: { appUrl: opts.appUrl, server: opts.server, ...(opts.serverKey !== '' ? { serverKey: fromHex(opts.serverKey, 32) } : {}) },
    };
  }

  start(): void {
    const env = nodeLinkEnv({ loopback: this.opts.loopback, iceServers: this.opts.iceServers });
    this.handle = startOwner({
      signalingUrl: this.opts.server,
      ...(this.opts.serverKey !== '' ? { serverKey: asBoxPublicKey(fromHex(this.opts.serverKey, 32)) } : {}),
      permanentKeys: this.keys.peer,
      ...env,
      pendingTokens: () => pendingAuthTokens(this.state, Date.now()),
      // The link layer only checks that the auth token is one of ours; the room machine admits (5.3).
      acceptToken: (token) => pendingAuthTokens(this.state, Date.now()).some((t) => equalBytes(t, token)),
      trustedKeys: () => memberPeerKeys(this.state).map((hex) => asBoxPublicKey(fromHex(hex, 32))),
      onLink: (link) => this.attach(link),
      onSignalingState: (ready) => this.onSignaling(ready),
      onWarning: (m) => this.io.warn(m),
    });
    this.tickTimer = setInterval(() => {
      void this.command((s) => ownerStep(this.ctx, s, { kind: 'tick', now: Date.now() }));
    }, tickInterval(this.state.config.rotateAfterMs));
  }

  private onSignaling(ready: boolean): void {
    if (this.stopping) return;
    if (ready && !this.announced) {
      this.announced = true;
      const s = this.state;
      this.io.out({
        event: 'ready',
        room: toHex(s.room),
        server: this.opts.server,
        member: s.selfId,
        epoch: s.epoch,
        restored: this.opts.restored,
      });
      return;
    }
    this.io.out({ event: 'signaling', ready });
  }

  private memberOf(peer: string): string | null {
    return this.state.members.find((m) => m.peer === peer)?.info.id ?? null;
  }

  private attach(link: PeerLink): void {
    const from = toHex(link.peerKey) as PeerKeyHex;
    const report = (state: string): void => this.io.out({ event: 'link', member: this.memberOf(from), peer: from, state });
    link.on('message', (bytes) => {
      void this.received((s) => ownerStep(this.ctx, s, { kind: 'received', from, bytes, now: Date.now() }));
    });
    link.on('state', report);
    link.on('error', (e) => this.io.warn(`link ${from.slice(0, 8)}: ${e.message}`));
    report(link.state);
  }

  protected sendTo(to: string, bytes: Uint8Array): void {
    const link = this.handle?.links.get(to);
    // A member without a live link catches up with sync/history when it reconnects (5.10).
    if (link !== undefined && link.state !== 'closed') link.send(bytes);
  }

  protected closeLink(to: string): void {
    const link = this.handle?.links.get(to);
    if (link !== undefined) void lingerClose(link);
  }

  /** One stdin command; returns true for quit. */
  onCommand(cmd: HostCommand): boolean {
    const now = Date.now();
    switch (cmd.cmd) {
      case 'invite':
        void this.command((s) =>
          ownerStep(this.ctx, s, { kind: 'invite', now, ...(cmd.ttlSeconds !== undefined ? { ttlMs: cmd.ttlSeconds * 1000 } : {}) }),
        );
        return false;
      case 'send':
        void this.command((s) => ownerStep(this.ctx, s, { kind: 'send', text: cmd.text, now }));
        return false;
      case 'kick':
        void this.command((s) => ownerStep(this.ctx, s, { kind: 'kick', member: cmd.member, now }));
        return false;
      case 'revoke':
        void this.command((s) => ownerStep(this.ctx, s, { kind: 'revoke', invite: cmd.invite, now }));
        return false;
      case 'rotate':
        void this.command((s) => ownerStep(this.ctx, s, { kind: 'rotate', now }));
        return false;
      case 'members':
      case 'safety-code':
        this.query(cmd.cmd);
        return false;
      case 'quit':
        return true;
    }
  }

  protected safetyCode(): string {
    return ownerSafetyCode(this.state);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    await this.idle();
    this.handle?.close();
    this.handle = null;
  }
}

/** Restore the room from --state, or create identity and room (and save them when --state is set). */
async function openRoom(
  flags: ReadonlyMap<string, unknown>,
  store: StateDir | null,
): Promise<{ state: OwnerState; keys: RoomKeys; server: string; serverKey: string; appUrl: string; restored: boolean }> {
  const f = flags as Parameters<typeof flagString>[0];
  const serverFlag = flagString(f, 'server');
  const rotateEvery = flagInt(f, 'rotate-every');
  const rotateAfter = flagInt(f, 'rotate-after');
  const overrides: Partial<RoomConfig> = {
    ...(rotateEvery !== undefined ? { rotateEveryMessages: rotateEvery } : {}),
    ...(rotateAfter !== undefined ? { rotateAfterMs: rotateAfter * 1000 } : {}),
  };
  const saved = store === null ? null : await store.readRoom();
  const savedKeys = store === null ? null : await store.readKeys();
  if (saved !== null && savedKeys !== null) {
    if (saved.role !== 'owner') throw new CliError(`${store!.dir} holds a room this client joined; use zeroroom join --state`);
    const state = saved.state as OwnerState;
    const server = serverFlag !== undefined ? wsUrlFlag(serverFlag) : saved.server;
    const serverKey = flagString(f, 'server-key') !== undefined ? serverKeyFlag(flagString(f, 'server-key')) : saved.serverKey;
    const appUrl = flagString(f, 'app-url') ?? (serverFlag !== undefined ? defaultAppUrl(server) : saved.appUrl);
    return { state: { ...state, config: { ...state.config, ...overrides } }, keys: savedKeys, server, serverKey, appUrl, restored: true };
  }
  if (serverFlag === undefined) throw new UsageError('--server is required (ws://HOST:PORT of a zeroroom serve)');
  const server = wsUrlFlag(serverFlag);
  const serverKey = serverKeyFlag(flagString(f, 'server-key'));
  const appUrl = flagString(f, 'app-url') ?? defaultAppUrl(server);
  const keys: RoomKeys = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  const roomName = flagString(f, 'room-name');
  let step;
  try {
    step = createRoom(
      { random: systemRandom, identity: keys.identity, peerKey: keys.peer.publicKey, invites: { appUrl, server } },
      {
        now: Date.now(),
        ownerName: flagString(f, 'name') ?? 'owner',
        ...(roomName !== undefined ? { name: roomName } : {}),
        config: overrides,
      },
    );
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
  if (store !== null) await store.writeKeys(keys);
  return { state: step.state, keys, server, serverKey, appUrl, restored: false };
}

export const command: Command = {
  help: () =>
    [
      'usage: zeroroom host --server ws://HOST:PORT [options]',
      '',
      'Runs a room owner without a browser. Events are printed as JSON lines on stdout, commands are read',
      'as JSON lines from stdin: {"cmd":"invite","ttl":SECONDS} {"cmd":"send","text":"..."} {"cmd":"members"}',
      '{"cmd":"kick","member":ID} {"cmd":"revoke","invite":ID} {"cmd":"rotate"} {"cmd":"safety-code"} {"cmd":"quit"}.',
      'It runs until {"cmd":"quit"}, SIGTERM or SIGINT (end of stdin does not stop it).',
      '',
      formatFlagHelp(HOST_FLAGS),
    ].join('\n'),
  run: async (args, cliIo) => {
    const flags = parseFlags(args, HOST_FLAGS, cliIo.env);
    keepStdoutForJson();
    const io = driverIo(cliIo);
    await initCrypto();
    const stateDir = flagString(flags, 'state');
    const store = stateDir === undefined ? null : await StateDir.open(stateDir, cliIo.env.ZEROROOM_PASSWORD);
    const room = await openRoom(flags, store);
    const save =
      store === null
        ? null
        : (state: OwnerState) =>
            store.writeRoom({ role: 'owner', server: room.server, serverKey: room.serverKey, appUrl: room.appUrl, state });
    if (save !== null) await save(room.state);
    const driver = new HostDriver(room.state, io, save, room.keys, {
      server: room.server,
      serverKey: room.serverKey,
      appUrl: room.appUrl,
      loopback: flagBool(flags, 'loopback'),
      iceServers: flagList(flags, 'ice-server') ?? [],
      restored: room.restored,
    });
    const life = startLifecycle(
      io,
      commandLineHandler(parseHostCommand, io.out, (cmd) => {
        if (driver.onCommand(cmd)) life.stop('quit');
      }),
    );
    driver.start();
    const reason = await life.stopped;
    life.dispose();
    await driver.stop();
    io.out({ event: 'stopped', reason });
    await closeWebRtc();
    return EXIT_OK;
  },
};
