/**
 * Fleet benchmark: `npm run bench:fleet -- --hosts 10,100,1000 [--interval 10s] [--idle 3] [--settle 5s]
 * [--archives 100,1000,10000] [--no-restart] [--canary 1] [--max-parallel M] [--min-healthy-time 10s]
 * [--no-rollout]`. N simulated hosts (bench/fleet/sim.ts: the real `watch` and
 * `runTick` on the shipped fakes, each host with its own S3 client) against one s3rver in a process of its own,
 * behind a proxy that counts every request and byte. Each figure is printed next to a baseline measured in the
 * same run: a fleet of 1 host, run first with the same settings (or the baseline named on the line).
 *
 * Per fleet: first deploy; memory per host; the idle fleet (requests and bytes per second, busiest second, CPU
 * of the hosts' process); a deploy of one service to every host (requests in the first interval after the push,
 * push to all live, each host's poll to live, `push --wait`'s requests); `push status` with N status objects;
 * a staged rollout of one service to every host (`push deploy --canary 1 --max-parallel N/4` with push's default
 * `--min-healthy-time` of 10 s, unless the flags say otherwise), against the plain push of the same fleet; the
 * whole fleet restarted at once, with the old first pause of `watch` and with the current one. Then the archives (listing and `push history` at 100, 1,000,
 * 10,000 archives) and a manifest naming thousands of hosts (validate, plan). Last, one summary line per fleet,
 * in the order of `--hosts`.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { desiredServices } from '../src/deployer/index.js';
import { parseManifest } from '../src/manifest/index.js';
import {
  PUSH_SETTINGS,
  planManifestChange,
  readFleet,
  readHistory,
  waitForHosts,
} from '../src/push/index.js';
import { createClock } from '../src/runtime/clock.js';
import { formatDuration, parseDuration } from '../src/runtime/duration.js';
import { runPool } from '../src/runtime/pool.js';
import { formatArchiveId } from '../src/s3/archive-name.js';
import { createManifestStore, createS3ObjectStore, type StoreRequest } from '../src/s3/index.js';
import {
  createFakeNix,
  createFakeShell,
  makeManifest,
  makeService,
  makeStorePath,
} from '../src/testing/index.js';
import { type RolloutDriver, type RolloutResult, stagedRollout } from './fleet/rollout.js';
import { createFleet, type Fleet, hostNames } from './fleet/sim.js';
import {
  byKind,
  peak,
  type RequestRecord,
  rate,
  type Span,
  type TrafficDump,
  wireRate,
  within,
} from './fleet/traffic.js';
import { collect, ms, row, time } from './lib.js';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '10' },
    interval: { type: 'string', default: '10s' },
    idle: { type: 'string', default: '3' },
    settle: { type: 'string' },
    archives: { type: 'string', default: '100,1000' },
    'no-restart': { type: 'boolean', default: false },
    canary: { type: 'string', default: '1' },
    'max-parallel': { type: 'string' },
    'min-healthy-time': { type: 'string', default: '10s' },
    'no-rollout': { type: 'boolean', default: false },
  },
});
const fail = (message: string): never => {
  console.error(`bench:fleet: ${message}`);
  process.exit(2);
};
const counts = (flag: string, text: string) =>
  text.split(',').map((s) => {
    const n = Number(s);
    return Number.isInteger(n) && n >= 1
      ? n
      : fail(`--${flag}: expected counts like 10,100,1000, found ${s}`);
  });
const sizes = counts('hosts', values.hosts as string);
const archiveCounts = counts('archives', values.archives as string);
const intervalMs =
  parseDuration(values.interval as string) ?? fail('--interval: expected a duration like 10s');
const idleIntervals = Number(values.idle);
if (!(idleIntervals >= 1)) fail('--idle: expected a number of intervals >= 1');
const settleMs =
  values.settle === undefined
    ? undefined
    : (parseDuration(values.settle) ?? fail('--settle: expected a duration'));
const pollMs = PUSH_SETTINGS.find((s) => s.key === 'pollMs')?.default as number;
const count = (flag: string, text: string | undefined) =>
  text === undefined ? undefined : (counts(flag, text)[0] as number);
const rolloutDrivers: RolloutDriver[] = values['no-rollout']
  ? []
  : [
      stagedRollout({
        canary: count('canary', values.canary as string) as number,
        ...(values['max-parallel'] === undefined
          ? {}
          : { maxParallel: count('max-parallel', values['max-parallel']) as number }),
        minHealthyTimeMs:
          parseDuration(values['min-healthy-time'] as string) ??
          fail('--min-healthy-time: expected a duration like 10s'),
        pollMs,
      }),
    ];
const JITTER = 0.1; // watch's default
const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

// The S3 server in its own process: the hosts' event loop must not be billed for its work (nor it for theirs).
const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fleet/server.ts', 'omni-fleet'], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
const next = async () => (await lines.next()).value as string;
const { endpoint, direct, bucket } = JSON.parse(await next()) as {
  endpoint: string;
  direct: string;
  bucket: string;
};
const requests: RequestRecord[] = [];
const wire: TrafficDump['wire'] = [];
/** Fetches what the server saw since the last call. */
async function dump() {
  child.stdin.write('dump\n');
  const d = JSON.parse(await next()) as TrafficDump;
  requests.push(...d.requests);
  wire.push(...d.wire);
}

