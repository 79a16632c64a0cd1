export { createShell, type ShellOptions } from './shell.js';
export type { CommandResult, RunOptions, Shell } from './types.js';
