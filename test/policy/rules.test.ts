/**
 * Table tests of every host policy rule: allowed and refused cases, under the default policy and under a
 * widened or narrowed one. Manifest rules through checkServicePolicy; host rules through gatherHostFacts over
 * the fake HostChecks and checkHostFacts; the foreign-route rule through checkDomainAgainstForeign.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { gatherHostFacts } from '../../src/deployer/host-checks.js';
import type { Service } from '../../src/manifest/index.js';
import {
  checkDomainAgainstForeign,
  checkHostFacts,
  checkServicePolicy,
  DEFAULT_HOST_POLICY,
  DEFAULT_PRIVILEGED_GROUPS,
  foreignRoutes,
  hostFactsQuery,
  POLICY_RULES,
  type PolicyContext,
  type PolicyRule,
  type PortListener,
} from '../../src/policy/index.js';
import { createFakeHostChecks, type FakeHostChecksInit } from '../../src/testing/index.js';
import { makeService } from '../builders.js';
import { CTX, policyOf } from './support.js';

/** Every rule some refused row below names; compared with POLICY_RULES at the end. */
const covered = new Set<PolicyRule>();

type Refusal = [path: string, rule: PolicyRule];

interface Row {
  name: string;
  /** Top-level fields over makeService() (name "web", exec.command "web"). */
  service: Record<string, unknown>;
  /** The config file's `policy` object; default policy without it. */
  policy?: Record<string, unknown>;
  ctx?: Partial<PolicyContext>;
  refused?: Refusal[];
}

const web = (fields: Record<string, unknown> = {}) => ({ exec: { command: 'web', ...fields } });
const hardening = (fields: Record<string, unknown>) => ({ hardening: fields });

function runManifestRows(rows: Row[]) {
  it.each(rows.map((row) => [row.name, row] as const))('%s', (_, row) => {
    for (const [, rule] of row.refused ?? []) covered.add(rule);
    const service = makeService(row.service);
    const issues = checkServicePolicy(service, policyOf(row.policy), { ...CTX, ...row.ctx });
    expect(issues.map((i) => [i.path.replace(/^service\./, ''), i.rule])).toEqual(row.refused ?? []);
    for (const issue of issues) expect(issue.message).not.toBe('');
  });
}

describe('exec.user: never root, never uid 0', () => {
  runManifestRows([
    { name: 'a named account', service: web({ user: 'pil-web' }) },
    { name: 'no account: a dynamic user', service: {} },
    { name: 'root', service: web({ user: 'root' }), refused: [['exec.user', 'user.root']] },
    {
      name: 'root under DynamicUser=yes (systemd uses a static account of that name)',
      service: { ...web({ user: 'root' }), ...hardening({ dynamicUser: true }) },
      refused: [['exec.user', 'user.root']],
    },
    {
      name: 'no account and no dynamic user: root',
      service: hardening({ dynamicUser: false }),
      refused: [['hardening.dynamicUser', 'user.root']],
    },
    {
      name: 'allowlist: a listed account',
      service: web({ user: 'pil-web' }),
      policy: { users: ['pil-web'] },
    },
    {
      name: 'allowlist: an account not listed (e.g. postgres)',
      service: web({ user: 'postgres' }),
      policy: { users: ['pil-web'] },
      refused: [['exec.user', 'user.not-allowed']],
    },
    { name: 'allowlist: a dynamic user needs no listing', service: {}, policy: { users: ['pil-web'] } },
  ]);
});

