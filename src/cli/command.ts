import { parseArgs } from 'node:util';
import { formatIssues, type ManifestIssue } from '../manifest/validate.js';
import { convertOption, type OptionKind, type OptionSpec } from '../options.js';
import { formatDuration } from '../runtime/duration.js';
import { type CliIo, EXIT, usageError, usageExit } from './io.js';

/** A flag only one command takes and that is not a setting: no environment variable, no config-file key. */
export interface FlagDef {
  /** How its value is checked (see `convertOption`); `boolean` flags take no value and have a `--no-` form. */
  kind: OptionKind;
  /** One sentence for `--help` and docs/cli.md. */
  description: string;
  /** The value's placeholder in usage lines (`FILE`, `N`). */
  value?: string;
  /** A one-letter alias (`v` for `-v`). */
  short?: string;
  /** A `boolean` flag's value when it is not given (default false): `true` makes `--no-<flag>` the way to turn it off. */
  default?: boolean;
}

/** A positional argument, shown as `<name>`. */
export interface ArgDef {
  name: string;
  description: string;
}

type FlagValue<D extends FlagDef> = D['kind'] extends 'boolean'
  ? boolean
  : D['kind'] extends 'count'
    ? number | undefined
    : D['kind'] extends 'list'
      ? string[] | undefined
      : string | undefined;

/**
 * The checked values of a command's own flags, by flag name: booleans default to false (or their `default`),
 * the rest to undefined.
 */
export type FlagValues<F extends Record<string, FlagDef>> = { -readonly [K in keyof F]: FlagValue<F[K]> };

/** Settings flags as parsed, by flag name, before conversion (`{ 'state-dir': 'x', 'trusted-public-key': [...] }`). */
export type SettingFlags = Record<string, string | boolean | string[] | undefined>;

/** What a command's handler gets: its arguments and flags checked, its settings flags raw (see `settingFlags`). */
export interface CommandInput<F extends Record<string, FlagDef>> {
  /** The positional arguments, exactly as many as the command's `args`. */
  args: string[];
  flags: FlagValues<F>;
  /**
   * The settings flags given (and `config`), by flag name, unconverted: the program's loader resolves them
   * together with environment and config file (`resolveOptions`).
   */
  settingFlags: SettingFlags;
  io: CliIo;
  /** The command being run (its `settings` say which settings to resolve). */
  command: CommandDef;
}

/**
 * One subcommand, defined once: its arguments, its own flags, the settings it reads (keys of the program's
 * settings table) and its handler. Parsing, `--help`, the program overview and docs/cli.md all come from it.
 */
export interface CommandDef<F extends Record<string, FlagDef> = Record<string, FlagDef>, D = unknown> {
  name: string;
  /** One line for the overview. */
  summary: string;
  /** What it does, for `--help` and the docs: plain sentences, wrapped when printed. */
  description: string;
  args?: readonly ArgDef[];
  flags?: F;
  /** Keys of the program's settings that this command reads; it takes their flags and `--config`. */
  settings?: readonly string[];
  /** Runs the command and returns its exit code; throws `USAGE` errors for bad input. */
  run(input: CommandInput<F>, deps: D): Promise<number>;
}

/** A program (`deployer`, `push`): its commands, its settings table, where its config file is, its exit codes. */
export interface ProgramDef<D = unknown> {
  name: string;
  version: string;
  summary: string;
  settings: readonly OptionSpec[];
  /**
   * The config file: its environment variable, the file read when neither it nor `--config` is given, and keys
   * it takes besides the settings (objects without a flag, e.g. the deployer's `policy`), each with a sentence
   * for the docs.
   */
  config: { env: string; default: string; keys?: readonly { key: string; description: string }[] };
  commands: readonly CommandDef<Record<string, FlagDef>, D>[];
  exitCodes: readonly { code: number; meaning: string }[];
}

