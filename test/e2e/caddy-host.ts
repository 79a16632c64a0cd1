/**
 * A booted host with Caddy as Debian's package installs it (caddy.service, /etc/caddy/Caddyfile with its `:80`
 * site, admin API on localhost:2019) and the deployer with only its required settings, serving one service
 * `web` on web.test. Shared by test/e2e/caddy.e2e.test.ts and bench/caddy-reload.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { signManifest } from '../../src/manifest/index.js';
import type { CommandResult } from '../../src/shell/types.js';
import { type BootedHost, bootHost, buildService, NIX_ENV, wrapper } from '../host/index.js';
import type { LoadOptions, LoadReport, LoadTarget } from './caddy-load.js';
import { REPO, TSX } from './support.js';

export const CADDYFILE = '/etc/caddy/Caddyfile';
/** The drop-in of examples/caddy/omni-deploy.conf, where its comment says to install it. */
export const DROP_IN = '/etc/systemd/system/caddy.service.d/omni-deploy.conf';
export const DROP_IN_TEXT = readFileSync(join(REPO, 'examples/caddy/omni-deploy.conf'), 'utf8');
export const CONFIG = '/etc/omni-deploy/deployer.json';
export const MANIFEST = 'file:///var/lib/omni-bucket/manifest.json';
export const DOMAIN = 'web.test';
const PORT = 8001;

/** The deployed site and the host's own (Debian's page on the `:80` catch-all), for load loops. */
export const WEB: LoadTarget = { name: 'deployed', host: DOMAIN, expect: 'web 1' };
export const OWN: LoadTarget = { name: 'own', host: 'localhost', expect: 'Caddy' };

/** The service, signed and in a file:// binary cache that the host sees (its closure is not in the store). */
export interface WebClosure {
  storePath: string;
  cacheDir: string;
  publicKey: string;
  /** The secret half, which signs the manifest as push would. */
  secretKey: string;
  remove(): void;
}

/** Builds `web` here, signs it, copies it to a file:// cache under /var/tmp and deletes it from the store. */
export async function prepareWeb(name = 'e2e-caddy-web-1'): Promise<WebClosure> {
  const storePath = await buildService({
    name,
    files: {
      'bin/web': wrapper('/usr/bin/node', 'server.js'),
      'server.js':
        "require('http').createServer((q, s) => s.end(q.url === '/healthz' ? 'ok' : 'web 1\\n')).listen(Number(process.env.PORT), '127.0.0.1');\n",
    },
  });
  const cacheDir = mkdtempSync('/var/tmp/omni-caddy-cache-');
  const keys = mkdtempSync('/var/tmp/omni-caddy-keys-');
  const run = (args: string[]) =>
    execFileSync(args[0] as string, args.slice(1), { env: { ...process.env, ...NIX_ENV }, encoding: 'utf8' });
  run(['nix-store', '--generate-binary-cache-key', 'caddy-e2e-1', join(keys, 'sk'), join(keys, 'pk')]);
  const publicKey = readFileSync(join(keys, 'pk'), 'utf8').trim();
  const secretKey = readFileSync(join(keys, 'sk'), 'utf8');
  const nix = ['nix', '--extra-experimental-features', 'nix-command'];
  run([...nix, 'store', 'sign', '-r', '--key-file', join(keys, 'sk'), storePath]);
  run([...nix, 'copy', '--to', `file://${cacheDir}`, storePath]);
  run(['nix-store', '--delete', storePath]);
  rmSync(keys, { recursive: true, force: true });
  return {
    storePath,
    cacheDir,
    publicKey,
    secretKey,
    remove: () => rmSync(cacheDir, { recursive: true, force: true }),
  };
}

/** Options of {@link bootCaddyHost}. */
export interface CaddyHostOptions {
  /** Run the deployer from the built dist/ (benchmarks, after `npm run build`) instead of the sources via tsx. */
  dist?: boolean;
}

/**
 * Boots `biz` with caddy.service enabled as apt leaves it, `deployer` on /usr/local/bin (as `npm i -g` puts
 * it), /etc/omni-deploy/deployer.json with only manifest, substituter and trustedPublicKeys, and a manifest
 * with `web` on web.test, signed as push signs it. net.ipv4.tcp_migrate_req is 1 in its network namespace, as
 * docs/operations.md recommends. Nothing is deployed yet.
 */
