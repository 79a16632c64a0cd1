/**
 * The idle deployer, each figure next to a baseline measured in the same run:
 *  - resident memory (RSS) and CPU of `deployer watch` (the built bin, as installed, at the default --interval)
 *    on a host that runs three services whose manifest does not change, with an s3:// manifest on s3rver and
 *    with a file manifest, next to a bare Node process that loaded the same S3 client (@aws-sdk/client-s3) and
 *    did one GetObject of the same manifest (and a Node process that loaded nothing, for scale). Goal: RSS at
 *    most 15 MB above that baseline, CPU < 1 % of a core;
 *  - the requests the s3:// deployer sends to the bucket, counted by a proxy in front of s3rver: at start-up,
 *    and per interval while idle. Goal: one conditional GET answered 304 (no body) per interval, nothing else.
 * Caddy is real (its admin API answers the deployers' drift check every tick); systemd and Nix are not needed:
 * the host's state and units say the services already run, so an idle tick never starts a program.
 * "own" is RssAnon, the process's private memory (RSS also counts the pages of the node binary it touched,
 * shared with every Node process). Every process runs at once; BENCH_IDLE_WARMUP (default 30) seconds of
 * warm-up, then BENCH_IDLE_SECONDS (default 60) measured; BENCH_IDLE_VERBOSE=1 prints each process's output
 * (with NODE_OPTIONS=--import=<a module that logs process.memoryUsage()>, where its memory goes).
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { makeManifest, makeService } from '../test/builders.js';
import { startCaddy } from '../test/caddy/caddy-process.js';
import { TEST_CREDENTIALS } from '../test/support/s3-server.js';

// The built package (npm run bench builds it first), as users run it; typed by the sources it is built from.
const { assumeRunning, desiredServices, SETTINGS } = (await import(
  String(new URL('../dist/deployer/index.js', import.meta.url))
)) as typeof import('../src/deployer/index.js');
const { signManifest } = (await import(
  String(new URL('../dist/manifest/index.js', import.meta.url))
)) as typeof import('../src/manifest/index.js');

const SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
// V8 shrinks the heap that start-up grew (its memory reducer) within 10-25 s of the first quiet moment.
const WARMUP_SECONDS = Number(process.env.BENCH_IDLE_WARMUP ?? 30);
const GOAL_MB = 15;
const HOST = 'bench';
const BUCKET = 'omni-idle';
const interval = SETTINGS.find((s) => s.key === 'intervalMs')?.default as number;
const bin = new URL('../dist/bin/deployer.js', import.meta.url).pathname;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** RSS (kB) and CPU time (clock ticks, user + system) of a process, from /proc. */
function sample(pid: number): { rssKb: number; anonKb: number; ticks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  // RSS counts the pages of the node binary a process touched (RssFile), shared by every Node process on the
  // machine; RssAnon is the process's own memory.
  const anonKb = Number(/RssAnon:\s+(\d+)/.exec(status)?.[1]);
  // The fields after the command name (which may hold spaces: hence the last ')'); utime and stime are 14, 15.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssKb, anonKb, ticks: Number(fields[11]) + Number(fields[12]) };
}

const dir = mkdtempSync(join(tmpdir(), 'omni-bench-idle-'));
const children: ReturnType<typeof spawn>[] = [];
let stopping = false;
const cleanups: (() => Promise<void> | void)[] = [];

/** Starts a measured Node process; one that exits early is reported with its stderr. */
function start(label: string, args: string[]) {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  children.push(child);
  let stderr = '';
  // Both streams, for BENCH_IDLE_VERBOSE (V8's --trace-gc writes to standard output).
  for (const stream of [child.stdout, child.stderr])
    stream?.on('data', (chunk) => {
      stderr += chunk;
    });
  child.on('exit', (code) => {
    if (!stopping) console.error(`  ${label} exited early (${code}):\n${stderr}`);
  });
  return { label, pid: child.pid as number, stderr: () => stderr };
}

