/**
 * `zeroroom join <invite-url>`: a headless room member (README "Headless client"). Joins through
 * the invite's one-time token, then reconnects on the trusted-key path (the owner knows our key)
 * whenever the link drops, also after a restart with --state. JSON lines on stdin and stdout.
 */
import { asBoxPublicKey, fromHex, generateBoxKeyPair, generateIdentity, initCrypto, systemRandom, toHex } from '../crypto/index.ts';
import { backoffDelay } from '../protocol/link/backoff.ts';
import { FATAL_JOIN_CODES, joinRoom } from '../protocol/link/member.ts';
import type { PeerLink } from '../protocol/link/peer-link.ts';
import { decodeInviteUrl, memberSafetyCode, memberStep, saltyAuthToken, startJoin } from '../protocol/room/index.ts';
import type { MemberCtx, MemberState, RoomEvent } from '../protocol/room/types.ts';
import { flagBool, flagList, flagString, formatFlagHelp, parseFlags, UsageError, type FlagSpec } from './cli-args.ts';
import { CliError, EXIT_OK, EXIT_RUNTIME, type Command } from './cli.ts';
import { commandLineHandler, errorJson, parseJoinCommand, type JoinCommand } from './json-lines.ts';
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
import { MAX_OUTBOX, StateDir, type OutboxEntry, type RoomKeys } from './state-dir.ts';

export const JOIN_FLAGS: readonly FlagSpec[] = [
  { name: 'name', kind: 'string', valueName: 'NAME', help: 'display name in the room', defaultText: 'member' },
  { name: 'state', kind: 'string', valueName: 'DIR', help: 'keep keys and the room (encrypted with ZEROROOM_PASSWORD) and resume from it' },
  { name: 'ice-server', kind: 'list', valueName: 'URL', help: 'STUN/TURN server URL', defaultText: 'none (host candidates only)' },
  { name: 'loopback', kind: 'bool', help: 'bind WebRTC to 127.0.0.1 (host and members on one machine, tests)' },
];

interface Where {
  readonly server: string;
  readonly serverKey: string;
}

export class JoinDriver extends RoomDriver<MemberState> {
  private link: PeerLink | null = null;
  private stopping = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  /** A close the machine asked for (leave, removed), waiting for the owner to close first. */
  private closing: Promise<void> = Promise.resolve();
  private readonly ctx: MemberCtx;
  /**
   * Own messages the owner has not delivered back yet (section 5.6), saved with --state. Each new
   * link carries all of them again: a link's own resend queue dies with it, and a message sent
   * while there was no link had nowhere to go. The owner drops copies it has (room.replay).
   */
  private outbox: OutboxEntry[];
  /** Called when the client is done with the room (left, refused). */
  onFinished: (reason: string) => void = () => undefined;

  constructor(
    state: MemberState,
    io: DriverIo,
    save: ((s: MemberState) => Promise<void>) | null,
    private readonly keys: RoomKeys,
    private readonly where: Where,
    private readonly env: { loopback: boolean; iceServers: readonly string[] },
    outbox: readonly OutboxEntry[] = [],
    private readonly saveOutbox: ((entries: readonly OutboxEntry[]) => Promise<void>) | null = null,
  ) {
    super(state, io, save);
    this.ctx = { random: systemRandom, identity: keys.identity, peerKey: keys.peer.publicKey };
    this.outbox = [...outbox];
  }

  start(): void {
    const s = this.state;
    this.io.out({ event: 'ready', room: toHex(s.room), member: s.selfId, phase: s.phase, epoch: s.epoch });
    if (s.phase === 'removed' || s.phase === 'left' || s.phase === 'refused') {
      this.io.out({ event: 'error', code: 'room.closed', message: `no longer in this room (${s.phase})` });
      this.onFinished(s.phase);
      return;
    }
    this.connect();
  }

  private connect(): void {
    this.retryTimer = null;
    if (this.stopping) return;
    const s = this.state;
    // Until the welcome the owner knows us only by the invite: use its auth token (5.3).
    const token = s.join !== null ? saltyAuthToken(s.join.token) : undefined;
    joinRoom({
      signalingUrl: this.where.server,
      ...(this.where.serverKey !== '' ? { serverKey: asBoxPublicKey(fromHex(this.where.serverKey, 32)) } : {}),
      ownerKey: asBoxPublicKey(fromHex(s.ownerPeer, 32)),
      ...(token !== undefined ? { token } : {}),
      permanentKeys: this.keys.peer,
      ...nodeLinkEnv(this.env),
    }).then(
      (link) => this.attach(link),
      (e: unknown) => this.connectFailed(e),
    );
  }