/** Identity with types: the handler's flags are typed from the definition. */
export function defineCommand<const F extends Record<string, FlagDef> = Record<never, FlagDef>, D = unknown>(
  def: CommandDef<F, D>,
): CommandDef<F, D> {
  return def;
}

/** One line of a command's flag list, whatever its origin. */
export interface FlagLine {
  flag: string;
  short?: string;
  value?: string;
  kind: OptionKind;
  description: string;
  /** Set for settings: where else the value may come from. */
  setting?: OptionSpec;
}

/** The settings table entries a command reads, in the table's order. */
export function commandSettings(program: ProgramDef, command: CommandDef): OptionSpec[] {
  const keys = new Set(command.settings ?? []);
  return program.settings.filter((s) => keys.has(s.key));
}

/** Every flag a command takes: its own, its settings', `--config` when it reads settings, and `--help`. */
export function commandFlags(program: ProgramDef, command: CommandDef): FlagLine[] {
  const own = Object.entries(command.flags ?? {}).map(([flag, def]) => ({ flag, ...def }));
  const settings = commandSettings(program, command).map((s) => ({
    flag: s.flag,
    kind: s.kind,
    description: s.description,
    setting: s,
    ...(s.value === undefined ? {} : { value: s.value }),
  }));
  const config: FlagLine[] = settings.length
    ? [
        {
          flag: 'config',
          kind: 'string',
          value: 'FILE',
          description: `the config file of settings (else ${program.config.env}, else ${program.config.default} if it exists); relative paths in it are relative to its directory`,
        },
      ]
    : [];
  return [
    ...own,
    ...config,
    ...settings,
    { flag: 'help', short: 'h', kind: 'boolean', description: 'print this help and run nothing' },
  ];
}

/**
 * Parses a command's argv strictly: a flag the command does not take, a missing value or a wrong number of
 * arguments is a `USAGE` error that names it. The command's own flags are checked and converted here
 * (relative paths against `io.cwd()`); settings flags are passed on raw for the program's loader.
 */
export function parseCommandLine<F extends Record<string, FlagDef>>(
  program: ProgramDef,
  command: CommandDef<F>,
  argv: readonly string[],
  io: CliIo,
): CommandInput<F> {
  const lines = commandFlags(program, command as CommandDef);
  const options = Object.fromEntries(
    lines.map((l) => [
      l.flag,
      {
        type: l.kind === 'boolean' ? ('boolean' as const) : ('string' as const),
        ...(l.kind === 'list' || l.kind === 'strings' ? { multiple: true } : {}),
        ...(l.short === undefined ? {} : { short: l.short }),
      },
    ]),
  );
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    });
  } catch (error) {
    throw translateParseError(program, command as CommandDef, error);
  }
  const { values, positionals } = parsed;
  const args = command.args ?? [];
  if (positionals.length < args.length)
    throw usageError(
      `missing ${args
        .slice(positionals.length)
        .map((a) => `<${a.name}>`)
        .join(' ')}`,
    );
  if (positionals.length > args.length)
    throw usageError(
      `unexpected argument ${JSON.stringify(positionals[args.length])} (${args.length === 0 ? 'it takes none' : `it takes ${args.map((a) => `<${a.name}>`).join(' ')}`})`,
    );
  const issues: ManifestIssue[] = [];
  const flags: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(command.flags ?? {})) {
    const raw = values[name];
    if (raw === undefined) {
      flags[name] = def.kind === 'boolean' ? (def.default ?? false) : undefined;
      continue;
    }
    const where = `--${name}`;
    const converted = convertOption(def.kind, raw, {
      from: 'flag',
      where,
      base: io.cwd(),
      baseName: 'the working directory',
    });
    if (converted.ok) flags[name] = converted.value;
    else issues.push({ path: where, message: converted.message });
  }
  if (issues.length) throw usageError(formatIssues(issues));
  const settingFlags: SettingFlags = {};
  for (const line of lines)
    if (line.setting || line.flag === 'config')
      settingFlags[line.flag] = values[line.flag] as SettingFlags[string];
  return {
    args: positionals,
    flags: flags as FlagValues<F>,
    settingFlags,
    io,
    command: command as CommandDef,
  };
}