/** Progress on stderr, so a long run shows where it is without mixing into the figures. */
const progress = (run: string, what: string) => process.stderr.write(`  [${run}] ${what}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const num = (n: number, digits = 1) => n.toFixed(digits);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB/s`;
const hostOnly = (r: RequestRecord) => r[1] === 'GET manifest' || r[1] === 'PUT status';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const kinds = (rs: RequestRecord[]) =>
  Object.entries(byKind(rs))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
/** Requests a client made, by method and area (`GET status`, `LIST status`). */
function clientKinds(rs: StoreRequest[]) {
  const found: Record<string, number> = {};
  for (const r of rs) {
    const area = r.key.startsWith('status/') ? 'status' : r.key.startsWith('manifests/') ? 'archive' : r.key;
    const what = `${r.method === 'GET' && r.key.endsWith('/') ? 'LIST' : r.method} ${area}`;
    found[what] = (found[what] ?? 0) + 1;
  }
  return Object.entries(found)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

/** Everything measured for one fleet. */
interface Figures {
  n: number;
  firstDeployMs: number;
  heapPerHost: number;
  rssPerHost: number;
  idle: {
    rate: number;
    peak: number;
    bytesIn: number;
    bytesOut: number;
    kinds: string;
    /** CPU time of the hosts' process over wall time (1 = one core busy). */
    cpu: number;
  };
  deploy: {
    liveMs: number;
    liveMedianMs: number;
    /** From each host's poll of the new manifest to its status written. */
    tickMedianMs: number;
    tickMaxMs: number;
    firstIntervalRate: number;
    firstIntervalPeak: number;
    firstIntervalPeakHosts: number;
    bytesIn: number;
    bytesOut: number;
    kinds: string;
  };
  wait: { ms: number; requests: number; rounds: number; kinds: string };
  status: { ms: number; requests: number; rows: number };
  restart?: { legacy: number[]; current: number[] };
  /** Each rollout driver's result (bench/fleet/rollout.ts), and the requests made while it ran. */
  rollouts: {
    name: string;
    result: RolloutResult;
    /** The hosts' requests (by kind) and push's, from the driver's start to its end. */
    hosts: { count: number; kinds: string };
    push: { count: number; kinds: string };
  }[];
}

/** Restarts the whole fleet at once; returns the hosts' busiest second in each of the next three intervals. */
async function restartPeaks(fleet: Fleet, legacy: boolean): Promise<number[]> {
  await fleet.stop();
  const at = Date.now();
  fleet.start('together', { legacy });
  await sleep(3 * intervalMs * (1 + JITTER / 2) + 500);
  await dump();
  return [0, 1, 2].map((k) => {
    const span = {
      from: at + k * intervalMs * (1 + JITTER / 2),
      to: at + (k + 1) * intervalMs * (1 + JITTER / 2),
    };
    return peak(within(requests, span, hostOnly), span);
  });
}

async function measure(n: number, run: string): Promise<Figures> {
  collect();
  const before = process.memoryUsage();
  const fleet = await createFleet({
    endpoint,
    bucket,
    prefix: `${run}/`,
    hosts: n,
    intervalMs,
    ...(settleMs === undefined ? {} : { settleMs }),
  });
  const timeout = intervalMs * (1 + JITTER) * 3 + 120_000;
  // The fleet's first manifest (three services on every host), pushed before any host runs.
  for (const name of ['web', 'api', 'worker']) await fleet.deploy(name, '1');
  const seed = await fleet.push.manifests.read();
  if (seed.status !== 'found') throw new Error('seed manifest missing');
  const started = Date.now();
  progress(run, `${n} host(s) started; first deploy`);
  fleet.start('spread');
  await fleet.allLive(seed.etag, timeout);
  const firstDeployMs = Date.now() - started;
  // Let the last status writes and health gates finish before sampling memory and the idle fleet.
  await sleep(Math.min(2000, intervalMs / 5));
  collect();
  const after = process.memoryUsage();

  progress(run, 'idle');
  const idleSpan: Span = { from: Date.now(), to: Date.now() + idleIntervals * intervalMs };
  const cpuBefore = process.cpuUsage();
  await sleep(idleSpan.to - Date.now());
  const cpu = process.cpuUsage(cpuBefore);
  await dump();
  const idleRequests = within(requests, idleSpan);
  const idleWire = wireRate(wire, idleSpan);

  // A deploy: one service to every host, as `push deploy web --wait`.
  progress(run, 'deploy');
  const since = Date.now();
  const { etag, storePath, returnedAt } = await fleet.deploy('web', '2');
  const waitStart = Date.now();
  const waitFrom = fleet.pushRequests.length;
  const roundsFrom = fleet.pushEvents.length;
  const waiting = waitForHosts(fleet.push, {
    hosts: fleet.names,
    etag,
    since,
    timeoutMs: timeout,
    intervalMs: pollMs,
    service: { name: 'web', storePath },
  }).then((r) => ({ ...r, ms: Date.now() - waitStart, requests: fleet.pushRequests.slice(waitFrom) }));
  const live = await fleet.allLive(etag, timeout);
  const waited = await waiting;
  if (!waited.ok)
    throw new Error(
      `push --wait did not see every host live: ${JSON.stringify(waited.hosts.find((h) => h.state !== 'applied'))}`,
    );
  const lastLive = Math.max(...live);
  const ticks = fleet.hosts.map((h) => {
    const t = h.liveTick(etag);
    return t ? t.end - t.start : Number.NaN;
  });
  await sleep(500);
  await dump();
  const firstInterval: Span = { from: returnedAt, to: returnedAt + intervalMs };
  // The last status write is answered just before its host's tick ends.
  const deploySpan: Span = { from: returnedAt, to: lastLive + 100 };
  const deployWire = wireRate(wire, deploySpan);

  // push status: every host's status object (a listing, then every object).
  progress(run, 'push status');
  const statusFrom = fleet.pushRequests.length;
  const statusStart = performance.now();
  const rows = await readFleet(fleet.push);
  const statusMs = performance.now() - statusStart;
  const statusRequests = fleet.pushRequests.length - statusFrom;

  // Staged rollouts: each driver rolls a new version of web out over the fleet, wave by wave.
  const rollouts: Figures['rollouts'] = [];
  for (const [i, driver] of rolloutDrivers.entries()) {
    progress(run, `staged rollout: ${driver.name}`);
    const from = Date.now();
    const pushFrom = fleet.pushRequests.length;
    const result = await driver.run(fleet, { service: 'web', version: `${3 + i}` });
    const span = { from, to: Date.now() };
    await sleep(500);
    await dump();
    const pushed = fleet.pushRequests.slice(pushFrom);
    const hostRequests = within(requests, span, hostOnly);
    rollouts.push({
      name: driver.name,
      result,
      hosts: { count: hostRequests.length, kinds: kinds(hostRequests) },
      push: { count: pushed.length, kinds: clientKinds(pushed) },
    });
  }

  let restart: Figures['restart'];
  if (!values['no-restart']) {
    // The whole fleet restarted at once (a reboot, a deployer upgrade everywhere): idle polls from then on.
    progress(run, 'restart of the whole fleet at once, first pause from the jitter alone (the old watch)');
    const legacy = await restartPeaks(fleet, true);
    progress(run, 'restart of the whole fleet at once, watch as shipped');
    restart = { legacy, current: await restartPeaks(fleet, false) };
  }
  await fleet.stop();

  return {
    n,
    firstDeployMs,
    heapPerHost: (after.heapUsed - before.heapUsed) / n,
    rssPerHost: (after.rss - before.rss) / n,
    idle: {
      rate: rate(idleRequests, idleSpan),
      peak: peak(idleRequests, idleSpan),
      bytesIn: idleWire.in,
      bytesOut: idleWire.out,
      kinds: kinds(idleRequests),
      cpu: (cpu.user + cpu.system) / 1000 / (idleSpan.to - idleSpan.from),
    },
    deploy: {
      liveMs: lastLive - returnedAt,
      liveMedianMs: median(live.map((t) => t - returnedAt)),
      tickMedianMs: median(ticks),
      tickMaxMs: Math.max(...ticks),
      firstIntervalRate: rate(within(requests, firstInterval), firstInterval),
      firstIntervalPeak: peak(within(requests, firstInterval), firstInterval),
      firstIntervalPeakHosts: peak(within(requests, firstInterval, hostOnly), firstInterval),
      bytesIn: deployWire.in,
      bytesOut: deployWire.out,
      kinds: kinds(within(requests, deploySpan, hostOnly)),
    },
    wait: {
      ms: waited.ms,
      requests: waited.requests.length,
      rounds: fleet.pushEvents.slice(roundsFrom).filter((e) => e.type === 'push.waiting').length + 1,
      kinds: clientKinds(waited.requests),
    },
    status: { ms: statusMs, requests: statusRequests, rows: rows.length },
    ...(restart ? { restart } : {}),
    rollouts,
  };
}

function report(f: Figures, base: Figures) {
  const per = (x: number) => `${num(x / f.n, 3)}/host`;
  console.log(`\nfleet of ${f.n} host(s) (baseline: the fleet of 1, same run):`);
  console.log(
    `  first deploy (3 services, hosts started over one interval): all live after ${s(f.firstDeployMs)}`,
  );
  console.log(
    `  memory per simulated host (fakes + its own S3 client; baseline: the process before the fleet): heap ${num(f.heapPerHost / 1024)} KiB, RSS ${num(f.rssPerHost / 1024)} KiB`,
  );
  console.log(
    `  idle: ${num(f.idle.rate, 2)} req/s (${per(f.idle.rate)}; baseline ${num(base.idle.rate, 3)}/host), busiest second ${f.idle.peak}; ${f.idle.kinds}`,
  );
  console.log(
    `    bytes on the wire: in ${kib(f.idle.bytesIn)}, out ${kib(f.idle.bytesOut)} (${num(f.idle.bytesIn / Math.max(f.idle.rate, 1e-9), 0)} B in and ${num(f.idle.bytesOut / Math.max(f.idle.rate, 1e-9), 0)} B out per request); hosts' process CPU ${num(f.idle.cpu * 100, 0)} % of a core (baseline ${num(base.idle.cpu * 100, 1)} %)`,
  );
  console.log(
    `  deploy of one service to every host: live on all ${s(f.deploy.liveMs)} after push returned (median host ${s(f.deploy.liveMedianMs)}; baseline 1 host ${s(base.deploy.liveMs)}; bound: interval + jitter + settle ${s(intervalMs * (1 + JITTER) + (settleMs ?? 5000))})`,
  );
  console.log(
    `    each host from its poll to its status written: median ${s(f.deploy.tickMedianMs)}, slowest ${s(f.deploy.tickMaxMs)} (baseline 1 host ${s(base.deploy.tickMedianMs)})`,
  );
  console.log(
    `    first interval after the push: ${num(f.deploy.firstIntervalRate, 2)} req/s, busiest second ${f.deploy.firstIntervalPeak} (hosts alone ${f.deploy.firstIntervalPeakHosts}); idle fleet ${num(f.idle.rate, 2)} req/s, busiest ${f.idle.peak}`,
  );
  console.log(
    `    until the last host was live: in ${kib(f.deploy.bytesIn)}, out ${kib(f.deploy.bytesOut)}; hosts' requests: ${f.deploy.kinds}`,
  );
  console.log(
    `  push --wait (poll ${formatDuration(pollMs)}): ${f.wait.requests} requests over ${s(f.wait.ms)} (${f.wait.kinds}); baseline 1 host ${base.wait.requests}; reading every host every round (as before) would have been ${f.wait.rounds} rounds x ${f.n} = ${f.wait.rounds * f.n} reads`,
  );
  console.log(
    `  push status with ${f.status.rows} status objects: ${num(f.status.ms, 0)} ms, ${f.status.requests} requests (baseline 1 status: ${num(base.status.ms, 0)} ms, ${base.status.requests} requests)`,
  );
  if (f.restart)
    console.log(
      `  whole fleet restarted at once, hosts' busiest second in each of the 3 intervals after: ${f.restart.current.join(', ')} (baseline, the old first pause: ${f.restart.legacy.join(', ')}; idle fleet: ${f.idle.peak})`,
    );
  for (const [i, { name, result, hosts, push }] of f.rollouts.entries()) {
    const baseline = base.rollouts[i]?.result;
    console.log(
      `  staged rollout (${name}) over ${f.n} hosts: done after ${s(result.totalMs)}, every host healthy on the new version after ${s(result.liveMs)} (baseline, the plain push to all at once: live on all ${s(f.deploy.liveMs)}; the same rollout over 1 host: ${baseline ? s(baseline.totalMs) : '-'})`,
    );
    console.log(
      `    ${result.stages.length} stages, each from its write to the next (to its hosts seen healthy): ${result.stages.map((st) => `${st.hosts} ${st.hosts === 1 ? 'host' : 'hosts'} ${s(st.ms)} (${s(st.liveMs)})`).join(', ')}`,
    );
    console.log(
      `    requests meanwhile: hosts ${hosts.count} (${hosts.kinds}); push ${push.count} (${push.kinds}); the plain push's --wait: ${f.wait.requests}`,
    );
  }
}

/** Listing and `push history` against `counts` archives in s3rver (seeded directly, uncounted). */
async function measureArchives() {
  console.log(
    '\narchived manifests (one per push): listing them, `push history` (20 newest), s3rver via the proxy:',
  );
  const seedStore = createS3ObjectStore({
    bucket,
    endpoint: direct,
    credentials: CREDENTIALS,
    prefix: 'archives/',
  });
  const asked: StoreRequest[] = [];
  const manifests = createManifestStore(
    createS3ObjectStore({
      bucket,
      endpoint,
      credentials: CREDENTIALS,
      prefix: 'archives/',
      onRequest: (r) => asked.push(r),
    }),
  );
  const ctx = {
    manifests,
    cache: undefined,
    nix: createFakeNix(),
    shell: createFakeShell(),
    clock: createClock(),
    onEvent: () => {},
    secretsDir: '/var/lib/biz-secrets',
  };
  const text = JSON.stringify(makeManifest([makeService()]), null, 2);
  await seedStore.put('manifest.json', text);
  let have = 0;
  let base: number | undefined;
  for (const target of [...archiveCounts].sort((a, b) => a - b)) {
    progress('archives', `seeding ${target}`);
    const ids = Array.from({ length: target - have }, (_, i) =>
      formatArchiveId(new Date(Date.UTC(2025, 0, 1) + (have + i) * 1000)),
    );
    await runPool(ids, 32, async (id) => {
      await seedStore.put(`manifests/manifest-${id}.json`, text);
    });
    have = target;
    const from = asked.length;
    const list = await timeRuns(() => manifests.listArchives(), 3);
    const listRequests = (asked.length - from) / 3;
    const history = await timeRuns(() => readHistory(ctx, 20), 3);
    base ??= list;
    console.log(
      `  ${String(target).padStart(6)} archives: list ${ms(list).padStart(10)} (${listRequests} request(s)${target === archiveCounts[0] ? ', the baseline' : `, ${num(list / base, 1)}x the baseline`}); push history ${ms(history)}`,
    );
  }
}

async function timeRuns(fn: () => Promise<unknown>, runs: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

/** Validation and planning of a manifest whose three services each name every host. */
function measureHostLists() {
  console.log('\na manifest naming every host (three services, each on all of them; pure, after warm-up):');
  const base = row(
    'baseline: JSON.parse of the 1,000-host manifest',
    time(() => JSON.parse(manifestText(1000)), 10),
  );
  for (const n of [...new Set([...sizes, 10_000])].sort((a, b) => a - b)) {
    const text = manifestText(n);
    const parsed = parseManifest(text);
    if (!parsed.ok) throw new Error('host-list manifest invalid');
    const next = parseManifest(manifestText(n, '2'));
    if (!next.ok) throw new Error('host-list manifest invalid');
    const hosts = hostNames(n);
    const kibs = `${num(Buffer.byteLength(text) / 1024, 0)} KiB`;
    const validate = row(
      `${n} hosts (${kibs}): parse + validate`,
      time(() => parseManifest(text), 5),
    );
    row(
      `${n} hosts: one host's desired services`,
      time(
        () =>
          desiredServices(parsed.manifest, hosts[n - 1] as string, { secretsDir: '/var/lib/biz-secrets' }),
        5,
      ),
    );
    row(
      `${n} hosts: push --plan (every host's plan)`,
      time(() => planManifestChange(parsed.manifest, next.manifest, '/var/lib/biz-secrets'), 2),
    );
    if (n === 1000)
      console.log(
        `  parse + validate of 1,000 hosts costs ${num(validate.median / base.median, 1)}x JSON.parse`,
      );
  }
}

function manifestText(n: number, version = '1') {
  const hosts = hostNames(n);
  return JSON.stringify(
    makeManifest(
      ['web', 'api', 'worker'].map((name, i) =>
        makeService({
          name,
          hosts,
          artifact: { type: 'nix-closure', storePath: makeStorePath(`${name}-${version}`) },
          ...(i < 2
            ? { http: { domain: 'web.example.com', path: i ? '/api' : '/', internalPort: 8000 + i } }
            : {}),
        }),
      ),
    ),
    null,
    2,
  );
}

try {
  console.log(
    `fleet simulation: interval ${formatDuration(intervalMs)} + up to ${JITTER * 100} % jitter, health settle ${formatDuration(settleMs ?? 5000)}, idle measured over ${idleIntervals} intervals; s3rver in its own process behind a counting proxy`,
  );
  const base = await measure(1, 'base');
  const all: Figures[] = [];
  for (const n of sizes) {
    const f = await measure(n, `fleet-${n}`);
    report(f, base);
    all.push(f);
  }
  await measureArchives();
  measureHostLists();
  console.log('');
  for (const f of all)
    console.log(
      `fleet ${f.n} hosts: live after ${num(f.deploy.liveMs / 1000)} s; idle ${num(f.idle.rate, 2)} req/s; peak ${f.deploy.firstIntervalPeak} req/s; status read ${num(f.status.ms, 0)} ms`,
    );
} finally {
  child.stdin.end();
  child.kill('SIGTERM');
  await once(child, 'exit');
}