  private connectFailed(e: unknown): void {
    const code = (e as { code?: unknown }).code;
    const message = e instanceof Error ? e.message : String(e);
    if (typeof code === 'string' && FATAL_JOIN_CODES.has(code)) {
      this.io.out({ event: 'error', code, message: `the owner did not let us in: ${message}` });
      return;
    }
    this.io.out({ event: 'link', state: 'offline' });
    this.io.warn(`connecting failed (${message}); retrying`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => this.connect(), backoffDelay(this.attempt++, systemRandom));
  }

  private attach(link: PeerLink): void {
    if (this.stopping) {
      link.close();
      return;
    }
    this.link = link;
    this.attempt = 0;
    link.on('message', (bytes) => {
      void this.received((s) => memberStep(this.ctx, s, { kind: 'received', bytes, now: Date.now() }));
    });
    let open = true;
    link.on('state', (state) => {
      this.io.out({ event: 'link', state });
      const nowOpen = state === 'direct' || state === 'relayed';
      if (nowOpen && !open) this.connected();
      open = nowOpen;
    });
    link.on('close', () => {
      if (this.link === link) this.link = null;
      // Closed by the owner (it stopped, or removed us): the machine's phase says which.
      if (!this.stopping && this.state.phase !== 'removed' && this.state.phase !== 'left' && this.state.phase !== 'refused')
        this.scheduleReconnect();
    });
    this.io.out({ event: 'link', state: link.state });
    for (const o of this.outbox) link.send(o.wire);
    this.connected();
  }

  /** The link to the owner is open (again): the machine sends join-request, join-confirm or sync (5.4, 5.10). */
  private connected(): void {
    void this.command((s) => memberStep(this.ctx, s, { kind: 'connected', now: Date.now() }));
  }

  protected sendTo(_to: string, bytes: Uint8Array): void {
    // One peer: the owner. An offline link queues; without a link the sync after reconnecting catches up.
    if (this.link !== null && this.link.state !== 'closed') this.link.send(bytes);
  }

  protected closeLink(): void {
    if (this.link !== null) this.closing = lingerClose(this.link);
  }

  protected override async onRoomEvent(ev: RoomEvent): Promise<void> {
    if (ev.type === 'send-refused' && ev.seq !== null && (ev.code === 'room.replay' || this.outbox.some((o) => o.seq === ev.seq))) {
      await this.outboxRefused(ev.code, ev.seq);
      return;
    }
    await super.onRoomEvent(ev);
    if (ev.type === 'message' && ev.from === this.state.selfId) await this.setOutbox(this.outbox.filter((o) => o.seq !== ev.seq));
    if (ev.type === 'left') this.onFinished('left');
    if (ev.type === 'join-refused') this.onFinished('join-refused');
  }

  /**
   * The owner refused a message from the outbox: a copy of one it already ordered (room.replay) is
   * dropped quietly; one sealed under an epoch that rotated away while it waited is sealed again
   * under the current key (same text, new sequence number); anything else is reported.
   */
  private async outboxRefused(code: string, seq: number): Promise<void> {
    // room.replay: the owner has this sequence number from us already, so the message is in the
    // room; the copy came from a resend (a dropped link's queue and this outbox may both deliver).
    const entry = this.outbox.find((o) => o.seq === seq);
    await this.setOutbox(this.outbox.filter((o) => o.seq !== seq));
    if (code === 'room.replay') return;
    if (entry !== undefined && (code === 'room.epoch-expired' || code === 'room.epoch-unknown') && this.state.phase === 'member') {
      this.io.warn(`message #${seq} waited past a key rotation; sealing it again`);
      await this.sendText(entry.text);
      return;
    }
    await super.onRoomEvent({ type: 'send-refused', code, seq });
  }

  private async setOutbox(entries: OutboxEntry[]): Promise<void> {
    if (entries.length === this.outbox.length && entries.every((e, i) => e === this.outbox[i])) return;
    this.outbox = entries;
    await this.saveOutbox?.(entries);
  }

  /** A send: the sealed message joins the outbox (and its file) before it leaves. */
  private async sendText(text: string): Promise<void> {
    if (this.outbox.length >= MAX_OUTBOX) {
      this.io.out({ event: 'error', code: 'cli.outbox-full', message: `${MAX_OUTBOX} messages wait for the owner already; not sent` });
      return;
    }
    const step = memberStep(this.ctx, this.state, { kind: 'send', text, now: Date.now() });
    if (step.error !== undefined) {
      this.io.out(errorJson(step.error));
      return;
    }
    const wire = step.effects.find((e) => e.kind === 'send');
    if (wire !== undefined && wire.kind === 'send') await this.setOutbox([...this.outbox, { seq: step.state.seq, text, wire: wire.bytes }]);
    await this.apply(step);
  }

