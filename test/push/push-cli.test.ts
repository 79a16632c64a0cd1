import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { runPush } from '../../src/cli/push.js';
import { type Manifest, signManifest, verifyManifest } from '../../src/manifest/index.js';
import type { PushContext } from '../../src/push/context.js';
import { judgeHost, waitForHosts } from '../../src/push/wait.js';
import type { DeployerEvent } from '../../src/runtime/events.js';
import {
  createFakeClock,
  createFakeNix,
  createFakeShell,
  createMemoryManifestStore,
  createMemoryObjectStore,
  type MemoryObjectStore,
} from '../../src/testing/index.js';
import { makeManifest, storePath } from '../builders.js';
import { makeKeyPair } from '../support/local-cache.js';

/** push's signing key, in deploy/push.sk; NIX_CACHE_KEY names that file in these tests. */
const KEY = makeKeyPair('push-1');

const spec = (name: string, port: number) => ({
  name,
  hosts: ['biz'],
  exec: { command: name },
  http: { domain: 'example.com', path: name === 'web' ? '/' : `/${name}`, internalPort: port },
});

/** A narinfo as `nix copy --to` writes it (fields the parser checks), referring to `references`. */
function narinfo(path: string, references: string[] = []): string {
  const base = path.slice('/nix/store/'.length);
  const nar = createHash('sha256')
    .update(path)
    .digest('hex')
    .slice(0, 52)
    .replace(/[eotu]/g, '0');
  return [
    `StorePath: ${path}`,
    `URL: nar/${nar}.nar.xz`,
    'Compression: xz',
    `NarHash: sha256:${'1'.repeat(52)}`,
    'NarSize: 1024',
    `References: ${[base, ...references.map((r) => r.slice('/nix/store/'.length))].join(' ')}`,
    `Sig: test-1:${'A'.repeat(86)}==`,
    '',
  ].join('\n');
}

/** Puts a closure (path + references) into a memory cache, as an upload would. */
function seed(cache: MemoryObjectStore, path: string, references: string[] = []) {
  const text = narinfo(path, references);
  const url = /URL: (\S+)/.exec(text)?.[1] as string;
  const hash = path.slice(11, 43);
  cache.objects.set(`${hash}.narinfo`, {
    body: new TextEncoder().encode(text),
    etag: `"${hash}"`,
    lastModified: new Date(),
  });
  cache.objects.set(url, { body: new Uint8Array(1024), etag: `"${hash}n"`, lastModified: new Date() });
}

/** The manifest inside a signed manifest's text (or the text itself). */
function payloadOf(text: string): Manifest {
  const value = JSON.parse(text) as Manifest | { payload: string };
  return 'payload' in value ? (JSON.parse(value.payload) as Manifest) : value;
}

function world(env: Record<string, string> = { NIX_CACHE_KEY: '/repo/deploy/push.sk' }) {
  const manifests = createMemoryManifestStore();
  const cache = createMemoryObjectStore({ name: 'cache' });
  const clock = createFakeClock();
  const shell = createFakeShell();
  const files: Record<string, string> = {
    'deploy/web.json': JSON.stringify(spec('web', 8000)),
    'deploy/api.json': JSON.stringify(spec('api', 8001)),
    'deploy/push.sk': `${KEY.secretKey}\n`,
  };
  const events: DeployerEvent[] = [];
  const ctx: PushContext = {
    manifests,
    cache,
    nix: createFakeNix(),
    shell,
    clock,
    onEvent: (e) => events.push(e),
    secretsDir: '/var/lib/biz-secrets',
  };
  const run = async (argv: string[]) => {
    const out = { stdout: '', stderr: '' };
    const io: CliIo = {
      stdout: (t) => {
        out.stdout += t;
      },
      stderr: (t) => {
        out.stderr += t;
      },
      // `files` are relative to the working directory, /repo.
      readText: async (path) => {
        const text = files[path.startsWith('/repo/') ? path.slice('/repo/'.length) : path];
        if (text === undefined) throw Object.assign(new Error(path), { code: 'ENOENT' });
        return text;
      },
      hostname: () => 'dev',
      cwd: () => '/repo',
      env,
      isTTY: false,
    };
    const code = await runPush(argv, io, { createContext: () => ctx });
    return { code, ...out };
  };
  const current = async () => {
    const read = await manifests.read();
    return read.status === 'found' ? payloadOf(read.text) : undefined;
  };
  return { ctx, manifests, cache, clock, shell, files, run, current, events };
}

