/**
 * systemd benchmark, each figure next to a baseline measured in the same run:
 *  - exposure (`systemd-analyze security --offline=true`, 0 best .. 10 worst) of every example service's unit:
 *    as the design's example would write it (its hardening keys only) vs. renderUnit's default (goal <= 2.0);
 *  - renderUnit for 1,000 services (the deployer renders every unit each tick to detect changes), baseline:
 *    JSON.stringify of the same services;
 *  - the booted test host: boot + stop, and one `systemctl show` through nsenter vs. `true` through nsenter.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Service } from '../src/manifest/index.js';
import { renderUnit } from '../src/systemd/index.js';
import { makeService } from '../test/builders.js';
import { bootHost } from '../test/host/index.js';
import { row, timeAsync as time } from './lib.js';

// 1. Exposure.
const dir = mkdtempSync(join(tmpdir(), 'omni-bench-systemd-'));
function exposure(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', file], {
    encoding: 'utf8',
  });
  return /Overall exposure level for \S+: (\S+ \S+)/.exec(r.stdout)?.[1] ?? `error: ${r.stderr.trim()}`;
}
/** The unit the design's example describes (docs/design.md): its own fields and its four hardening keys. */
function designUnit(service: Service): string {
  const h = service.hardening ?? {};
  const program = service.exec.command.includes('/')
    ? `${service.artifact.storePath}/${service.exec.command}`
    : `${service.artifact.storePath}/bin/${service.exec.command}`;
  const yes = (v: unknown) => (v === true ? 'yes' : v === false ? 'no' : String(v));
  return [
    '[Service]',
    `ExecStart=${[program, ...(service.exec.args ?? [])].join(' ')}`,
    ...(service.exec.user ? [`User=${service.exec.user}`] : []),
    ...(service.exec.group ? [`Group=${service.exec.group}`] : []),
    ...(h.dynamicUser !== undefined ? [`DynamicUser=${yes(h.dynamicUser)}`] : []),
    ...(h.privateTmp !== undefined ? [`PrivateTmp=${yes(h.privateTmp)}`] : []),
    ...(h.protectSystem !== undefined ? [`ProtectSystem=${yes(h.protectSystem)}`] : []),
    ...(h.protectHome !== undefined ? [`ProtectHome=${yes(h.protectHome)}`] : []),
    '',
  ].join('\n');
}
console.log('exposure, systemd-analyze security --offline=true (0 best, 10 worst; goal <= 2.0):');
console.log(`  ${'service'.padEnd(48)} ${'design example (baseline)'.padEnd(26)} renderUnit default`);
for (const file of ['test/fixtures/design-example-manifest.json', 'examples/manifest.json']) {
  for (const service of JSON.parse(readFileSync(file, 'utf8')).services as Service[]) {
    const unit = renderUnit({ ...service, artifact: { ...service.artifact, storePath: '/nix/store/x' } });
    const label = `${file.split('/').pop()}: ${service.name}`;
    console.log(
      `  ${label.padEnd(48)} ${exposure(`design-${unit.name}`, designUnit(service)).padEnd(26)} ${exposure(unit.name, unit.text)}`,
    );
  }
}
rmSync(dir, { recursive: true, force: true });

// 2. Rendering.
const services = Array.from({ length: 1000 }, (_, i) =>
  makeService({
    name: `svc-${i}`,
    exec: { command: `svc-${i}`, args: ['--port', String(10000 + i), '--name', `"svc" ${i}`], user: 'svc' },
    env: { PORT: String(10000 + i), AREA: 'Live', BASE_URL: `https://svc-${i}.example.com`, NOTE: '100% $x' },
    envFile: `/var/lib/biz-secrets/svc-${i}.env`,
    systemd: { after: ['network-online.target'], restart: 'on-failure', restartSec: 5 },
    hardening: { stateDirectory: [`svc-${i}`], readWritePaths: [`/var/svc-${i}`] },
    revision: `r${i}`,
  }),
);
const renderAll = () => services.map((s) => renderUnit(s));
const bytes = renderAll().reduce((n, u) => n + u.text.length, 0);
for (let i = 0; i < 20; i++) renderAll(); // warm-up, as in a long-running deployer
console.log(`\nrendering 1,000 units (${(bytes / 1024).toFixed(0)} KiB of unit files), steady state:`);
row(
  'baseline: JSON.stringify of the 1,000 services',
  await time(() => services.map((s) => JSON.stringify(s)), 50),
);
row('renderUnit x 1,000', await time(renderAll, 50));

// 3. The booted host.
console.log('\nbooted test host (test/host), systemd-nspawn over an overlay of /:');
const mask = ['postgresql.service', 'postgresql@15-main.service', 'caddy.service'];
row('boot until is-system-running, then stop', await time(async () => (await bootHost({ mask })).stop(), 3));
const host = await bootHost({ mask });
try {
  row('baseline: `true` through nsenter', await time(() => host.exec('true'), 30));
  row(
    '`systemctl show` of one unit through nsenter',
    await time(() => host.exec('systemctl', ['show', '-p', 'ActiveState', '--', 'deploy-x.service']), 30),
  );
} finally {
  await host.stop();
}
