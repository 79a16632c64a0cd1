import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDeployer } from '../../src/cli/deployer.js';
import { releaseMemory } from '../../src/cli/deployer-run.js';
import type { CliIo } from '../../src/cli/io.js';
import { createFileStateStore } from '../../src/deployer/file-state-store.js';
import type { DeployerSettings } from '../../src/deployer/settings.js';
import { signManifest } from '../../src/manifest/index.js';
import { createWorld, http, type World } from '../deployer/world.js';

const KEY = 'cache-1:2oVYmCfS6Vd0z2eA1+Kq5pFfD0x3cN8k9YrJ8w7T6Qs=';

function cli(
  world: World | undefined,
  env: Record<string, string> = {},
  signal?: AbortSignal,
  releaseMemory?: () => void,
) {
  const out = { stdout: '', stderr: '', settings: undefined as DeployerSettings | undefined };
  const io: CliIo = {
    stdout: (t) => {
      out.stdout += t;
    },
    stderr: (t) => {
      out.stderr += t;
    },
    readText: (path) => readFile(path, 'utf8'),
    hostname: () => 'biz',
    cwd: () => '/work',
    env,
    isTTY: false,
    ...(signal ? { signal } : {}),
  };
  const run = (argv: string[]) =>
    runDeployer(argv, io, {
      ...(releaseMemory ? { releaseMemory } : {}),
      createContext: (settings, onEvent) => {
        out.settings = settings;
        if (!world) throw new Error('no world');
        return { ...world.ctx, onEvent };
      },
    });
  return { out, run };
}

async function worldWithServices() {
  const world = await createWorld();
  await world.publish(
    await world.manifestOf([
      { name: 'web', version: '1.0', overrides: http(8000) },
      { name: 'worker', version: '1.0' },
    ]),
  );
  return world;
}

describe('deployer apply', () => {
  it('resolves settings from flags, environment and config file, runs one tick, exits 0', async () => {
    const world = await worldWithServices();
    const dir = mkdtempSync(join(tmpdir(), 'omni-cli-'));
    const config = join(dir, 'deployer.json');
    writeFileSync(config, JSON.stringify({ stateDir: '/srv/state', keep: 9, deployTimeoutMs: '45s' }));
    const { out, run } = cli(world, { DEPLOYER_KEEP: '3', DEPLOYER_CONFIG: config });
    const code = await run(['apply', '--manifest', 's3://bucket/manifest.json', '--trusted-public-key', KEY]);

    expect(code).toBe(0);
    expect(out.stdout).toBe('tick applied: 2 installed\n');
    expect(out.settings).toMatchObject({
      manifest: 's3://bucket/manifest.json',
      keep: 3,
      stateDir: '/srv/state',
      deployTimeoutMs: 45_000,
      host: 'biz',
    });
    // Not a terminal: JSON lines for journald.
    const lines = out.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.find((l) => l.type === 'service.healthy')).toMatchObject({ level: 'info', service: 'web' });
  });

  it('exits 1 when a service is rolled back, and 3 when another run holds the lock', async () => {
    const world = await worldWithServices();
    const args = ['apply', '--manifest', 'x.json', '--trusted-public-key', KEY, '--config', '/dev/null/none'];
    expect(await cli(world).run(args)).toBe(2); // an explicit config file that does not exist is a usage error
    const flags = ['apply', '--manifest', 'x.json', '--trusted-public-key', KEY];
    expect(await cli(world).run(flags)).toBe(0);
    const bad = await world.build('web-2.0');
    world.crash(bad);
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '2.0', overrides: http(8000) },
        { name: 'worker', version: '1.0' },
      ]),
    );
    const rolled = cli(world);
    expect(await rolled.run(flags)).toBe(1);
    expect(rolled.out.stdout).toMatch(/^tick partial: 1 rolled-back\nweb: rolled-back \(unit/);
    await world.lock.share(7).acquire();
    expect(await cli(world).run(flags)).toBe(3);
  });

  it('exits 1 for a refused manifest, and deployer status shows why', async () => {
    const world = await worldWithServices();
    const flags = ['apply', '--manifest', 'x.json', '--trusted-public-key', KEY];
    expect(await cli(world).run(flags)).toBe(0);
    const next = await world.manifestOf([{ name: 'web', version: '2.0', overrides: http(8000) }]);
    const etag = await world.publish(next, { signWith: false });
    const refused = cli(world);
    expect(await refused.run(flags)).toBe(1);
    expect(refused.out.stdout).toContain(
      `tick invalid-manifest\nmanifest ${etag} refused, nothing changed: manifest is not signed`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'omni-status-'));
    await createFileStateStore(join(dir, 'state.json')).save(world.state.current as never);
    const { out, run } = cli(undefined);
    expect(await run(['status', '--state-dir', dir])).toBe(0);
    expect(out.stdout).toMatch(
      /\(invalid-manifest: manifest .* refused, nothing changed: manifest is not signed/,
    );
    expect(out.stdout).toMatch(
      new RegExp(`\\nmanifest ${etag} refused [^\\n]* ago \\(unsigned\\): nothing of it applied\\n`),
    );
    const json = cli(undefined);
    await json.run(['status', '--state-dir', dir, '--json']);
    expect(JSON.parse(json.out.stdout).rejected).toMatchObject({ etag, reason: 'unsigned' });
  });

  it('refuses bad settings with every problem, before touching anything', async () => {
    const world = await worldWithServices();
    // A relative path is resolved against the working directory; one that is not a plain path is refused.
    const { out, run } = cli(world, { DEPLOYER_STATE_DIR: 'my state' });
    expect(await run(['apply', '--keep', '0'])).toBe(2);
    expect(out.stderr).toContain('--manifest: required');
    expect(out.stderr).toContain(
      'DEPLOYER_STATE_DIR: expected a path of letters, digits and . _ + - (relative to the working directory), found "my state" (/work/my state)',
    );
    expect(out.stderr).toContain('--keep: expected an integer from 1 to 1000');
    expect(world.systemd.calls).toEqual([]);
  });
});