describe('exec.group: never gid 0, never a privileged group', () => {
  runManifestRows([
    { name: 'an ordinary group', service: web({ user: 'pil-web', group: 'pil' }) },
    { name: 'root', service: web({ group: 'root' }), refused: [['exec.group', 'group.root']] },
    ...DEFAULT_PRIVILEGED_GROUPS.filter((g) => g !== 'root').map(
      (group): Row => ({
        name: `privileged by default: ${group}`,
        service: web({ user: 'pil-web', group }),
        refused: [['exec.group', 'group.privileged']],
      }),
    ),
    {
      name: 'widened: allowGroups video lets video pass',
      service: web({ user: 'pil-web', group: 'video' }),
      policy: { allowGroups: ['video'] },
    },
    {
      name: 'widened: allowGroups video leaves docker refused',
      service: web({ user: 'pil-web', group: 'docker' }),
      policy: { allowGroups: ['video'] },
      refused: [['exec.group', 'group.privileged']],
    },
    {
      name: 'narrowed: denyGroups render',
      service: web({ user: 'pil-web', group: 'render' }),
      policy: { denyGroups: ['render'] },
      refused: [['exec.group', 'group.privileged']],
    },
    {
      name: 'allowlist: a listed group',
      service: web({ user: 'pil-web', group: 'pil' }),
      policy: { groups: ['pil'] },
    },
    {
      name: 'allowlist: a group not listed',
      service: web({ user: 'pil-web', group: 'www-data' }),
      policy: { groups: ['pil'] },
      refused: [['exec.group', 'group.not-allowed']],
    },
  ]);
});

describe('hardening.stateDirectory: the service own name or below it', () => {
  runManifestRows([
    { name: 'its own name', service: hardening({ stateDirectory: ['web'] }) },
    { name: 'below its own name', service: hardening({ stateDirectory: ['web', 'web/cache'] }) },
    {
      name: "another service's",
      service: hardening({ stateDirectory: ['api'] }),
      refused: [['hardening.stateDirectory[0]', 'state-directory.other-service']],
    },
    {
      name: 'the secrets directory',
      service: hardening({ stateDirectory: ['biz-secrets'] }),
      refused: [['hardening.stateDirectory[0]', 'state-directory.other-service']],
    },
    {
      name: 'a name that only starts with its own',
      service: hardening({ stateDirectory: ['webx'] }),
      refused: [['hardening.stateDirectory[0]', 'state-directory.other-service']],
    },
    ...['biz-secrets', 'biz-deployer', 'systemd', 'private', 'caddy'].map(
      (name): Row => ({
        name: `a service named ${name} asking for its own name`,
        service: { name, exec: { command: name }, ...hardening({ stateDirectory: [name] }) },
        refused: [['hardening.stateDirectory[0]', 'state-directory.system']],
      }),
    ),
    {
      name: 'a service named like a protected directory, below it',
      service: {
        name: 'biz-secrets',
        exec: { command: 'x' },
        ...hardening({ stateDirectory: ['biz-secrets/cache'] }),
      },
      refused: [['hardening.stateDirectory[0]', 'state-directory.system']],
    },
  ]);
});

