import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assertManifest, isDeployError, parseManifest, validateManifest } from '../../src/index.js';
import { clone, makeManifest, makeService, storePath } from '../builders.js';

const SP = storePath('web-1.0.0');

/** [rule, field overrides for one service, expected issue path or null when valid, message fragment]. */
type Case = [string, Record<string, unknown>, string | null, string?];

const serviceCases: Case[] = [
  // name
  ['name: lowercase with digits and -', { name: 'podcastitlater-web2' }, null],
  ['name: 63 characters', { name: `a${'b'.repeat(62)}` }, null],
  ['name: 64 characters', { name: `a${'b'.repeat(63)}` }, 'services[0].name', 'at most 63'],
  ['name: uppercase', { name: 'Web' }, 'services[0].name', 'lowercase'],
  ['name: starts with digit', { name: '1web' }, 'services[0].name'],
  ['name: traversal', { name: '../../etc/passwd' }, 'services[0].name'],
  ['name: newline injection', { name: 'web\nExecStartPre=/bin/sh' }, 'services[0].name', '\\n'],
  ['name: unit suffix', { name: 'web.service' }, 'services[0].name'],
  ['name: not a string', { name: 42 }, 'services[0].name', 'found 42'],
  // artifact
  ['storePath: valid', { artifact: { type: 'nix-closure', storePath: SP } }, null],
  [
    'storePath: short hash (design example)',
    { artifact: { type: 'nix-closure', storePath: '/nix/store/abc123-web' } },
    'services[0].artifact.storePath',
    '32 characters',
  ],
  [
    'storePath: traversal suffix',
    { artifact: { type: 'nix-closure', storePath: `${SP}/..` } },
    'services[0].artifact.storePath',
  ],
  [
    'storePath: subpath',
    { artifact: { type: 'nix-closure', storePath: `${SP}/bin/web` } },
    'services[0].artifact.storePath',
  ],
  [
    'storePath: outside store',
    { artifact: { type: 'nix-closure', storePath: '/usr/bin/env' } },
    'services[0].artifact.storePath',
  ],
  [
    'storePath: letter e is not base32',
    { artifact: { type: 'nix-closure', storePath: `/nix/store/${'e'.repeat(32)}-web` } },
    'services[0].artifact.storePath',
  ],
  [
    'storePath: name starting with dot',
    { artifact: { type: 'nix-closure', storePath: `/nix/store/${'a'.repeat(32)}-.web` } },
    'services[0].artifact.storePath',
  ],
  [
    'artifact.type: docker',
    { artifact: { type: 'docker', storePath: SP } },
    'services[0].artifact.type',
    '"nix-closure"',
  ],
  [
    'artifact: unknown key',
    { artifact: { type: 'nix-closure', storePath: SP, sha: 'x' } },
    'services[0].artifact.sha',
    'unknown key',
  ],
  // hosts
  ['hosts: fqdn', { hosts: ['web-1.example.com', 'biz'] }, null],
  ['hosts: empty list', { hosts: [] }, 'services[0].hosts', 'at least one'],
  ['hosts: underscore', { hosts: ['bad_host'] }, 'services[0].hosts[0]', 'RFC 1123'],
  ['hosts: leading hyphen', { hosts: ['-biz'] }, 'services[0].hosts[0]'],
  ['hosts: label of 64', { hosts: ['a'.repeat(64)] }, 'services[0].hosts[0]'],
  ['hosts: duplicate', { hosts: ['biz', 'BIZ'] }, 'services[0].hosts[1]', 'twice'],
  ['hosts: not a list', { hosts: 'biz' }, 'services[0].hosts', 'a list'],
  // exec
  ['command: name in bin/', { exec: { command: 'web' } }, null],
  ['command: relative path', { exec: { command: 'libexec/web/server' } }, null],
  ['command: absolute inside own store path', { exec: { command: `${SP}/bin/web` } }, null],
  ['command: absolute outside', { exec: { command: '/bin/sh' } }, 'services[0].exec.command'],
  [
    'command: absolute in another store path',
    { exec: { command: `${storePath('evil-1')}/bin/sh` } },
    'services[0].exec.command',
    'inside this service',
  ],
  [
    'command: absolute with traversal',
    { exec: { command: `${SP}/../${storePath('x').slice(11)}/bin/sh` } },
    'services[0].exec.command',
  ],
  ['command: traversal', { exec: { command: '../../bin/sh' } }, 'services[0].exec.command'],
  ['command: dot segment', { exec: { command: 'bin/./web' } }, 'services[0].exec.command'],
  ['command: space', { exec: { command: 'web --evil' } }, 'services[0].exec.command'],
  ['command: empty', { exec: { command: '' } }, 'services[0].exec.command'],
  [
    'args: hostile but printable values pass',
    { exec: { command: 'web', args: ['a b', '%h', '$HOME', '${X}', ';', '\\', '"', 'ünï', ''] } },
    null,
  ],
  [
    'args: newline',
    { exec: { command: 'web', args: ['ok', 'x\nExecStartPre=/bin/sh'] } },
    'services[0].exec.args[1]',
    'control characters',
  ],
  ['args: not strings', { exec: { command: 'web', args: [1] } }, 'services[0].exec.args[0]'],
  ['user/group: valid', { exec: { command: 'web', user: 'pil-web', group: 'pil' } }, null],
  [
    'user: root-ish traversal',
    { exec: { command: 'web', user: '../root' } },
    'services[0].exec.user',
    'POSIX user',
  ],
  ['group: too long', { exec: { command: 'web', group: 'g'.repeat(33) } }, 'services[0].exec.group'],
  ['exec: missing command', { exec: {} }, 'services[0].exec.command', 'required'],
  [
    'exec: typo key',
    { exec: { command: 'web', arg: [] } },
    'services[0].exec.arg',
    'allowed keys: command, args, user, group',
  ],
  // env
  ['env: valid', { env: { PORT: '8000', _X1: 'a b "c" %h $Y ${Z} \\ ünïcode', EMPTY: '' } }, null],
  ['env: newline value', { env: { A: 'x\nB=y' } }, 'services[0].env.A', 'control characters'],
  ['env: carriage return value', { env: { A: 'x\r' } }, 'services[0].env.A'],
  ['env: NUL value', { env: { A: 'x\u0000' } }, 'services[0].env.A'],
  ['env: escape sequence value', { env: { A: '\u001b[31m' } }, 'services[0].env.A'],
  [
    'env: key with dash',
    { env: { 'MY-VAR': 'x' } },
    'services[0].env["MY-VAR"]',
    'environment variable name',
  ],
  ['env: key with newline', { env: { 'A\nB': 'x' } }, 'services[0].env["A\\nB"]'],
  ['env: key starting with digit', { env: { '1A': 'x' } }, 'services[0].env["1A"]'],
  ['env: number value', { env: { PORT: 8000 } }, 'services[0].env.PORT', 'found 8000'],
  [
    'env: reserved key',
    { env: JSON.parse('{"constructor":"x"}') },
    'services[0].env.constructor',
    'not supported',
  ],
  // envFile
  ['envFile: in secrets dir', { envFile: '/var/lib/biz-secrets/web.env' }, null],
  ['envFile: nested in secrets dir', { envFile: '/var/lib/biz-secrets/web/prod.env' }, null],
  ['envFile: traversal', { envFile: '/var/lib/biz-secrets/../../etc/shadow' }, 'services[0].envFile', '".."'],
  [
    'envFile: outside',
    { envFile: '/etc/shadow' },
    'services[0].envFile',
    'secrets directory /var/lib/biz-secrets/',
  ],
  [
    'envFile: prefix trick',
    { envFile: '/var/lib/biz-secrets-evil/x.env' },
    'services[0].envFile',
    'secrets directory',
  ],
  ['envFile: relative', { envFile: 'web.env' }, 'services[0].envFile'],
  ['envFile: systemd optional prefix', { envFile: '-/var/lib/biz-secrets/web.env' }, 'services[0].envFile'],
  ['envFile: the directory itself', { envFile: '/var/lib/biz-secrets' }, 'services[0].envFile'],
  // credentials
  [
    'credentials: files in the secrets dir',
    {
      credentials: {
        'db-password': '/var/lib/biz-secrets/web/db',
        'tls.key': '/var/lib/biz-secrets/web/tls',
      },
    },
    null,
  ],
  ['credentials: empty', { credentials: {} }, null],
  [
    'credentials: 64-character name',
    { credentials: { [`a${'b'.repeat(63)}`]: '/var/lib/biz-secrets/w/k' } },
    null,
  ],
  [
    'credentials: 65-character name',
    { credentials: { [`a${'b'.repeat(64)}`]: '/var/lib/biz-secrets/w/k' } },
    `services[0].credentials.a${'b'.repeat(64)}`,
    'at most 64',
  ],
  ['credentials: not an object', { credentials: ['/var/lib/biz-secrets/web/db'] }, 'services[0].credentials'],
  [
    'credentials: name with ":" (systemd\'s separator)',
    { credentials: { 'a:b': '/var/lib/biz-secrets/web/db' } },
    'services[0].credentials["a:b"]',
    'credential name',
  ],
  [
    'credentials: name "..""',
    { credentials: { '..': '/var/lib/biz-secrets/web/db' } },
    'services[0].credentials[".."]',
  ],
  [
    'credentials: name starting with "-"',
    { credentials: { '-x': '/var/lib/biz-secrets/web/db' } },
    'services[0].credentials["-x"]',
  ],
  [
    'credentials: name with a newline',
    { credentials: { 'a\nb': '/var/lib/biz-secrets/web/db' } },
    'services[0].credentials["a\\nb"]',
  ],
  [
    'credentials: reserved name',
    { credentials: JSON.parse('{"constructor":"/etc/shadow"}') },
    'services[0].credentials.constructor',
    'not supported',
  ],
  [
    'credentials: outside the secrets dir',
    { credentials: { key: '/etc/shadow' } },
    'services[0].credentials.key',
    'secrets directory /var/lib/biz-secrets/',
  ],
  [
    'credentials: prefix trick',
    { credentials: { key: '/var/lib/biz-secrets-evil/key' } },
    'services[0].credentials.key',
    'secrets directory',
  ],
  [
    'credentials: traversal',
    { credentials: { key: '/var/lib/biz-secrets/web/../../../etc/shadow' } },
    'services[0].credentials.key',
    '".."',
  ],
  ['credentials: relative path', { credentials: { key: 'web/key' } }, 'services[0].credentials.key'],
  [
    'credentials: control character in the path',
    { credentials: { key: '/var/lib/biz-secrets/web/k\u0000' } },
    'services[0].credentials.key',
  ],
  ['credentials: number value', { credentials: { key: 1 } }, 'services[0].credentials.key', 'found 1'],
  // http
  [
    'http: valid',
    { http: { domain: 'example.com', path: '/', internalPort: 8000, healthCheck: '/healthz?deep=1' } },
    null,
  ],
  [
    'http: wildcard domain and sub path',
    { http: { domain: '*.example.com', path: '/api/v1', internalPort: 65535 } },
    null,
  ],
  [
    'http: scheme in domain',
    { http: { domain: 'https://example.com', path: '/', internalPort: 8000 } },
    'services[0].http.domain',
    'without scheme',
  ],
  [
    'http: port in domain',
    { http: { domain: 'example.com:443', path: '/', internalPort: 8000 } },
    'services[0].http.domain',
  ],
  [
    'http: inner wildcard',
    { http: { domain: 'a.*.com', path: '/', internalPort: 8000 } },
    'services[0].http.domain',
  ],
  [
    'http: path without slash',
    { http: { domain: 'example.com', path: 'api', internalPort: 8000 } },
    'services[0].http.path',
    'starting with "/"',
  ],
  [
    'http: path with wildcard',
    { http: { domain: 'example.com', path: '/api/*', internalPort: 8000 } },
    'services[0].http.path',
  ],
  [
    'http: path with trailing slash',
    { http: { domain: 'example.com', path: '/api/', internalPort: 8000 } },
    'services[0].http.path',
  ],
  [
    'http: path traversal',
    { http: { domain: 'example.com', path: '/a/../admin', internalPort: 8000 } },
    'services[0].http.path',
    '".."',
  ],
  [
    'http: port 1023',
    { http: { domain: 'example.com', path: '/', internalPort: 1023 } },
    'services[0].http.internalPort',
    'privileges',
  ],
  [
    'http: port 65536',
    { http: { domain: 'example.com', path: '/', internalPort: 65536 } },
    'services[0].http.internalPort',
  ],
  [
    'http: port fraction',
    { http: { domain: 'example.com', path: '/', internalPort: 8000.5 } },
    'services[0].http.internalPort',
  ],
  [
    'http: port string',
    { http: { domain: 'example.com', path: '/', internalPort: '8000' } },
    'services[0].http.internalPort',
    'found "8000"',
  ],
  [
    'http: health check without slash',
    { http: { domain: 'example.com', path: '/', internalPort: 8000, healthCheck: 'healthz' } },
    'services[0].http.healthCheck',
  ],
  [
    'http: health check with space',
    { http: { domain: 'example.com', path: '/', internalPort: 8000, healthCheck: '/a b' } },
    'services[0].http.healthCheck',
  ],
  [
    'http: missing port',
    { http: { domain: 'example.com', path: '/' } },
    'services[0].http.internalPort',
    'required',
  ],
  // systemd
  [
    'systemd: valid',
    {
      systemd: {
        after: ['network-online.target', 'postgresql.service', 'getty@tty1.service'],
        requires: [],
        wants: ['var-lib\\x2dx.mount'],
        restart: 'on-failure',
        restartSec: 0.5,
      },
    },
    null,
  ],
  [
    'systemd: unit without suffix',
    { systemd: { after: ['postgresql'] } },
    'services[0].systemd.after[0]',
    'unit name',
  ],
  [
    'systemd: unit with newline',
    { systemd: { requires: ['a.service\nExecStartPre=/bin/sh'] } },
    'services[0].systemd.requires[0]',
  ],
  [
    'systemd: unit with space',
    { systemd: { wants: ['a.service b.service'] } },
    'services[0].systemd.wants[0]',
  ],
  [
    'systemd: restart value',
    { systemd: { restart: 'sometimes' } },
    'services[0].systemd.restart',
    'on-failure',
  ],
  ['systemd: negative restartSec', { systemd: { restartSec: -1 } }, 'services[0].systemd.restartSec', '>= 0'],
  [
    'systemd: restartSec over a day',
    { systemd: { restartSec: 86_401 } },
    'services[0].systemd.restartSec',
    'one day',
  ],
  ['systemd: restartSec string', { systemd: { restartSec: '5s' } }, 'services[0].systemd.restartSec'],
  // hardening
  [
    'hardening: design example values',
    { hardening: { dynamicUser: false, privateTmp: true, protectSystem: 'strict', protectHome: true } },
    null,
  ],
  [
    'hardening: other values',
    {
      exec: { command: 'web', user: 'web' },
      hardening: {
        protectSystem: false,
        protectHome: 'tmpfs',
        memoryDenyWriteExecute: false,
        privateDevices: true,
        readWritePaths: ['/var/x'],
        stateDirectory: ['x', 'y/z'],
      },
    },
    null,
  ],
  [
    'hardening: relaxing ProtectSystem under a dynamic user',
    { hardening: { protectSystem: false } },
    'services[0].hardening.protectSystem',
    'no effect with a dynamic user',
  ],
  [
    'hardening: relaxing ProtectSystem under a named dynamic user',
    { exec: { command: 'web', user: 'web' }, hardening: { dynamicUser: true, protectSystem: 'full' } },
    'services[0].hardening.protectSystem',
    'ProtectSystem=strict',
  ],
  [
    'hardening: relaxing ProtectHome under a dynamic user',
    { hardening: { protectHome: false } },
    'services[0].hardening.protectHome',
    'ProtectHome=read-only',
  ],
  [
    'hardening: relaxing PrivateTmp under a dynamic user',
    { hardening: { privateTmp: false } },
    'services[0].hardening.privateTmp',
    'PrivateTmp=yes',
  ],
  [
    'hardening: tightening under a dynamic user',
    { hardening: { protectSystem: 'strict', protectHome: 'tmpfs', privateTmp: true } },
    null,
  ],
  [
    'hardening: relaxing under a static user',
    {
      exec: { command: 'web', user: 'web' },
      hardening: { protectSystem: 'full', protectHome: false, privateTmp: false },
    },
    null,
  ],
  [
    'hardening: protectSystem',
    { hardening: { protectSystem: 'yes' } },
    'services[0].hardening.protectSystem',
    '"strict"',
  ],
  [
    'hardening: protectHome',
    { hardening: { protectHome: 'full' } },
    'services[0].hardening.protectHome',
    '"read-only"',
  ],
  [
    'hardening: string boolean',
    { hardening: { privateTmp: 'true' } },
    'services[0].hardening.privateTmp',
    'true or false',
  ],
  [
    'hardening: readWritePaths traversal',
    { hardening: { readWritePaths: ['/var/../etc'] } },
    'services[0].hardening.readWritePaths[0]',
  ],
  [
    'hardening: readWritePaths relative',
    { hardening: { readWritePaths: ['var/x'] } },
    'services[0].hardening.readWritePaths[0]',
  ],
  [
    'hardening: stateDirectory absolute',
    { hardening: { stateDirectory: ['/etc'] } },
    'services[0].hardening.stateDirectory[0]',
  ],
  [
    'hardening: stateDirectory traversal',
    { hardening: { stateDirectory: ['../etc'] } },
    'services[0].hardening.stateDirectory[0]',
  ],
  [
    'hardening: runtime relaxations',
    {
      hardening: {
        memoryDenyWriteExecute: true,
        procSubset: 'pid',
        restrictAddressFamilies: ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK'],
      },
    },
    null,
  ],
  ['hardening: no sockets at all', { hardening: { restrictAddressFamilies: [] } }, null],
  [
    'hardening: procSubset',
    { hardening: { procSubset: 'none' } },
    'services[0].hardening.procSubset',
    '"all" or "pid"',
  ],
  [
    'hardening: unknown address family',
    { hardening: { restrictAddressFamilies: ['AF_INET', 'AF_BLUETOOTH'] } },
    'services[0].hardening.restrictAddressFamilies[1]',
    'AF_NETLINK',
  ],
  [
    'hardening: two families in one string',
    { hardening: { restrictAddressFamilies: ['AF_INET AF_PACKET'] } },
    'services[0].hardening.restrictAddressFamilies[0]',
  ],
  [
    'hardening: unknown key',
    { hardening: { protectKernel: true } },
    'services[0].hardening.protectKernel',
    'unknown key',
  ],
  // revision and unknown keys
  ['revision: valid', { revision: 'abc123def' }, null],
  ['revision: newline', { revision: 'a\nb' }, 'services[0].revision'],
  [
    'service: typo enviroment',
    { enviroment: { A: '1' } },
    'services[0].enviroment',
    'unknown key "enviroment"',
  ],
];

