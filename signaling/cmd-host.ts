/**
 * `zeroroom host`: a headless room owner (README "Headless client"). Creates, or with --state
 * restores, the owner's identity and room, keeps its SaltyRTC path open so members can join and
 * reconnect, and speaks JSON lines: commands on stdin, events on stdout.
 */
import { fromHex, generateBoxKeyPair, generateIdentity, initCrypto, systemRandom, toHex } from '../crypto/index.ts';
import type { DriverEvent } from '../protocol/room/driver-ports.ts';
import { OwnerDriver } from '../protocol/room/owner-driver.ts';
import { createRoom } from '../protocol/room/owner.ts';
import type { RoomIdentity, RoomRecord } from '../protocol/room/records.ts';
import type { OwnerState, RoomConfig } from '../protocol/room/types.ts';
import { flagBool, flagInt, flagList, flagString, formatFlagHelp, parseFlags, UsageError, type FlagSpec } from './cli-args.ts';
import { CliError, EXIT_OK, EXIT_STATUS_HELP, type Command } from './cli.ts';
import { commandLineHandler, errorJson, parseHostCommand, roomEventJson, type HostCommand } from './json-lines.ts';
import {
  cliDriverEnv,
  closeWebRtc,
  driverIo,
  ephemeralStore,
  keepStdoutForJson,
  nodeOwnerPort,
  startLifecycle,
  type DriverIo,
} from './room-cli.ts';
import { FileCli } from './file-cli.ts';
import { StateDir } from './state-dir.ts';

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
  {
    name: 'download-dir',
    kind: 'string',
    valueName: 'DIR',
    help: 'accept every offered file and write it to DIR under its safe name (never overwriting)',
  },
  {
    name: 'file-history',
    kind: 'int',
    valueName: 'MIB',
    min: 0,
    help: "members' files kept to relay to members (oldest out)",
    defaultText: '1024',
  },
  { name: 'verbose', kind: 'bool', help: 'also write informational driver lines (link retries, refused input) to stderr' },
];

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

type OwnerRecord = RoomRecord & { readonly state: OwnerState };

