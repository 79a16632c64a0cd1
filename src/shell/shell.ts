import { $ } from 'zx';
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

/**
 * The real {@link Shell}, built on zx. zx quotes each interpolated array element for the shell, so an
 * argument such as `a b; rm -rf /` or `$(reboot)` reaches the program as that literal string.
 */
export function createShell(options: ShellOptions = {}): Shell {
  const baseEnv = options.env ?? process.env;
  const prefix = options.prefix ?? [];
  return {
    async run(command: string, args: readonly string[], run: RunOptions = {}): Promise<CommandResult> {
      const words = [...prefix, command, ...args];
      const exec = $({
        nothrow: true,
        quiet: true,
        verbose: false,
        env: commandEnv(baseEnv, run.env),
        ...(run.cwd === undefined ? {} : { cwd: run.cwd }),
        ...(run.input === undefined ? {} : { input: run.input }),
        ...(run.timeoutMs === undefined ? {} : { timeout: run.timeoutMs }),
      });
      const out = await exec`${words}`;
      return { exitCode: out.exitCode, signal: out.signal, stdout: out.stdout, stderr: out.stderr };
    },
  };
}

/**
 * The environment of one command. zx runs it through `bash -c` with a socket as stdin; bash then takes itself
 * for an rsh/ssh session and sources ~/.bashrc unless SHLVL says it is nested (seen: pyenv's init added
 * ~280 ms to every call and could change PATH). BASH_ENV would be sourced by any non-interactive bash. Neither
 * belongs in a deployer's commands, so SHLVL is raised to at least 1 and BASH_ENV dropped unless a caller
 * passes it explicitly for one command.
 */
function commandEnv(
  base: Record<string, string | undefined>,
  extra: Record<string, string> | undefined,
): Record<string, string | undefined> {
  const { BASH_ENV: _ignored, ...rest } = base;
  return { ...rest, SHLVL: String(Math.max(1, Number(base.SHLVL) || 0)), ...extra };
}
