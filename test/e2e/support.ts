/** What the end-to-end suites share: paths, the bucket and Caddy inside a booted host, requests through Caddy. */
import { join } from 'node:path';
import type { BootedHost } from '../host/index.js';

export const REPO = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
/** tsx by absolute path: commands inside the host start in its `/`, where no node_modules resolve `tsx`. */
export const TSX = `file://${REPO}/node_modules/tsx/dist/loader.mjs`;
/**
 * Options every end-to-end host boots with: Debian's caddy.service masked (the tests run their own Caddy), and
 * the repository bound in at its own path wherever it was cloned (tmp.mount masked, so a clone under /tmp
 * stays visible).
 */
export const E2E_HOST = { mask: ['caddy.service', 'tmp.mount'], bindReadOnly: [REPO] } as const;

/** s3rver inside the host (its loopback is its own). */
export const S3 = 'http://127.0.0.1:4569';
export const CADDY_PORT = 8080;
/** s3rver accepts any signature; the SDK still wants credentials. */
export const AWS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

/** Caddy's config in the host: admin on localhost:2019, server `omni` on plain HTTP with `routes` (foreign ones). */
export function caddyConfig(routes: object[] = []): string {
  return JSON.stringify({
    admin: { listen: 'localhost:2019' },
    apps: {
      http: {
        servers: {
          // Plain HTTP on a test port: no certificates for example.com in a sandbox.
          omni: {
            listen: [`:${CADDY_PORT}`],
            automatic_https: { disable: true },
            ...(routes.length ? { routes } : {}),
          },
        },
      },
    },
  });
}

/** Starts s3rver (bucket `bucket`) and Caddy (`/etc/e2e/caddy.json`) as transient units, and waits for s3rver. */
export async function startBucketAndCaddy(host: BootedHost, bucket: string): Promise<void> {
  await host.run('systemd-run', [
    '--unit=e2e-s3rver',
    '--',
    '/usr/bin/node',
    '--import',
    TSX,
    join(REPO, 'test/e2e/driver.ts'),
    's3rver',
    '/var/lib/e2e-s3',
    '4569',
    bucket,
  ]);
  await host.run('systemd-run', [
    '--unit=e2e-caddy',
    '--',
    '/usr/bin/caddy',
    'run',
    '--config',
    '/etc/e2e/caddy.json',
  ]);
  for (let i = 0; (await host.exec('curl', ['-s', `${S3}/`])).exitCode !== 0; i++) {
    if (i > 100) throw new Error(`s3rver did not start:\n${await host.journal('e2e-s3rver.service')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GET through Caddy: body and status on one line, e.g. `web 1 200`; Caddy's empty 200 when no route matches. */
export async function getThroughCaddy(host: BootedHost, path: string): Promise<string> {
  const r = await host.exec('curl', [
    '-s',
    '-o',
    '-',
    '-w',
    ' %{http_code}',
    '-H',
    'Host: example.com',
    `http://127.0.0.1:${CADDY_PORT}${path}`,
  ]);
  return r.stdout.replace(/\s+/g, ' ').trim();
}