describe('push deploy', () => {
  it('sets the service from its spec, the store path and revision, archives the previous manifest', async () => {
    const w = world();
    seed(w.cache, storePath('web-1'));
    seed(w.cache, storePath('web-2'));
    expect(
      (
        await w.run([
          'deploy',
          'web',
          '--manifest',
          'x',
          '--store-path',
          storePath('web-1'),
          '--revision',
          'r1',
        ])
      ).code,
    ).toBe(0);
    const r = await w.run([
      'deploy',
      'web',
      '--manifest',
      'x',
      '--store-path',
      storePath('web-2'),
      '--revision',
      'r2',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /manifest generation .*: web → .*web-2; previous archived as \d{8}T\d{6}\.\d{3}Z/,
    );
    const m = await w.current();
    expect(m?.services).toEqual([
      {
        ...spec('web', 8000),
        artifact: { type: 'nix-closure', storePath: storePath('web-2') },
        revision: 'r2',
      },
    ]);
    expect(await w.manifests.listArchives()).toHaveLength(1);
  });

  it('writes nothing when the service is already exactly so', async () => {
    const w = world();
    seed(w.cache, storePath('web-1'));
    await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath('web-1'), '--revision', 'r1']);
    const puts = () => w.manifests.objects.requests.filter((q) => q.method === 'PUT').length;
    const before = puts();
    const r = await w.run([
      'deploy',
      'web',
      '--manifest',
      'x',
      '--store-path',
      storePath('web-1'),
      '--revision',
      'r1',
    ]);
    expect(r.stdout).toContain('nothing written');
    expect(puts()).toBe(before);
  });

  it('refuses a closure the hosts could not pull (not in the cache, not here to upload)', async () => {
    const w = world();
    const r = await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath('web-1')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${storePath('web-1')} is neither in the binary cache memory://cache/ nor in this machine's Nix store`,
    );
    expect(await w.current()).toBeUndefined();
  });

  it.each([
    ['deploy', ['deploy', 'web', '--build', 'make {target}']],
    ['deploy', ['deploy', 'web', '--store-path', storePath('web-1')]],
    ['rollback', ['rollback']],
    ['init', ['init']],
  ])('push %s without a key is a usage error before anything is built or written', async (command, argv) => {
    const w = world({});
    seed(w.cache, storePath('web-1'));
    const r = await w.run([...argv, '--manifest', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `push ${command} signs the manifest it writes and needs the signing key: --key-file FILE (or - for standard input), NIX_CACHE_KEY, or "keyFile" in the config file; nothing was done`,
    );
    expect(w.shell.calls).toEqual([]);
    expect(w.manifests.objects.requests.filter((q) => q.method !== 'GET')).toEqual([]);
  });

  it('refuses a spec that would make the manifest invalid, writing nothing', async () => {
    const w = world();
    seed(w.cache, storePath('web-1'));
    seed(w.cache, storePath('api-1'));
    w.files['deploy/api.json'] = JSON.stringify(spec('api', 8000)); // same port as web on biz
    await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath('web-1')]);
    const r = await w.run(['deploy', 'api', '--manifest', 'x', '--store-path', storePath('api-1')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('port 8000 on host biz is already used by services[0] (web)');
    expect((await w.current())?.services.map((s) => s.name)).toEqual(['web']);
  });

  it('two concurrent pushes of different services both land (compare-and-swap, re-read, re-apply)', async () => {
    const w = world();
    seed(w.cache, storePath('web-1'));
    seed(w.cache, storePath('api-1'));
    await w.manifests.write(signManifest(JSON.stringify(makeManifest([])), KEY.secretKey), {
      ifNoneMatch: '*',
    });
    const [a, b] = await Promise.all([
      w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath('web-1')]),
      w.run(['deploy', 'api', '--manifest', 'x', '--store-path', storePath('api-1')]),
    ]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect((await w.current())?.services.map((s) => s.name).sort()).toEqual(['api', 'web']);
    // They really collided: one write was refused and re-applied on the newer manifest.
    expect(w.events.filter((e) => e.type === 'push.conflict')).toHaveLength(1);
  });

  it('--plan says what changes on every host and writes nothing', async () => {
    const w = world();
    seed(w.cache, storePath('web-1'));
    await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath('web-1')]);
    const requests = w.manifests.objects.requests.length;
    const r = await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath('web-2'), '--plan']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  ~ web ');
    expect(r.stdout).toContain('host biz, manifest generation');
    expect(r.stdout).toContain(`store path ${storePath('web-1')} → ${storePath('web-2')}`);
    expect(r.stdout).toContain('nothing was written (--plan)');
    expect(w.manifests.objects.requests.slice(requests).every((q) => q.method === 'GET')).toBe(true);
  });

  it('--plan applies the default host policy: a service a default host would refuse is shown as refused', async () => {
    const w = world();
    seed(w.cache, storePath('web-2'));
    w.files['deploy/web.json'] = JSON.stringify({
      ...spec('web', 8000),
      exec: { command: 'web', user: 'root' },
    });
    const r = await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath('web-2'), '--plan']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /! web: would be refused: policy: services\[0\]\.exec\.user: .*\(rule user\.root\)/,
    );
    expect(r.stdout).toContain('nothing was written (--plan)');
  });

  it('builds with the build command, passing the target as one argument, and takes the printed store path', async () => {
    const w = world();
    seed(w.cache, storePath('web-7'));
    w.shell.on(({ command, args }) =>
      command === '/bin/sh' && args[3] === 'web'
        ? { stdout: `building...\n${storePath('web-7')}\n` }
        : command === 'git'
          ? { exitCode: 128 }
          : undefined,
    );
    const r = await w.run(['deploy', 'web', '--manifest', 'x', '--build', 'make {target}']);
    expect(r.code).toBe(0);
    expect(w.shell.calls[0]).toMatchObject({
      command: '/bin/sh',
      args: ['-c', 'make "$1"', 'push-build', 'web'],
    });
    expect((await w.current())?.services[0]?.artifact.storePath).toBe(storePath('web-7'));
  });
});