describe('hardening.readWritePaths: never a system location, the deployer, or another service', () => {
  const rw = (...paths: string[]) => hardening({ readWritePaths: paths });
  const at = (k: number) => `hardening.readWritePaths[${k}]`;
  runManifestRows([
    { name: 'a data directory', service: rw('/var/podcastitlater', '/srv/web', '/tmp/web') },
    { name: 'its own state directory', service: rw('/var/lib/web', '/var/lib/web/cache') },
    ...[
      '/',
      '/etc',
      '/etc/ssh',
      '/usr',
      '/usr/local/bin',
      '/boot',
      '/root',
      '/nix',
      '/nix/store',
      '/bin',
      '/proc/sys',
      '/sys/kernel',
      '/dev',
      '/run/systemd/journal',
      '/var/lib/systemd',
      '/var/lib/private',
      '/var/lib/caddy',
      '/var',
      '/run',
    ].flatMap((path): Row[] => {
      const also: Refusal[] = [];
      if (path === '/' || path === '/run')
        also.push([at(0), 'read-write-paths.deployer'], [at(0), 'read-write-paths.other-service']);
      if (path === '/var')
        also.push([at(0), 'read-write-paths.deployer'], [at(0), 'read-write-paths.other-service']);
      if (path === '/nix') also.push([at(0), 'read-write-paths.deployer']);
      return [
        {
          name: `system: ${path}`,
          service: rw(path),
          refused: [[at(0), 'read-write-paths.system'], ...also].filter(
            // /run holds only the deployer's units dir and Caddy's socket, no service state.
            ([, rule]) => !(path === '/run' && rule === 'read-write-paths.other-service'),
          ) as Refusal[],
        },
      ];
    }),
    {
      name: 'system: /var/lib (and everything under it)',
      service: rw('/var/lib'),
      refused: [
        [at(0), 'read-write-paths.system'],
        [at(0), 'read-write-paths.deployer'],
        [at(0), 'read-write-paths.other-service'],
      ],
    },
    ...[
      '/var/lib/biz-secrets',
      '/var/lib/biz-secrets/web',
      '/var/lib/biz-deployer',
      '/run/caddy',
      '/var/lib/prometheus-node-exporter',
    ].map(
      (path): Row => ({
        name: `the deployer's: ${path}`,
        service: rw(path),
        refused: [[at(0), 'read-write-paths.deployer']],
      }),
    ),
    {
      name: "the deployer's profiles (also under /nix)",
      service: rw('/nix/var/nix/profiles/biz'),
      refused: [
        [at(0), 'read-write-paths.system'],
        [at(0), 'read-write-paths.deployer'],
      ],
    },
    {
      name: "another service's state",
      service: rw('/srv/ok', '/var/lib/api/data'),
      refused: [[at(1), 'read-write-paths.other-service']],
    },
    {
      name: "a custom units directory is the deployer's",
      service: rw('/srv'),
      ctx: { unitsDir: '/srv/units' },
      refused: [[at(0), 'read-write-paths.deployer']],
    },
    {
      name: 'widened: allowPaths /etc/myapp',
      service: rw('/etc/myapp/cache'),
      policy: { allowPaths: ['/etc/myapp'] },
    },
    {
      name: 'widened: allowPaths /etc/myapp leaves /etc refused',
      service: rw('/etc'),
      policy: { allowPaths: ['/etc/myapp'] },
      refused: [[at(0), 'read-write-paths.system']],
    },
    {
      name: "widened: allowPaths cannot open the deployer's own directories",
      service: rw('/var/lib/biz-secrets'),
      policy: { allowPaths: ['/var/lib/biz-secrets'] },
      refused: [[at(0), 'read-write-paths.deployer']],
    },
    {
      name: 'widened: allowPaths /var opens nothing narrower (/var/lib/systemd)',
      service: rw('/var/lib/systemd/x', '/var/data'),
      policy: { allowPaths: ['/var'] },
      refused: [[at(0), 'read-write-paths.system']],
    },
    {
      name: 'narrowed: a denied path below an allowed one stays denied',
      service: rw('/etc/myapp/cache', '/etc/myapp/keys/a'),
      policy: { allowPaths: ['/etc/myapp'], denyPaths: ['/etc/myapp/keys'] },
      refused: [[at(1), 'read-write-paths.system']],
    },
    {
      name: 'narrowed: denyPaths /srv',
      service: rw('/srv/web'),
      policy: { denyPaths: ['/srv'] },
      refused: [[at(0), 'read-write-paths.system']],
    },
  ]);
});

