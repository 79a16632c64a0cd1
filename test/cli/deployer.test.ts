import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runDeployer } from '../../src/cli/deployer.js';
import type { CliIo } from '../../src/cli/io.js';
import { type Service, signManifest } from '../../src/manifest/index.js';
import { renderUnit } from '../../src/systemd/index.js';
import { makeManifest, makeService, storePath } from '../builders.js';
import { makeKeyPair } from '../support/local-cache.js';

/** The fake process's working directory: `files` are relative to it. */
const CWD = '/work';

/** Runs the CLI in-process against in-memory files; what it writes goes to `written` (or fails: `readOnly`). */
async function cli(
  argv: string[],
  files: Record<string, string> = {},
  { written = {}, readOnly = false }: { written?: Record<string, string>; readOnly?: boolean } = {},
) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    writeText: async (path, text) => {
      if (readOnly) throw Object.assign(new Error(`EACCES: ${path}`), { code: 'EACCES' });
      written[path] = text;
    },
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    readText: async (path) => {
      const text = files[path.startsWith(`${CWD}/`) ? path.slice(CWD.length + 1) : path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return text;
    },
    hostname: () => 'biz',
    cwd: () => CWD,
  };
  const code = await runDeployer(argv, io);
  return { code, stdout, stderr };
}

const good = JSON.stringify(
  makeManifest([makeService({ name: 'web' }), makeService({ name: 'api', hosts: ['other'] })]),
);