describe('validateManifest: one rule per row', () => {
  it.each(serviceCases)('%s', (_rule, overrides, path, fragment) => {
    const result = validateManifest(clone(makeManifest([makeService(overrides)])));
    if (path === null) {
      expect(result.ok ? [] : result.issues).toEqual([]);
      return;
    }
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const issue = result.issues.find((i) => i.path === path);
    expect(issue, `issues were: ${JSON.stringify(result.issues)}`).toBeDefined();
    if (fragment) expect(issue?.message).toContain(fragment);
  });
});

const manifestCases: Case[] = [
  ['version 1', { version: 1 }, null],
  ['version 2', { version: 2 }, 'version', 'unsupported manifest version 2; this deployer reads 1'],
  ['version string', { version: '1' }, 'version', 'expected 1, found "1"'],
  ['version missing', { version: undefined }, 'version', 'required'],
  ['generation with millis', { generation: '2025-01-15T12:34:56.789Z' }, null],
  ['generation with offset', { generation: '2025-01-15T12:34:56+01:00' }, 'generation', 'UTC'],
  ['generation date only', { generation: '2025-01-15' }, 'generation'],
  ['generation month 13', { generation: '2025-13-15T12:34:56Z' }, 'generation', 'real date'],
  ['generation Feb 30', { generation: '2025-02-30T12:34:56Z' }, 'generation', 'real date'],
  ['generation hour 24', { generation: '2025-01-15T24:00:00Z' }, 'generation', 'real date'],
  ['services empty', { services: [] }, null],
  ['services not a list', { services: {} }, 'services', 'a list of services'],
  ['$schema allowed', { $schema: '../schema/manifest.schema.json' }, null],
  [
    'unknown top-level key',
    { servics: [] },
    'servics',
    'allowed keys: $schema, version, generation, services',
  ],
];

