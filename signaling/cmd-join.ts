/**
 * `zeroroom join`: a headless room member (README "Headless client"). Joins through an invite's
 * one-time token, then reconnects on the trusted-key path (the owner knows our key) whenever the
 * link drops, also after a restart with --state. The invite URL holds a secret, so besides an
 * argument it is taken from ZEROROOM_INVITE or a file (`--invite-file`, `-` for the first stdin
 * line), which keeps it out of the process list. JSON lines on stdin and stdout.
 */
import { readFile } from 'node:fs/promises';
import { generateBoxKeyPair, generateIdentity, initCrypto, systemRandom, toHex } from '../crypto/index.ts';
import type { DriverEvent } from '../protocol/room/driver-ports.ts';
import { MemberDriver, memberFinished } from '../protocol/room/member-driver.ts';
import { decodeInviteUrl, startJoin } from '../protocol/room/index.ts';
import type { RoomIdentity, RoomRecord } from '../protocol/room/records.ts';
import type { MemberState } from '../protocol/room/types.ts';
import { flagBool, flagList, flagString, formatFlagHelp, parseFlags, UsageError, type FlagSpec } from './cli-args.ts';
import { CliError, EXIT_OK, EXIT_REFUSED, EXIT_RUNTIME, EXIT_STATUS_HELP, type Command } from './cli.ts';
import { awayEventJson, commandLineHandler, errorJson, parseJoinCommand, roomEventJson, type JoinCommand } from './json-lines.ts';
import {
  cliDriverEnv,
  closeWebRtc,
  driverIo,
  ephemeralStore,
  keepStdoutForJson,
  nodeMemberPort,
  nodeMeshPort,
  readFirstStdinLine,
  startLifecycle,
  type DriverIo,
} from './room-cli.ts';
import { FileCli } from './file-cli.ts';
import { StateDir } from './state-dir.ts';

export const JOIN_FLAGS: readonly FlagSpec[] = [
  { name: 'name', kind: 'string', valueName: 'NAME', help: 'display name in the room', defaultText: 'member' },
  {
    name: 'invite',
    kind: 'string',
    valueName: 'URL',
    help: 'the invite URL; better in ZEROROOM_INVITE or --invite-file (an argument shows in the process list)',
  },
  { name: 'invite-file', kind: 'string', valueName: 'FILE', help: 'read the invite URL from FILE; "-" reads the first line of stdin' },
  { name: 'state', kind: 'string', valueName: 'DIR', help: 'keep keys and the room (encrypted with ZEROROOM_PASSWORD) and resume from it' },
  { name: 'ice-server', kind: 'list', valueName: 'URL', help: 'STUN/TURN server URL', defaultText: 'none (host candidates only)' },
  { name: 'loopback', kind: 'bool', help: 'bind WebRTC to 127.0.0.1 (host and members on one machine, tests)' },
  {
    name: 'download-dir',
    kind: 'string',
    valueName: 'DIR',
    help: 'accept every offered file and write it to DIR under its safe name (never overwriting)',
  },
  { name: 'verbose', kind: 'bool', help: 'also write informational driver lines (link retries, refused input) to stderr' },
];

type MemberRecord = RoomRecord & { readonly state: MemberState };

/**
 * The invite URL from exactly one of: the argument, --invite / ZEROROOM_INVITE, --invite-file /
 * ZEROROOM_INVITE_FILE. `rest` is stdin input that followed an invite read from stdin.
 */
