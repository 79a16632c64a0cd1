/**
 * Caddy benchmark, each figure next to a baseline measured in the same run.
 *  - planRoutes for 1,000 routes (pure): the idle tick (in sync), a first deploy, 100 upstream swaps;
 *    baseline: structuredClone of the same config.
 *  - against a real `caddy run`: first reconcile of 50 routes, the idle reconcile (requests and mutations per
 *    tick), one upstream swap; baseline: one bare GET /config/.
 *  - upstream swaps under load in a private network namespace (root): failed requests with
 *    net.ipv4.tcp_migrate_req = 0 (Linux default, the baseline) and = 1, keep-alive retries, latency during
 *    swaps next to steady latency.
 */
import {
  buildRoutes,
  createCaddyAdmin,
  type DesiredRoute,
  planRoutes,
  reconcileRoutes,
} from '../src/caddy/index.js';
import { makeService } from '../test/builders.js';
import { FOREIGN_ROUTES, startCaddy } from '../test/caddy/caddy-process.js';
import { runInNetns, type SwapReport } from '../test/caddy/swap-scenario.js';
import { ms, row, stats, time, timeAsync } from './lib.js';

const services = (n: number, portBase = 10000) =>
  Array.from({ length: n }, (_, i) =>
    makeService({
      name: `svc-${i}`,
      http: {
        domain: `svc-${i % 200}.example.com`,
        path: i < 200 ? '/' : `/p${i}`,
        internalPort: portBase + i,
      },
    }),
  );
const config = (routes: unknown[]) => ({
  apps: { http: { servers: { srv0: { listen: [':443'], routes: [...FOREIGN_ROUTES, ...routes] } } } },
});

console.log('planRoutes, 1,000 routes (pure; steady state after warm-up, GC between samples):');
const desired: DesiredRoute[] = buildRoutes(services(1000));
const inSync = config(desired.map((d) => d.route));
const empty = config([]);
const swapped = buildRoutes(services(1000), {
  ports: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`svc-${i * 10}`, 30000 + i])),
});
for (let i = 0; i < 5; i++) planRoutes(desired, inSync);
const base = row(
  'baseline: structuredClone(config)',
  time(() => structuredClone(inSync), 20),
);
const idle = row(
  'in sync (the idle tick): 0 operations',
  time(() => planRoutes(desired, inSync), 20),
);
row(
  `first deploy: ${planRoutes(desired, empty).operations.length} operations`,
  time(() => planRoutes(desired, empty), 5),
);
row(
  `100 upstream swaps: ${planRoutes(swapped, inSync).operations.length} operations`,
  time(() => planRoutes(swapped, inSync), 5),
);
console.log(
  `  the idle plan costs ${(idle.median / base.median).toFixed(1)}x a structuredClone of the config`,
);

console.log('\nreconcileRoutes against caddy run (admin on loopback TCP, 3 foreign routes):');
const caddy = await startCaddy();
try {
  const admin = createCaddyAdmin({ address: caddy.adminAddress });
  const fifty = buildRoutes(services(50, 20000));
  const getBase = row('baseline: one GET /config/', await timeAsync(() => admin.get({ path: [] }), 30));
  const start = performance.now();
  const first = await reconcileRoutes(admin, fifty);
  console.log(
    `  ${'first reconcile of 50 routes'.padEnd(50)} ${ms(performance.now() - start).padStart(17)}  ${first.requests} requests, ${first.mutations} mutating`,
  );
  let counts = { requests: 0, mutations: 0 };
  const idleTick = row(
    'idle reconcile (drift check)',
    await timeAsync(async () => {
      counts = await reconcileRoutes(admin, fifty);
    }, 30),
    `  ${counts.requests} request, ${counts.mutations} mutating`,
  );
  console.log(`  an idle tick costs ${ms(idleTick.median - getBase.median)} over the bare GET`);
  let port = 21000;
  row(
    'one upstream swap (GET, PATCH, GET)',
    await timeAsync(
      () => reconcileRoutes(admin, buildRoutes(services(50, 20000), { ports: { 'svc-7': port++ } })),
      15,
    ),
  );
} finally {
  await caddy.stop();
}

console.log(
  '\nupstream swaps under load (private network namespace; 3 fresh-connection + 2 keep-alive loops):',
);
const totals = (reports: SwapReport[]) => {
  const sum = (f: (r: SwapReport) => number) => reports.reduce((n, r) => n + f(r), 0);
  return {
    swaps: sum((r) => r.swaps.length),
    fresh: sum((r) => r.fresh.ok + r.fresh.failed),
    freshFailed: sum((r) => r.fresh.failed),
    keep: sum((r) => r.keepAlive.ok + r.keepAlive.failed),
    keepFailed: sum((r) => r.keepAlive.failed),
    retried: sum((r) => r.keepAlive.retried),
    misrouted: sum((r) => r.misrouted),
    steady: reports.flatMap((r) => r.latency.steady),
    during: reports.flatMap((r) => r.latency.duringSwaps),
    swapMs: reports.flatMap((r) => r.swaps.map((s) => s.ms)),
  };
};
try {
  for (const migrate of [0, 1]) {
    const reports: SwapReport[] = [];
    for (let run = 0; run < 3; run++) {
      reports.push(
        await runInNetns([
          '--migrate',
          String(migrate),
          '--swaps',
          '15',
          '--gap',
          '150',
          '--fresh',
          '3',
          '--keep-alive',
          '2',
        ]),
      );
    }
    const t = totals(reports);
    console.log(
      `  tcp_migrate_req=${migrate}${migrate === 0 ? ' (Linux default: baseline)' : ''}: ${t.swaps} swaps, swap median ${ms(stats(t.swapMs).median)}`,
    );
    console.log(
      `    new connection per request: ${t.freshFailed} failed of ${t.fresh}; keep-alive: ${t.keepFailed} failed of ${t.keep} (${t.retried} repeated after a reused connection was closed); misrouted ${t.misrouted}`,
    );
    const steady = stats(t.steady);
    const during = stats(t.during);
    console.log(
      `    latency p50/p99: steady ${ms(steady.median)} / ${ms(steady.p99)}, within 100 ms of a swap ${ms(during.median)} / ${ms(during.p99)}`,
    );
  }
} catch (error) {
  console.log(`  not measured: ${(error as Error).message.split('\n')[0]}`);
}
