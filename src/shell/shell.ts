import { spawn } from 'node:child_process';
import type { CommandResult, RunOptions, Shell } from './types.js';

/** Options of {@link createShell}. */
export interface ShellOptions {
  /** Base environment of every command. Default: this process's environment. */
  env?: Record<string, string | undefined>;
  /**
   * Words put before every command, e.g. `['nsenter', '-t', '1234', '-a']` to run everything inside another
   * host's namespaces. Each is one argument, like the command's own.
   */
  prefix?: readonly string[];
}

/** The exit status a shell gives a program it cannot run: what a missing program returns here too. */
const NOT_RUNNABLE = 127;

/**
 * The real {@link Shell}, on `node:child_process`: the program is started directly with its arguments as its
 * argv, no shell in between, so an argument such as `a b; rm -rf /` or `$(reboot)` reaches it as that literal
 * string, and no `~/.bashrc` or `BASH_ENV` is ever sourced. Standard input is the `input` option, or empty.
 * A program that cannot be started (missing, not executable) is a result with exit status 127 and the reason on
 * stderr, as a shell would report it, never an exception.
 */
export function createShell(options: ShellOptions = {}): Shell {
  const baseEnv = options.env ?? process.env;
  const prefix = options.prefix ?? [];
  return {
    run(command: string, args: readonly string[], run: RunOptions = {}): Promise<CommandResult> {
      const [program, ...rest] = [...prefix, command, ...args] as [string, ...string[]];
      return new Promise((resolve) => {
        const child = spawn(program, rest, {
          env: commandEnv(baseEnv, run.env),
          stdio: [run.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
          ...(run.cwd === undefined ? {} : { cwd: run.cwd }),
          ...(run.timeoutMs === undefined ? {} : { timeout: run.timeoutMs, killSignal: 'SIGTERM' as const }),
        });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
        child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
        let failed: NodeJS.ErrnoException | undefined;
        child.on('error', (error) => {
          failed = error;
        });
        child.on('close', (exitCode, signal) => {
          const text = (chunks: Buffer[]) => Buffer.concat(chunks).toString('utf8');
          // Never started (no pid): `close` then carries the negative errno, not an exit status.
          if (failed && child.pid === undefined) {
            resolve({
              exitCode: NOT_RUNNABLE,
              signal: null,
              stdout: text(stdout),
              stderr: `${text(stderr)}${notRunnable(program, failed, run.cwd)}\n`,
            });
            return;
          }
          resolve({ exitCode, signal, stdout: text(stdout), stderr: text(stderr) });
        });
        if (child.stdin) {
          // A program that exits without reading its input closes the pipe: not an error of ours.
          child.stdin.on('error', () => {});
          child.stdin.end(run.input);
        }
      });
    },
  };
}

/** Why a program could not be started, in a shell's words (adapters recognise `command not found`). */
function notRunnable(program: string, error: NodeJS.ErrnoException, cwd: string | undefined): string {
  if (error.code === 'ENOENT')
    return `${program}: command not found${cwd === undefined ? '' : `, or no working directory ${cwd}`}`;
  if (error.code === 'EACCES') return `${program}: permission denied`;
  return `${program}: cannot run (${error.code ?? error.message})`;
}

/**
 * The environment of one command: no shell stands between the deployer and its programs, but some of them are
 * shells (`/bin/sh -c` for hooks and the build command; `sh` is bash on NixOS). BASH_ENV would be sourced by any
 * non-interactive bash, and a bash that takes itself for an rsh session (SHLVL unset) sources ~/.bashrc (seen:
 * pyenv's init added ~280 ms and could change PATH). Neither belongs in a deployer's commands, so SHLVL is raised
 * to at least 1 and BASH_ENV dropped unless a caller passes it explicitly for one command.
 */
function commandEnv(
  base: Record<string, string | undefined>,
  extra: Record<string, string> | undefined,
): Record<string, string | undefined> {
  const { BASH_ENV: _ignored, ...rest } = base;
  return { ...rest, SHLVL: String(Math.max(1, Number(base.SHLVL) || 0)), ...extra };
}
