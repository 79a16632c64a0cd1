import { dirname, posix } from 'node:path';
import { DeployError } from '../errors.js';
import { findJsonSyntaxError } from '../manifest/json-error.js';

/** Process effects a CLI needs, injected so tests run commands in-process with no real stdio or files. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Reads a file as UTF-8; `-` means standard input. */
  readText(path: string): Promise<string>;
  /** This machine's host name. */
  hostname(): string;
  /** The working directory (absolute): relative paths in flags and environment variables are resolved against it. */
  cwd(): string;
  /** Writes a file as UTF-8, creating its directory first. Optional: only commands that write files need it. */
  writeText?(path: string, text: string): Promise<void>;
  /** The process environment (settings come from flags, then environment, then config file). */
  env?: Record<string, string | undefined>;
  /** Whether stderr is a terminal (human log lines) or not (JSON lines for journald). */
  isTTY?: boolean;
  /** Aborted on SIGTERM/SIGINT: long-running commands finish their current step and return. */
  signal?: AbortSignal;
}

/** Documented exit codes shared by both bins. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A usage error: wrong command, flag or argument (exit 2). */
export function usageError(message: string): DeployError {
  return new DeployError('USAGE', message);
}

/** Reads `file` through `io`, turning a failure into an `IO` error that names the file. */
export async function readInput(io: CliIo, file: string): Promise<string> {
  try {
    return await io.readText(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new DeployError('IO', `cannot read ${file === '-' ? 'standard input' : file}: ${reason}`, {
      cause: error,
    });
  }
}

/** Writes `file` through `io`, turning a failure into an `IO` error that names the file. */
export async function writeOutput(io: CliIo, file: string, text: string): Promise<void> {
  if (!io.writeText) throw new DeployError('IO', `cannot write ${file}: this program writes no files`);
  try {
    await io.writeText(file, text);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new DeployError('IO', `cannot write ${file}: ${reason}`, { cause: error });
  }
}

/** Prefixes every line of `text` with `word: ` (for warnings on stderr). */
export function prefixLines(word: string, text: string): string {
  return text
    .split('\n')
    .map((line) => `${word}: ${line}`)
    .join('\n');
}

/**
 * Maps the errors a command may raise to exit codes with a one-line message: bad usage or an unreadable input
 * file → 2; any other DeployError (a damaged state file, a host mismatch, an unreachable store) → 1. Anything
 * else is a bug and propagates with its stack. A usage error inside `command` names it (`push history:
 * unknown flag --apply`) and points to that command's help.
 */
export function usageExit(program: string, io: CliIo, error: unknown, command?: string): number {
  if (error instanceof DeployError && error.code !== 'USAGE' && error.code !== 'IO') {
    io.stderr(`${program}: ${error.message}\n`);
    return EXIT.failed;
  }
  if (!(error instanceof DeployError)) throw error;
  if (error.code === 'IO') {
    io.stderr(`${program}: ${error.message}\n`);
    return EXIT.usage;
  }
  const name = command === undefined ? program : `${program} ${command}`;
  io.stderr(`${name}: ${error.message}\nRun ${name} --help for usage.\n`);
  return EXIT.usage;
}

/**
 * Reads a JSON config file: `named` (from `--config` or the environment) must exist; without one, `fallback`
 * is read if it exists. Both are resolved against the working directory; `dir` is the file's directory, which
 * relative paths inside it are resolved against. Invalid JSON is a usage error with line and column, without
 * echoing the file.
 */
export async function readConfigFile(
  io: CliIo,
  named: string | undefined,
  fallback: string,
): Promise<{ config: unknown; file: string; dir: string }> {
  const file = posix.resolve(io.cwd(), named || fallback);
  const dir = dirname(file);
  let text: string;
  try {
    text = await io.readText(file);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    if (missing && !named) return { config: undefined, file, dir };
    throw usageError(`config file ${file}: ${missing ? 'not found' : (error as Error).message}`);
  }
  const syntax = findJsonSyntaxError(text);
  if (syntax)
    throw usageError(
      `config file ${file}: invalid JSON at line ${syntax.line}, column ${syntax.column}: ${syntax.message}`,
    );
  return { config: JSON.parse(text), file, dir };
}
