/** What a finished command returned. A non-zero exit is a result, not an exception. */
export interface CommandResult {
  /** Exit status; `null` when the process was killed by a signal (see `signal`). */
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Options for one command. */
export interface RunOptions {
  /** Written to the command's standard input. */
  input?: string;
  /** Extra environment variables (merged over the adapter's base environment). */
  env?: Record<string, string>;
  cwd?: string;
  /** Kill the command after this many milliseconds. */
  timeoutMs?: number;
}

/**
 * Runs programs. Every argument is passed as one argument, exactly as given: no word splitting, globbing or
 * expansion ever applies to it. Adapters that need a program (systemctl, nix, ...) take a `Shell`, so tests
 * can run them inside a booted host or count and script the calls with a fake.
 */
export interface Shell {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<CommandResult>;
}