describe('systemd.wants/requires: targets, our services, host-allowed units; after is free', () => {
  const deps = (fields: Record<string, unknown>) => ({ systemd: fields });
  runManifestRows([
    {
      name: 'well-known targets',
      service: deps({ wants: ['network-online.target', 'nss-lookup.target'], requires: ['network.target'] }),
    },
    {
      name: 'another service of this deployer, and itself',
      service: deps({ requires: ['deploy-api.service'], wants: ['deploy-web.service'] }),
    },
    {
      name: 'after orders without starting: any unit',
      service: deps({ after: ['debug-shell.service', 'postgresql.service', 'user@0.service'] }),
    },
    ...[
      'debug-shell.service',
      'user@0.service',
      'modprobe@loop.service',
      'multi-user.target',
      'postgresql.service',
    ].map(
      (unit): Row => ({
        name: `wants ${unit}`,
        service: deps({ wants: [unit] }),
        refused: [['systemd.wants[0]', 'dependency.unit']],
      }),
    ),
    {
      name: 'requires a service that is not in the manifest',
      service: deps({ requires: ['network.target', 'deploy-other.service'] }),
      refused: [['systemd.requires[1]', 'dependency.unit']],
    },
    {
      name: 'widened: allowUnits postgresql.service',
      service: deps({ wants: ['postgresql.service'], requires: ['postgresql.service'] }),
      policy: { allowUnits: ['postgresql.service'] },
    },
    {
      name: 'another unit prefix: the services go by it',
      service: deps({ requires: ['acme-api.service', 'deploy-api.service'] }),
      ctx: { unitPrefix: 'acme-' },
      refused: [['systemd.requires[1]', 'dependency.unit']],
    },
  ]);
});

describe('envFile: its own file or directory in the secrets directory, or a grant', () => {
  const env = (envFile: string, name = 'web') => ({ name, exec: { command: name }, envFile });
  runManifestRows([
    { name: '<secretsDir>/<service>.env', service: env('/var/lib/biz-secrets/web.env') },
    { name: 'a file under <secretsDir>/<service>/', service: env('/var/lib/biz-secrets/web/db.env') },
    ...[
      '/var/lib/biz-secrets/payments.env',
      '/var/lib/biz-secrets/webx.env',
      '/var/lib/biz-secrets/web.env.bak',
      '/var/lib/biz-secrets/web',
      '/var/lib/biz-secrets/api/db.env',
    ].map(
      (file): Row => ({
        name: `not its own: ${file}`,
        service: env(file),
        refused: [['envFile', 'env-file.not-own']],
      }),
    ),
    {
      name: 'granted: a shared file for its services',
      service: env('/var/lib/biz-secrets/shared.env'),
      policy: { envFileGrants: { '/var/lib/biz-secrets/shared.env': ['web', 'api'] } },
    },
    {
      name: 'granted to others: still refused',
      service: env('/var/lib/biz-secrets/shared.env', 'evil'),
      policy: { envFileGrants: { '/var/lib/biz-secrets/shared.env': ['web', 'api'] } },
      refused: [['envFile', 'env-file.not-own']],
    },
    {
      name: 'another secrets directory',
      service: env('/etc/omni-secrets/web.env'),
      ctx: { secretsDir: '/etc/omni-secrets/' },
    },
  ]);
});

