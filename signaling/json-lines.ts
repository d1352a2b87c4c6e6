/**
 * The JSON-lines face of `zeroroom host` / `zeroroom join` (README "Headless client"): a bounded
 * line splitter for stdin, one strict decoder for commands, and the mapping of room events to
 * output objects. Pure: no streams here, so each rule has its own unit test.
 */
import { toHex } from '../crypto/index.ts';
import { MAX_TEXT } from '../protocol/room/codec.ts';
import { ZeroRoomError } from '../protocol/errors.ts';
import type { InviteId, MemberId, RoomEvent } from '../protocol/room/types.ts';
import type { AwayEvent } from '../protocol/room/away.ts';

/** Longest accepted command line (UTF-16 units): a MAX_TEXT message with JSON escaping fits. */
export const MAX_LINE = 6 * MAX_TEXT + 1024;
/** Longest invite lifetime a command may ask for. */
export const MAX_INVITE_TTL_SECONDS = 30 * 24 * 3600;

export class CommandError extends ZeroRoomError {}

/**
 * Splits a byte-free text stream into lines without ever holding more than MAX_LINE characters of
 * one line: an oversized line is reported once and skipped up to its newline.
 */
export class LineSplitter {
  private buf = '';
  private skipping = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onOversized: () => void,
    private readonly max = MAX_LINE,
  ) {}

  push(chunk: string): void {
    let rest = chunk;
    for (;;) {
      const nl = rest.indexOf('\n');
      const part = nl === -1 ? rest : rest.slice(0, nl);
      if (!this.skipping) {
        if (this.buf.length + part.length > this.max) {
          this.buf = '';
          this.skipping = true;
          this.onOversized();
        } else {
          this.buf += part;
        }
      }
      if (nl === -1) return;
      if (!this.skipping) this.onLine(this.buf.replace(/\r$/, ''));
      this.buf = '';
      this.skipping = false;
      rest = rest.slice(nl + 1);
    }
  }

  /** End of input: a last line without a newline still counts. */
  end(): void {
    if (!this.skipping && this.buf.trim() !== '') this.onLine(this.buf);
    this.buf = '';
    this.skipping = false;
  }
}

export type HostCommand =
  | { readonly cmd: 'invite'; readonly ttlSeconds?: number }
  | { readonly cmd: 'send'; readonly text: string }
  | { readonly cmd: 'kick'; readonly member: MemberId }
  | { readonly cmd: 'revoke'; readonly invite: InviteId }
  | { readonly cmd: 'rotate' | 'members' | 'safety-code' | 'quit' }
  | FileCommand;

export type JoinCommand =
  | { readonly cmd: 'send'; readonly text: string }
  | { readonly cmd: 'leave' | 'members' | 'safety-code' | 'update-keys' | 'quit' }
  | FileCommand;

/** Files (docs/PROTOCOL.md 5.17): offer a file from disk; accept, decline or cancel one by its id (32 hex digits). */
export type FileCommand =
  | { readonly cmd: 'send-file'; readonly path: string }
  | { readonly cmd: 'accept-file' | 'decline-file' | 'cancel-file'; readonly file: string };

/** Longest path a send-file command may name. */
export const MAX_PATH = 4096;

type AnyCommand = HostCommand | JoinCommand;

/** Which commands each client takes, and the fields each one allows besides `cmd`. */
const FIELDS: Record<string, readonly string[]> = {
  invite: ['ttl'],
  send: ['text'],
  kick: ['member'],
  revoke: ['invite'],
  rotate: [],
  members: [],
  'safety-code': [],
  quit: [],
  leave: [],
  'update-keys': [],
  'send-file': ['path'],
  'accept-file': ['file'],
  'decline-file': ['file'],
  'cancel-file': ['file'],
};
const FILE_COMMANDS = ['send-file', 'accept-file', 'decline-file', 'cancel-file'] as const;
export const HOST_COMMANDS = ['invite', 'send', 'kick', 'revoke', 'rotate', 'members', 'safety-code', 'quit', ...FILE_COMMANDS] as const;
export const JOIN_COMMANDS = ['send', 'leave', 'members', 'safety-code', 'update-keys', 'quit', ...FILE_COMMANDS] as const;

const bad = (message: string): CommandError => new CommandError('cli.command', message);

function hexField(o: Record<string, unknown>, key: string, chars: number): string {
  const v = o[key];
  if (typeof v !== 'string' || !new RegExp(`^[0-9a-f]{${chars}}$`).test(v)) throw bad(`"${key}" must be ${chars} lowercase hex digits`);
  return v;
}