describe('deployer validate', () => {
  it('exits 0 with a one-line summary', async () => {
    const r = await cli(['validate', 'm.json', '--host', 'biz'], { 'm.json': good });
    expect(r).toEqual({
      code: 0,
      stdout:
        'm.json: valid manifest v1, generation 2025-01-15T12:34:56Z, 2 services; host biz runs 1: web\n',
      stderr: '',
    });
  });

  it('prints warnings on stderr and still exits 0', async () => {
    const m = JSON.stringify(makeManifest([makeService({ env: { API_TOKEN: 'x' } })]));
    const r = await cli(['validate', 'm.json'], { 'm.json': m });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 warning(s)');
    expect(r.stderr).toBe(
      'warning: services[0].env.API_TOKEN: looks like a secret; the manifest is stored in plain text, so put it in the envFile instead\n',
    );
  });

  it.each([
    ['traversal in name', { name: '../../etc' }, 'services[0].name'],
    [
      'traversal in storePath',
      { artifact: { type: 'nix-closure', storePath: `${storePath('x')}/../../etc` } },
      'services[0].artifact.storePath',
    ],
    ['traversal in command', { exec: { command: '../../../bin/sh' } }, 'services[0].exec.command'],
    ['traversal in envFile', { envFile: '/var/lib/biz-secrets/../../../etc/shadow' }, 'services[0].envFile'],
    ['newline in env value', { env: { A: 'x\nExecStartPre=/bin/rm -rf /' } }, 'services[0].env.A'],
    [
      'newline in unit name',
      { systemd: { after: ['a.service\nExecStartPre=/bin/sh'] } },
      'services[0].systemd.after[0]',
    ],
    ['wrong type', { hosts: 'biz' }, 'services[0].hosts'],
  ])('refuses a hostile manifest (%s), naming the field, exit 1', async (_name, overrides, path) => {
    const r = await cli(['validate', 'm.json'], {
      'm.json': JSON.stringify(makeManifest([makeService(overrides)])),
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      new RegExp(`^m\\.json: invalid manifest, \\d problem\\(s\\):\\n${path.replace(/[[\].]/g, '\\$&')}: `),
    );
    // The hostile newline never reaches the output raw: every issue is one line.
    expect(
      r.stderr
        .split('\n')
        .filter((l) => l && !l.startsWith('m.json'))
        .every((l) => /^[\w[\]."]+: /.test(l)),
    ).toBe(true);
  });

  it('refuses duplicate routes and ports', async () => {
    const http = { domain: 'a.com', path: '/', internalPort: 8000 };
    const m = JSON.stringify(
      makeManifest([makeService({ name: 'a', http }), makeService({ name: 'b', http })]),
    );
    const r = await cli(['validate', 'm.json'], { 'm.json': m });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('services[1].http: route a.com/ is already served by services[0] (a)');
    expect(r.stderr).toContain(
      'services[1].http.internalPort: port 8000 on host biz is already used by services[0] (a)',
    );
  });

  describe('signed manifests', () => {
    const one = makeKeyPair('cache-1');
    const two = makeKeyPair('cache-2');
    const signed = signManifest(`${good}\n`, one.secretKey);

    it('with --trusted-public-key: signed by it → 0, saying so', async () => {
      const r = await cli(
        ['validate', 'm.json', '--trusted-public-key', two.publicKey, '--trusted-public-key', one.publicKey],
        { 'm.json': signed },
      );
      expect(r).toEqual({
        code: 0,
        stdout:
          'm.json: valid manifest v1, generation 2025-01-15T12:34:56Z, 2 services; signed by cache-1, verified\n',
        stderr: '',
      });
    });

    it.each([
      [
        'tampered (one byte changed)',
        signed.replace('"web', '"wab'),
        'signature: manifest signature by key "cache-1" does not verify: the manifest was changed after it was signed',
      ],
      ['unsigned', good, 'signature: manifest is not signed: expected a signed manifest'],
      [
        'signed by another key',
        signManifest(`${good}\n`, two.secretKey),
        'signature: manifest signature by key "cache-2" is not trusted here (trusted: "cache-1")',
      ],
      [
        'a damaged envelope',
        signed.replace('"formatVersion":1', '"formatVersion":"1"'),
        'signature: malformed signed manifest: formatVersion: expected 1, found "1"',
      ],
    ])('with --trusted-public-key: %s → 1, naming the signature', async (_label, text, message) => {
      const r = await cli(['validate', 'm.json', '--trusted-public-key', one.publicKey], { 'm.json': text });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`m.json: invalid manifest, 1 problem(s):\n${message}`);
      const json = await cli(['validate', 'm.json', '--json', '--trusted-public-key', one.publicKey], {
        'm.json': text,
      });
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, issues: [{ path: 'signature' }] });
    });

    it('without a trusted key: a signed manifest is unwrapped (its signature not checked), a plain one read as it is', async () => {
      const r = await cli(['validate', 'm.json', '--json'], { 'm.json': signed });
      expect(JSON.parse(r.stdout)).toMatchObject({
        ok: true,
        services: ['web', 'api'],
        signature: 'signed by cache-1, not verified (no trusted public key given)',
      });
      const invalid = signManifest(
        JSON.stringify(makeManifest([makeService({ name: '../x' })])),
        one.secretKey,
      );
      expect((await cli(['validate', 'm.json'], { 'm.json': invalid })).stderr).toContain('services[0].name');
      expect((await cli(['validate', 'm.json'], { 'm.json': good })).code).toBe(0);
    });

    it('refuses a trusted key that is not a public key, as a usage error', async () => {
      const r = await cli(['validate', 'm.json', '--trusted-public-key', one.secretKey], {
        'm.json': signed,
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--trusted-public-key: expected Nix public keys');
    });
  });

  it('--json prints a machine-readable result for valid and invalid manifests', async () => {
    const ok = await cli(['validate', 'm.json', '--json'], { 'm.json': good });
    expect(JSON.parse(ok.stdout)).toEqual({
      ok: true,
      file: 'm.json',
      generation: '2025-01-15T12:34:56Z',
      services: ['web', 'api'],
      warnings: [],
    });
    const bad = await cli(['validate', 'm.json', '--json'], { 'm.json': '{"version": 2}' });
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toEqual({
      ok: false,
      file: 'm.json',
      issues: [{ path: 'version', message: 'unsupported manifest version 2; this deployer reads 1' }],
      warnings: [],
    });
  });

  // A usage error names the command it belongs to and points to that command's help.
  it.each([
    [['validate'], 'deployer validate'],
    [['validate', 'a', 'b'], 'deployer validate'],
    [['validate', 'm.json', '--bogus'], 'deployer validate'],
    [['validate', 'm.json', '--host', 'bad_host!'], 'deployer validate'],
    [['frobnicate'], 'deployer'],
  ])('exits 2 on usage errors: %j', async (argv, name) => {
    const r = await cli(argv, { 'm.json': good });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^${name}: .+\\nRun ${name} --help for usage\\.\\n$`));
  });

  it('exits 2 when the file cannot be read, naming it', async () => {
    expect(await cli(['validate', 'missing.json'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'deployer: cannot read missing.json: ENOENT\n',
    });
  });

  it('--help and --version exit 0', async () => {
    expect((await cli(['--help'])).stdout).toContain('deployer validate <file|->');
    expect((await cli(['validate', '--help'])).code).toBe(0);
    expect((await cli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describe('deployer validate and plan apply the host policy', () => {
  const evil = JSON.stringify(
    makeManifest([
      makeService({ name: 'web', exec: { command: 'web', user: 'pil-web' } }),
      makeService({ name: 'rooted', exec: { command: 'rooted', user: 'root' } }),
      makeService({ name: 'shell', hosts: ['other'], systemd: { wants: ['debug-shell.service'] } }),
    ]),
  );

  it('validate refuses what the default policy refuses, naming the field and the rule: exit 1', async () => {
    const r = await cli(['validate', 'm.json'], { 'm.json': evil });
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: [
        'm.json: refused by the host policy, 2 problem(s) (service(s) rooted, shell; docs/security.md):',
        'services[1].exec.user: "root" runs the service as uid 0 (rule user.root)',
        'services[2].systemd.wants[0]: starting the service would start "debug-shell.service"; wants may name network.target, network-online.target, nss-lookup.target, time-sync.target, remote-fs.target, this deployer\'s services (deploy-<service>.service) and units the host allows (policy.allowUnits); "after" orders without starting (rule dependency.unit)',
        '',
      ].join('\n'),
    });
    const json = await cli(['validate', 'm.json', '--json', '--host', 'other'], { 'm.json': evil });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      ok: false,
      file: 'm.json',
      generation: '2025-01-15T12:34:56Z',
      services: ['web', 'rooted', 'shell'],
      refused: ['shell'],
      issues: [expect.objectContaining({ path: 'services[2].systemd.wants[0]', rule: 'dependency.unit' })],
      warnings: [],
    });
  });

  it("validate --config takes the host's policy and the locations it protects from the config file", async () => {
    const config = JSON.stringify({
      stateDir: '/srv/deployer',
      policy: { users: ['pil-web'], allowUnits: ['debug-shell.service'] },
    });
    const m = JSON.stringify(
      makeManifest([
        makeService({ name: 'web', exec: { command: 'web', user: 'pil-web' } }),
        makeService({ name: 'db', exec: { command: 'db', user: 'postgres' } }),
        makeService({ name: 'shell', systemd: { wants: ['debug-shell.service'] } }),
        makeService({ name: 'peek', hardening: { readWritePaths: ['/srv/deployer'] } }),
      ]),
    );
    const r = await cli(['validate', 'm.json', '--config', 'cfg.json', '--json'], {
      'm.json': m,
      'cfg.json': config,
    });
    expect(r.code).toBe(1);
    expect(
      JSON.parse(r.stdout).issues.map((i: { path: string; rule: string }) => `${i.path} ${i.rule}`),
    ).toEqual([
      'services[1].exec.user user.not-allowed',
      'services[3].hardening.readWritePaths[0] read-write-paths.deployer',
    ]);
    const bad = await cli(['validate', 'm.json', '--config', 'cfg.json'], {
      'm.json': m,
      'cfg.json': JSON.stringify({ policy: { users: ['root'] } }),
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      '/work/cfg.json: policy.users[0]: no service runs as root; remove it from the list',
    );
  });

  it('plan shows the refused services of this host and exits 1; --units-out writes nothing', async () => {
    const written: Record<string, string> = {};
    const r = await cli(
      ['plan', '--manifest', 'm.json', '--host', 'biz', '--state-dir', 'state', '--units-out', 'out'],
      { 'm.json': evil },
      { written },
    );
    expect(r.code).toBe(1);
    expect(written).toEqual({});
    expect(r.stderr).toMatch(
      /^\/work\/m\.json: refused by the host policy, 1 problem\(s\) \(service\(s\) rooted; /,
    );
    expect(r.stdout).toContain(
      '\n  ! rooted: refused: policy: services[1].exec.user: "root" runs the service as uid 0 (rule user.root)\nno unit files written to out: the host policy refuses the manifest\n',
    );
    expect(r.stdout).toContain('+ web (deploy-web.service)');
    const json = await cli(['plan', '--manifest', 'm.json', '--json'], { 'm.json': evil });
    expect(JSON.parse(json.stdout)).toMatchObject({
      refused: [{ service: 'rooted', issues: [{ rule: 'user.root', path: 'services[1].exec.user' }] }],
      policy: { refused: ['rooted'] },
    });
    const previous = await cli(['plan', '--manifest', 'm.json', '--previous', 'prev.json'], {
      'm.json': evil,
      'prev.json': good,
    });
    expect(previous.code).toBe(1);
    expect(previous.stderr).toContain(
      'services[1].exec.user: "root" runs the service as uid 0 (rule user.root)',
    );
    const other = await cli(['plan', '--manifest', 'm.json', '--host', 'elsewhere'], { 'm.json': evil });
    expect(other.code).toBe(0);
  });
});

describe('deployer plan', () => {
  it('shows the changes for this host against a previous manifest', async () => {
    const next = JSON.stringify(
      makeManifest([makeService({ name: 'web', revision: 'b' }), makeService({ name: 'new' })], {
        generation: '2025-02-01T00:00:00Z',
      }),
    );
    const r = await cli(['plan', '--manifest', 'next.json', '--previous', 'prev.json'], {
      'next.json': next,
      'prev.json': good,
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('host biz: 1 added, 1 changed, 0 removed, 0 unchanged');
    expect(r.stdout).toContain('~ web  fields: revision');
  });

  describe('--units-out', () => {
    const services = [
      makeService({ name: 'web', env: { GREETING: 'a "b" %n $HOME' } }),
      makeService({ name: 'api', hosts: ['other'] }),
      makeService({ name: 'worker', hosts: ['other', 'biz'], exec: { command: 'worker', user: 'w' } }),
    ];
    const manifest = JSON.stringify(makeManifest(services));

    it("writes exactly the host's unit files, as renderUnit renders them, and lists them", async () => {
      const written: Record<string, string> = {};
      const r = await cli(
        ['plan', '--manifest', 'm.json', '--host', 'biz', '--units-out', 'out'],
        { 'm.json': manifest },
        { written },
      );
      expect(r.code).toBe(0);
      expect(written).toEqual({
        'out/deploy-web.service': renderUnit(services[0] as Service).text,
        'out/deploy-worker.service': renderUnit(services[2] as Service).text,
      });
      expect(r.stdout).toContain(
        '2 unit file(s) for host biz written to out\n  out/deploy-web.service\n  out/deploy-worker.service\n',
      );
    });

    it('adds the file list to --json and leaves the plain plan unchanged', async () => {
      const r = await cli(['plan', '--manifest', 'm.json', '--units-out', 'out', '--json'], {
        'm.json': manifest,
      });
      expect(JSON.parse(r.stdout).unitFiles).toEqual(['out/deploy-web.service', 'out/deploy-worker.service']);
      const written: Record<string, string> = {};
      const plain = await cli(
        ['plan', '--manifest', 'm.json', '--json'],
        { 'm.json': manifest },
        { written },
      );
      expect(JSON.parse(plain.stdout).unitFiles).toBeUndefined();
      expect(written).toEqual({});
    });

    it('writes nothing for an invalid manifest', async () => {
      const bad = JSON.stringify(makeManifest([makeService({ env: { A: 'x\nExecStartPre=/bin/sh' } })]));
      const written: Record<string, string> = {};
      const r = await cli(
        ['plan', '--manifest', 'm.json', '--units-out', 'out'],
        { 'm.json': bad },
        { written },
      );
      expect(r.code).toBe(1);
      expect(written).toEqual({});
    });

    it('exits 2 naming the file when the directory is not writable', async () => {
      const r = await cli(
        ['plan', '--manifest', 'm.json', '--units-out', '/ro'],
        { 'm.json': manifest },
        { readOnly: true },
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('deployer: cannot write /ro/deploy-web.service: EACCES\n');
    });
  });

  it('refuses an invalid manifest with exit 1', async () => {
    const r = await cli(['plan', '--manifest', 'm.json'], { 'm.json': '{' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'm.json: invalid manifest, 1 problem(s):\nmanifest: invalid JSON at line 1, column 2',
    );
  });
});

describe('the real executable', () => {
  const bin = new URL('../../bin/deployer.ts', import.meta.url).pathname;
  const run = promisify(execFile);
  const exec = (args: string[], input?: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['--import', 'tsx', bin, ...args], (error, stdout, stderr) =>
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
      );
      child.stdin?.end(input ?? '');
    });

  it('reads a manifest from stdin with - and sets the exit code', async () => {
    const ok = await exec(['validate', '-', '--host', 'biz'], good);
    expect(ok).toMatchObject({
      code: 0,
      stdout: '-: valid manifest v1, generation 2025-01-15T12:34:56Z, 2 services; host biz runs 1: web\n',
    });
    expect((await exec(['validate', '-'], '{"version":1}')).code).toBe(1);
    expect((await exec(['validate'])).code).toBe(2);
  });

  it('plan --units-out writes the example host units into the directory and nothing else', async () => {
    const example = new URL('../../examples/manifest.json', import.meta.url).pathname;
    const out = join(await mkdtemp(join(tmpdir(), 'omni-units-')), 'units');
    try {
      const r = await exec(['plan', '--manifest', example, '--host', 'biz', '--units-out', out]);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect((await readdir(out)).sort()).toEqual([
        'deploy-podcastitlater-web.service',
        'deploy-podcastitlater-worker.service',
        'deploy-storybook.service',
      ]);
      const web = await readFile(join(out, 'deploy-podcastitlater-web.service'), 'utf8');
      expect(web).toContain(
        '\nExecStart=/nix/store/9k5rjf05kdgpyyb211006vz4gr33czal-podcastitlater-web-1.2.4/bin/podcastitlater-web\n',
      );
    } finally {
      await rm(dirname(out), { recursive: true, force: true });
    }
  });

  it('validates the shipped example', async () => {
    const example = new URL('../../examples/manifest.json', import.meta.url).pathname;
    const { stdout } = await run(process.execPath, ['--import', 'tsx', bin, 'validate', example]);
    expect(stdout).toContain('valid manifest v1');
    expect(JSON.parse(await readFile(example, 'utf8')).services).toHaveLength(3);
  });
});