describe('push rollback and history', () => {
  it('writes the services of the manifest before the current one under a new generation, signed, and history shows the rollback', async () => {
    const w = world();
    for (const v of ['1', '2', '3']) {
      seed(w.cache, storePath(`web-${v}`));
      w.clock.advance(1000);
      await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath(`web-${v}`)]);
    }
    const history = await w.run(['history', '--manifest', 'x']);
    expect(history.stdout.split('\n')[0]).toMatch(/^ARCHIVE +GENERATION +THEN CHANGED$/);
    expect(history.stdout).toContain('~web');
    const archives = await w.manifests.listArchives();
    const before = await w.current();
    const archived = (await w.manifests.readArchive(archives[0]?.id as string)).text;
    const r = await w.run(['rollback', '--manifest', 'x', '--steps', '1']);
    expect(r.code).toBe(0);
    const now = await w.current();
    expect(now?.services).toEqual(payloadOf(archived).services);
    expect(now?.services[0]?.artifact.storePath).toBe(storePath('web-2'));
    // Not the archive put back (hosts would refuse its older generation): a new manifest, signed anew.
    expect(Date.parse(now?.generation as string)).toBeGreaterThan(Date.parse(before?.generation as string));
    expect(now?.rollbackOf).toBe(archives[0]?.id);
    const read = await w.manifests.read();
    expect(read.status === 'found' && verifyManifest(read.text, [KEY.publicKey]).ok).toBe(true);
    expect(r.stdout).toContain(
      `restored the services of ${archives[0]?.id} (generation ${payloadOf(archived).generation}) as generation ${now?.generation}, signed by push-1`,
    );
    const after = await w.run(['history', '--manifest', 'x']);
    expect(after.stdout.split('\n')[1]).toMatch(
      new RegExp(`^current +${now?.generation} \\(rollback to ${archives[0]?.id}\\) +-$`),
    );
    const json = JSON.parse((await w.run(['history', '--manifest', 'x', '--json'])).stdout);
    expect(json[0]).toEqual({
      id: 'current',
      generation: now?.generation,
      rollbackOf: archives[0]?.id,
      changedAfter: [],
    });
    expect((await w.run(['rollback', '--manifest', 'x', '--steps', '9'])).stderr).toContain(
      'only 3 archived manifest(s) exist',
    );
  });

  it('refuses to build on a current manifest or an archive that does not verify; rollback replaces a tampered current one', async () => {
    const w = world();
    for (const v of ['1', '2']) {
      seed(w.cache, storePath(`web-${v}`));
      w.clock.advance(1000);
      await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath(`web-${v}`)]);
    }
    // Someone with write access to the bucket changes one byte of the current manifest.
    const read = await w.manifests.read();
    if (read.status !== 'found') throw new Error('expected a manifest');
    const tampered = read.text.replace(storePath('web-2'), storePath('web-6'));
    await w.manifests.write(tampered, { ifMatch: read.etag });
    seed(w.cache, storePath('web-3'));
    const deploy = await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath('web-3')]);
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toContain(
      'the current manifest at memory://store/manifest.json does not verify, so push does not build on it; nothing was written: manifest signature by key "push-1" does not verify',
    );
    expect((await w.current())?.services[0]?.artifact.storePath).toBe(storePath('web-6'));
    // The way back: rollback builds on the signed archive, and replaces the tampered manifest.
    const back = await w.run(['rollback', '--manifest', 'x', '--steps', '1']);
    expect(back.code, back.stderr).toBe(0);
    expect(w.events.find((e) => e.type === 'push.current-unverified')?.message).toContain(
      'the current manifest is replaced, not built on: the current manifest at memory://store/manifest.json does not verify',
    );
    expect((await w.current())?.services[0]?.artifact.storePath).toBe(storePath('web-1'));
    // An archive that does not verify is not restored.
    const newest = (await w.manifests.listArchives())[0];
    const r = await w.run(['rollback', '--manifest', 'x', '--to', newest?.id as string]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`archived manifest ${newest?.id} does not verify`);
  });
});