describe('deployer watch', () => {
  it('ticks until the signal aborts, then returns 0', async () => {
    const world = await worldWithServices();
    const stop = new AbortController();
    let ticks = 0;
    let released = 0;
    const { run } = cli(
      {
        ...world,
        ctx: {
          ...world.ctx,
          onEvent: () => {},
          adapters: {
            ...world.ctx.adapters,
            clock: {
              now: () => world.clock.now(),
              sleep: async (ms) => {
                // Only the watch loop sleeps a whole interval (health gates sleep seconds).
                if (ms >= 60_000 && ++ticks === 3) stop.abort();
                await world.clock.sleep(ms);
              },
            },
          },
        },
      } as World,
      {},
      stop.signal,
      () => released++,
    );
    expect(
      await run(['watch', '--manifest', 'x.json', '--trusted-public-key', KEY, '--interval', '1m']),
    ).toBe(0);
    expect(ticks).toBe(3);
    // Memory is given back after the tick that deployed, not after the idle ones.
    expect(released).toBe(1);
    expect(world.state.current?.services.web).toBeDefined();
  });
});

describe('releaseMemory', () => {
  it('runs a full garbage collection, enabling gc at run time', () => {
    expect(() => {
      releaseMemory();
      releaseMemory();
    }).not.toThrow();
  });
});

describe('deployer status', () => {
  it('prints the table from local state, or says nothing is deployed', async () => {
    const world = await worldWithServices();
    await world.tick();
    const dir = mkdtempSync(join(tmpdir(), 'omni-status-'));
    await createFileStateStore(join(dir, 'state.json')).save(world.state.current as never);
    const { out, run } = cli(undefined);
    expect(await run(['status', '--state-dir', dir])).toBe(0);
    expect(out.stdout).toMatch(
      /^host biz: generation 2025-01-15T12:00:00Z; last tick .* \(applied\)\n\nSERVICE +VERSION +REVISION +HEALTH +SINCE\nweb +web-1\.0 /,
    );
    const json = cli(undefined);
    expect(await json.run(['status', '--state-dir', dir, '--json'])).toBe(0);
    expect(JSON.parse(json.out.stdout)).toMatchObject({
      host: 'biz',
      services: [{ name: 'web' }, { name: 'worker' }],
    });
    const empty = cli(undefined);
    expect(await empty.run(['status', '--state-dir', mkdtempSync(join(tmpdir(), 'omni-empty-'))])).toBe(1);
    expect(empty.out.stderr).toContain('nothing deployed on this host yet');
  });
});

describe('deployer plan against the host state', () => {
  it('prints what the next tick would do: update with the unit lines that change, and remove', async () => {
    const world = await worldWithServices();
    await world.tick();
    const dir = mkdtempSync(join(tmpdir(), 'omni-plan-'));
    await createFileStateStore(join(dir, 'state.json')).save(world.state.current as never);
    const next = await world.manifestOf([
      { name: 'web', version: '2.0', overrides: { ...http(8000), env: { MODE: 'fast' } } },
    ]);
    writeFileSync(join(dir, 'next.json'), JSON.stringify(next));
    const { out, run } = cli(undefined);
    expect(await run(['plan', '--manifest', join(dir, 'next.json'), '--state-dir', dir])).toBe(0);
    const web1 = world.state.current?.services.web?.storePath as string;
    expect(out.stdout).toContain(
      `host biz, manifest generation ${next.generation}: 0 to install, 1 to update, 1 to remove, 0 unchanged`,
    );
    expect(out.stdout).toContain(
      `  ~ web (deploy-web.service)\n      store path ${web1} → ${next.services[0]?.artifact.storePath}\n`,
    );
    expect(out.stdout).toContain('unit + Environment="MODE=fast"');
    expect(out.stdout).toContain('  - worker (deploy-worker.service)');
    expect(
      world.systemd.calls.filter((c) => !c.startsWith('read') && !c.startsWith('status')).length,
    ).toBeGreaterThan(0);
  });
});

