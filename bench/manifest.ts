/**
 * Manifest benchmark, each next to a baseline measured in the same run.
 *  - parse + validate of a 1,000-service manifest (goal: under 20 ms), baseline: JSON.parse alone;
 *  - the CLI's cold start (`deployer --version`, `deployer validate` of that manifest), baseline: `node -e 0`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest } from '../src/manifest/index.js';
import { makeManifest, makeService } from '../test/builders.js';
import { ms, row, time } from './lib.js';

const services = Array.from({ length: 1000 }, (_, i) =>
  makeService({
    name: `svc-${i}`,
    hosts: [`host-${i % 5}`],
    exec: { command: `svc-${i}`, args: ['--port', String(10000 + i)], user: 'svc', group: 'svc' },
    env: {
      PORT: String(10000 + i),
      AREA: 'Live',
      BASE_URL: `https://svc-${i}.example.com`,
      DATA_DIR: `/var/lib/svc-${i}`,
    },
    envFile: `/var/lib/biz-secrets/svc-${i}.env`,
    http: { domain: `svc-${i}.example.com`, path: '/', internalPort: 10000 + i, healthCheck: '/healthz' },
    systemd: { after: ['network-online.target'], restart: 'on-failure', restartSec: 5 },
    hardening: { protectSystem: 'strict', privateTmp: true, stateDirectory: [`svc-${i}`] },
    revision: `r${i}`,
  }),
);
const text = JSON.stringify(makeManifest(services), null, 2);

console.log(`manifest: 1,000 services, ${(text.length / 1024).toFixed(0)} KiB`);
const check = parseManifest(text);
if (!check.ok) throw new Error(`bench manifest is invalid: ${JSON.stringify(check.issues.slice(0, 3))}`);
time(() => parseManifest(text), 20); // warm-up: let the JIT optimise, as in a long-running deployer
console.log('steady state (same process, after warm-up, GC between samples):');
const base = row(
  'baseline: JSON.parse only',
  time(() => JSON.parse(text), 50),
);
const full = row(
  'parseManifest (JSON.parse + validate)',
  time(() => parseManifest(text), 50),
);
console.log(
  `  validation adds ${ms(full.median - base.median)} to JSON.parse; goal < 20 ms: ${full.median < 20 ? 'met' : 'MISSED'}`,
);

const dir = mkdtempSync(join(tmpdir(), 'omni-bench-'));
const file = join(dir, 'manifest.json');
writeFileSync(file, text);
const cold = Array.from({ length: 9 }, () => {
  const r = spawnSync(process.execPath, ['bench/cold-parse.mjs', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cold-parse failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { jsonParseMs: number; parseManifestMs: number };
});
console.log('\nfirst call in a fresh process (unoptimised code, as in one `deployer validate`):');
row(
  'baseline: JSON.parse only',
  cold.map((c) => c.jsonParseMs),
);
row(
  'parseManifest (JSON.parse + validate)',
  cold.map((c) => c.parseManifestMs),
);

const spawn = (args: string[]) => () => {
  const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}`);
};
console.log('\nCLI cold start (new node process each run):');
const node0 = row('baseline: node -e 0', time(spawn(['-e', '0']), 15));
const version = row('deployer --version', time(spawn(['dist/bin/deployer.js', '--version']), 15));
const validate = row(
  'deployer validate <1,000-service manifest>',
  time(spawn(['dist/bin/deployer.js', 'validate', file]), 15),
);
console.log(
  `  deployer start-up over bare node: +${ms(version.median - node0.median)}; validate 1,000 services: +${ms(validate.median - node0.median)}`,
);
