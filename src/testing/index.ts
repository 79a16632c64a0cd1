export { createFakeShell, type FakeShell, type ShellCall, type ShellScript } from './fake-shell.js';
export {
  createFakeSystemd,
  type FakeOutcome,
  type FakeStart,
  type FakeSystemd,
  type FakeSystemdOptions,
} from './fake-systemd.js';