/** Node's parseArgs errors as one line that names the flag, and the commands that do take an unknown one. */
function translateParseError(program: ProgramDef, command: CommandDef, error: unknown) {
  const code = (error as { code?: unknown }).code;
  const message = (error as Error).message;
  const flag = /'(-[^' ]*)/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const name = flag.replace(/^--?/, '');
    const others = program.commands
      .filter((c) => c !== command)
      .filter((c) => commandFlags(program, c).some((l) => l.flag === name || l.short === name))
      .map((c) => `${program.name} ${c.name}`);
    return usageError(
      `unknown flag ${flag}${others.length ? ` (a flag of ${others.join(', ')})` : ''}; ${program.name} ${command.name} takes ${
        commandFlags(program, command)
          .filter((l) => l.flag !== 'help')
          .map((l) => `--${l.flag}`)
          .join(', ') || 'no flags'
      }`,
    );
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (message.includes('argument missing')) return usageError(`${flag} needs a value`);
    if (message.includes('does not take an argument')) return usageError(`${flag} takes no value`);
    if (message.includes('ambiguous'))
      return usageError(`${flag} needs a value; to give one that starts with "-", write ${flag}=VALUE`);
  }
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return usageError(message);
  return error;
}

/**
 * Runs a program: help and version first (`--help`/`-h` after any command prints that command's help and runs
 * nothing), then the command with its argv parsed strictly. Returns the exit code; usage errors are exit 2
 * with a message naming the command and the flag.
 */
export async function runProgram<D>(
  program: ProgramDef<D>,
  argv: readonly string[],
  io: CliIo,
  deps: D,
): Promise<number> {
  const [first, ...rest] = argv;
  const command = program.commands.find((c) => c.name === first);
  try {
    const end = argv.indexOf('--');
    const head = end < 0 ? argv : argv.slice(0, end);
    if (first === undefined || first === '--help' || first === '-h') {
      io.stdout(renderProgramHelp(program));
      return EXIT.ok;
    }
    if (first === '--version') {
      io.stdout(`${program.version}\n`);
      return EXIT.ok;
    }
    if (first === 'help') {
      const topic = program.commands.find((c) => c.name === rest[0]);
      if (rest[0] !== undefined && topic === undefined) throw unknownCommand(program, rest[0]);
      io.stdout(topic ? renderCommandHelp(program, topic) : renderProgramHelp(program));
      return EXIT.ok;
    }
    if (command === undefined) throw unknownCommand(program, first);
    if (head.includes('--help') || head.includes('-h')) {
      io.stdout(renderCommandHelp(program, command));
      return EXIT.ok;
    }
    const input = parseCommandLine(program, command, rest, io);
    return await command.run(input, deps);
  } catch (error) {
    return usageExit(program.name, io, error, command?.name);
  }
}

function unknownCommand(program: ProgramDef, word: string) {
  const names = program.commands.map((c) => c.name).join(', ');
  return usageError(
    word.startsWith('-')
      ? `${word}: a command comes first (${names})`
      : `unknown command ${JSON.stringify(word)} (commands: ${names})`,
  );
}

/** `deployer plan [settings] [--previous FILE] [--json]`: the command's synopsis. */
export function renderSynopsis(program: ProgramDef, command: CommandDef): string {
  const parts = [`${program.name} ${command.name}`, ...(command.args ?? []).map((a) => `<${a.name}>`)];
  if (command.settings?.length) parts.push('[settings]');
  for (const [flag, def] of Object.entries(command.flags ?? {}))
    parts.push(`[${def.short ? `-${def.short}` : `--${flag}`}${def.value ? ` ${def.value}` : ''}]`);
  return parts.join(' ');
}

