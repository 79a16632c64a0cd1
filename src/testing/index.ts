export { createFakeCaddyAdmin, type FakeCaddyAdmin, type FakeCaddyAdminOptions } from './fake-caddy.js';
export { createFakeShell, type FakeShell, type ShellCall, type ShellScript } from './fake-shell.js';