describe('credentials: files under its own secrets directory, or a grant', () => {
  const creds = (credentials: Record<string, string>, name = 'web') => ({
    name,
    exec: { command: name },
    credentials,
  });
  runManifestRows([
    { name: 'a file under <secretsDir>/<service>/', service: creds({ db: '/var/lib/biz-secrets/web/db' }) },
    {
      name: 'nested deeper, several names',
      service: creds({ db: '/var/lib/biz-secrets/web/prod/db', tls: '/var/lib/biz-secrets/web/tls.pem' }),
    },
    ...[
      '/var/lib/biz-secrets/web',
      '/var/lib/biz-secrets/web.env',
      '/var/lib/biz-secrets/webx/db',
      '/var/lib/biz-secrets/payments/db',
      '/var/lib/biz-secrets/shared-db',
    ].map(
      (file): Row => ({
        name: `not its own: ${file}`,
        service: creds({ db: file }),
        refused: [['credentials.db', 'credential.not-own']],
      }),
    ),
    {
      name: 'each credential on its own (the path names it)',
      service: creds({ ok: '/var/lib/biz-secrets/web/ok', 'db-password': '/var/lib/biz-secrets/api/db' }),
      refused: [['credentials["db-password"]', 'credential.not-own']],
    },
    {
      name: 'granted: a shared file for its services',
      service: creds({ db: '/var/lib/biz-secrets/shared/db' }),
      policy: { credentialGrants: { '/var/lib/biz-secrets/shared/db': ['web', 'api'] } },
    },
    {
      name: 'granted to others: still refused',
      service: creds({ db: '/var/lib/biz-secrets/shared/db' }, 'evil'),
      policy: { credentialGrants: { '/var/lib/biz-secrets/shared/db': ['web', 'api'] } },
      refused: [['credentials.db', 'credential.not-own']],
    },
    {
      name: 'an env file grant does not grant a credential',
      service: creds({ db: '/var/lib/biz-secrets/shared/db' }),
      policy: { envFileGrants: { '/var/lib/biz-secrets/shared/db': ['web'] } },
      refused: [['credentials.db', 'credential.not-own']],
    },
    {
      name: 'another secrets directory',
      service: creds({ db: '/etc/omni-secrets/web/db' }),
      ctx: { secretsDir: '/etc/omni-secrets/' },
    },
  ]);
});

describe('http.domain: wildcards only where allowed, an optional allowlist', () => {
  const http = (domain: string) => ({ http: { domain, path: '/', internalPort: 8000 } });
  const allow = { domains: ['example.com', '*.shop.example'], wildcardDomains: true };
  runManifestRows([
    { name: 'a domain', service: http('example.com') },
    { name: 'a wildcard', service: http('*.example.com'), refused: [['http.domain', 'domain.wildcard']] },
    { name: 'widened: wildcardDomains', service: http('*.example.com'), policy: { wildcardDomains: true } },
    { name: 'allowlist: the exact name', service: http('Example.COM'), policy: allow },
    { name: 'allowlist: any name below *.shop.example', service: http('a.b.shop.example'), policy: allow },
    { name: 'allowlist: a wildcard below *.shop.example', service: http('*.shop.example'), policy: allow },
    {
      name: 'allowlist: a name below an exact entry',
      service: http('www.example.com'),
      policy: allow,
      refused: [['http.domain', 'domain.not-allowed']],
    },
    {
      name: 'allowlist: the parent of a wildcard entry',
      service: http('shop.example'),
      policy: allow,
      refused: [['http.domain', 'domain.not-allowed']],
    },
    {
      name: 'allowlist and no wildcards: both rules',
      service: http('*.example.com'),
      policy: { domains: ['example.com'] },
      refused: [
        ['http.domain', 'domain.wildcard'],
        ['http.domain', 'domain.not-allowed'],
      ],
    },
  ]);
});

describe('http.internalPort: an optional range', () => {
  const port = (internalPort: number) => ({ http: { domain: 'example.com', path: '/', internalPort } });
  const range = { ports: { min: 8000, max: 8999 } };
  runManifestRows([
    { name: 'any port without a range', service: port(9100) },
    { name: 'the lowest of the range', service: port(8000), policy: range },
    { name: 'the highest of the range', service: port(8999), policy: range },
    { name: 'above', service: port(9100), policy: range, refused: [['http.internalPort', 'port.range']] },
    { name: 'below', service: port(7999), policy: range, refused: [['http.internalPort', 'port.range']] },
    {
      name: 'the second port of a blue/green service, outside',
      service: { ...port(8000), env: { PORT: '8000' } },
      policy: range,
      refused: [['http.secondPort', 'port.range']],
    },
    {
      name: 'the second port of a blue/green service, inside',
      service: {
        env: { PORT: '8000' },
        http: { domain: 'example.com', path: '/', internalPort: 8000, secondPort: 8500 },
      },
      policy: range,
    },
  ]);
});

