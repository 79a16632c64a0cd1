/**
 * Caddy reloads and restarts under load, in a booted host with Debian's caddy.service and its stock Caddyfile,
 * the deployer (built dist/) serving `web` on web.test. Two loops alternate a request to the deployed site and
 * one to the host's own site (Debian's page), each on a new connection; net.ipv4.tcp_migrate_req = 1.
 * Three set-ups of caddy.service, each through 3 reloads (after a Caddyfile change) and 3 restarts:
 *  - tick only (the baseline): nothing added; the deployer's timer restores the routes at its next tick;
 *  - tick trigger: ExecReload and ExecStartPost start omni-deployer.service at once (a tick right after);
 *  - drop-in: examples/caddy/omni-deploy.conf (Caddy loads a config that already holds the routes).
 * Figures: requests to the deployed site that failed after each reload, and after each restart once the host's
 * own site answered again (a restart closes the listener for every site), with how long the gap lasted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bootCaddyHost,
  CADDYFILE,
  countBetween,
  DROP_IN,
  DROP_IN_TEXT,
  deployerApply,
  failedAfterRecovery,
  OWN,
  prepareWeb,
  startLoad,
  WEB,
  waitActive,
} from '../test/e2e/caddy-host.js';
import type { LoadReport } from '../test/e2e/caddy-load.js';
import { REPO } from '../test/e2e/support.js';
import type { BootedHost } from '../test/host/index.js';
import { ms, row } from './lib.js';

const TRIGGER = [
  '[Service]',
  'ExecStartPost=+/usr/bin/systemctl start --no-block omni-deployer.service',
  'ExecReload=+/usr/bin/systemctl start --no-block omni-deployer.service',
  '',
].join('\n');
const TRIGGER_FILE = '/etc/systemd/system/caddy.service.d/tick-trigger.conf';
/** How long after a reload or restart the requests are counted: the baseline's gap lasts until the next tick. */
const WINDOW_MS = 4000;
const ROUNDS = 3;

type Mode = 'tick only' | 'tick trigger' | 'drop-in';

/** The deployed site's failed requests after `since`, and the span from the first to the last of them. */
function gap(
  report: LoadReport,
  since: number,
  until: number,
): { failed: number; total: number; ms: number } {
  const within = (report.results[WEB.name] ?? []).filter(([at]) => at > since && at <= until);
  const failed = within.filter(([, ok]) => ok === 0);
  const span = failed.length ? (failed.at(-1)?.[0] ?? 0) - (failed[0]?.[0] ?? 0) : 0;
  return { failed: failed.length, total: within.length, ms: span };
}

async function configure(host: BootedHost, mode: Mode): Promise<void> {
  await host.exec('rm', ['-f', DROP_IN, TRIGGER_FILE]);
  if (mode === 'drop-in') await host.writeFile(DROP_IN, DROP_IN_TEXT);
  if (mode === 'tick trigger') await host.writeFile(TRIGGER_FILE, TRIGGER);
  await host.run('systemctl', ['daemon-reload']);
  await host.run('systemctl', ['restart', 'caddy.service']);
  await waitActive(host, 'caddy.service');
  // Every set-up starts with the route in place.
  const r = await deployerApply(host);
  if (r.exitCode !== 0) throw new Error(`deployer apply failed: ${r.stderr}`);
}

