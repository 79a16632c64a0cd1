export { createFakeShell, type FakeShell, type ShellCall, type ShellScript } from './fake-shell.js';
