import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * What a user gets from npm: build, `npm pack`, install the tarball into a scratch project, and use it there
 * through its public entry points only.
 */
const root = new URL('..', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'omni-deploy-pack-'));
const sh = (cmd: string, args: string[], cwd = scratch) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** The vitest this repository tests with: the scratch project installs the same one, as a user's would. */
const vitestVersion = JSON.parse(
  readFileSync(join(root, 'node_modules/vitest/package.json'), 'utf8'),
).version;

beforeAll(() => {
  sh('npm', ['run', 'build'], root);
  sh('npm', ['pack', '--pack-destination', scratch], root);
  const tarball = readdirSync(scratch).find((f) => f.endsWith('.tgz')) as string;
  writeFileSync(
    join(scratch, 'package.json'),
    JSON.stringify({ name: 'scratch', private: true, type: 'module' }),
  );
  sh('npm', [
    'install',
    '--prefer-offline',
    '--no-audit',
    '--no-fund',
    join(scratch, tarball),
    `vitest@${vitestVersion}`,
  ]);
}, 180_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Each case runs tsc, vitest or npx in a scratch project: seconds alone, much more on a loaded machine (a watchdog, not a time
// assertion).
describe('the packed package', { timeout: 180_000 }, () => {
  it('ships dist and the JSON Schema, not sources or tests', () => {
    const files = JSON.parse(sh('npm', ['pack', '--dry-run', '--json'], root))[0].files.map(
      (f: { path: string }) => f.path,
    );
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/bin/deployer.js');
    expect(files).toContain('schema/manifest.schema.json');
    expect(files).toContain('schema/signed-manifest.schema.json');
    // What the quick start copies from the installed package onto a host.
    for (const example of [
      'omni-deployer.service',
      'omni-deployer.timer',
      'deployer.json',
      'caddy/omni-deploy.conf',
    ])
      expect(files).toContain(`examples/${example}`);
    expect(files.filter((f: string) => /^(src|test|bench)\//.test(f))).toEqual([]);
  });

  it('imports every subpath', () => {
    const script = `
      import * as root from '@omni/deploy';
      import * as manifest from '@omni/deploy/manifest';
      import * as shell from '@omni/deploy/shell';
      import * as testing from '@omni/deploy/testing';
      import schema from '@omni/deploy/manifest.schema.json' with { type: 'json' };
      import signedSchema from '@omni/deploy/signed-manifest.schema.json' with { type: 'json' };
      import pkg from '@omni/deploy/package.json' with { type: 'json' };
      const r = manifest.validateManifest({ version: 1, generation: '2025-01-01T00:00:00Z', services: [] });
      const fake = testing.createFakeShell();
      await fake.run('x', []);
      const echo = await shell.createShell().run('echo', ['a b']);
      // Every code subpath in the exports map loads and exports something.
      const empty = [];
      for (const key of Object.keys(pkg.exports).filter((k) => !k.endsWith('.json'))) {
        const mod = await import('@omni/deploy' + key.slice(1));
        if (Object.keys(mod).length === 0) empty.push(key);
      }
      console.log(JSON.stringify({ ok: r.ok, same: root.parseManifest === manifest.parseManifest, title: schema.title, signedTitle: signedSchema.title, name: pkg.name, calls: fake.calls.length, echo: echo.stdout, empty }));
    `;
    writeFileSync(join(scratch, 'use.mjs'), script);
    expect(JSON.parse(sh('node', ['use.mjs']))).toEqual({
      ok: true,
      same: true,
      title: '@omni/deploy manifest v1',
      signedTitle: '@omni/deploy signed manifest (format version 1)',
      name: '@omni/deploy',
      calls: 1,
      echo: 'a b\n',
      empty: [],
    });
  });

  it('resolves types for the subpaths', () => {
    writeFileSync(
      join(scratch, 'use.ts'),
      `import { type Manifest, parseManifest } from '@omni/deploy/manifest';
       import { DeployError, createShell, type Shell } from '@omni/deploy';
       import { createFakeCaddyAdmin, createFakeShell, createFakeSystemd } from '@omni/deploy/testing';
       import { buildRoutes, type CaddyAdmin, createCaddyAdmin } from '@omni/deploy/caddy';
       import { createSystemd, renderUnit, type Systemd } from '@omni/deploy/systemd';
       const shells: Shell[] = [createShell(), createFakeShell()];
       const systemds: Systemd[] = [createSystemd({ shell: createFakeShell() }), createFakeSystemd()];
       const unitText: string = renderUnit(JSON.parse('{}')).text;
       const admins: CaddyAdmin[] = [createCaddyAdmin({ address: 'localhost:2019' }), createFakeCaddyAdmin()];
       const routes = buildRoutes([]);
       const r = parseManifest('{}');
       const m: Manifest | undefined = r.ok ? r.manifest : undefined;
       const e: DeployError = new DeployError('USAGE', 'x');
       // @ts-expect-error: the type must be precise enough to reject this
       const n: number = parseManifest;
       export { m, e, n, shells, systemds, unitText, admins, routes };`,
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    sh('node', [
      tsc,
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--skipLibCheck',
      'false',
      'use.ts',
    ]);
  });

  it('imports the nix and s3 subpaths, with their fakes, and resolves their types', () => {
    writeFileSync(
      join(scratch, 'use-nix-s3.ts'),
      `import { createNix, parseStorePath, serviceLayout, type Nix } from '@omni/deploy/nix';
       import { openManifestStore, parseLocation, type ManifestStore } from '@omni/deploy/s3';
       import { createFakeNix, createMemoryManifestStore } from '@omni/deploy/testing';
       const nixes: Nix[] = [createNix(), createFakeNix()];
       const stores: ManifestStore[] = [openManifestStore('/tmp/x/manifest.json'), createMemoryManifestStore()];
       const memory = createMemoryManifestStore();
       await memory.write('{}', { ifNoneMatch: '*' });
       const read = await memory.read();
       console.log(JSON.stringify({
         layout: serviceLayout('web').profile,
         hash: parseStorePath('/nix/store/00000000000000000000000000000000-x')?.hash.length,
         bucket: (parseLocation('s3://omni-nix-cache/manifest.json') as { bucket: string }).bucket,
         read: read.status,
         n: nixes.length + stores.length,
       }));
       export {};`,
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    sh('node', [
      tsc,
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      'use-nix-s3.ts',
    ]);
    expect(JSON.parse(sh('node', ['use-nix-s3.js']))).toEqual({
      layout: '/nix/var/nix/profiles/biz/web.d/profile',
      hash: 32,
      bucket: 'omni-nix-cache',
      read: 'found',
      n: 4,
    });
  });

  it('runs the library example of docs/library.md with vitest, against the installed package', () => {
    // The example as a user's project holds it: their script and its test, importing the package by name.
    mkdirSync(join(scratch, 'library'), { recursive: true });
    for (const file of ['deploy.ts', 'deploy.test.ts'])
      copyFileSync(join(root, 'examples/library', file), join(scratch, 'library', file));
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    sh('node', [
      tsc,
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      'library/deploy.test.ts',
    ]);
    // Not this run's vitest: the scratch project's own, in a clean environment.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^(VITEST|NODE_OPTIONS)/.test(k)),
    );
    const out = execFileSync(
      join(scratch, 'node_modules/.bin/vitest'),
      ['run', 'library', '--reporter=verbose'],
      {
        cwd: scratch,
        encoding: 'utf8',
        env: { ...env, CI: 'true', NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    expect(out).toContain('installs a new service and says so; the next round has nothing to do');
    expect(out).toContain('reports a rollback when the new version crashes, and the old version runs again');
    expect(out).toMatch(/Tests\s+2 passed \(2\)/);
  });

  it('runs the bins through npx', () => {
    expect(sh('npx', ['--no-install', 'deployer', '--help'])).toContain('deployer validate');
    expect(sh('npx', ['--no-install', 'push', '--help'])).toContain('push');
  });
});
