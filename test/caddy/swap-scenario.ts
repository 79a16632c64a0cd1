/**
 * An upstream swap under load, run as its own process inside a private network namespace (so it can set
 * net.ipv4.tcp_migrate_req without touching the machine): a real Caddy, two upstreams A and B that answer
 * slowly (so requests are in flight at every swap), load loops through Caddy, and a series of swaps made by
 * reconcileRoutes with a port override. Prints one JSON object (SwapReport) on stdout.
 *
 *   unshare --net -- node --import tsx test/caddy/swap-scenario.ts --migrate 1 --swaps 10
 *
 * Used by test/caddy/swap.test.ts (asserts nothing was dropped) and bench/caddy.ts (figures, with and without
 * the sysctl).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { buildRoutes, createCaddyAdmin, reconcileRoutes } from '../../src/caddy/index.js';
import { makeService } from '../builders.js';
import { requireCaddy, startCaddy } from './caddy-process.js';
import { startUpstream } from './upstream.js';

export interface LoopReport {
  ok: number;
  failed: number;
  /** Keep-alive only: requests repeated on a fresh connection after the server closed an idle one under them. */
  retried: number;
  errors: string[];
}

export interface SwapReport {
  migrate: number;
  swaps: { ms: number; mutations: number; kinds: string[]; inFlight: number }[];
  fresh: LoopReport;
  keepAlive: LoopReport;
  /** Responses per phase (before the first swap, after each swap), by upstream name. */
  phases: Record<string, number>[];
  /**
   * Requests sent after a swap had returned (and before the next began) that an upstream other than the new one
   * answered: must be 0, or Caddy was still routing to the old instance after the admin API said done.
   */
  misrouted: number;
  /** Responses after A was stopped (after the last swap to B and a drain pause). */
  afterStop: Record<string, number>;
  /** Latency in ms: steady (before the first swap) and within 100 ms after a swap started. */
  latency: { steady: number[]; duringSwaps: number[] };
}

const MIGRATE_REQ = '/proc/sys/net/ipv4/tcp_migrate_req';

export interface SwapOptions {
  /** Value of net.ipv4.tcp_migrate_req in the namespace (1 hands queued connections to the new listener). */
  migrate: number;
  swaps: number;
  /** Pause between swaps, and before the first and after the last. */
  gapMs: number;
  /** Concurrent loops opening a new connection per request. */
  fresh: number;
  /** Concurrent loops over a shared keep-alive agent. */
  keepAlive: number;
  /** Upstream answer delay, so requests are in flight at the upstream during swaps. */
  delayMs: number;
}

