/**
 * push → serving on the default settings, in a booted host (systemd, Nix, Caddy, s3rver as the bucket and the
 * binary cache), each figure next to a baseline:
 *  - the default install: examples/omni-deployer.service (`deployer watch`) as shipped, its ExecStart pointed at
 *    the built bin, with nothing set but what an install must set (manifest, substituter, trusted key, Caddy's
 *    admin address and server): the default --interval and --health-settle.
 *    `push deploy web` (the built bin, no --wait) returns; the time until the new version answers through Caddy
 *    is one sample. Goal: p50 <= 15 s. Before each push a random pause of up to one interval, so pushes land
 *    at every point of the poll cycle, as real ones do;
 *  - the baseline: the 5-minute timer the examples shipped before (`OnUnitActiveSec=5min`,
 *    `RandomizedDelaySec=30s`), computed: a push waits for the next tick, uniformly up to ~315 s, then takes the
 *    same time to serve as measured here (from the tick seeing the manifest to serving);
 *  - the deployer's resident memory after all those deploys (20 s and 120 s after the last one), next to a bare
 *    Node process in the same host that loaded the same S3 client and did one GetObject (the idle figures
 *    before any deploy are in bench/idle.ts).
 * BENCH_LATENCY_SAMPLES (default 10) sets the number of pushes; `npm run bench:latency` takes 30.
 * BENCH_LATENCY_NODE_ARGS adds Node flags to the deployer (e.g. `--trace-gc`), and BENCH_LATENCY_VERBOSE=1
 * prints its journal at the end.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  AWS,
  CADDY_PORT,
  caddyConfig,
  E2E_HOST,
  REPO,
  S3,
  startBucketAndCaddy,
} from '../test/e2e/support.js';
import { type BootedHost, bootHost, HTTP_SERVICE_NIX, NIX_ENV } from '../test/host/index.js';

const { SETTINGS } = (await import(
  String(new URL('../dist/deployer/index.js', import.meta.url))
)) as typeof import('../src/deployer/index.js');

const SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 10);
const UNIT = 'omni-deployer.service';
const BUCKET = 'omni-latency';
const MANIFEST = `s3://${BUCKET}/manifest.json?endpoint=${S3}&region=us-east-1`;
const defaultOf = (key: string) => SETTINGS.find((s) => s.key === key)?.default as number;
const interval = defaultOf('intervalMs');
const settle = defaultOf('healthSettleMs');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Quantile `q` of `values` (nearest rank). */
function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

