import { ZeroRoomError } from '../protocol/errors.ts';

/**
 * A command-line mistake: unknown flag, missing value, bad number. The CLI prints the message on one
 * line and exits with status 2 (runtime failures exit with 1).
 */
export class UsageError extends ZeroRoomError {
  constructor(message: string) {
    super('cli.usage', message);
  }
}

/** One flag of a subcommand. Every flag also reads `ZEROROOM_<NAME>` from the environment; flags win. */
export interface FlagSpec {
  /** Long name without dashes, e.g. `max-payload`. */
  readonly name: string;
  /** `optional`: `--name` alone (value '') or `--name VALUE`; its variable takes true/1/yes (= '') or a value. */
  readonly kind: 'string' | 'int' | 'list' | 'bool' | 'optional';
  readonly help: string;
  /** Shown in --help and docs; the real default is applied by the command. */
  readonly defaultText?: string;
  readonly valueName?: string;
  /** Integer bounds for `int` flags (inclusive). */
  readonly min?: number;
  readonly max?: number;
  /** The variable, when not `envName(name)` (e.g. `--redis` reads `ZEROROOM_REDIS_URL`). */
  readonly env?: string;
}

export type FlagValue = string | number | boolean | string[];
export type ParsedFlags = ReadonlyMap<string, FlagValue>;

/** `max-payload` -> `ZEROROOM_MAX_PAYLOAD`. */
export function envName(flag: string): string {
  return 'ZEROROOM_' + flag.toUpperCase().replace(/-/g, '_');
}

/** The variable a flag reads. */
export function variableOf(spec: FlagSpec): string {
  return spec.env ?? envName(spec.name);
}

function parseInt10(raw: string, spec: FlagSpec, source: string): number {
  if (!/^[0-9]+$/.test(raw)) throw new UsageError(`${source}: expected a non-negative integer, got "${raw}"`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${source}: ${raw} is too large`);
  if (spec.min !== undefined && n < spec.min) throw new UsageError(`${source}: must be at least ${spec.min}, got ${n}`);
  if (spec.max !== undefined && n > spec.max) throw new UsageError(`${source}: must be at most ${spec.max}, got ${n}`);
  return n;
}

function parseBool(raw: string, source: string): boolean {
  if (raw === '1' || raw === 'true' || raw === 'yes') return true;
  if (raw === '0' || raw === 'false' || raw === 'no' || raw === '') return false;
  throw new UsageError(`${source}: expected true or false, got "${raw}"`);
}

/**
 * Parses `--name value`, `--name=value` and boolean `--name` flags, then fills what the command line
 * left out from `ZEROROOM_*` variables (list variables are comma-separated). No positional arguments.
 */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], env: NodeJS.ProcessEnv): Map<string, FlagValue> {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out = new Map<string, FlagValue>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--') || arg === '--') throw new UsageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = byName.get(name);
    if (spec === undefined) throw new UsageError(`unknown option --${name} (see --help)`);
    const source = `--${name}`;
    if (spec.kind === 'bool') {
      out.set(name, eq === -1 ? true : parseBool(arg.slice(eq + 1), source));
      continue;
    }
    if (spec.kind === 'optional') {
      const next = argv[i + 1];
      if (eq !== -1) out.set(name, arg.slice(eq + 1));
      else if (next !== undefined && !next.startsWith('--')) {
        out.set(name, next);
        i++;
      } else out.set(name, '');
      continue;
    }
    let raw: string;
    if (eq !== -1) raw = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${source} needs a value`);
      raw = next;
      i++;
    }
    if (spec.kind === 'int') out.set(name, parseInt10(raw, spec, source));
    else if (spec.kind === 'list') {
      const prev = out.get(name);
      out.set(name, [...(Array.isArray(prev) ? prev : []), raw]);
    } else {
      if (out.has(name)) throw new UsageError(`${source} given twice`);
      out.set(name, raw);
    }
  }
  for (const spec of specs) {
    if (out.has(spec.name)) continue;
    const variable = variableOf(spec);
    const raw = env[variable];
    if (raw === undefined) continue;
    if (spec.kind === 'int') out.set(spec.name, parseInt10(raw.trim(), spec, variable));
    else if (spec.kind === 'bool') out.set(spec.name, parseBool(raw.trim(), variable));
    else if (spec.kind === 'optional') {
      const v = raw.trim();
      if (v === '' || v === '0' || v === 'false' || v === 'no') continue;
      out.set(spec.name, v === '1' || v === 'true' || v === 'yes' ? '' : v);
    } else if (spec.kind === 'list')
      out.set(
        spec.name,
        raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      );
    else out.set(spec.name, raw);
  }
  return out;
}

export function flagString(flags: ParsedFlags, name: string): string | undefined {
  const v = flags.get(name);
  return typeof v === 'string' ? v : undefined;
}
export function flagInt(flags: ParsedFlags, name: string): number | undefined {
  const v = flags.get(name);
  return typeof v === 'number' ? v : undefined;
}
export function flagList(flags: ParsedFlags, name: string): string[] | undefined {
  const v = flags.get(name);
  return Array.isArray(v) ? v : undefined;
}
export function flagBool(flags: ParsedFlags, name: string): boolean {
  return flags.get(name) === true;
}

/** The option list of a subcommand's --help text, one flag per line with its variable and default. */
export function formatFlagHelp(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const value = s.kind === 'bool' ? '' : s.kind === 'optional' ? ` [${s.valueName ?? 'VALUE'}]` : ` ${s.valueName ?? 'VALUE'}`;
    const left = `  --${s.name}${value}`;
    const extra = [
      s.kind === 'list' ? 'repeatable' : '',
      s.defaultText !== undefined ? `default ${s.defaultText}` : '',
      `env ${variableOf(s)}`,
    ]
      .filter((x) => x !== '')
      .join('; ');
    return { left, right: `${s.help} (${extra})` };
  });
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  return rows.map((r) => r.left.padEnd(width) + r.right).join('\n');
}