async function inviteOf(
  positional: string | undefined,
  flags: ReadonlyMap<string, unknown>,
): Promise<{ url?: string; rest: string; fromStdin?: boolean }> {
  const f = flags as Parameters<typeof flagString>[0];
  const flag = flagString(f, 'invite');
  const file = flagString(f, 'invite-file');
  const given = [positional, flag, file].filter((v) => v !== undefined);
  if (given.length > 1)
    throw new UsageError('give the invite URL one way: an argument, --invite (ZEROROOM_INVITE) or --invite-file (ZEROROOM_INVITE_FILE)');
  if (file === undefined) return { ...((positional ?? flag) !== undefined ? { url: (positional ?? flag)! } : {}), rest: '' };
  if (file === '-') {
    let first;
    try {
      first = await readFirstStdinLine();
    } catch (e) {
      throw new CliError(`--invite-file -: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (first.line === '') {
      process.stdin.destroy();
      throw new UsageError('--invite-file -: no invite URL on the first line of stdin');
    }
    return { url: first.line, rest: first.rest, fromStdin: true };
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new CliError(`--invite-file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
  const line = text
    .split('\n')
    .find((l) => l.trim() !== '')
    ?.trim();
  if (line === undefined) throw new UsageError(`--invite-file ${file}: no invite URL in the file`);
  return { url: line, rest: '' };
}

/** Resume the room from --state, or start joining from the invite (and create the files). */
async function openMembership(
  inviteUrl: string | undefined,
  name: string,
  store: StateDir | null,
): Promise<{ record: MemberRecord; keys: RoomIdentity }> {
  const saved = store === null ? null : await store.load();
  if (saved !== null) {
    const { record } = saved;
    if (record.state.role !== 'member') throw new CliError(`${store!.dir} holds a room this client owns; use zeroroom host --state`);
    if (inviteUrl !== undefined && toHex(decodeInviteUrl(inviteUrl).room) !== toHex(record.state.room)) {
      throw new CliError(`${store!.dir} already holds another room; use a new --state directory for this invite`);
    }
    return { record: { ...record, state: record.state }, keys: saved.keys };
  }
  if (inviteUrl === undefined)
    throw new UsageError('an invite URL is required (zeroroom join <invite-url>, ZEROROOM_INVITE or --invite-file)');
  const invite = decodeInviteUrl(inviteUrl);
  const keys: RoomIdentity = { identity: generateIdentity(), peer: generateBoxKeyPair() };
  let state: MemberState;
  try {
    // The join-request effect is sent by the 'connected' step once the link is open (5.4).
    state = startJoin({ random: systemRandom, identity: keys.identity, peerKey: keys.peer.publicKey }, invite, {
      now: Date.now(),
      name,
    }).state;
  } catch (e) {
    if (e instanceof RangeError) throw new UsageError(e.message);
    throw e;
  }
  const record: MemberRecord = {
    role: 'member',
    server: invite.server,
    serverKey: invite.spub !== undefined ? toHex(invite.spub) : '',
    appUrl: '',
    createdAt: Date.now(),
    state,
  };
  if (store !== null) await store.create({ keys, record });
  return { record, keys };
}

/** Driver events as JSON lines; `finish` ends the client with an exit status. */
function joinEvents(io: DriverIo, finish: (reason: string, status: number) => void, files: () => FileCli): (e: DriverEvent) => void {
  return (e) => {
    switch (e.kind) {
      case 'room':
        io.out(roomEventJson(e.event));
        if (e.event.type === 'left') finish('left', EXIT_OK);
        if (e.event.type === 'join-refused') finish('join-refused', EXIT_REFUSED);
        return;
      case 'link':
        return io.out({ event: 'link', state: e.state });
      case 'refused':
        io.out({ event: 'error', code: e.code, message: `the owner did not let us in: ${e.message}` });
        return finish('refused', EXIT_REFUSED);
      case 'error':
        return io.out(errorJson(e.error));
      case 'away':
        return io.out({ event: 'away', active: e.active });
      case 'mesh':
        return io.out(awayEventJson(e.event));
      default:
        files().event(e);
        return;
    }
  };
}

function onCommand(driver: MemberDriver, io: DriverIo, files: FileCli, cmd: Exclude<JoinCommand, { cmd: 'quit' }>): void {
  const report = (e: unknown): void => io.out(errorJson(e));
  switch (cmd.cmd) {
    case 'send-file':
    case 'accept-file':
    case 'decline-file':
    case 'cancel-file':
      return files.command(cmd);
    case 'send':
      return void driver.send(cmd.text).catch(report);
    case 'leave':
      return void driver.leave().catch(report);
    case 'members':
      return void driver.inOrder(() => io.out({ event: 'members', members: driver.members() }));
    case 'safety-code':
      return void driver.inOrder(() => io.out({ event: 'safety-code', epoch: driver.state.epoch, code: driver.safetyCode() }));
    case 'update-keys':
      // Done when the owner committed it: the machine's `keys-updated` event with `self: true` (5.8.1).
      return void driver.updateKeys().catch(report);
  }
}

export const command: Command = {
  help: () =>
    [
      'usage: zeroroom join <invite-url> [options]',
      '       ZEROROOM_INVITE=<invite-url> zeroroom join [options]',
      '       zeroroom join --invite-file FILE|- [options]   (- : the first line of stdin)',
      '       zeroroom join --state DIR [options]            (resume a room joined earlier with this DIR)',
      '',
      'Joins a room without a browser. Events are printed as JSON lines on stdout, commands are read as',
      'JSON lines from stdin: {"cmd":"send","text":"..."} {"cmd":"members"} {"cmd":"safety-code"} {"cmd":"update-keys"} {"cmd":"leave"} {"cmd":"quit"}.',
      'Files: {"cmd":"send-file","path":"..."} {"cmd":"accept-file","file":ID} {"cmd":"decline-file","file":ID} {"cmd":"cancel-file","file":ID};',
      'events file-offered, file-progress, file-received (with the path written), file-ended.',
      'It runs until leave, quit, SIGTERM or SIGINT (end of stdin does not stop it), or until the owner refuses it.',
      'The invite URL is a secret until used: prefer ZEROROOM_INVITE or --invite-file to an argument.',
      '',
      formatFlagHelp(JOIN_FLAGS),
      '',
      EXIT_STATUS_HELP,
    ].join('\n'),
  run: async (args, cliIo) => {
    const [first, ...rest] = args;
    const positional = first !== undefined && !first.startsWith('--') ? first : undefined;
    const flags = parseFlags(positional === undefined ? args : rest, JOIN_FLAGS, cliIo.env);
    const invite = await inviteOf(positional, flags);
    keepStdoutForJson();
    const io = driverIo(cliIo);
    const stateDir = flagString(flags, 'state');
    let opened;
    try {
      await initCrypto();
      const store = stateDir === undefined ? null : await StateDir.open(stateDir, cliIo.env.ZEROROOM_PASSWORD);
      opened = { store, ...(await openMembership(invite.url, flagString(flags, 'name') ?? 'member', store)) };
    } catch (e) {
      // An invite read from stdin left it paused: an open pipe would keep the failed process alive.
      if (invite.fromStdin) process.stdin.destroy();
      throw e;
    }
    const { store, record, keys } = opened;
    const { state, ...meta } = record;

    let status = EXIT_OK;
    let life: ReturnType<typeof startLifecycle> | null = null;
    let finished: string | null = null;
    const finish = (reason: string, code: number): void => {
      if (finished !== null) return;
      finished = reason;
      status = code;
      life?.stop(reason);
    };
    const endpoint = {
      server: record.server,
      serverKey: record.serverKey,
      loopback: flagBool(flags, 'loopback'),
      iceServers: flagList(flags, 'ice-server') ?? [],
      keys: keys.peer,
    };
    const fileCli = await FileCli.open(io, store, flagString(flags, 'download-dir'), 'member');
    const driver = new MemberDriver(
      state,
      store?.roomStore<MemberState>(meta) ?? ephemeralStore(),
      cliDriverEnv(
        io,
        joinEvents(io, finish, () => fileCli),
        flagBool(flags, 'verbose'),
      ),
      {
        identity: keys,
        pending: (await store?.readPendingKeys()) ?? null,
        link: nodeMemberPort(endpoint),
        mesh: nodeMeshPort(endpoint),
        files: fileCli.driverOptions(),
      },
    );
    fileCli.attach(driver.files);
    life = startLifecycle(
      io,
      commandLineHandler(parseJoinCommand, io.out, (cmd) =>
        cmd.cmd === 'quit' ? life?.stop('quit') : onCommand(driver, io, fileCli, cmd),
      ),
      invite.rest,
    );
    io.out({ event: 'ready', room: toHex(state.room), member: state.selfId, phase: state.phase, epoch: state.epoch });
    if (memberFinished(state)) {
      io.out({ event: 'error', code: 'room.closed', message: `no longer in this room (${state.phase})` });
      finish(state.phase, state.phase === 'left' ? EXIT_OK : EXIT_RUNTIME);
    } else {
      await driver.start();
    }
    const reason = await life.stopped;
    life.dispose();
    await driver.stop();
    await driver.files?.flushed();
    await fileCli.close();
    io.out({ event: 'stopped', reason });
    await closeWebRtc();
    return status;
  },
};