let host: BootedHost | undefined;
try {
  const keys = mkdtempSync('/var/tmp/omni-latency-keys-');
  execFileSync(
    'nix-store',
    ['--generate-binary-cache-key', 'latency-1', join(keys, 'sk'), join(keys, 'pk')],
    {
      env: { ...process.env, ...NIX_ENV },
    },
  );
  const [secret, pub] = ['sk', 'pk'].map((f) => readFileSync(join(keys, f), 'utf8').trim()) as [
    string,
    string,
  ];
  rmSync(keys, { recursive: true, force: true });

  host = await bootHost({
    hostname: 'biz',
    ...E2E_HOST,
    files: {
      '/root/svc.nix': HTTP_SERVICE_NIX,
      '/root/keys/sk': `${secret}\n`,
      '/root/deploy/web.json': JSON.stringify({
        name: 'web',
        hosts: ['biz'],
        exec: { command: 'web' },
        env: { PORT: '8001' },
        http: { domain: 'example.com', path: '/', internalPort: 8001, healthCheck: '/healthz' },
      }),
      '/root/deploy/push.json': JSON.stringify({
        manifest: MANIFEST,
        cache: `s3://${BUCKET}?endpoint=${S3}&region=us-east-1`,
        keyFile: '/root/keys/sk',
        build:
          'nix-build --no-out-link /root/svc.nix --argstr prefix latency --argstr name {target} --argstr version "$VERSION"',
        specDir: '/root/deploy',
      }),
      // What an install sets (as the NixOS module and examples/deployer.json do); every timing at its default.
      // The substituter is s3rver over http: Debian's Nix has no s3:// support.
      '/etc/omni-deploy/deployer.json': JSON.stringify({
        manifest: MANIFEST,
        substituter: `${S3}/${BUCKET}`,
        trustedPublicKeys: [pub],
        caddyAdmin: 'localhost:2019',
        caddyServer: 'omni',
        logFormat: 'json',
      }),
      '/etc/e2e/caddy.json': caddyConfig(),
    },
  });
  const h = host;
  await h.run('chmod', ['600', '/root/keys/sk']);
  await startBucketAndCaddy(h, BUCKET);
  const push = async (args: string[], version: string) => {
    const r = await h.exec(
      'node',
      [join(REPO, 'dist/bin/push.js'), ...args, '--config', '/root/deploy/push.json'],
      {
        env: {
          ...AWS,
          ...NIX_ENV,
          VERSION: version,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
      },
    );
    if (r.exitCode !== 0) throw new Error(`push ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  await push(['init'], '0');
  // The shipped unit, as an install copies it; only the program differs (the built bin, run by the host's node).
  const unit = readFileSync(join(REPO, 'examples/omni-deployer.service'), 'utf8');
  const program = [
    '/usr/bin/node',
    ...(process.env.BENCH_LATENCY_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
    join(REPO, 'dist/bin/deployer.js'),
  ].join(' ');
  if (!/^ExecStart=deployer watch /m.test(unit))
    throw new Error('examples/omni-deployer.service no longer runs deployer watch');
  await h.writeFile(
    `/etc/systemd/system/${UNIT}`,
    unit.replace('ExecStart=deployer', `ExecStart=${program}`),
  );
  // The bucket's credentials and Nix's test settings (NIX_CONFIG spans lines: systemd unescapes the \n).
  const environment = { ...AWS, ...NIX_ENV, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  await h.writeFile(
    `/etc/systemd/system/${UNIT}.d/bench.conf`,
    `[Service]\n${Object.entries(environment)
      .map(([k, v]) => `Environment="${k}=${v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')}"\n`)
      .join('')}`,
  );
  await h.run('systemctl', ['daemon-reload']);
  await h.run('systemctl', ['start', UNIT]);
  const body = async () =>
    (
      await h.exec('curl', ['-s', '-m', '2', '-H', 'Host: example.com', `http://127.0.0.1:${CADDY_PORT}/`])
    ).stdout.trim();
  const servedBy = async (version: string, deadlineMs: number) => {
    const expected = `web ${version}`;
    while (Date.now() < deadlineMs) {
      if ((await body()) === expected) return Date.now();
      await sleep(100);
    }
    throw new Error(`web ${version} not served in time:\n${await h.journal(UNIT)}`);
  };
  const untilTrue = async (condition: () => Promise<boolean>) => {
    for (const deadline = Date.now() + 120_000; !(await condition()); await sleep(200))
      if (Date.now() > deadline)
        throw new Error(`the deployer's tick did not end:\n${await h.journal(UNIT)}`);
  };
  /** Times of the deployer's events of `type` (its JSON log lines in the journal), in ms. */
  const eventTimes = async (type: string) =>
    (await h.journal(UNIT))
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { time: string; type: string })
      .filter((e) => e.type === type)
      .map((e) => Date.parse(e.time));

  // The first version installs the service (a new unit, a new route); the samples are updates of it.
  const before = (await eventTimes('tick.end')).length;
  await push(['deploy', 'web'], '0');
  await servedBy('0', Date.now() + 120_000);
  await untilTrue(async () => (await eventTimes('tick.end')).length > before);

  console.log(
    `push deploy → the new version answering through Caddy, ${SAMPLES} pushes, default --interval ${s(interval)} (+0-10 % jitter), --health-settle ${s(settle)}:`,
  );
  const latency: number[] = [];
  const apply: number[] = [];
  const pushing: number[] = [];
  for (let i = 1; i <= SAMPLES; i++) {
    // The deploy tick before this one has ended (its health gate), and the deployer polls every interval: a pause
    // of up to one jittered interval puts this push at a uniformly random point of its poll cycle.
    await sleep(Math.random() * interval * 1.1);
    const version = String(i);
    const ticks = (await eventTimes('tick.end')).length;
    const pulls = (await eventTimes('nix.pull')).length;
    const started = Date.now();
    await push(['deploy', 'web'], version);
    const returned = Date.now();
    const served = await servedBy(version, returned + 120_000);
    // The tick that saw this manifest pulled its closure first: that `nix.pull` event ends the wait.
    const seen = (await eventTimes('nix.pull'))[pulls] ?? returned;
    latency.push(served - returned);
    apply.push(served - seen);
    pushing.push(returned - started);
    // Its tick goes on with the health gate after the new version serves; the next sample starts after it.
    await untilTrue(async () => (await eventTimes('tick.end')).length > ticks);
  }
  const row = (label: string, values: readonly number[]) =>
    console.log(
      `  ${label.padEnd(58)} p50 ${s(quantile(values, 0.5)).padStart(7)}  p90 ${s(quantile(values, 0.9)).padStart(7)}  max ${s(Math.max(...values)).padStart(7)}`,
    );
  row('push returned → serving (deployer watch, defaults)', latency);
  row('  of which: the tick saw the manifest → serving', apply);
  row('(push deploy itself: build, upload, lease, manifest write)', pushing);
  // The timer's period: 5 min after the last start, plus a random delay of up to 30 s (mean 15 s).
  const period = 300_000 + 15_000;
  const baseline = (q: number) => q * period + quantile(apply, 0.5);
  console.log(
    `  ${'baseline (computed): the 5-minute timer shipped before'.padEnd(58)} p50 ${s(baseline(0.5)).padStart(7)}  p90 ${s(baseline(0.9)).padStart(7)}  (a uniform wait for the next tick + the measured median above)`,
  );
  const p50 = quantile(latency, 0.5);
  console.log(
    `  goal: p50 <= 15 s: ${p50 <= 15_000 ? 'met' : 'MISSED'} (${s(p50)}, ${(baseline(0.5) / p50).toFixed(0)}× faster than the timer)`,
  );

  // The deployer after those deploys, next to a bare Node process with the same S3 client and one GetObject.
  await h.run('systemd-run', [
    '--unit=bench-baseline',
    `--working-directory=${REPO}`,
    ...Object.entries(environment).map(([k, v]) => `--setenv=${k}=${v}`),
    '--',
    '/usr/bin/node',
    '--input-type=module',
    '-e',
    `import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
     const client = new S3Client({ endpoint: '${S3}', forcePathStyle: true, region: 'us-east-1',
       requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
     const out = await client.send(new GetObjectCommand({ Bucket: '${BUCKET}', Key: 'manifest.json' }));
     await out.Body.transformToString();
     setInterval(() => {}, 1 << 30);`,
  ]);
  const rss = async (unit: string) => {
    const pid = (await h.run('systemctl', ['show', '-P', 'MainPID', unit])).trim();
    const status = await h.run('cat', [`/proc/${pid}/status`]);
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]) / 1024;
    return { rss: kb('VmRSS'), own: kb('RssAnon') };
  };
  // Twice: V8 shrinks a heap that grew during the deploys some 10-25 s after the last one (bench/idle.ts), so
  // the first reading may still hold it; the second is the idle deployer the goal is about.
  console.log('\nresident memory in the host after the last deploy (own: RssAnon):');
  let waited = 0;
  for (const after of [2 * interval, 12 * interval]) {
    await sleep(after - waited);
    waited = after;
    const [deployer, baseline] = [await rss(UNIT), await rss('bench-baseline')];
    const over = deployer.rss - baseline.rss;
    const mb = (v: number) => `${v.toFixed(1).padStart(5)} MB`;
    console.log(
      `  ${`${after / 1000} s after: baseline: Node + S3 client, one GetObject`.padEnd(58)} ${mb(baseline.rss)}  own ${mb(baseline.own)}`,
    );
    console.log(
      `  ${`${after / 1000} s after: deployer watch after ${SAMPLES + 1} deploys`.padEnd(58)} ${mb(deployer.rss)}  own ${mb(deployer.own)}  ${over.toFixed(1)} MB over baseline (goal <= 15: ${over <= 15 ? 'met' : 'MISSED'})`,
    );
  }
  if (process.env.BENCH_LATENCY_VERBOSE) console.log(await h.journal(UNIT));
} catch (error) {
  if (!host) console.log(`  not measured: ${(error as Error).message.split('\n')[0]}`);
  else throw error;
} finally {
  await host?.stop();
}
