/**
 * Deployer benchmark, each figure next to a baseline measured in the same run:
 *  - planning a tick for 1,000 services on one host (render every unit, hash, compare with state; one service
 *    changed), goal <= 50 ms; baseline: parse + validate of the same manifest;
 *  - what an idle tick (manifest unchanged: 304) costs in requests and subprocesses, next to a tick that
 *    updates one service of three.
 */
// The built package (npm run bench builds it first), as users run it; typed by the sources it is built from.
const { assumeRunning, desiredServices, parseManifest, planDeploy } = (await import(
  String(new URL('../dist/index.js', import.meta.url))
)) as typeof import('../src/index.js');

import { makeManifest, makeService, storePath } from '../test/builders.js';
import { createWorld, http } from '../test/deployer/world.js';
import { row, time } from './lib.js';

const services = Array.from({ length: 1000 }, (_, i) =>
  makeService({
    name: `svc-${i}`,
    exec: { command: `svc-${i}`, args: ['--port', String(10000 + i)] },
    env: { PORT: String(10000 + i), AREA: 'Live' },
    http: { domain: `svc-${i}.example.com`, path: '/', internalPort: 10000 + i, healthCheck: '/healthz' },
    hardening: { stateDirectory: [`svc-${i}`] },
  }),
);
const manifest = makeManifest(services);
const text = JSON.stringify(manifest);
// The host runs all of them already; the new manifest changes one.
const state = assumeRunning(
  'biz',
  desiredServices(manifest, 'biz', { secretsDir: '/var/lib/biz-secrets' }).desired,
  'x',
);
const next = makeManifest(
  services.map((s, i) =>
    i === 500 ? { ...s, artifact: { type: 'nix-closure' as const, storePath: storePath('svc-500-2') } } : s,
  ),
);

console.log('plan for 1,000 services on one host (one changed):');
const base = row('baseline: parseManifest (JSON + validate)', await time(() => parseManifest(text), 30));
const plan = row(
  'desiredServices + planDeploy',
  await time(() => {
    const { desired } = desiredServices(next, 'biz', { secretsDir: '/var/lib/biz-secrets' });
    const p = planDeploy({ host: 'biz', generation: next.generation, desired, state });
    if (p.services.filter((s) => s.action === 'update').length !== 1)
      throw new Error('expected exactly one update');
  }, 30),
);
console.log(
  `  planning costs ${(plan.median / base.median).toFixed(1)}× parse + validate; goal <= 50 ms: ${plan.median <= 50 ? 'met' : 'MISSED'}`,
);

async function costOf(label: string, prepare: (w: Awaited<ReturnType<typeof createWorld>>) => Promise<void>) {
  const world = await createWorld();
  const m = await world.manifestOf([
    { name: 'web', version: '1.0', overrides: http(8000) },
    { name: 'api', version: '1.0', overrides: http(8001, '/api') },
    { name: 'worker', version: '1.0' },
  ]);
  await world.publish(m);
  await world.tick();
  await prepare(world);
  const before = {
    s3: world.manifests.objects.requests.length,
    caddy: world.caddy.requests.length,
    caddyWrites: world.caddy.mutations,
    systemctl: world.systemd.calls.filter((c) => !/^(read|list)\b/.test(c)).length,
    nix: world.nix.calls.length,
    saves: world.state.saves.length,
  };
  await world.tick();
  const after = {
    s3: world.manifests.objects.requests.length - before.s3,
    caddy: world.caddy.requests.length - before.caddy,
    caddyWrites: world.caddy.mutations - before.caddyWrites,
    systemctl: world.systemd.calls.filter((c) => !/^(read|list)\b/.test(c)).length - before.systemctl,
    nix: world.nix.calls.length - before.nix,
    saves: world.state.saves.length - before.saves,
  };
  console.log(
    `  ${label.padEnd(40)} S3 requests ${after.s3}, Caddy requests ${after.caddy} (${after.caddyWrites} writes), ` +
      `systemctl calls ${after.systemctl}, nix calls ${after.nix}, state writes ${after.saves}`,
  );
}

console.log('\nwhat one tick costs (3 services, fake adapters counting every request and subprocess):');
await costOf('baseline: update one of three services', async (w) => {
  await w.publish(
    await w.manifestOf([
      { name: 'web', version: '1.0', overrides: http(8000) },
      { name: 'api', version: '1.1', overrides: http(8001, '/api') },
      { name: 'worker', version: '1.0' },
    ]),
  );
});
await costOf('idle tick (manifest unchanged, 304)', async () => {});
