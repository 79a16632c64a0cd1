/**
 * The real thing: units rendered by renderUnit, installed and run by createSystemd, in a really booted systemd
 * host (test/host). The contract suite, the byte-exact round trip of hostile values, and Node.js and Python
 * HTTP servers under the default hardening (and under the directives that break them).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertManifest, type Service } from '../../src/manifest/index.js';
import { createSystemd, renderUnit, type Systemd } from '../../src/systemd/index.js';
import { makeManifest, makeService } from '../builders.js';
import { type BootedHost, bootHost, buildService, wrapper } from '../host/index.js';
import { CONTRACT_PROGRAMS, systemdContract, waitForStatus } from './contract.js';
import { HOSTILE_VALUES } from './hostile.js';

const program = (file: string) => readFileSync(new URL(`programs/${file}`, import.meta.url), 'utf8');

let host: BootedHost;
let systemd: Systemd;
const closures = { programs: '', echo: '', node: '', python: '' };

beforeAll(async () => {
  // Built on this machine before the boot, so the container's overlay of / already holds them.
  closures.programs = await buildService({ name: 'contract-programs-1.0', files: CONTRACT_PROGRAMS });
  closures.echo = await buildService({
    name: 'echo-json-1.0',
    files: {
      'bin/echo-json': wrapper('/usr/bin/node', 'lib/echo-json.js'),
      'lib/echo-json.js': program('echo-json.js'),
    },
  });
  closures.node = await buildService({
    name: 'http-node-1.0',
    files: {
      'bin/http-node': wrapper('/usr/bin/node', 'lib/server.js'),
      'lib/server.js': program('http-node.js'),
    },
  });
  closures.python = await buildService({
    name: 'http-python-1.0',
    files: {
      'bin/http-python': wrapper('/usr/bin/python3', 'lib/server.py'),
      'lib/server.py': program('http-python.py'),
    },
  });
  host = await bootHost({
    hostname: 'biz',
    mask: ['postgresql.service', 'postgresql@15-main.service', 'caddy.service'],
  });
  systemd = createSystemd({ shell: host.shell, rootDir: host.root });
}, 180_000);

afterAll(async () => {
  await host?.stop();
});

systemdContract('createSystemd in a booted host', () => ({
  systemd,
  programs: closures.programs,
  plantFile: (name, text) => host.writeFile(`/run/systemd/system/${name}`, text),
}));

/** Validates the service through the real manifest validator, renders, installs and starts it. */
async function deploy(service: Service): Promise<string> {
  const [validated] = assertManifest(makeManifest([service])).services as [Service];
  const unit = renderUnit(validated);
  await systemd.installUnit(unit);
  await systemd.daemonReload();
  await systemd.start(unit.name);
  return unit.name;
}

const hex = (value: string) => Buffer.from(value, 'utf8').toString('hex');

describe('round trip through a real systemd', () => {
  it('hands hostile arguments and environment values to the program byte for byte', async () => {
    const env = Object.fromEntries(HOSTILE_VALUES.map((value, i) => [`HOSTILE_${i}`, value]));
    await host.writeFile('/var/lib/biz-secrets/echo.env', 'FROM_SECRETS="a secret value"\n', 0o600);
    const name = await deploy(
      makeService({
        name: 'echo',
        artifact: { type: 'nix-closure', storePath: closures.echo },
        exec: { command: 'echo-json', args: HOSTILE_VALUES },
        env,
        envFile: '/var/lib/biz-secrets/echo.env',
        systemd: { restart: 'no' },
        hardening: { stateDirectory: ['echo'] },
      }),
    );
    const status = await waitForStatus(systemd, name, (s) => s.activeState !== 'active');
    expect(status, await host.journal(name)).toMatchObject({ activeState: 'inactive', result: 'success' });
    const out = JSON.parse(await host.readFile('/var/lib/echo/out.json')) as {
      argv: string[];
      env: Record<string, string>;
      rawArgv: string[];
      rawEnv: string[];
    };
    expect(out.argv).toEqual(HOSTILE_VALUES);
    expect(out.rawArgv).toEqual(HOSTILE_VALUES.map(hex));
    for (const [key, value] of Object.entries(env)) {
      expect(out.env[key], key).toBe(value);
      expect(out.rawEnv, key).toContain(hex(`${key}=${value}`));
    }
    expect(out.env.FROM_SECRETS).toBe('a secret value');
  });
});

describe('the candidate unit of a blue/green update', () => {
  // systemd derives a dynamic user from the unit name's prefix (before "@"); a prefix over 31 characters is no
  // valid user name and becomes `_du<hash of the prefix>`: the candidate must get the same one either way.
  it.each([
    ['a short name', 'uid-web'],
    ['a name too long to be a user name', 'uid-a-service-name-of-thirty-six-chars'],
  ])('runs as the dynamic user of the service unit (%s)', async (_label, name) => {
    const [service] = assertManifest(
      makeManifest([
        makeService({
          name,
          artifact: { type: 'nix-closure', storePath: closures.programs },
          exec: { command: 'runs' },
          systemd: { restart: 'no' },
        }),
      ]),
    ).services as [Service];
    const uids: string[] = [];
    for (const unit of [renderUnit(service), renderUnit(service, { instance: 'candidate' })]) {
      await systemd.installUnit(unit);
      await systemd.daemonReload();
      await systemd.start(unit.name);
      const { mainPid } = await waitForStatus(systemd, unit.name, (s) => s.activeState === 'active');
      const uid = /^Uid:\s+(\d+)\s/m.exec(await host.readFile(`/proc/${mainPid}/status`))?.[1];
      expect(uid, await host.journal(unit.name)).toMatch(/^[1-9]\d*$/);
      uids.push(uid as string);
    }
    expect(uids[1]).toBe(uids[0]);
    for (const unit of [`deploy-${name}@next.service`, `deploy-${name}.service`]) {
      await systemd.stop(unit);
      await systemd.removeUnit(unit);
    }
  });
});