export async function bootCaddyHost(web: WebClosure, options: CaddyHostOptions = {}): Promise<BootedHost> {
  const host = await bootHost({
    hostname: 'biz',
    mask: ['tmp.mount'],
    bindReadOnly: [REPO],
    files: {
      [CONFIG]: JSON.stringify({
        manifest: MANIFEST,
        substituter: `file://${web.cacheDir}`,
        trustedPublicKeys: [web.publicKey],
      }),
    },
  });
  try {
    const program = options.dist
      ? `/usr/bin/node ${join(REPO, 'dist/bin/deployer.js')}`
      : `/usr/bin/node --import ${TSX} ${join(REPO, 'bin/deployer.ts')}`;
    await host.writeFile('/usr/local/bin/deployer', `#!/bin/sh\nexec ${program} "$@"\n`, 0o755);
    // Signed with the closures' key, as push signs it: the deployer refuses an unsigned manifest.
    await host.writeFile(
      '/var/lib/omni-bucket/manifest.json',
      signManifest(
        JSON.stringify({
          version: 1,
          generation: '2025-01-15T12:00:00Z',
          services: [
            {
              name: 'web',
              artifact: { type: 'nix-closure', storePath: web.storePath },
              hosts: ['biz'],
              exec: { command: 'web' },
              env: { PORT: String(PORT) },
              http: { domain: DOMAIN, path: '/', internalPort: PORT, healthCheck: '/healthz' },
            },
          ],
        }),
        web.secretKey,
      ),
    );
    await host.run('sysctl', ['-q', '-w', 'net.ipv4.tcp_migrate_req=1']);
    await waitActive(host, 'caddy.service');
    return host;
  } catch (error) {
    await host.stop();
    throw error;
  }
}

/** Waits until `unit` is active (or failed: then throws with its journal). */
export async function waitActive(host: BootedHost, unit: string): Promise<void> {
  for (let i = 0; ; i++) {
    const state = (await host.exec('systemctl', ['is-active', unit])).stdout.trim();
    if (state === 'active') return;
    if (state === 'failed' || i > 300) throw new Error(`${unit} is ${state}:\n${await host.journal(unit)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `deployer apply`, as the quick start runs it by hand (the config file at its default place). */
export function deployerApply(host: BootedHost, ...args: string[]): Promise<CommandResult> {
  return host.exec('/usr/local/bin/deployer', ['apply', ...args], { env: NIX_ENV });
}

/** GET http://127.0.0.1/ inside the host with a Host header: `<body> <status>` on one line. */
export async function getSite(host: BootedHost, name: string): Promise<string> {
  const r = await host.exec('curl', [
    '-s',
    '-o',
    '-',
    '-w',
    ' %{http_code}',
    '-H',
    `Host: ${name}`,
    'http://127.0.0.1/',
  ]);
  return r.stdout.replace(/\s+/g, ' ').trim();
}

/** A load loop running inside the host (test/e2e/caddy-load.ts) until `stop()`. */
export interface RunningLoad {
  stop(): Promise<LoadReport>;
}

/** Starts {@link RunningLoad} against Caddy's port 80 and waits until every target has answered once. */
export async function startLoad(host: BootedHost, targets: LoadTarget[], loops = 2): Promise<RunningLoad> {
  const stopFile = `/run/load-stop-${Date.now()}`;
  const options: LoadOptions = { port: 80, stopFile, loops, targets };
  const started = Date.now();
  const run = host.exec('node', [
    '--import',
    TSX,
    join(REPO, 'test/e2e/caddy-load.ts'),
    JSON.stringify(options),
  ]);
  // tsx needs a moment to start: let the loops run before anything happens to Caddy.
  await new Promise((r) => setTimeout(r, 2500));
  return {
    async stop() {
      await host.run('touch', [stopFile]);
      const r = await run;
      if (r.exitCode !== 0) throw new Error(`load loop failed (${r.exitCode}): ${r.stderr}`);
      const report = JSON.parse(r.stdout) as LoadReport;
      for (const t of targets) {
        const first = report.results[t.name]?.[0]?.[0];
        if (first === undefined || first > started + 2500)
          throw new Error(
            `load loop for ${t.name} did not start in time: ${JSON.stringify(report.errors[t.name]?.slice(0, 5))}`,
          );
      }
      return report;
    },
  };
}

/** Counts of one target's requests sent within `[from, to]` (epoch ms). */
export function countBetween(report: LoadReport, target: string, from: number, to: number) {
  const within = (report.results[target] ?? []).filter(([at]) => at >= from && at <= to);
  return { ok: within.filter(([, ok]) => ok).length, failed: within.filter(([, ok]) => !ok).length };
}

/**
 * Requests to `target` sent within `(back, until]` that failed, where `back` is when the first request to
 * `other` that succeeded after its first failure following `since` was sent (or `since` when it never failed):
 * what a site lost beyond what the other lost (a restart closes Caddy's listener for every site; this counts
 * only requests sent once Caddy was serving again). Infinity when `other` never came back.
 */
export function failedAfterRecovery(
  report: LoadReport,
  target: string,
  other: string,
  since: number,
  until: number,
): number {
  const others = (report.results[other] ?? []).filter(([at]) => at > since);
  const down = others.find(([, ok]) => ok === 0)?.[0];
  const back = down === undefined ? since : others.find(([at, ok]) => at > down && ok === 1)?.[0];
  if (back === undefined) return Number.POSITIVE_INFINITY;
  return (report.results[target] ?? []).filter(([at, ok]) => at > back && at <= until && ok === 0).length;
}