describe('validateManifest: top-level rules', () => {
  it.each(manifestCases)('%s', (_rule, overrides, path, fragment) => {
    const input = clone({ ...makeManifest(), ...overrides });
    const result = validateManifest(input);
    if (path === null) {
      expect(result.ok ? [] : result.issues).toEqual([]);
      return;
    }
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const issue = result.issues.find((i) => i.path === path);
    expect(issue, `issues were: ${JSON.stringify(result.issues)}`).toBeDefined();
    if (fragment) expect(issue?.message).toContain(fragment);
  });

  it('reports a non-object document at the root', () => {
    for (const input of [null, [], 'x', 1, true]) {
      const result = validateManifest(input);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.issues[0]?.path).toBe('manifest');
    }
  });
});

describe('validateManifest: across services', () => {
  const http = (domain: string, path: string, internalPort: number) => ({
    http: { domain, path, internalPort },
  });

  it('refuses duplicate names, naming both', () => {
    const result = validateManifest(
      makeManifest([makeService({ name: 'a' }), makeService({ name: 'b' }), makeService({ name: 'a' })]),
    );
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.issues).toContainEqual({
        path: 'services[2].name',
        message: 'duplicate service name "a"; also services[0] (a)',
      });
  });

  it('refuses two services on the same domain+path (domains compare case-insensitively)', () => {
    const result = validateManifest(
      makeManifest([
        makeService({ name: 'a', ...http('Example.com', '/api', 8001) }),
        makeService({ name: 'b', ...http('example.com', '/api', 8002) }),
      ]),
    );
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.issues).toContainEqual({
        path: 'services[1].http',
        message: 'route example.com/api is already served by services[0] (a)',
      });
  });

  it('allows the same path on different domains and the same port on different hosts', () => {
    const result = validateManifest(
      makeManifest([
        makeService({ name: 'a', hosts: ['h1'], ...http('a.com', '/', 8000) }),
        makeService({ name: 'b', hosts: ['h2'], ...http('b.com', '/', 8000) }),
      ]),
    );
    expect(result.ok).toBe(true);
  });

  it('refuses two services on one host with the same internalPort', () => {
    const result = validateManifest(
      makeManifest([
        makeService({ name: 'a', hosts: ['h1', 'h2'], ...http('a.com', '/', 8000) }),
        makeService({ name: 'b', hosts: ['h2'], ...http('b.com', '/', 8000) }),
      ]),
    );
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.issues).toEqual([
        {
          path: 'services[1].http.internalPort',
          message: 'port 8000 on host h2 is already used by services[0] (a)',
        },
      ]);
    }
  });

  it('reports every problem at once, schema and cross-service together', () => {
    const result = validateManifest({
      version: 1,
      generation: 'yesterday',
      services: [
        { ...makeService({ name: 'a' }), envFile: '/etc/shadow' },
        { ...makeService({ name: 'a' }), exec: { command: '../sh' } },
        { name: 'B' },
      ],
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.issues.map((i) => i.path).sort()).toEqual(
        [
          'generation',
          'services[0].envFile',
          'services[1].exec.command',
          'services[1].name',
          'services[2].artifact',
          'services[2].exec',
          'services[2].hosts',
          'services[2].name',
        ].sort(),
      );
    }
  });

  it('uses a configurable secrets directory', () => {
    const manifest = makeManifest([makeService({ envFile: '/run/secrets/web.env' })]);
    expect(validateManifest(manifest).ok).toBe(false);
    expect(validateManifest(manifest, { secretsDir: '/run/secrets/' }).ok).toBe(true);
    expect(() => validateManifest(manifest, { secretsDir: 'relative' })).toThrow(/secrets directory/);
  });
});