/** Runs the scenario in this process's network namespace (call it inside a private one). */
export async function runSwapScenario(options: SwapOptions): Promise<SwapReport> {
  if (!existsSync(MIGRATE_REQ)) {
    throw new Error(
      `${MIGRATE_REQ} is missing: the zero-drop swap needs Linux >= 5.14 (net.ipv4.tcp_migrate_req)`,
    );
  }
  const lo = spawnSync('ip', ['link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (lo.error || lo.status !== 0) {
    throw new Error(
      `ip link set lo up failed (install the Debian package "iproute2"): ${lo.error ?? lo.stderr}`,
    );
  }
  writeFileSync(MIGRATE_REQ, String(options.migrate));

  const caddy = await startCaddy();
  const a = await startUpstream('A', { delayMs: options.delayMs });
  const b = await startUpstream('B', { delayMs: options.delayMs });
  const admin = createCaddyAdmin({ address: caddy.adminAddress });
  const service = makeService({ name: 'web', http: { domain: 'web.test', path: '/', internalPort: a.port } });
  const swapTo = (port: number) => reconcileRoutes(admin, buildRoutes([service], { ports: { web: port } }));
  await swapTo(a.port);

  const report: SwapReport = {
    migrate: options.migrate,
    swaps: [],
    fresh: { ok: 0, failed: 0, retried: 0, errors: [] },
    keepAlive: { ok: 0, failed: 0, retried: 0, errors: [] },
    phases: [{}],
    afterStop: {},
    misrouted: 0,
    latency: { steady: [], duringSwaps: [] },
  };
  let phase = report.phases[0] as Record<string, number>;
  let stopped = false;
  let inFlight = 0;
  let swapStartedAt = -1;
  // The upstream every request must reach, or null while a swap is under way.
  let target: string | null = 'A';
  let running = true;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });

  const once = (keepAlive: boolean) =>
    new Promise<{ body: string } | { error: NodeJS.ErrnoException; reused: boolean; detail: string }>(
      (resolve) => {
        const t0 = performance.now();
        let connected = false;
        const req = http.request(
          {
            host: '127.0.0.1',
            port: caddy.httpPort,
            path: '/',
            headers: { host: 'web.test' },
            agent: keepAlive ? agent : false,
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              body += chunk;
            });
            res.on('end', () =>
              resolve(
                res.statusCode === 200
                  ? { body }
                  : { error: new Error(`HTTP ${res.statusCode} ${body}`), reused: false, detail: 'answered' },
              ),
            );
            res.on('error', (error) =>
              resolve({ error, reused: false, detail: 'while reading the response' }),
            );
          },
        );
        req.on('socket', (socket) => {
          if (!socket.connecting) connected = true;
          else
            socket.once('connect', () => {
              connected = true;
            });
        });
        req.on('error', (error) => {
          const since =
            swapStartedAt < 0
              ? 'before any swap'
              : `${(t0 - swapStartedAt).toFixed(1)} ms after a swap began`;
          resolve({
            error,
            reused: req.reusedSocket,
            detail: `${connected ? 'connected' : 'not connected'}; sent ${since}; failed after ${(performance.now() - t0).toFixed(1)} ms`,
          });
        });
        req.end();
      },
    );

  const loop = async (keepAlive: boolean) => {
    const stats = keepAlive ? report.keepAlive : report.fresh;
    while (running) {
      const start = performance.now();
      const expected = target;
      inFlight++;
      let result = await once(keepAlive);
      // RFC 9110 9.2.2: a client may repeat an idempotent request when the connection it reused closes before
      // any response: browsers, curl and Go do. Only that case is repeated, never a fresh connection's error.
      if ('error' in result && keepAlive && result.reused && result.error.code === 'ECONNRESET') {
        stats.retried++;
        result = await once(keepAlive);
      }
      inFlight--;
      const ms = performance.now() - start;
      if ('error' in result) {
        stats.failed++;
        stats.errors.push(
          `${result.error.code ?? result.error.message}${result.reused ? ' on a reused connection' : ''} (${result.detail})`,
        );
        continue;
      }
      stats.ok++;
      const name = result.body.split(' ')[0] as string;
      if (expected !== null && name !== expected) report.misrouted++;
      const bucket = stopped ? report.afterStop : phase;
      bucket[name] = (bucket[name] ?? 0) + 1;
      if (report.swaps.length === 0) report.latency.steady.push(ms);
      else if (swapStartedAt >= 0 && start - swapStartedAt < 100) report.latency.duringSwaps.push(ms);
    }
  };

  const loops = [
    ...Array.from({ length: options.fresh }, () => loop(false)),
    ...Array.from({ length: options.keepAlive }, () => loop(true)),
  ];
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  await pause(options.gapMs);
  // Alternate B, A, B, ...; an odd count ends on B.
  const count = options.swaps % 2 === 1 ? options.swaps : options.swaps + 1;
  for (let i = 0; i < count; i++) {
    swapStartedAt = performance.now();
    const load = inFlight;
    target = null;
    const result = await swapTo(i % 2 === 0 ? b.port : a.port);
    target = i % 2 === 0 ? 'B' : 'A';
    report.swaps.push({
      ms: performance.now() - swapStartedAt,
      mutations: result.mutations,
      kinds: result.plan.operations.map((op) => op.kind),
      inFlight: load,
    });
    phase = {};
    report.phases.push(phase);
    await pause(options.gapMs);
  }
  // The old instance is stopped only after a drain pause, as the deployer's switch will do.
  const closing = a.close();
  stopped = true;
  await pause(options.gapMs);
  running = false;
  await Promise.all(loops);
  agent.destroy();
  await closing;
  await b.close();
  await caddy.stop();
  return report;
}

const root = new URL('../..', import.meta.url).pathname;

/** Runs test/caddy/swap-scenario.ts inside `unshare --net`, failing with what to install or how to run. */
export async function runInNetns(args: string[]): Promise<SwapReport> {
  requireCaddy();
  const command = [
    '--net',
    '--',
    process.execPath,
    '--import',
    'tsx',
    'test/caddy/swap-scenario.ts',
    ...args,
  ];
  try {
    const { stdout } = await promisify(execFile)('unshare', command, { cwd: root, timeout: 120_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1) as string) as SwapReport;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('unshare is missing: install the Debian package "util-linux"');
    if (/Operation not permitted/.test(e.stderr ?? ''))
      throw new Error(
        'the swap test needs root (CAP_SYS_ADMIN) for a private network namespace; CI runs as root',
      );
    throw new Error(`swap scenario failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      migrate: { type: 'string', default: '1' },
      swaps: { type: 'string', default: '9' },
      gap: { type: 'string', default: '200' },
      fresh: { type: 'string', default: '3' },
      'keep-alive': { type: 'string', default: '2' },
      delay: { type: 'string', default: '1' },
    },
  });
  const report = await runSwapScenario({
    migrate: Number(values.migrate),
    swaps: Number(values.swaps),
    gapMs: Number(values.gap),
    fresh: Number(values.fresh),
    keepAlive: Number(values['keep-alive']),
    delayMs: Number(values.delay),
  });
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
