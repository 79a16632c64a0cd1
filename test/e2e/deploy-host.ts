/**
 * A booted test host ready for deploys under load, shared by test/e2e/zero-downtime.e2e.test.ts and
 * bench/zero-downtime.ts: closures built and signed here and pulled there from s3rver, real Caddy (with
 * net.ipv4.tcp_migrate_req = 1 in the host's own network namespace), the `deployer` bin run inside, and a load
 * generator (test/e2e/load.ts) sending requests through Caddy while deploys happen.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type BootedHost, bootHost, buildService, NIX_ENV, wrapper } from '../host/index.js';
import type { LoadReport } from './load.js';
import { AWS, CADDY_PORT, caddyConfig, E2E_HOST, REPO, S3, startBucketAndCaddy, TSX } from './support.js';

const BUCKET = 'omni-zdt';
export const MANIFEST = `s3://${BUCKET}/manifest.json?endpoint=${S3}&region=us-east-1`;

/** What a closure's program does. */
export type ProgramKind =
  /** An HTTP server on 127.0.0.1:$PORT answering `<name> <version>` on every path but /healthz (`ok`). */
  | 'http'
  /** Exits with status 1 at once. */
  | 'crash'
  /** Runs until stopped, printing a line every second. */
  | 'worker';

/** One closure to build: `<name>-<version>`, program `bin/<name>`. */
export interface ClosureSpec {
  name: string;
  version: string;
  kind: ProgramKind;
}

function programFiles(spec: ClosureSpec): Record<string, string> {
  const { name, version } = spec;
  const script =
    spec.kind === 'crash'
      ? `console.error('${name} ${version}: refusing to start'); process.exit(1);\n`
      : spec.kind === 'worker'
        ? `setInterval(() => console.log('${name} ${version} working'), 1000);\n`
        : `require('http').createServer((q, s) => s.end(q.url === '/healthz' ? 'ok' : '${name} ${version}\\n'))` +
          `.listen(Number(process.env.PORT), '127.0.0.1');\n`;
  return { [`bin/${name}`]: wrapper('/usr/bin/node', 'server.js'), 'server.js': script };
}

/** One line of the deployer's JSON log. */
export interface LogEvent {
  time: string;
  level: string;
  type: string;
  service?: string;
  message: string;
  [key: string]: unknown;
}

/** One `deployer apply` run inside the host. */
export interface TickRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** When it was started and when it ended (ms since the epoch). */
  startedAt: number;
  endedAt: number;
  events: LogEvent[];
}

/** The host and what a test does with it. */
export interface DeployHost {
  host: BootedHost;
  /** Store path of each closure, by `<name>-<version>`. */
  paths: Record<string, string>;
  /**
   * Writes a new manifest of `services`, signed as push signs it (archiving the current one); returns its
   * generation.
   */
  publish(services: object[]): Promise<string>;
  /**
   * What `push rollback --steps N` writes: the services of the manifest published `steps` publishes ago, under
   * a new generation, signed anew (an archive put back as it was is refused as a replay).
   */
  rollback(steps: number): Promise<string>;
  /** One `deployer apply --verbose` with the host's config. */
  apply(): Promise<TickRun>;
  /**
   * Starts `deployer apply` as a unit and kills it with SIGKILL the moment `condition` (a shell test run in a
   * loop inside the host) holds; resolves once systemd recorded the death. Throws when the tick ended first.
   */
  applyKilledWhen(condition: string): Promise<void>;
  /** Starts the load generator (test/e2e/load.ts) against Caddy. */
  startLoad(options?: { fresh?: number; keepAlive?: number }): Promise<void>;
  /** Stops it and returns its report. */
  stopLoad(): Promise<LoadReport>;
  /** GET through Caddy: `body status`. */
  get(path?: string): Promise<string>;
  stop(): Promise<void>;
}

/** An HTTP service entry of the manifest. */
export function httpService(name: string, storePath: string, port: number, extra: object = {}): object {
  return {
    name,
    artifact: { type: 'nix-closure', storePath },
    hosts: ['biz'],
    exec: { command: name },
    env: { PORT: String(port) },
    http: { domain: 'example.com', path: '/', internalPort: port, healthCheck: '/healthz' },
    ...extra,
  };
}

/** A worker entry of the manifest. */
export function workerService(name: string, storePath: string, extra: object = {}): object {
  return {
    name,
    artifact: { type: 'nix-closure', storePath },
    hosts: ['biz'],
    exec: { command: name },
    ...extra,
  };
}