describe('warnings', () => {
  it('flags secret-looking env keys but still accepts the manifest', () => {
    const result = validateManifest(
      makeManifest([makeService({ env: { DB_PASSWORD: 'x', API_TOKEN: 'y', STRIPE_KEY: 'z', PORT: '1' } })]),
    );
    expect(result.ok).toBe(true);
    expect(result.warnings.map((w) => w.path)).toEqual([
      'services[0].env.DB_PASSWORD',
      'services[0].env.API_TOKEN',
      'services[0].env.STRIPE_KEY',
    ]);
    expect(result.warnings[0]?.message).toContain('envFile');
  });

  it('flags a data directory that ProtectSystem=strict makes read-only, unless declared writable', () => {
    const warn = (hardening?: Record<string, unknown>) =>
      validateManifest(
        makeManifest([
          makeService({ env: { DATA_DIR: '/var/podcastitlater' }, ...(hardening ? { hardening } : {}) }),
        ]),
      ).warnings;
    expect(warn()).toHaveLength(1);
    expect(warn({ protectSystem: 'strict' })[0]?.message).toContain('hardening.readWritePaths');
    expect(warn({ readWritePaths: ['/var/podcastitlater'] })).toEqual([]);
    expect(warn({ protectSystem: 'full', dynamicUser: false })).toEqual([]);
    const state = validateManifest(
      makeManifest([
        makeService({ env: { STATE_DIR: '/var/lib/web/db' }, hardening: { stateDirectory: ['web'] } }),
      ]),
    );
    expect(state.warnings).toEqual([]);
  });

  it('carries warnings on an invalid result too', () => {
    const result = validateManifest(makeManifest([makeService({ name: 'Bad', env: { SECRET: 'x' } })]));
    expect(result.ok).toBe(false);
    expect(result.warnings).toHaveLength(1);
  });
});