describe('push and key rotation', () => {
  it('builds on a manifest signed by the old key only with that key trusted, and on an unsigned one only when told', async () => {
    const w = world();
    seed(w.cache, storePath('web-1'));
    seed(w.cache, storePath('web-2'));
    await w.manifests.write(`${JSON.stringify(makeManifest([]), null, 2)}\n`, { ifNoneMatch: '*' });
    const unsigned = await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath('web-1')]);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain(
      'manifest is not signed: expected a signed manifest ({"format":"omni-deploy-signed-manifest", ..., "signature": {...}}), found a plain manifest (while migrating from unsigned manifests, pass --insecure-allow-unsigned-manifest once)',
    );
    const migrated = await w.run([
      'deploy',
      'web',
      '--manifest',
      'x',
      '--store-path',
      storePath('web-1'),
      '--insecure-allow-unsigned-manifest',
    ]);
    expect(migrated.code, migrated.stderr).toBe(0);

    // push switches to a new key: the manifest in the bucket is still signed by the old one.
    const next = makeKeyPair('push-2');
    w.files['deploy/push2.sk'] = next.secretKey;
    const argv = ['deploy', 'web', '--manifest', 'x', '--key-file', 'deploy/push2.sk', '--store-path'];
    const refused = await w.run([...argv, storePath('web-2')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'manifest signature by key "push-1" is not trusted here (trusted: "push-2") (during a key rotation, pass the old public key with --trusted-public-key)',
    );
    const rotated = await w.run([...argv, storePath('web-2'), '--trusted-public-key', KEY.publicKey]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain('signed by push-2');
    const read = await w.manifests.read();
    expect(read.status === 'found' && verifyManifest(read.text, [next.publicKey]).ok).toBe(true);
    // From now on the new key alone is enough.
    w.clock.advance(1000);
    const again = await w.run([...argv, storePath('web-1')]);
    expect(again.code, again.stderr).toBe(0);
  });
});

describe('push rollback that would change nothing', () => {
  it('says so and exits 1, writing nothing, when the archive has the same services as the current manifest', async () => {
    const w = world();
    for (const v of ['1', '2']) {
      seed(w.cache, storePath(`web-${v}`));
      w.clock.advance(1000);
      await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath(`web-${v}`)]);
    }
    // An interrupted push: the current manifest was archived, the new one never written. The archive differs
    // in bytes (another generation, other formatting), not in services.
    const before = await w.manifests.read();
    if (before.status !== 'found') throw new Error('no manifest');
    const same = payloadOf(before.text);
    same.generation = '2020-01-01T00:00:00Z';
    w.clock.advance(1000);
    const archived = await w.manifests.archive(signManifest(JSON.stringify(same), KEY.secretKey), {
      now: new Date(w.clock.now()),
    });
    const archives = (await w.manifests.listArchives()).length;

    const r = await w.run(['rollback', '--manifest', 'x', '--steps', '1']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `push: nothing to roll back: ${archived.id} has the same services as the current manifest (generation ${payloadOf(before.text).generation}); nothing written\n`,
    );
    const after = await w.manifests.read();
    expect(after.status === 'found' && after.etag).toBe(before.etag);
    expect((await w.manifests.listArchives()).length).toBe(archives);

    // One step further back is a real change, and is restored.
    expect((await w.run(['rollback', '--manifest', 'x', '--steps', '2'])).code).toBe(0);
    expect((await w.current())?.services[0]?.artifact.storePath).toBe(storePath('web-1'));
  });
});

