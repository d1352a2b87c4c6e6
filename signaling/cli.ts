import { ZeroRoomError } from '../protocol/errors.ts';
import { UsageError } from './cli-args.ts';

/** What a subcommand gets from the outside world; tests can pass their own. */
export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

/** One `zeroroom <name>` subcommand. `run` resolves to the exit status once the command is done. */
export interface Command {
  readonly help: () => string;
  readonly run: (args: readonly string[], io: CliIo) => Promise<number>;
}

/**
 * The dispatch table. Each subcommand lives in its own module and is loaded only when used, so
 * `zeroroom serve` never loads the code of `host`/`join` and `--help` loads none of them.
 * To add one: write signaling/cmd-NAME.ts exporting `command: Command` and add an entry here.
 */
export const COMMANDS: Readonly<Record<string, { readonly summary: string; readonly load: () => Promise<Command> }>> = {
  serve: { summary: 'run the signaling server (and serve the web app)', load: async () => (await import('./cmd-serve.ts')).command },
  host: { summary: 'own a room without a browser (JSON lines on stdin/stdout)', load: async () => (await import('./cmd-host.ts')).command },
  join: {
    summary: 'join a room from an invite URL without a browser (JSON lines)',
    load: async () => (await import('./cmd-join.ts')).command,
  },
};

/** Runtime failure with a message meant for the operator (exit status 1, no stack trace). */
export class CliError extends ZeroRoomError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('cli.runtime', message, options);
  }
}

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;
/** `zeroroom join`: the owner refused us (used, revoked or wrong invite; a key it no longer trusts). */
export const EXIT_REFUSED = 3;

/** The exit statuses, as --help and README list them. */
export const EXIT_STATUS_HELP = [
  'exit status:',
  `  ${EXIT_OK}  stopped by {"cmd":"quit"}, SIGTERM or SIGINT, or (join) after {"cmd":"leave"}`,
  `  ${EXIT_RUNTIME}  runtime error (one line on stderr): unreadable or partial --state, wrong ZEROROOM_PASSWORD, malformed invite, a room no longer joined`,
  `  ${EXIT_USAGE}  usage error: unknown option, missing or malformed value`,
  `  ${EXIT_REFUSED}  join only: the owner refused us (invite used, revoked, expired or wrong; no longer a trusted member)`,
].join('\n');

function topLevelHelp(): string {
  const lines = ['usage: zeroroom <command> [options]', '', 'commands:'];
  for (const [name, { summary }] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(8)}${summary}`);
  lines.push('', 'Run `zeroroom <command> --help` for the options of one command.', '', EXIT_STATUS_HELP);
  return lines.join('\n');
}

const processIo: CliIo = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  env: process.env,
};

/** Entry point of bin/zeroroom.js. Returns the exit status (EXIT_STATUS_HELP). */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      (name === undefined ? io.err : io.out)(topLevelHelp());
      return name === undefined ? EXIT_USAGE : EXIT_OK;
    }
    const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (entry === undefined) throw new UsageError(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    const command = await entry.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(command.help());
      return EXIT_OK;
    }
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`zeroroom: ${e.message}`);
      return EXIT_USAGE;
    }
    if (e instanceof ZeroRoomError) {
      io.err(`zeroroom: ${e.message}`);
      return EXIT_RUNTIME;
    }
    // Not one of ours: keep the detail, it is a bug or an environment problem worth a stack trace.
    io.err(`zeroroom: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return EXIT_RUNTIME;
  }
}