describe('the example manifest of docs/design.md', () => {
  const seed = readFileSync(new URL('../fixtures/design-example-manifest.json', import.meta.url), 'utf8');

  it('fails only on its placeholder store path, and warns about DATA_DIR', () => {
    const result = parseManifest(seed);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.map((i) => i.path)).toEqual(['services[0].artifact.storePath']);
    expect(result.warnings.map((w) => w.path)).toEqual(['services[0].env.DATA_DIR']);
  });

  it('validates with a real store path, values unchanged', () => {
    const value = JSON.parse(seed);
    value.services[0].artifact.storePath = storePath('podcastitlater-web-1.2.3');
    const result = validateManifest(value);
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.manifest).toEqual(value);
  });

  it('examples/manifest.json is valid with no warnings', () => {
    const result = parseManifest(
      readFileSync(new URL('../../examples/manifest.json', import.meta.url), 'utf8'),
    );
    expect(result).toMatchObject({ ok: true, warnings: [] });
  });
});

describe('parseManifest and assertManifest', () => {
  it('reports invalid JSON with line and column and without echoing the document', () => {
    const result = parseManifest('{\n  "version": 1,\n  "secret": "hunter2" x\n}');
    expect(result).toEqual({
      ok: false,
      warnings: [],
      issues: [
        {
          path: 'manifest',
          message:
            "invalid JSON at line 3, column 23: expected ',' or '}' after a property value, found \"x\"",
        },
      ],
    });
  });

  it('accepts a UTF-8 byte order mark', () => {
    expect(parseManifest(`\ufeff${JSON.stringify(makeManifest())}`).ok).toBe(true);
  });

  it('assertManifest throws MANIFEST_INVALID with the issues as details', () => {
    expect(assertManifest(JSON.stringify(makeManifest())).services).toHaveLength(1);
    try {
      assertManifest({ version: 1 });
      expect.unreachable();
    } catch (error) {
      expect(isDeployError(error, 'MANIFEST_INVALID')).toBe(true);
      expect((error as Error).message).toContain('generation: required, but missing');
      expect((error as { details: unknown[] }).details).toHaveLength(2);
    }
  });
});
