import type { ServiceHardening } from '../manifest/schema.js';

/** Socket address families a service may use: every socket family a TCP/HTTP service needs, no more. */
type AddressFamily = NonNullable<ServiceHardening['restrictAddressFamilies']>[number];

/** The sandbox of one unit with every field decided: the manifest's `hardening` over the defaults. */
export interface Hardening {
  dynamicUser: boolean;
  privateTmp: boolean;
  protectSystem: boolean | 'full' | 'strict';
  protectHome: boolean | 'read-only' | 'tmpfs';
  privateDevices: boolean;
  memoryDenyWriteExecute: boolean;
  procSubset: 'all' | 'pid';
  restrictAddressFamilies: AddressFamily[];
  readWritePaths: string[];
  stateDirectory: string[];
}

/**
 * The defaults: the strongest set under which a plain Node.js 20 and a plain CPython 3.11 HTTP server still
 * run and behave (measured in a booted host, see docs/manifest.md#hardening). Three directives stay off
 * because they break a runtime, and a manifest turns them on per service: `MemoryDenyWriteExecute=yes` kills
 * Node at start (V8's JIT needs writable+executable memory; fine for Python, and for Node with `--jitless`),
 * `ProcSubset=pid` makes Node's `os.cpus()` empty, and without `AF_NETLINK` listing network interfaces fails
 * in both.
 * `dynamicUser` defaults to true only when the service names no `exec.user`.
 */
export const DEFAULT_HARDENING: Readonly<Hardening> = Object.freeze({
  dynamicUser: true,
  privateTmp: true,
  protectSystem: 'strict',
  protectHome: true,
  privateDevices: true,
  memoryDenyWriteExecute: false,
  procSubset: 'all',
  // Frozen arrays too: a caller mutating the defaults would change every later unit.
  restrictAddressFamilies: Object.freeze(['AF_UNIX', 'AF_INET', 'AF_INET6']) as AddressFamily[],
  readWritePaths: Object.freeze([]) as unknown as string[],
  stateDirectory: Object.freeze([]) as unknown as string[],
});

/**
 * Directives every unit gets and the manifest cannot relax: none of them changed what the Node.js and Python
 * test services do, and each lowers `systemd-analyze security`'s exposure.
 */
const FIXED: readonly (readonly [string, string])[] = [
  ['NoNewPrivileges', 'yes'],
  ['CapabilityBoundingSet', ''],
  ['AmbientCapabilities', ''],
  ['ProtectKernelTunables', 'yes'],
  ['ProtectKernelModules', 'yes'],
  ['ProtectKernelLogs', 'yes'],
  ['ProtectControlGroups', 'yes'],
  ['ProtectClock', 'yes'],
  ['ProtectHostname', 'yes'],
  ['ProtectProc', 'invisible'],
  ['PrivateUsers', 'yes'],
  ['PrivateIPC', 'yes'],
  ['RestrictNamespaces', 'yes'],
  ['RestrictRealtime', 'yes'],
  ['RestrictSUIDSGID', 'yes'],
  ['LockPersonality', 'yes'],
  ['SystemCallArchitectures', 'native'],
  ['SystemCallFilter', '@system-service'],
  ['SystemCallFilter', '~@privileged @resources'],
  ['SystemCallErrorNumber', 'EPERM'],
  ['DevicePolicy', 'closed'],
  ['KeyringMode', 'private'],
  ['RemoveIPC', 'yes'],
  ['UMask', '0077'],
];

/** The manifest's `hardening` over {@link DEFAULT_HARDENING}. `hasUser`: the service names an `exec.user`. */
export function resolveHardening(hardening: ServiceHardening | undefined, hasUser: boolean): Hardening {
  const h = hardening ?? {};
  const d = DEFAULT_HARDENING;
  return {
    dynamicUser: h.dynamicUser ?? !hasUser,
    privateTmp: h.privateTmp ?? d.privateTmp,
    protectSystem: h.protectSystem ?? d.protectSystem,
    protectHome: h.protectHome ?? d.protectHome,
    privateDevices: h.privateDevices ?? d.privateDevices,
    memoryDenyWriteExecute: h.memoryDenyWriteExecute ?? d.memoryDenyWriteExecute,
    procSubset: h.procSubset ?? d.procSubset,
    restrictAddressFamilies: [...(h.restrictAddressFamilies ?? d.restrictAddressFamilies)],
    readWritePaths: [...(h.readWritePaths ?? [])],
    stateDirectory: [...(h.stateDirectory ?? [])],
  };
}

const yesNo = (value: boolean) => [value ? 'yes' : 'no'];

/**
 * The `[Service]` directives of a resolved sandbox, in a fixed order, each with its value as a list of words
 * (one manifest item is one word, so a path with a space cannot turn into two paths).
 */
export function hardeningDirectives(h: Hardening): [string, string[]][] {
  const families = [...new Set(h.restrictAddressFamilies)];
  const lines: [string, string[]][] = [
    ['DynamicUser', yesNo(h.dynamicUser)],
    ['ProtectSystem', typeof h.protectSystem === 'boolean' ? yesNo(h.protectSystem) : [h.protectSystem]],
    ['ProtectHome', typeof h.protectHome === 'boolean' ? yesNo(h.protectHome) : [h.protectHome]],
    ['PrivateTmp', yesNo(h.privateTmp)],
    ['PrivateDevices', yesNo(h.privateDevices)],
    ['MemoryDenyWriteExecute', yesNo(h.memoryDenyWriteExecute)],
    ['ProcSubset', [h.procSubset]],
    // An empty value would mean "no restriction" to systemd; the manifest's [] means "no sockets at all".
    ['RestrictAddressFamilies', families.length ? families : ['none']],
  ];
  if (h.stateDirectory.length) lines.push(['StateDirectory', h.stateDirectory]);
  if (h.readWritePaths.length) lines.push(['ReadWritePaths', h.readWritePaths]);
  return lines;
}

/** The lines of the directives every unit gets after {@link hardeningDirectives}' (constant text). */
export const FIXED_HARDENING_LINES: readonly string[] = Object.freeze(FIXED.map(([k, v]) => `${k}=${v}`));