/**
 * Builds and signs `closures` here, boots the host, uploads them to its bucket and starts Caddy. `settings`
 * are deployer config keys over the defaults of this harness; `deployer` is the program that runs the bin
 * (default: bin/deployer.ts through tsx; the bench passes the built dist/bin/deployer.js).
 */
export async function bootDeployHost(options: {
  closures: readonly ClosureSpec[];
  settings?: Record<string, string>;
  deployer?: string[];
}): Promise<DeployHost> {
  const paths: Record<string, string> = {};
  for (const spec of options.closures)
    paths[`${spec.name}-${spec.version}`] = await buildService({
      name: `zdt-${spec.name}-${spec.version}-${spec.kind}`,
      files: programFiles(spec),
    });
  const cacheDir = mkdtempSync('/var/tmp/omni-zdt-cache-');
  const keys = mkdtempSync('/var/tmp/omni-zdt-keys-');
  const nix = (args: string[]) =>
    execFileSync(args[0] as string, args.slice(1), { env: { ...process.env, ...NIX_ENV }, encoding: 'utf8' });
  const all = Object.values(paths);
  let host: BootedHost | undefined;
  try {
    nix(['nix-store', '--generate-binary-cache-key', 'zdt-1', join(keys, 'sk'), join(keys, 'pk')]);
    const publicKey = execFileSync('cat', [join(keys, 'pk')], { encoding: 'utf8' }).trim();
    const secretKey = execFileSync('cat', [join(keys, 'sk')], { encoding: 'utf8' }).trim();
    const experimental = ['--extra-experimental-features', 'nix-command'];
    nix(['nix', ...experimental, 'store', 'sign', '-r', '--key-file', join(keys, 'sk'), ...all]);
    nix(['nix', ...experimental, 'copy', '--to', `file://${cacheDir}`, ...all]);
    // Deleted here, so the host must pull them (a path another test still roots stays: harmless).
    execFileSync('nix-store', ['--delete', ...all], { env: { ...process.env, ...NIX_ENV }, stdio: 'ignore' });

    host = await bootHost({
      hostname: 'biz',
      ...E2E_HOST,
      files: {
        '/etc/omni-deploy/deployer.json': JSON.stringify({
          manifest: MANIFEST,
          substituter: `${S3}/${BUCKET}`,
          trustedPublicKeys: [publicKey],
          caddyAdmin: 'localhost:2019',
          caddyServer: 'omni',
          healthSettleMs: '2s',
          switchSettleMs: '1s',
          healthIntervalMs: '250ms',
          deployTimeoutMs: '15s',
          drainTimeoutMs: '10s',
          logFormat: 'json',
          ...options.settings,
        }),
        // Signs the manifests (driver publish), as push would; the deployer trusts its public half.
        '/root/keys/sk': `${secretKey}\n`,
        '/etc/e2e/caddy.json': caddyConfig(),
      },
    });
    // Caddy's graceful reloads hand queued connections to the new listener only with this (per network namespace).
    await host.run('sysctl', ['-w', 'net.ipv4.tcp_migrate_req=1']);
    await startBucketAndCaddy(host, BUCKET);
    const upload = await host.exec(
      'node',
      ['--import', TSX, join(REPO, 'test/e2e/driver.ts'), 'upload', S3, BUCKET, cacheDir, ...all],
      { cwd: REPO, env: { ...AWS, ...NIX_ENV } },
    );
    if (upload.exitCode !== 0) throw new Error(`upload failed: ${upload.stderr}`);
  } catch (error) {
    await host?.stop();
    throw error;
  } finally {
    rmSync(keys, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  }
  return deployHost(host, paths, options.deployer ?? ['--import', TSX, join(REPO, 'bin/deployer.ts')]);
}

function deployHost(host: BootedHost, paths: Record<string, string>, deployer: string[]): DeployHost {
  let generation = 0;
  const published: object[][] = [];
  const driver = async (...args: string[]) => {
    const r = await host.exec('node', ['--import', TSX, join(REPO, 'test/e2e/driver.ts'), ...args], {
      cwd: REPO,
      env: { ...AWS, ...NIX_ENV },
    });
    if (r.exitCode !== 0) throw new Error(`driver ${args[0]} failed: ${r.stderr}`);
    return r.stdout;
  };
  const applyArgs = ['apply', '--config', '/etc/omni-deploy/deployer.json', '--verbose'];
  const publish = async (services: object[]) => {
    generation += 1;
    const manifest = {
      version: 1,
      generation: new Date(Date.UTC(2025, 0, 15, 12, 0, generation)).toISOString().replace('.000Z', 'Z'),
      services,
    };
    await host.writeFile('/root/next.json', JSON.stringify(manifest, null, 2));
    await driver('publish', MANIFEST, '/root/next.json', '/root/keys/sk');
    published.push(services);
    return manifest.generation;
  };
  return {
    host,
    paths,
    publish,
    async rollback(steps) {
      const services = published.at(-1 - steps);
      if (!services) throw new Error(`no manifest published ${steps} publish(es) ago`);
      return publish(services);
    },
    async apply() {
      const startedAt = Date.now();
      const r = await host.exec('node', [...deployer, ...applyArgs], {
        cwd: REPO,
        env: { ...AWS, ...NIX_ENV },
      });
      const events = r.stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as LogEvent);
      return { ...r, startedAt, endedAt: Date.now(), events };
    },
    async applyKilledWhen(condition) {
      await host.run('systemd-run', [
        '--unit=zdt-tick',
        `--working-directory=${REPO}`,
        ...Object.entries({ ...AWS, ...NIX_ENV }).map(([k, v]) => `--setenv=${k}=${v}`),
        '--',
        '/usr/bin/node',
        ...deployer,
        ...applyArgs,
      ]);
      const r = await host.exec('timeout', [
        '60',
        'sh',
        '-c',
        `until ${condition}; do systemctl is-active -q zdt-tick.service || exit 3; sleep 0.01; done; ` +
          'systemctl kill --signal=SIGKILL zdt-tick.service; ' +
          'while systemctl is-active -q zdt-tick.service; do sleep 0.05; done',
      ]);
      const result = (
        await host.exec('systemctl', ['show', '-p', 'Result', '--value', 'zdt-tick.service'])
      ).stdout.trim();
      const journal = await host.journal('zdt-tick.service');
      await host.exec('systemctl', ['reset-failed', 'zdt-tick.service']);
      if (r.exitCode !== 0 || result !== 'signal')
        throw new Error(
          `the tick was not killed when "${condition}" held (exit ${r.exitCode}, result ${result}):\n${journal}`,
        );
    },
    async startLoad(options = {}) {
      // A load left by a test that failed before stopLoad (or that exited failed and stayed loaded) would make
      // `systemd-run --unit=zdt-load` refuse: "Unit zdt-load.service was already loaded".
      await host.exec('systemctl', ['stop', 'zdt-load.service']);
      await host.exec('systemctl', ['reset-failed', 'zdt-load.service']);
      await host.exec('rm', ['-f', '/run/zdt-load.json']);
      await host.run('systemd-run', [
        '--unit=zdt-load',
        '--collect',
        '--',
        '/usr/bin/node',
        '--import',
        TSX,
        join(REPO, 'test/e2e/load.ts'),
        '--port',
        String(CADDY_PORT),
        '--fresh',
        String(options.fresh ?? 4),
        '--keep-alive',
        String(options.keepAlive ?? 2),
        '--out',
        '/run/zdt-load.json',
      ]);
      // Running once it has answers to count.
      for (
        let i = 0;
        (await host.exec('systemctl', ['is-active', '-q', 'zdt-load.service'])).exitCode !== 0 || i < 10;
        i++
      ) {
        if (i > 100)
          throw new Error(`the load generator did not start:\n${await host.journal('zdt-load.service')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stopLoad() {
      await host.run('systemctl', ['stop', 'zdt-load.service']);
      const text = await host.readFile('/run/zdt-load.json');
      await host.exec('rm', ['-f', '/run/zdt-load.json']);
      return JSON.parse(text) as LoadReport;
    },
    async get(path = '/') {
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
    },
    stop: () => host.stop(),
  };
}

/** The failures of `report` sent between `from` and `to` (ms since the epoch). */
export function failuresBetween(report: LoadReport, from: number, to: number) {
  return report.failures.filter((f) => f.at >= from && f.at <= to);
}

/**
 * Milliseconds from the moment the closures were present on the host (the tick's `nix.pulled` event) to the
 * first answer of `body` through Caddy; `undefined` when either is missing.
 */
export function pushToServing(tick: TickRun, report: LoadReport, body: string): number | undefined {
  const pulled = tick.events.find((e) => e.type === 'nix.pulled');
  const seen = report.versions[body]?.first;
  return pulled && seen !== undefined ? seen - Date.parse(pulled.time) : undefined;
}