describe('a state file that cannot be read or parsed', () => {
  // As docs/operations.md says: a damaged state stops the command with exit 1, naming the file, and nothing
  // replaces it. A state.json that is a directory stands for any unreadable file (root reads past modes).
  it.each([
    ['unreadable', (file: string) => mkdirSync(file), /cannot read state .*state\.json: EISDIR/],
    [
      'damaged',
      (file: string) => writeFileSync(file, '{"version": 1,'),
      /.*state\.json: not valid JSON; move it aside/,
    ],
  ])('%s: apply, status and plan exit 1 naming the file', async (_, damage, message) => {
    const world = await worldWithServices();
    const dir = mkdtempSync(join(tmpdir(), 'omni-state-'));
    const file = join(dir, 'state.json');
    damage(file);
    writeFileSync(
      join(dir, 'next.json'),
      JSON.stringify(await world.manifestOf([{ name: 'web', version: '1' }])),
    );
    const broken = {
      ...world,
      ctx: { ...world.ctx, adapters: { ...world.ctx.adapters, state: createFileStateStore(file) } },
    };
    for (const argv of [
      ['apply', '--manifest', 'x.json', '--trusted-public-key', KEY, '--state-dir', dir],
      ['status', '--state-dir', dir],
      ['plan', '--manifest', join(dir, 'next.json'), '--state-dir', dir],
    ]) {
      const { out, run } = cli(broken as World);
      expect(await run(argv), argv[0]).toBe(1);
      expect(out.stderr).toMatch(new RegExp(`^deployer: ${message.source}`));
      expect(out.stdout).toBe('');
    }
    expect(world.systemd.calls).toEqual([]);
  });
});

describe('deployer plan with signed manifests', () => {
  it('checks the signature with the trusted keys of the host, as the tick would; unwraps it unchecked without any', async () => {
    const world = await worldWithServices();
    await world.tick();
    const dir = mkdtempSync(join(tmpdir(), 'omni-plan-'));
    await createFileStateStore(join(dir, 'state.json')).save(world.state.current as never);
    const next = await world.manifestOf([{ name: 'web', version: '2.0', overrides: http(8000) }]);
    const signed = signManifest(`${JSON.stringify(next, null, 2)}\n`, world.secretKey);
    writeFileSync(join(dir, 'signed.json'), signed);
    writeFileSync(join(dir, 'tampered.json'), signed.replace('web-2.0', 'web-2.1'));
    const plan = (file: string, ...more: string[]) => {
      const c = cli(undefined);
      return c
        .run(['plan', '--manifest', join(dir, file), '--state-dir', dir, ...more])
        .then((code) => ({ code, ...c.out }));
    };
    const trusted = ['--trusted-public-key', world.publicKey];
    const ok = await plan('signed.json', ...trusted);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(
      `host biz, manifest generation ${next.generation}: 0 to install, 1 to update`,
    );
    const bad = await plan('tampered.json', ...trusted);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('signature: manifest signature by key "test-1" does not verify');
    // Without a trusted key (a developer's machine): the signature is not checked.
    expect((await plan('tampered.json')).code).toBe(0);
  });
});

describe('help never runs anything', () => {
  it('deployer apply --help prints help and does not tick', async () => {
    const world = await worldWithServices();
    const { out, run } = cli(world);
    expect(await run(['apply', '--manifest', 'x', '--trusted-public-key', KEY, '--help'])).toBe(0);
    expect(out.stdout).toContain('deployer apply [settings]');
    expect(world.systemd.calls).toEqual([]);
    expect(world.manifests.objects.requests).toHaveLength(1); // only the publish
  });
});

describe('config file errors', () => {
  it('an explicit config file with invalid JSON is a usage error with its position, not its content', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'omni-cfg-'));
    const config = join(dir, 'deployer.json');
    writeFileSync(config, '{\n  "stateDir": "/srv/state",\n  "secret": hunter2\n}');
    const { out, run } = cli(undefined, { DEPLOYER_CONFIG: config });
    expect(await run(['status'])).toBe(2);
    expect(out.stderr).toContain(`config file ${config}: invalid JSON at line 3, column 13`);
    expect(out.stderr).not.toContain('hunter2');
  });
});