/** Starts an HTTP service and returns its answer, or why it never answered. */
async function serve(
  service: Service,
  port: number,
): Promise<{ body?: Record<string, unknown>; why?: string }> {
  const name = await deploy(service).catch((error: Error) => error.message);
  if (!name.startsWith('deploy-')) return { why: name };
  try {
    for (let i = 0; i < 100; i++) {
      const r = await host.exec('curl', ['-sf', '--max-time', '2', `http://127.0.0.1:${port}/`]);
      if (r.exitCode === 0) return { body: JSON.parse(r.stdout) };
      const s = await systemd.status(name);
      if (s.activeState !== 'active') return { why: `${s.activeState}/${s.subState} result=${s.result}` };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { why: 'no answer' };
  } finally {
    await systemd.stop(name);
  }
}

let nextPort = 18_000;
function httpService(runtime: 'node' | 'python', overrides: Record<string, unknown> = {}) {
  const port = nextPort++;
  const service = makeService({
    name: `http-${runtime}-${port}`,
    artifact: { type: 'nix-closure', storePath: runtime === 'node' ? closures.node : closures.python },
    exec: { command: `http-${runtime}` },
    systemd: { restart: 'no' },
    ...overrides,
    env: { PORT: String(port), ...(overrides.env as object | undefined) },
    hardening: { stateDirectory: [`http-${port}`], ...(overrides.hardening as object | undefined) },
  });
  return { service, port };
}

describe('the default hardening with real runtimes', () => {
  it.each(['node', 'python'] as const)(
    'a %s HTTP server starts and answers under the default',
    async (runtime) => {
      const { service, port } = httpService(runtime);
      const name = await deploy(service);
      let answer = '';
      for (let i = 0; i < 100 && !answer; i++) {
        const r = await host.exec('curl', ['-sf', '--max-time', '2', `http://127.0.0.1:${port}/`]);
        if (r.exitCode === 0) answer = r.stdout;
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(answer, await host.journal(name)).not.toBe('');
      expect(JSON.parse(answer)).toMatchObject({
        runtime,
        uuid: 36,
        gzip: 1000,
        tmp: 'ok',
        state: 'ok',
        dns: '127.0.0.1',
      });
      // The sandbox is really in force on the running process, not only written in the file.
      const { mainPid } = await systemd.status(name);
      const procStatus = await host.readFile(`/proc/${mainPid}/status`);
      expect(procStatus).toMatch(/^NoNewPrivs:\s+1$/m);
      expect(procStatus).toMatch(/^Seccomp:\s+2$/m);
      expect(procStatus).toMatch(/^CapBnd:\s+0{16}$/m);
      expect(procStatus).toMatch(/^Uid:\s+([1-9]\d*)\s/m); // a dynamic user, not root
      await systemd.stop(name);
    },
  );

  it.each([
    ['node', { hardening: { memoryDenyWriteExecute: true } }, 'dies: V8 JIT needs W+X memory'],
    ['node', { hardening: { memoryDenyWriteExecute: true }, env: { NODE_OPTIONS: '--jitless' } }, 'answers'],
    ['python', { hardening: { memoryDenyWriteExecute: true } }, 'answers'],
  ] as const)('%s with %j %s', async (runtime, overrides, expected) => {
    const { service, port } = httpService(runtime, overrides);
    const outcome = await serve(service, port);
    if (expected === 'answers') expect(outcome.body, outcome.why).toMatchObject({ runtime, tmp: 'ok' });
    else expect(outcome.why).toMatch(/^failed\/failed result=(signal|core-dump)$/);
  });

  it.each([
    ['node', {}, { cpus: expect.any(Number) }],
    ['node', { procSubset: 'pid' }, { cpus: 0 }],
    ['node', {}, { interfaces: 'error: ERR_SYSTEM_ERROR' }],
    [
      'node',
      { restrictAddressFamilies: ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK'] },
      { interfaces: 1 },
    ],
    ['python', {}, { interfaces: expect.stringMatching(/Address family not supported/) }],
    [
      'python',
      { restrictAddressFamilies: ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK'] },
      { interfaces: 1 },
    ],
  ] as const)('%s with hardening %j sees %j', async (runtime, hardening, expected) => {
    const { service, port } = httpService(runtime, { hardening });
    const outcome = await serve(service, port);
    expect(outcome.body, outcome.why).toMatchObject(expected);
    if (runtime === 'node' && !('procSubset' in hardening) && 'cpus' in expected)
      expect(outcome.body?.cpus).toBeGreaterThan(0);
  });
});