async function measure(host: BootedHost, mode: Mode, stock: string) {
  await configure(host, mode);
  const reloads: ReturnType<typeof gap>[] = [];
  const restarts: { lost: number; own: number; total: number; gapMs: number }[] = [];
  let ownReloadFailed = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const load = await startLoad(host, [OWN, WEB]);
    const reloadAt = Date.now();
    await host.writeFile(CADDYFILE, round % 2 ? stock : `${stock}\n:8081 {\n\trespond "second site"\n}\n`);
    await host.run('systemctl', ['reload', 'caddy.service']);
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const restartAt = Date.now();
    await host.run('systemctl', ['restart', 'caddy.service']);
    await waitActive(host, 'caddy.service');
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const end = Date.now();
    const report = await load.stop();
    reloads.push(gap(report, reloadAt, restartAt));
    ownReloadFailed += countBetween(report, OWN.name, reloadAt, restartAt).failed;
    const own = countBetween(report, OWN.name, restartAt, end);
    const after = gap(report, restartAt, end);
    restarts.push({
      lost: failedAfterRecovery(report, WEB.name, OWN.name, restartAt, end),
      own: own.failed,
      total: after.total,
      gapMs: after.ms,
    });
    // The baseline's routes come back with the next tick: run it now, before the next round.
    if (mode === 'tick only') await deployerApply(host);
    else await new Promise((r) => setTimeout(r, 1000));
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  console.log(`  ${mode}${mode === 'tick only' ? ' (baseline)' : ''}:`);
  console.log(
    `    reload:  deployed ${sum(reloads.map((r) => r.failed))} of ${sum(reloads.map((r) => r.total))} requests failed in the ${WINDOW_MS / 1000} s after ${ROUNDS} reloads (gaps ${reloads.map((r) => ms(r.ms)).join(', ')}); the host's own site: ${ownReloadFailed} failed`,
  );
  console.log(
    `    restart: deployed ${sum(restarts.map((r) => r.lost))} failed once the host's own site answered again (of ${sum(restarts.map((r) => r.total))}; own site ${sum(restarts.map((r) => r.own))} failed while Caddy was down; deployed gaps ${restarts.map((r) => ms(r.gapMs)).join(', ')})`,
  );
}

/**
 * What the drop-in adds to every start and reload of Caddy: `deployer caddy-config` (a process start, the
 * Caddyfile adapted, the state read, one GET), against `caddy adapt` alone, which Caddy's own start also does.
 */
async function timeComposition(host: BootedHost): Promise<void> {
  const time = async (command: string, args: string[]) => {
    const samples: number[] = [];
    for (let i = 0; i < 7; i++) {
      const start = performance.now();
      const r = await host.exec(command, args);
      if (r.exitCode !== 0) throw new Error(`${command} failed: ${r.stderr}`);
      samples.push(performance.now() - start);
    }
    return samples;
  };
  row('baseline: caddy adapt of the stock Caddyfile', await time('caddy', ['adapt', '--config', CADDYFILE]));
  row(
    'deployer caddy-config (Caddy running: 1 GET)',
    await time('/usr/local/bin/deployer', ['caddy-config', CADDYFILE]),
  );
}

console.log(
  `Caddy reload and restart under load (booted host, Debian's caddy.service and stock Caddyfile, 2 loops alternating the deployed site and the host's own, new connection per request, tcp_migrate_req=1):`,
);
let web: Awaited<ReturnType<typeof prepareWeb>> | undefined;
let host: BootedHost | undefined;
try {
  const dist = existsSync(join(REPO, 'dist/bin/deployer.js'));
  if (!dist) console.log('  (dist/ not built: the deployer runs through tsx, slower to start)');
  web = await prepareWeb('bench-caddy-web-1');
  host = await bootCaddyHost(web, { dist });
  // The tick trigger starts the unit the quick start installs.
  await host.writeFile(
    '/etc/systemd/system/omni-deployer.service',
    readFileSync(join(REPO, 'examples/omni-deployer.service'), 'utf8'),
  );
  const stock = await host.readFile(CADDYFILE);
  for (const mode of ['tick only', 'tick trigger', 'drop-in'] as const) await measure(host, mode, stock);
  console.log('  what the drop-in adds to each start and reload of Caddy (1 route in the state):');
  await timeComposition(host);
} catch (error) {
  console.log(`  not measured: ${(error as Error).message.split('\n')[0]}`);
} finally {
  await host?.stop();
  web?.remove();
}