describe('push init and gc', () => {
  it('init probes and records the write mode, and creates an empty manifest and nix-cache-info once', async () => {
    const w = world();
    const r = await w.run(['init', '--manifest', 'x', '--cache', 'c']);
    expect(r.stdout).toContain('manifest: created (empty)');
    expect(r.stdout).toContain('nix-cache-info: created');
    expect(r.stdout).toMatch(/^write mode: conditional: /m); // the memory store enforces conditional writes
    expect(r.stdout).toContain('recorded in ');
    expect((await w.current())?.services).toEqual([]);
    const again = await w.run(['init', '--manifest', 'x', '--cache', 'c']);
    expect(again.stdout).toContain('already there, left as it is');
    expect(again.stdout).toContain('nix-cache-info: exists');
    expect(again.stderr).toBe(''); // the memory store enforces conditional writes
  });

  it('gc keeps exactly the closures of the last N manifests and lists (or deletes) the rest', async () => {
    const w = world();
    const dep = storePath('libfoo-1');
    seed(w.cache, dep);
    for (const v of ['1', '2', '3']) {
      seed(w.cache, storePath(`web-${v}`), v === '3' ? [dep] : []);
      w.clock.advance(1000);
      await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath(`web-${v}`)]);
    }
    seed(w.cache, storePath('orphan-1'));
    await w.cache.put('nix-cache-info', 'StoreDir: /nix/store\n');
    const listed = await w.run(['gc', '--manifest', 'x', '--cache', 'c', '--keep', '2']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('would delete 4 object(s)');
    const doomed = listed.stdout
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => l.trim());
    const hash = (name: string) => storePath(name).slice(11, 43);
    expect(doomed).toContain(`${hash('web-1')}.narinfo`);
    expect(doomed).toContain(`${hash('orphan-1')}.narinfo`);
    expect(doomed.some((k) => k.includes(hash('web-2')) || k.includes(hash('libfoo-1')))).toBe(false);
    expect(w.cache.objects.size).toBe(11);
    await w.run(['gc', '--manifest', 'x', '--cache', 'c', '--keep', '2', '--apply']);
    expect(w.cache.objects.has(`${hash('web-2')}.narinfo`)).toBe(true);
    expect(w.cache.objects.has(`${hash('libfoo-1')}.narinfo`)).toBe(true);
    expect(w.cache.objects.has('nix-cache-info')).toBe(true);
    expect(w.cache.objects.size).toBe(7);
  });
});