function parseAny(line: string, allowed: readonly string[]): AnyCommand {
  if (line.length > MAX_LINE) throw new CommandError('cli.line-too-long', `command line longer than ${MAX_LINE} characters`);
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw new CommandError('cli.command', 'not JSON', { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('a command must be a JSON object');
  const o = value as Record<string, unknown>;
  const cmd = o.cmd;
  if (typeof cmd !== 'string' || !allowed.includes(cmd)) throw bad(`"cmd" must be one of ${allowed.join(', ')}`);
  const fields = FIELDS[cmd] ?? [];
  for (const k of Object.keys(o)) if (k !== 'cmd' && !fields.includes(k)) throw bad(`unknown field "${k}" for ${cmd}`);
  switch (cmd) {
    case 'invite': {
      if (o.ttl === undefined) return { cmd };
      const ttl = o.ttl;
      if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_INVITE_TTL_SECONDS) {
        throw bad(`"ttl" must be an integer number of seconds in 1..${MAX_INVITE_TTL_SECONDS}`);
      }
      return { cmd, ttlSeconds: ttl };
    }
    case 'send': {
      const text = o.text;
      if (typeof text !== 'string') throw bad('"text" must be a string');
      if (text.length > MAX_TEXT) throw bad(`"text" is longer than ${MAX_TEXT} characters`);
      return { cmd, text };
    }
    case 'kick':
      return { cmd, member: hexField(o, 'member', 32) as MemberId };
    case 'revoke':
      return { cmd, invite: hexField(o, 'invite', 64) as InviteId };
    case 'send-file': {
      const p = o.path;
      if (typeof p !== 'string' || p === '' || p.length > MAX_PATH || p.includes('\0'))
        throw bad(`"path" must be a file path of 1..${MAX_PATH} characters`);
      return { cmd, path: p };
    }
    case 'accept-file':
    case 'decline-file':
    case 'cancel-file':
      return { cmd, file: hexField(o, 'file', 32) };
    default:
      return { cmd: cmd as 'rotate' | 'members' | 'safety-code' | 'quit' | 'leave' | 'update-keys' };
  }
}

/** Decodes one stdin line of `zeroroom host`; throws CommandError (never anything else for bad input). */
export function parseHostCommand(line: string): HostCommand {
  return parseAny(line, HOST_COMMANDS) as HostCommand;
}

/** Decodes one stdin line of `zeroroom join`; throws CommandError. */
export function parseJoinCommand(line: string): JoinCommand {
  return parseAny(line, JOIN_COMMANDS) as JoinCommand;
}

export type OutEvent = { readonly event: string } & Record<string, unknown>;

/** Owner away (docs/PROTOCOL.md 5.16): a provisional message, a mesh peer's state, a settled message. */
export function awayEventJson(ev: AwayEvent): OutEvent {
  switch (ev.type) {
    case 'away-message':
      return { event: 'away-message', from: ev.entry.from, name: ev.entry.name, text: ev.entry.text, ts: ev.entry.ts, seq: ev.entry.seq };
    case 'away-peer':
      return { event: 'mesh-peer', member: ev.member, status: ev.status };
    case 'away-settled':
      return { event: 'away-settled', from: ev.from, seq: ev.seq, index: ev.idx };
  }
}

/** A room machine's UI event as one output object (README "Headless client"). */
export function roomEventJson(ev: RoomEvent): OutEvent {
  switch (ev.type) {
    case 'message':
      return {
        event: 'message',
        index: ev.idx,
        from: ev.from,
        name: ev.name,
        text: ev.text,
        ts: ev.ts,
        epoch: ev.epoch,
        seq: ev.seq,
        history: ev.history,
        ...(ev.late === true ? { late: true } : {}),
        // A file offer (5.17.1): what it is, never its key; `file-offered` follows for others' files.
        ...(ev.file !== undefined ? { file: { id: toHex(ev.file.file), name: ev.file.name, size: ev.file.size, mime: ev.file.mime } } : {}),
      };
    case 'member-joined':
      return { event: 'member-joined', member: ev.member.id, name: ev.member.name };
    case 'member-left':
      return { event: 'member-left', member: ev.member.id, name: ev.member.name, reason: ev.reason };
    case 'rotated':
      return { event: 'rotated', epoch: ev.epoch, reason: ev.reason };
    case 'joined':
      return { event: 'joined', room: ev.room, epoch: ev.epoch };
    case 'join-refused':
      return { event: 'join-refused', code: ev.code };
    case 'removed':
      return { event: 'removed', reason: ev.reason };
    case 'left':
      return { event: 'left' };
    case 'invite':
      return { event: 'invite', id: ev.id, url: ev.url, expiresAt: ev.expiresAt };
    case 'send-refused':
      return { event: 'error', code: ev.code, message: `the owner refused message${ev.seq === null ? '' : ` #${ev.seq}`}`, seq: ev.seq };
    case 'history-skipped':
      return { event: 'history-skipped', count: ev.count, reason: ev.reason };
    case 'warning':
      return { event: 'warning', code: ev.code, count: ev.count, member: ev.member?.id ?? null, name: ev.member?.name ?? null };
    case 'keys-updated':
      return { event: 'keys-updated', old: ev.old, member: ev.member.id, name: ev.member.name, self: ev.self };
    default: {
      // An event type added to the machines later: passed on under its own name, fields as they are.
      const other: { readonly type: string } = ev;
      const { type, ...fields } = other as { readonly type: string } & Record<string, unknown>;
      return { ...jsonSafe(fields), event: type };
    }
  }
}

/** Byte fields as hex, so an unknown event still prints as JSON. */
function jsonSafe(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v instanceof Uint8Array ? toHex(v) : v]));
}

/** An error as an output object: our typed errors keep their code. */
export function errorJson(e: unknown): OutEvent {
  if (e instanceof ZeroRoomError) return { event: 'error', code: e.code, message: e.message };
  if (e instanceof RangeError) return { event: 'error', code: 'cli.command', message: e.message };
  return { event: 'error', code: 'internal', message: e instanceof Error ? e.message : String(e) };
}

/**
 * A stdin line handler: `parse` decodes the line, a bad line becomes an error event on `out`
 * (never a crash), a good one goes to `handle`.
 */
export function commandLineHandler<C>(
  parse: (line: string) => C,
  out: (ev: OutEvent) => void,
  handle: (cmd: C) => void,
): (line: string) => void {
  return (line) => {
    let cmd: C;
    try {
      cmd = parse(line);
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      out(errorJson(e));
      return;
    }
    handle(cmd);
  };
}
