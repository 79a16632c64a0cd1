import type { CommandResult, RunOptions, Shell } from '../shell/types.js';

/** One call a {@link FakeShell} received. */
export interface ShellCall {
  command: string;
  args: string[];
  options: RunOptions;
}

/** A scripted answer: a result, or a function of the call. */
export type ShellScript = (call: ShellCall) => Partial<CommandResult> | undefined;

/** An in-memory {@link Shell} that records calls and answers from scripts. */
export interface FakeShell extends Shell {
  /** Every call so far, in order. */
  readonly calls: ShellCall[];
  /** Adds a handler; the newest handler that returns a result answers. Unanswered calls exit 127. */
  on(handler: ShellScript): void;
}

/**
 * Creates a {@link FakeShell}. Handlers see each call and may answer it; calls nobody answers get exit code
 * 127 ("command not found"), so a test notices an unexpected subprocess instead of passing by accident.
 */
export function createFakeShell(): FakeShell {
  const calls: ShellCall[] = [];
  const handlers: ShellScript[] = [];
  return {
    calls,
    on(handler) {
      handlers.unshift(handler);
    },
    async run(command, args, options = {}) {
      const call: ShellCall = { command, args: [...args], options };
      calls.push(call);
      for (const handler of handlers) {
        const answer = handler(call);
        if (answer) return { exitCode: 0, signal: null, stdout: '', stderr: '', ...answer };
      }
      return { exitCode: 127, signal: null, stdout: '', stderr: `fake shell: no handler for ${command}` };
    },
  };
}