describe('push gc: archive retention', () => {
  it('keeps the newest --keep-archives archived manifests and lists (or deletes) the older ones', async () => {
    const w = world();
    for (let v = 1; v <= 7; v++) {
      seed(w.cache, storePath(`web-${v}`));
      w.clock.advance(1000);
      await w.run(['deploy', 'web', '--manifest', 'x', '--store-path', storePath(`web-${v}`)]);
    }
    const archives = await w.manifests.listArchives();
    expect(archives).toHaveLength(6);
    const listed = await w.run([
      'gc',
      '--manifest',
      'x',
      '--cache',
      'c',
      '--keep',
      '2',
      '--keep-archives',
      '4',
    ]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(
      `archived manifests: keeping the newest 4; would delete 2 older, ${archives[5]?.id} to ${archives[4]?.id} (run with --apply to delete)`,
    );
    expect(await w.manifests.listArchives()).toHaveLength(6);
    await w.run(['gc', '--manifest', 'x', '--cache', 'c', '--keep', '2', '--keep-archives', '4', '--apply']);
    expect((await w.manifests.listArchives()).map((a) => a.id)).toEqual(
      archives.slice(0, 4).map((a) => a.id),
    );
    // The default keeps 100: nothing more to delete here.
    expect((await w.run(['gc', '--manifest', 'x', '--cache', 'c'])).stdout).toContain(
      'archived manifests: keeping all 4 (--keep-archives 100)',
    );
  });

  it('refuses --keep-archives below --keep minus 1, before reading anything', async () => {
    const w = world();
    const r = await w.run(['gc', '--manifest', 'x', '--cache', 'c', '--keep', '5', '--keep-archives', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--keep-archives 3: expected at least --keep minus 1 (4)');
    expect(w.manifests.objects.requests).toEqual([]);
  });
});

describe('waiting for hosts', () => {
  const status = (etag: string, outcome: string, services: object[] = [], extra: object = {}) => ({
    etag,
    generation: 'g',
    lastTick: {
      at: '2025-01-15T12:00:10Z',
      outcome,
      message: outcome === 'partial' ? 'web: rolled-back (unit failed)' : undefined,
    },
    services,
    ...extra,
  });
  const want = {
    etag: '"e2"',
    since: Date.parse('2025-01-15T12:00:00Z'),
    service: { name: 'web', storePath: storePath('web-2') },
  };

  it.each([
    [undefined, 'pending', 'no status reported yet'],
    [status('"e1"', 'applied'), 'pending', 'still on generation g'],
    [
      status('"e2"', 'applied', [{ name: 'web', storePath: storePath('web-2'), health: 'healthy' }]),
      'applied',
      'live',
    ],
    [status('"e2"', 'partial'), 'failed', 'rolled-back'],
    [
      status('"e2"', 'applied', [{ name: 'web', storePath: storePath('web-1'), health: 'healthy' }]),
      'failed',
      'runs',
    ],
    [status('"e1"', 'failed'), 'failed', 'last tick failed'],
    // A concurrent push landed right after ours: the host applied the newer manifest, which carries our change.
    [
      status('"e3"', 'applied', [{ name: 'web', storePath: storePath('web-2'), health: 'healthy' }]),
      'applied',
      'live',
    ],
    [
      {
        ...status('"e0"', 'applied', [{ name: 'web', storePath: storePath('web-2'), health: 'healthy' }]),
        lastTick: { at: '2025-01-15T11:00:00Z', outcome: 'applied' },
      },
      'pending',
      'still on',
    ],
  ])('judges %j as %s', (reported, state, fragment) => {
    const judged = judgeHost('biz', reported, want);
    expect(judged.state).toBe(state);
    expect(judged.message).toContain(fragment);
  });

  it('follows the status objects until every host is live, or times out', async () => {
    const manifests = createMemoryManifestStore();
    const clock = createFakeClock(Date.parse('2025-01-15T12:00:00Z'));
    const ctx = {
      manifests,
      cache: undefined,
      nix: createFakeNix(),
      shell: createFakeShell(),
      clock,
      onEvent: () => {},
      secretsDir: '/x',
    };
    await manifests.writeStatus('biz', status('"e1"', 'applied'));
    let polls = 0;
    const timedOut = await waitForHosts(ctx, {
      hosts: ['biz'],
      etag: '"e2"',
      since: want.since,
      timeoutMs: 10_000,
      intervalMs: 1000,
    });
    expect(timedOut).toMatchObject({ ok: false, timedOut: true });
    manifests.objects.beforeRequest = async () => {
      if (++polls === 3)
        await manifests.writeStatus(
          'biz',
          status('"e2"', 'applied', [{ name: 'web', storePath: storePath('web-2'), health: 'healthy' }]),
        );
    };
    const done = await waitForHosts(ctx, {
      hosts: ['biz'],
      etag: '"e2"',
      since: want.since,
      timeoutMs: 60_000,
      intervalMs: 1000,
      service: want.service,
    });
    expect(done).toMatchObject({ ok: true, timedOut: false, hosts: [{ host: 'biz', state: 'applied' }] });
  });
});

describe('push settings and usage', () => {
  it('exits 2 with every settings problem, and 2 on unknown commands', async () => {
    const w = world();
    const r = await w.run(['deploy', 'web', '--timeout', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--manifest: required');
    expect(r.stderr).toContain('--timeout: expected a duration');
    expect((await w.run(['frobnicate', '--manifest', 'x'])).code).toBe(2);
  });

  it('--help and --version', async () => {
    const w = world();
    expect((await w.run(['--help'])).stdout).toContain('push deploy <service>');
    expect((await w.run(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