interface HostRow {
  name: string;
  service: Record<string, unknown>;
  host: FakeHostChecksInit;
  policy?: Record<string, unknown>;
  /** Units of this deployer → the ports the manifest now gives them. */
  deployerUnits?: Record<string, number[]>;
  refused?: Refusal[];
}

describe('pre-flight: what only the host can tell', () => {
  const listener = (unit?: string, pid?: number): PortListener => ({
    address: '127.0.0.1:8000',
    ...(pid !== undefined ? { pid, process: 'x' } : {}),
    ...(unit !== undefined ? { unit } : {}),
  });
  const http = { http: { domain: 'example.com', path: '/', internalPort: 8000 } };
  const file = { type: 'file' as const, uid: 0, gid: 0, mode: 0o600 };
  const dir = (uid: number) => ({ type: 'directory' as const, uid, gid: uid, mode: 0o755 });
  const rows: HostRow[] = [
    { name: 'an ordinary account', service: web({ user: 'pil-web' }), host: { users: ['pil-web'] } },
    {
      name: 'an account of uid 0 under another name',
      service: web({ user: 'toor' }),
      host: { accounts: { toor: { uid: 0, gid: 0 } } },
      refused: [
        ['exec.user', 'user.root'],
        ['exec.user', 'group.root'],
      ],
    },
    {
      name: 'a dynamic user whose name exists as a static uid-0 account',
      service: {},
      host: { accounts: { 'deploy-web': { uid: 0, gid: 1000 } } },
      refused: [['hardening.dynamicUser', 'user.root']],
    },
    { name: 'a dynamic user with no static account', service: {}, host: {} },
    {
      name: 'an account whose primary group is gid 0',
      service: web({ user: 'pil-web' }),
      host: { accounts: { 'pil-web': { uid: 1001, gid: 0 } } },
      refused: [['exec.user', 'group.root']],
    },
    {
      name: 'an account in the docker group',
      service: web({ user: 'pil-web' }),
      host: { accounts: { 'pil-web': { uid: 1001, gid: 1001, groups: [1001, 998] } }, gids: { docker: 998 } },
      refused: [['exec.user', 'group.privileged']],
    },
    {
      name: 'an account in the video group, allowed by the host',
      service: web({ user: 'pil-web' }),
      host: { accounts: { 'pil-web': { uid: 1001, gid: 1001, groups: [1001, 44] } }, gids: { video: 44 } },
      policy: { allowGroups: ['video'] },
    },
    {
      name: 'a group named harmlessly with the id of disk',
      service: web({ user: 'pil-web', group: 'storage' }),
      host: { users: ['pil-web'], gids: { disk: 6, storage: 6 } },
      refused: [['exec.group', 'group.privileged']],
    },
    {
      name: 'a group with gid 0 under another name',
      service: web({ user: 'pil-web', group: 'wheel0' }),
      host: { users: ['pil-web'], gids: { wheel0: 0 } },
      refused: [['exec.group', 'group.root']],
    },
    {
      name: 'a writable path that is a real directory',
      service: hardening({ readWritePaths: ['/srv/data'] }),
      host: { paths: { '/srv/data': dir(0) } },
    },
    {
      name: 'a writable path that links to /etc',
      service: hardening({ readWritePaths: ['/srv/data'] }),
      host: { paths: { '/etc': dir(0) }, links: { '/srv/data': '/etc' } },
      refused: [['hardening.readWritePaths[0]', 'read-write-paths.system']],
    },
    {
      name: 'a writable path whose parent links into the secrets directory',
      service: hardening({ readWritePaths: ['/srv/data/x'] }),
      host: { paths: { '/var/lib/biz-secrets/x': dir(0) }, links: { '/srv/data': '/var/lib/biz-secrets' } },
      refused: [['hardening.readWritePaths[0]', 'read-write-paths.deployer']],
    },
    {
      name: "a writable path that links into another service's state",
      service: hardening({ readWritePaths: ['/srv/data'] }),
      host: { paths: { '/var/lib/api': dir(0) }, links: { '/srv/data': '/var/lib/api' } },
      refused: [['hardening.readWritePaths[0]', 'read-write-paths.other-service']],
    },
    {
      name: 'its own env file',
      service: { envFile: '/var/lib/biz-secrets/web.env' },
      host: { paths: { '/var/lib/biz-secrets/web.env': file } },
    },
    {
      name: "an env file that links to another service's",
      service: { envFile: '/var/lib/biz-secrets/web.env' },
      host: {
        paths: { '/var/lib/biz-secrets/payments.env': file },
        links: { '/var/lib/biz-secrets/web.env': '/var/lib/biz-secrets/payments.env' },
      },
      refused: [['envFile', 'env-file.not-own']],
    },
    {
      name: 'its own credential file',
      service: { credentials: { db: '/var/lib/biz-secrets/web/db' } },
      host: { paths: { '/var/lib/biz-secrets/web/db': file } },
    },
    {
      name: "a credential file that links to another service's",
      service: { credentials: { db: '/var/lib/biz-secrets/web/db' } },
      host: {
        paths: { '/var/lib/biz-secrets/payments/db': file },
        links: { '/var/lib/biz-secrets/web/db': '/var/lib/biz-secrets/payments/db' },
      },
      refused: [['credentials.db', 'credential.not-own']],
    },
    {
      name: 'a new state directory',
      service: hardening({ stateDirectory: ['web'] }),
      host: {},
    },
    {
      name: 'a state directory of its static account',
      service: { ...web({ user: 'pil-web' }), ...hardening({ stateDirectory: ['web/cache'] }) },
      host: { accounts: { 'pil-web': { uid: 1001, gid: 1001 } }, paths: { '/var/lib/web': dir(1001) } },
    },
    {
      name: 'a state directory of a dynamic user',
      service: hardening({ stateDirectory: ['web'] }),
      host: {
        paths: { '/var/lib/private/web': dir(61200) },
        links: { '/var/lib/web': '/var/lib/private/web' },
      },
    },
    {
      name: 'a state directory owned by root',
      service: hardening({ stateDirectory: ['web'] }),
      host: { paths: { '/var/lib/web': dir(0) } },
      refused: [['hardening.stateDirectory[0]', 'state-directory.owner']],
    },
    {
      name: "a state directory owned by another account (a host program's data)",
      service: { ...web({ user: 'pil-web' }), ...hardening({ stateDirectory: ['web'] }) },
      host: { accounts: { 'pil-web': { uid: 1001, gid: 1001 } }, paths: { '/var/lib/web': dir(113) } },
      refused: [['hardening.stateDirectory[0]', 'state-directory.owner']],
    },
    { name: 'a free port', service: http, host: {} },
    {
      name: 'its own unit listens (an update)',
      service: http,
      host: { ports: { 8000: [listener('deploy-web.service', 300)] } },
    },
    {
      name: 'a host program listens (node_exporter-like)',
      service: http,
      host: { ports: { 8000: [listener('prometheus-node-exporter.service', 301)] } },
      refused: [['http.internalPort', 'port.in-use']],
    },
    {
      name: 'a process outside any unit listens',
      service: http,
      host: { ports: { 8000: [listener(undefined, 302)] } },
      refused: [['http.internalPort', 'port.in-use']],
    },
    {
      name: 'a socket without a visible process',
      service: http,
      host: { ports: { 8000: [listener()] } },
      refused: [['http.internalPort', 'port.in-use']],
    },
    {
      name: 'another service of ours that the manifest moves off the port',
      service: http,
      host: { ports: { 8000: [listener('deploy-api.service', 303)] } },
      deployerUnits: { 'deploy-api.service': [8001] },
    },
    {
      name: 'another service of ours that the manifest removes',
      service: http,
      host: { ports: { 8000: [listener('deploy-api.service', 303)] } },
      deployerUnits: { 'deploy-api.service': [] },
    },
    {
      name: 'another service of ours that keeps the port',
      service: http,
      host: { ports: { 8000: [listener('deploy-api.service', 303), listener('deploy-web.service', 304)] } },
      deployerUnits: { 'deploy-api.service': [8000] },
      refused: [['http.internalPort', 'port.in-use']],
    },
  ];
  it.each(rows.map((row) => [row.name, row] as const))('%s', async (_, row) => {
    for (const [, rule] of row.refused ?? []) covered.add(rule);
    const service = makeService(row.service);
    const policy = policyOf(row.policy);
    const facts = await gatherHostFacts(
      hostFactsQuery(service, policy, 'deploy-web.service'),
      createFakeHostChecks(row.host),
    );
    const issues = checkHostFacts(service, facts, policy, {
      ...CTX,
      ownUnits: ['deploy-web.service'],
      deployerUnits: new Map(Object.entries(row.deployerUnits ?? {})),
    });
    expect(issues.map((i) => [i.path.replace(/^service\./, ''), i.rule])).toEqual(row.refused ?? []);
  });
});