/** Restore the room from --state, or create identity and room (and their files when --state is set). */
async function openRoom(
  flags: ReadonlyMap<string, unknown>,
  store: StateDir | null,
): Promise<{ record: OwnerRecord; keys: RoomIdentity; restored: boolean }> {
  const f = flags as Parameters<typeof flagString>[0];
  const serverFlag = flagString(f, 'server');
  const rotateEvery = flagInt(f, 'rotate-every');
  const rotateAfter = flagInt(f, 'rotate-after');
  const overrides: Partial<RoomConfig> = {
    ...(rotateEvery !== undefined ? { rotateEveryMessages: rotateEvery } : {}),
    ...(rotateAfter !== undefined ? { rotateAfterMs: rotateAfter * 1000 } : {}),
  };
  // A partial directory is refused here (state.partial): a new room never replaces its files.
  const saved = store === null ? null : await store.load();
  if (saved !== null) {
    const { record } = saved;
    if (record.state.role !== 'owner') throw new CliError(`${store!.dir} holds a room this client joined; use zeroroom join --state`);
    const server = serverFlag !== undefined ? wsUrlFlag(serverFlag) : record.server;
    const serverKey = flagString(f, 'server-key') !== undefined ? serverKeyFlag(flagString(f, 'server-key')) : record.serverKey;
    const appUrl = flagString(f, 'app-url') ?? (serverFlag !== undefined ? defaultAppUrl(server) : record.appUrl);
    const state: OwnerState = { ...record.state, config: { ...record.state.config, ...overrides } };
    return { record: { ...record, server, serverKey, appUrl, state }, keys: saved.keys, restored: true };
  }
  if (serverFlag === undefined) throw new UsageError('--server is required (ws://HOST:PORT of a zeroroom serve)');
  const server = wsUrlFlag(serverFlag);
  const serverKey = serverKeyFlag(flagString(f, 'server-key'));
  const appUrl = flagString(f, 'app-url') ?? defaultAppUrl(server);
  const keys: RoomIdentity = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  const roomName = flagString(f, 'room-name');
  let state: OwnerState;
  try {
    state = createRoom(
      { random: systemRandom, identity: keys.identity, peerKey: keys.peer.publicKey, invites: { appUrl, server } },
      {
        now: Date.now(),
        ownerName: flagString(f, 'name') ?? 'owner',
        ...(roomName !== undefined ? { name: roomName } : {}),
        config: overrides,
      },
    ).state;
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
  const record: OwnerRecord = { role: 'owner', server, serverKey, appUrl, createdAt: Date.now(), state };
  if (store !== null) await store.create({ keys, record });
  return { record, keys, restored: false };
}

/** Driver events as JSON lines; `ready` once the signaling path is open the first time. */
function hostEvents(
  io: DriverIo,
  driver: () => OwnerDriver,
  ready: (d: OwnerDriver) => object,
  files: () => FileCli,
): (e: DriverEvent) => void {
  let announced = false;
  return (e) => {
    switch (e.kind) {
      case 'room':
        return io.out(roomEventJson(e.event));
      case 'link':
        return io.out({ event: 'link', member: e.member, peer: e.peer, state: e.state });
      case 'second-session':
        return io.out({ event: 'second-session', member: e.member, peer: e.peer });
      case 'signaling':
        if (e.ready && !announced) {
          announced = true;
          return io.out({ event: 'ready', ...ready(driver()) });
        }
        return io.out({ event: 'signaling', ready: e.ready });
      case 'error':
        return io.out(errorJson(e.error));
      default:
        files().event(e);
        return;
    }
  };
}

/** One stdin command; the answer (or the refusal) is an event. */
function onCommand(driver: OwnerDriver, io: DriverIo, files: FileCli, cmd: Exclude<HostCommand, { cmd: 'quit' }>): void {
  const report = (e: unknown): void => io.out(errorJson(e));
  switch (cmd.cmd) {
    case 'send-file':
    case 'accept-file':
    case 'decline-file':
    case 'cancel-file':
      return files.command(cmd);
    case 'invite':
      return void driver.invite(cmd.ttlSeconds !== undefined ? cmd.ttlSeconds * 1000 : undefined).catch(report);
    case 'send':
      return void driver.send(cmd.text).catch(report);
    case 'kick':
      return void driver.kick(cmd.member).catch(report);
    case 'revoke':
      return void driver.revoke(cmd.invite).catch(report);
    case 'rotate':
      return void driver.rotate().catch(report);
    case 'members':
      return void driver.inOrder(() => io.out({ event: 'members', members: driver.members() }));
    case 'safety-code':
      return void driver.inOrder(() => io.out({ event: 'safety-code', epoch: driver.state.epoch, code: driver.safetyCode() }));
  }
}

export const command: Command = {
  help: () =>
    [
      'usage: zeroroom host --server ws://HOST:PORT [options]',
      '',
      'Runs a room owner without a browser. Events are printed as JSON lines on stdout, commands are read',
      'as JSON lines from stdin: {"cmd":"invite","ttl":SECONDS} {"cmd":"send","text":"..."} {"cmd":"members"}',
      '{"cmd":"kick","member":ID} {"cmd":"revoke","invite":ID} {"cmd":"rotate"} {"cmd":"safety-code"} {"cmd":"quit"}.',
      'Files: {"cmd":"send-file","path":"..."} {"cmd":"accept-file","file":ID} {"cmd":"decline-file","file":ID} {"cmd":"cancel-file","file":ID};',
      "events file-offered, file-progress, file-received (with the path written), file-ended. The owner relays members' files.",
      'It runs until {"cmd":"quit"}, SIGTERM or SIGINT (end of stdin does not stop it).',
      '',
      formatFlagHelp(HOST_FLAGS),
      '',
      EXIT_STATUS_HELP,
    ].join('\n'),
  run: async (args, cliIo) => {
    const flags = parseFlags(args, HOST_FLAGS, cliIo.env);
    keepStdoutForJson();
    const io = driverIo(cliIo);
    await initCrypto();
    const stateDir = flagString(flags, 'state');
    const store = stateDir === undefined ? null : await StateDir.open(stateDir, cliIo.env.ZEROROOM_PASSWORD);
    const { record, keys, restored } = await openRoom(flags, store);
    // Flags may have changed where the room is served and its rotation policy: saved before it starts.
    if (store !== null && restored) await store.writeRoom(record);
    const { state, ...meta } = record;
    const fileCli = await FileCli.open(io, store, flagString(flags, 'download-dir'), 'owner');
    const historyMiB = flagInt(flags, 'file-history');
    const events = hostEvents(
      io,
      () => driver,
      (d) => ({ room: toHex(d.state.room), server: record.server, member: d.state.selfId, epoch: d.state.epoch, restored }),
      () => fileCli,
    );
    const driver: OwnerDriver = new OwnerDriver(
      state,
      store?.roomStore<OwnerState>(meta) ?? ephemeralStore(),
      cliDriverEnv(io, events, flagBool(flags, 'verbose')),
      {
        identity: keys,
        invites: {
          appUrl: record.appUrl,
          server: record.server,
          ...(record.serverKey !== '' ? { serverKey: fromHex(record.serverKey, 32) } : {}),
        },
        link: nodeOwnerPort({
          server: record.server,
          serverKey: record.serverKey,
          loopback: flagBool(flags, 'loopback'),
          iceServers: flagList(flags, 'ice-server') ?? [],
          keys: keys.peer,
        }),
        files: fileCli.driverOptions(historyMiB !== undefined ? historyMiB * 1024 * 1024 : undefined),
      },
    );
    fileCli.attach(driver.files);
    const life = startLifecycle(
      io,
      commandLineHandler(parseHostCommand, io.out, (cmd) => (cmd.cmd === 'quit' ? life.stop('quit') : onCommand(driver, io, fileCli, cmd))),
    );
    await driver.start();
    const reason = await life.stopped;
    life.dispose();
    await driver.stop();
    await driver.files?.flushed();
    await fileCli.close();
    io.out({ event: 'stopped', reason });
    await closeWebRtc();
    return EXIT_OK;
  },
};