/** How a default reads in help and docs: durations as `5s`, lists and absent defaults as nothing. */
export function renderDefault(spec: OptionSpec): string | undefined {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value = spec.default;
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return undefined;
  if (spec.kind === 'duration' && typeof value === 'number') return formatDuration(value);
  return typeof value === 'string' && value.includes(' ') ? JSON.stringify(value) : String(value);
}

const WIDTH = 100;

/** Wraps `text` to the help width, every line indented by `indent`. */
function wrap(text: string, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent + line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l) => `${' '.repeat(indent)}${l}`).join('\n');
}

/** A synopsis wrapped between its `[...]` parts, continuation lines indented by `indent`. */
function wrapSynopsis(synopsis: string, first: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const part of synopsis.split(/ (?=\[)/)) {
    if (line && (lines.length ? indent : first) + line.length + 1 + part.length > WIDTH) {
      lines.push(line);
      line = part;
    } else line = line ? `${line} ${part}` : part;
  }
  lines.push(line);
  return lines.map((l, i) => (i === 0 ? l : `${' '.repeat(indent)}${l}`)).join('\n');
}

/** `  label     text`, the text wrapped in a column; a label too wide for it gets a line of its own. */
function item(label: string, text: string, column = 28): string {
  const body = wrap(text, column);
  return label.length + 4 > column
    ? `  ${label}\n${body}`
    : `  ${label.padEnd(column - 2)}${body.slice(column)}`;
}

/** The exit codes, one per line. */
function renderExitCodes(program: ProgramDef): string[] {
  return ['Exit codes:', ...program.exitCodes.map((e) => item(String(e.code), e.meaning, 6))];
}

/** `--state-dir DIR` / `-v, --verbose`: a flag as its help line starts. */
function flagLabel(line: FlagLine): string {
  return `${line.short ? `-${line.short}, ` : ''}--${line.flag}${line.value ? ` ${line.value}` : ''}`;
}

/** A command's `--help`: synopsis, description, its flags, the settings it reads and where they come from. */
export function renderCommandHelp(program: ProgramDef, command: CommandDef): string {
  const lines = commandFlags(program, command);
  const out = [
    `${program.name} ${command.name}: ${command.summary}`,
    '',
    `Usage: ${wrapSynopsis(renderSynopsis(program, command), 7, 9)}`,
    '',
    wrap(command.description, 0),
  ];
  for (const arg of command.args ?? []) out.push('', item(`<${arg.name}>`, arg.description));
  out.push('', 'Flags:');
  for (const line of lines.filter((l) => !l.setting)) out.push(item(flagLabel(line), line.description));
  const settings = lines.filter((l) => l.setting);
  if (settings.length) {
    out.push(
      '',
      'Settings (each from its flag, else its environment variable, else the config file, else its default):',
    );
    for (const line of settings) {
      const spec = line.setting as OptionSpec;
      const fallback = renderDefault(spec);
      const where = `${spec.env}; config "${spec.key}"${spec.required ? '; required' : fallback === undefined ? '' : `; default ${fallback}`}`;
      out.push(item(flagLabel(line), `${spec.description}. (${where})`));
    }
  }
  out.push('', ...renderExitCodes(program), '');
  return out.join('\n');
}

/** `deployer --help`: every command's synopsis and summary, and how to get a command's help. */
export function renderProgramHelp(program: ProgramDef): string {
  const out = [`${program.name} ${program.version}: ${program.summary}`, '', 'Usage:'];
  for (const command of program.commands)
    out.push(`  ${wrapSynopsis(renderSynopsis(program, command), 2, 4)}`, wrap(command.summary, 6));
  out.push(
    `  ${program.name} <command> --help     the command's flags and settings`,
    `  ${program.name} --help | --version`,
    '',
    wrap(
      `A command takes only the flags its help lists; any other is a usage error. Settings come from a flag, else an environment variable, else the config file (--config FILE, else ${program.config.env}, else ${program.config.default} if it exists), else their default. Relative paths are relative to the working directory (in the config file: to its directory).`,
      0,
    ),
    '',
    ...renderExitCodes(program),
    '',
  );
  return out.join('\n');
}