try {
  // s3rver in a process of its own, so its work is billed to nobody measured here.
  const server = spawn(process.execPath, ['--import', 'tsx', 'test/support/s3-server-process.ts', BUCKET], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(server);
  const [line] = (await once(createInterface({ input: server.stdout }), 'line')) as [string];
  const s3 = JSON.parse(line) as { endpoint: string };
  const upstream = new URL(s3.endpoint);

  // A counting proxy in front of s3rver: every request of the s3:// deployer, with its answer and body size.
  const seen: { method: string; path: string; status: number; bytes: number; at: number }[] = [];
  const proxy = createServer((req, res) => {
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        let bytes = 0;
        answer.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        answer.on('end', () =>
          seen.push({
            method: req.method ?? '',
            path: (req.url ?? '').replace(/\?.*$/, '').replace(`/${BUCKET}/`, ''),
            status: answer.statusCode ?? 0,
            bytes,
            at: Date.now(),
          }),
        );
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(out);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  const proxyEndpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const caddy = await startCaddy({ routes: [] });
  cleanups.push(() => caddy.stop());

  // A signed manifest of three services (two behind Caddy) for this host, and a host that runs them already.
  execFileSync('nix-store', [
    '--generate-binary-cache-key',
    'omni-bench-1',
    join(dir, 'sk'),
    join(dir, 'pk'),
  ]);
  const publicKey = readFileSync(join(dir, 'pk'), 'utf8').trim();
  const services = ['web', 'api', 'worker'].map((name, i) =>
    makeService({
      name,
      hosts: [HOST],
      exec: { command: name },
      env: { PORT: String(8000 + i) },
      ...(name === 'worker'
        ? {}
        : {
            http: {
              domain: 'example.com',
              path: name === 'web' ? '/' : '/api',
              internalPort: 8000 + i,
              healthCheck: '/healthz',
            },
          }),
    }),
  );
  const manifest = makeManifest(services);
  const text = signManifest(JSON.stringify(manifest, null, 2), readFileSync(join(dir, 'sk'), 'utf8'));
  const manifestDir = join(dir, 'bucket');
  mkdirSync(manifestDir);
  writeFileSync(join(manifestDir, 'manifest.json'), text);
  const put = await fetch(`${s3.endpoint}/${BUCKET}/manifest.json`, { method: 'PUT', body: text });
  if (!put.ok) throw new Error(`cannot upload the manifest to s3rver: HTTP ${put.status}`);

  /** A host directory whose state and units say the manifest's services run; the deployer's flags for it. */
  const hostDir = (name: string) => {
    const root = join(dir, name);
    const secretsDir = join(root, 'secrets');
    for (const d of ['state', 'units', 'profiles', 'gcroots', 'secrets'])
      mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'deployer.json'), '{}');
    const { desired } = desiredServices(manifest, HOST, { secretsDir });
    const state = assumeRunning(HOST, desired, new Date().toISOString());
    writeFileSync(join(root, 'state', 'state.json'), JSON.stringify(state, null, 2));
    for (const d of desired) writeFileSync(join(root, 'units', d.unitName), d.unitText);
    return [
      `--config=${join(root, 'deployer.json')}`,
      `--host=${HOST}`,
      `--state-dir=${join(root, 'state')}`,
      `--units-dir=${join(root, 'units')}`,
      `--profiles-dir=${join(root, 'profiles')}`,
      `--gcroots-dir=${join(root, 'gcroots')}`,
      `--secrets-dir=${secretsDir}`,
      `--trusted-public-key=${publicKey}`,
      `--caddy-admin=${caddy.adminAddress}`,
      '--caddy-server=srv0',
      '--log-format=json',
    ];
  };

  const baselineCode = `
    import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
    const client = new S3Client({ endpoint: '${s3.endpoint}', forcePathStyle: true, region: 'us-east-1',
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    const out = await client.send(new GetObjectCommand({ Bucket: '${BUCKET}', Key: 'manifest.json' }));
    await out.Body.transformToString();
    setInterval(() => {}, 1 << 30);`;
  const processes = [
    start('Node, nothing loaded (for scale)', ['-e', 'setInterval(() => {}, 1 << 30)']),
    start('baseline: Node + S3 client, one GetObject', ['--input-type=module', '-e', baselineCode]),
    start('deployer watch, s3:// manifest', [
      bin,
      'watch',
      `--manifest=s3://${BUCKET}/manifest.json?endpoint=${proxyEndpoint}`,
      ...hostDir('s3'),
    ]),
    start('deployer watch, file manifest', [
      bin,
      'watch',
      `--manifest=file://${join(manifestDir, 'manifest.json')}`,
      ...hostDir('file'),
    ]),
  ];
  const [, baselineProcess, ...deployers] = processes;

  await sleep(WARMUP_SECONDS * 1000);
  const startup = seen.splice(0);
  const first = processes.map((p) => sample(p.pid));
  const rss: number[][] = processes.map(() => []);
  const anon: number[][] = processes.map(() => []);
  for (let second = 0; second < SECONDS; second++) {
    await sleep(1000);
    processes.forEach((p, i) => {
      const now = sample(p.pid);
      rss[i]?.push(now.rssKb / 1024);
      anon[i]?.push(now.anonKb / 1024);
    });
  }
  const last = processes.map((p) => sample(p.pid));
  const idle = seen.splice(0);

  console.log(
    `idle: ${SECONDS} s measured after ${WARMUP_SECONDS} s of warm-up, deployer at the default --interval ${interval / 1000} s (+0-10 % jitter):`,
  );
  const figures = processes.map((p, i) => {
    const series = [...(rss[i] as number[])].sort((a, b) => a - b);
    const own = [...(anon[i] as number[])].sort((a, b) => a - b);
    const ticks = (last[i]?.ticks ?? 0) - (first[i]?.ticks ?? 0);
    return {
      p,
      median: series[Math.floor(series.length / 2)] as number,
      anon: own[Math.floor(own.length / 2)] as number,
      max: series.at(-1) as number,
      cpu: (100 * ticks) / CLK_TCK / SECONDS,
    };
  });
  const base = figures[1] as (typeof figures)[number];
  for (const f of figures) {
    const deployer = deployers.includes(f.p);
    const over = f.median - base.median;
    const signed = (n: number) => `${n >= 0 ? '+' : ''}${n.toFixed(1)}`;
    const goals = deployer
      ? `  ${signed(over)} MB (goal <= ${GOAL_MB}: ${over <= GOAL_MB ? 'met' : 'MISSED'}; own ${signed(f.anon - base.anon)} MB), CPU < 1 %: ${f.cpu < 1 ? 'met' : 'MISSED'}`
      : '';
    console.log(
      `  ${f.p.label.padEnd(42)} RSS median ${f.median.toFixed(1).padStart(5)} MB  max ${f.max.toFixed(1).padStart(5)}  own ${f.anon.toFixed(1).padStart(5)}  CPU ${f.cpu.toFixed(2).padStart(5)} %${goals}`,
    );
  }
  if (!baselineProcess) throw new Error('no baseline');

  // Each deployer must have applied the manifest at start-up and be idle on it, or the figures mean nothing.
  for (const [name, p] of [
    ['s3', deployers[0]],
    ['file', deployers[1]],
  ] as const) {
    const state = JSON.parse(readFileSync(join(dir, name, 'state', 'state.json'), 'utf8'));
    if (!state.manifest?.etag || !['applied', 'unchanged'].includes(state.lastTick?.outcome))
      throw new Error(
        `${p?.label}: not idle on the manifest (state: ${JSON.stringify(state.lastTick)})\n${p?.stderr()}`,
      );
  }

  const describe = (requests: typeof seen) => {
    const counts = new Map<string, number>();
    for (const r of requests) {
      const key = `${r.method} ${r.path} → ${r.status}${r.bytes ? `, ${r.bytes} B body` : ', no body'}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([key, n]) => `${n} × ${key}`).join('; ');
  };
  const gaps = idle.slice(1).map((r, i) => r.at - (idle[i] as (typeof idle)[number]).at);
  console.log('\nrequests of the s3:// deployer to the bucket (counted by a proxy in front of s3rver):');
  console.log(
    `  ${'at start-up (the first tick applies, publishes status)'.padEnd(56)} ${describe(startup)}`,
  );
  console.log(`  ${`idle, ${SECONDS} s`.padEnd(56)} ${describe(idle)}`);
  const extra = idle.filter((r) => !(r.method === 'GET' && r.status === 304 && r.bytes === 0));
  const shortest = gaps.length ? Math.min(...gaps) : Number.NaN;
  console.log(
    `  goal: one conditional GET (304, no body) per ${interval / 1000} s at most, nothing else: ${extra.length === 0 && idle.length > 0 && !(shortest < interval) ? 'met' : 'MISSED'} (shortest gap ${(shortest / 1000).toFixed(1)} s)`,
  );
  if (process.env.BENCH_IDLE_VERBOSE)
    for (const p of processes) console.log(`\n--- ${p.label}: stderr ---\n${p.stderr()}`);
} finally {
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  for (const cleanup of cleanups) await cleanup();
  rmSync(dir, { recursive: true, force: true });
}
