/**
 * Deploys under load in a booted host with real Caddy (root, systemd-nspawn), restart in place (the baseline, as
 * before blue/green existed) against blue/green in the same run, with the deployer's default health timing:
 *  - failed requests per deploy, from 4 loops opening a new connection per request and 2 keep-alive loops
 *    (keep-alive requests repeated after Caddy closed the connection before any answer are counted apart);
 *  - push→serving latency: from the moment the closures are on the host (the tick's `nix.pulled` event) to the
 *    first answer of the new version through Caddy; and how long the whole tick took.
 */
import { join } from 'node:path';
import {
  bootDeployHost,
  type DeployHost,
  failuresBetween,
  httpService,
  pushToServing,
} from '../test/e2e/deploy-host.js';
import type { LoadReport } from '../test/e2e/load.js';
import { REPO } from '../test/e2e/support.js';
import { stats } from './lib.js';

const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 5);
const PORT = 8001;
const versions = Array.from({ length: 2 * DEPLOYS + 1 }, (_, i) => String(i + 1));

interface Figures {
  load: LoadReport;
  latency: number[];
  ticks: number[];
  failedPerDeploy: number[];
}

async function deploys(d: DeployHost, strategy: 'restart' | 'blue-green', list: string[]): Promise<Figures> {
  const extra = strategy === 'restart' ? { update: 'restart' } : {};
  const service = (v: string) => httpService('web', d.paths[`web-${v}`] as string, PORT, extra);
  // Settle on the first version with this strategy before measuring (a change of `update` alone restarts nothing).
  await d.publish([service(list[0] as string)]);
  await d.apply();
  await d.startLoad({ fresh: 4, keepAlive: 2 });
  const runs = [];
  for (const v of list.slice(1)) {
    await d.publish([service(v)]);
    const tick = await d.apply();
    if (tick.exitCode !== 0)
      throw new Error(`deploy of web ${v} (${strategy}) failed: ${tick.stdout}${tick.stderr}`);
    runs.push({ v, tick });
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  const load = await d.stopLoad();
  return {
    load,
    latency: runs.map(({ v, tick }) => pushToServing(tick, load, `web ${v}`) ?? Number.NaN),
    ticks: runs.map(({ tick }) => tick.endedAt - tick.startedAt),
    failedPerDeploy: runs.map(({ tick }) => failuresBetween(load, tick.startedAt, tick.endedAt + 500).length),
  };
}

function print(label: string, f: Figures): void {
  const { fresh, keepAlive } = f.load;
  const lat = stats(f.latency);
  const tick = stats(f.ticks);
  console.log(`  ${label}:`);
  console.log(
    `    failed requests per deploy: ${f.failedPerDeploy.join(', ')} (fresh connections: ${fresh.failed} of ${fresh.ok + fresh.failed}; ` +
      `keep-alive: ${keepAlive.failed} of ${keepAlive.ok + keepAlive.failed}, ${keepAlive.retried} repeated after a close before any answer)`,
  );
  console.log(
    `    closures present → new version serving: median ${lat.median} ms, max ${Math.max(...f.latency)} ms (${f.latency.join(', ')})`,
  );
  console.log(`    whole tick (deployer start to exit): median ${tick.median} ms`);
  const kinds = [...new Set(f.load.failures.map((x) => `${x.kind} ${x.error}`))];
  if (kinds.length) console.log(`    failures seen: ${kinds.join('; ')}`);
}

let d: DeployHost | undefined;
try {
  d = await bootDeployHost({
    closures: versions.map((version) => ({ name: 'web', version, kind: 'http' as const })),
    // The deployer's defaults (the tests shorten them), and the built bin as installed.
    settings: {
      healthSettleMs: '5s',
      switchSettleMs: '1s',
      healthIntervalMs: '1s',
      deployTimeoutMs: '30s',
      drainTimeoutMs: '30s',
    },
    deployer: [join(REPO, 'dist/bin/deployer.js')],
  });
  console.log(
    `${DEPLOYS} deploys of a small Node.js HTTP service each way, under load (4 new-connection + 2 keep-alive loops through Caddy 2.6.2, tcp_migrate_req=1):`,
  );
  const half = versions.slice(0, DEPLOYS + 1);
  const rest = versions.slice(DEPLOYS);
  print('restart in place (the baseline)', await deploys(d, 'restart', half));
  print('blue/green', await deploys(d, 'blue-green', rest));
} catch (error) {
  console.log(`  not measured: ${(error as Error).message.split('\n')[0]}`);
} finally {
  await d?.stop();
}