describe('routes: a domain another site names exactly is not ours', () => {
  const config = {
    apps: {
      http: {
        servers: {
          srv0: {
            listen: [':80'],
            routes: [
              {
                match: [{ host: ['shop.example'] }],
                handle: [{ handler: 'static_response' }],
                terminal: true,
              },
              { handle: [{ handler: 'file_server' }] },
            ],
          },
        },
      },
    },
  };
  const foreign = foreignRoutes(config, 'omni-deploy:');
  it.each([
    ['a domain nobody else names', 'example.com', '/', false],
    ['a domain of a foreign site', 'shop.example', '/', true],
    ['a path below a foreign site', 'SHOP.example', '/api', true],
  ])('%s', (_, domain, path, refused) => {
    covered.add('route.foreign-host');
    expect(checkDomainAgainstForeign(domain, path, foreign) !== undefined).toBe(refused);
  });
});

afterAll(() => {
  // Runs after every table above: a rule without a refused case would be a rule without a test.
  expect([...covered].sort()).toEqual(Object.keys(POLICY_RULES).sort());
});

describe('the default policy', () => {
  it('is what an empty or missing config gives', () => {
    expect(policyOf(undefined)).toBe(DEFAULT_HOST_POLICY);
    expect(policyOf({})).toEqual({ ...DEFAULT_HOST_POLICY });
  });

  it('refuses the takeovers of the issue all at once, each with its field and rule', () => {
    const evil = makeService({
      name: 'evil',
      exec: { command: 'evil', user: 'root', group: 'docker' },
      envFile: '/var/lib/biz-secrets/payments.env',
      systemd: { wants: ['debug-shell.service', 'user@0.service', 'modprobe@loop.service'] },
      hardening: {
        dynamicUser: false,
        protectSystem: false,
        readWritePaths: ['/etc'],
        stateDirectory: ['biz-secrets', 'biz-deployer'],
      },
    } as Partial<Service>);
    const issues = checkServicePolicy(evil, DEFAULT_HOST_POLICY, CTX, 'services[0]');
    expect(issues.map((i) => `${i.path} ${i.rule}`)).toEqual([
      'services[0].exec.user user.root',
      'services[0].exec.group group.privileged',
      'services[0].hardening.stateDirectory[0] state-directory.other-service',
      'services[0].hardening.stateDirectory[1] state-directory.other-service',
      'services[0].hardening.readWritePaths[0] read-write-paths.system',
      'services[0].systemd.wants[0] dependency.unit',
      'services[0].systemd.wants[1] dependency.unit',
      'services[0].systemd.wants[2] dependency.unit',
      'services[0].envFile env-file.not-own',
    ]);
  });
});