  /** One stdin command; returns true for quit. */
  onCommand(cmd: JoinCommand): boolean {
    const now = Date.now();
    switch (cmd.cmd) {
      case 'send':
        void this.serial(() => this.sendText(cmd.text));
        return false;
      case 'leave':
        void this.command((s) => memberStep(this.ctx, s, { kind: 'leave', now }));
        return false;
      case 'members':
      case 'safety-code':
        this.query(cmd.cmd);
        return false;
      case 'quit':
        return true;
    }
  }

  protected safetyCode(): string | null {
    return memberSafetyCode(this.state);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    await this.idle();
    await this.closing;
    this.link?.close();
    this.link = null;
  }
}

async function openMembership(
  inviteUrl: string | undefined,
  name: string,
  store: StateDir | null,
): Promise<{ state: MemberState; keys: RoomKeys; where: Where }> {
  const saved = store === null ? null : await store.readRoom();
  const savedKeys = store === null ? null : await store.readKeys();
  if (saved !== null && savedKeys !== null) {
    if (saved.role !== 'member') throw new CliError(`${store!.dir} holds a room this client owns; use zeroroom host --state`);
    const state = saved.state as MemberState;
    if (inviteUrl !== undefined && toHex(decodeInviteUrl(inviteUrl).room) !== toHex(state.room)) {
      throw new CliError(`${store!.dir} already holds another room; use a new --state directory for this invite`);
    }
    return { state, keys: savedKeys, where: { server: saved.server, serverKey: saved.serverKey } };
  }
  if (inviteUrl === undefined) throw new UsageError('an invite URL is required (zeroroom join <invite-url>)');
  const invite = decodeInviteUrl(inviteUrl);
  const keys: RoomKeys = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  let step;
  try {
    // The join-request effect is sent by the 'connected' step once the link is open (5.4).
    step = startJoin({ random: systemRandom, identity: keys.identity, peerKey: keys.peer.publicKey }, invite, { now: Date.now(), name });
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
  if (store !== null) await store.writeKeys(keys);
  return { state: step.state, keys, where: { server: invite.server, serverKey: invite.spub !== undefined ? toHex(invite.spub) : '' } };
}

export const command: Command = {
  help: () =>
    [
      'usage: zeroroom join <invite-url> [options]',
      '       zeroroom join --state DIR [options]      (resume a room joined earlier with this DIR)',
      '',
      'Joins a room without a browser. Events are printed as JSON lines on stdout, commands are read as',
      'JSON lines from stdin: {"cmd":"send","text":"..."} {"cmd":"members"} {"cmd":"safety-code"} {"cmd":"leave"} {"cmd":"quit"}.',
      'It runs until leave, quit, SIGTERM or SIGINT (end of stdin does not stop it).',
      '',
      formatFlagHelp(JOIN_FLAGS),
    ].join('\n'),
  run: async (args, cliIo) => {
    const [first, ...rest] = args;
    const inviteUrl = first !== undefined && !first.startsWith('--') ? first : undefined;
    const flags = parseFlags(inviteUrl === undefined ? args : rest, JOIN_FLAGS, cliIo.env);
    keepStdoutForJson();
    const io = driverIo(cliIo);
    await initCrypto();
    const stateDir = flagString(flags, 'state');
    const store = stateDir === undefined ? null : await StateDir.open(stateDir, cliIo.env.ZEROROOM_PASSWORD);
    const m = await openMembership(inviteUrl, flagString(flags, 'name') ?? 'member', store);
    const save = store === null ? null : (state: MemberState) => store.writeRoom({ role: 'member', ...m.where, appUrl: '', state });
    if (save !== null) await save(m.state);
    const outbox = store === null ? [] : await store.readOutbox();
    const driver = new JoinDriver(
      m.state,
      io,
      save,
      m.keys,
      m.where,
      { loopback: flagBool(flags, 'loopback'), iceServers: flagList(flags, 'ice-server') ?? [] },
      outbox,
      store === null ? null : (entries) => store.writeOutbox(entries),
    );
    let status = EXIT_OK;
    const life = startLifecycle(
      io,
      commandLineHandler(parseJoinCommand, io.out, (cmd) => {
        if (driver.onCommand(cmd)) life.stop('quit');
      }),
    );
    driver.onFinished = (reason) => {
      if (reason !== 'left') status = EXIT_RUNTIME;
      life.stop(reason);
    };
    driver.start();
    const reason = await life.stopped;
    life.dispose();
    await driver.stop();
    io.out({ event: 'stopped', reason });
    await closeWebRtc();
    return status;
  },
};
