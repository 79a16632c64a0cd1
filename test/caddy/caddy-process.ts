/**
 * Test harness: a real `caddy run` (Debian's caddy 2.6.2 in CI) on free loopback ports, with a private
 * HOME/XDG directory, an admin API on TCP or a unix socket, and an HTTP server `srv0` that already holds routes
 * of another owner. Stopped by the test that started it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Fails (never skips) when the binary is missing, naming the Debian package that provides it. */
export function requireCaddy(): string {
  const r = spawnSync('caddy', ['version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      'the caddy binary is not available: install the Debian package "caddy" (apt-get install -y caddy; scripts/setup.sh does it)',
    );
  }
  return r.stdout.trim();
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Routes of another owner: one with its own @id, one without, and a catch-all that must never shadow ours. */
export const FOREIGN_ROUTES = [
  {
    '@id': 'team-blog',
    match: [{ host: ['blog.test'] }],
    handle: [{ handler: 'static_response', body: 'foreign blog' }],
    terminal: true,
  },
  {
    match: [{ host: ['foreign.test'], path: ['/api/*'] }],
    handle: [{ handler: 'static_response', body: 'foreign api', status_code: 200 }],
    terminal: true,
  },
  { handle: [{ handler: 'static_response', body: 'foreign catch-all', status_code: 404 }] },
];

export interface CaddyProcess {
  /** As the library takes it: `127.0.0.1:PORT` or `unix//.../admin.sock`. */
  adminAddress: string;
  /** Port of the HTTP server `srv0`. */
  httpPort: number;
  /** The config Caddy was started with. */
  initialConfig: Record<string, unknown>;
  /** Restart with the original config file (API changes lost), or with `--resume` (autosaved config). */
  restart(options?: { resume?: boolean }): Promise<void>;
  /** Test-harness-only: replace the whole config (`POST /load`), as a reset between tests. */
  load(config: unknown): Promise<void>;
  /** Raw body of a GET on the admin API, byte for byte. */
  rawGet(path: string): Promise<string>;
  stop(): Promise<void>;
  /** Caddy's log so far (for failure messages). */
  log(): string;
}

export interface StartCaddyOptions {
  unixSocket?: boolean;
  /** Autosave API changes (needed for `--resume`). Default false. */
  persist?: boolean;
  routes?: unknown[];
  /**
   * Start from a Caddyfile instead (given the HTTP port its sites listen on), adapted with `caddy adapt` as
   * Caddy does at start-up; its server listens on 127.0.0.1 only. `routes` is ignored.
   */
  caddyfile?: (httpPort: number) => string;
}

/**
 * A Caddyfile as Caddy's JSON (`caddy adapt`), with every server listening on 127.0.0.1:`httpPort` only, over
 * plain HTTP.
 */
function adaptCaddyfile(dir: string, text: string, httpPort: number): Record<string, unknown> {
  const file = join(dir, 'Caddyfile');
  writeFileSync(file, text);
  const r = spawnSync('caddy', ['adapt', '--adapter', 'caddyfile', '--config', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`caddy adapt failed:\n${r.stderr}`);
  const config = JSON.parse(r.stdout) as {
    apps: { http: { servers: Record<string, { listen: string[]; automatic_https?: unknown }> } };
  };
  for (const server of Object.values(config.apps.http.servers)) {
    server.listen = [`127.0.0.1:${httpPort}`];
    // On a port other than 80, host routes of ours would make Caddy serve them with TLS.
    server.automatic_https = { disable: true };
  }
  return config;
}

/** Starts Caddy and waits until its admin API answers. */
export async function startCaddy(options: StartCaddyOptions = {}): Promise<CaddyProcess> {
  requireCaddy();
  const dir = mkdtempSync(join(tmpdir(), 'omni-caddy-'));
  const httpPort = await freePort();
  const adminPort = await freePort();
  const socketPath = join(dir, 'admin.sock');
  const listen = options.unixSocket ? `unix/${socketPath}` : `127.0.0.1:${adminPort}`;
  const admin = { listen, config: { persist: options.persist ?? false } };
  const initialConfig: Record<string, unknown> = options.caddyfile
    ? { ...adaptCaddyfile(dir, options.caddyfile(httpPort), httpPort), admin }
    : {
        admin,
        apps: {
          http: {
            servers: {
              srv0: {
                listen: [`127.0.0.1:${httpPort}`],
                // A non-80 port would make Caddy manage certificates for every host we route.
                automatic_https: { disable: true },
                routes: structuredClone(options.routes ?? FOREIGN_ROUTES),
              },
            },
          },
        },
      };
  const configFile = join(dir, 'caddy.json');
  writeFileSync(configFile, JSON.stringify(initialConfig));
  const env = {
    ...process.env,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_DATA_HOME: join(dir, 'data'),
  };
  let child: ChildProcess | undefined;
  let output = '';

  // Caddy 2.6 restarts its admin listener after a config it could not load; retry the harness's own requests.
  const request = async (method: string, path: string, body?: string) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await requestOnce(method, path, body);
      } catch (error) {
        if (attempt >= 3 || (error as NodeJS.ErrnoException).code !== 'ECONNRESET') throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const requestOnce = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const target = options.unixSocket
        ? { socketPath, setHost: false, headers: { host: '' } as Record<string, string> }
        : { host: '127.0.0.1', port: adminPort, headers: {} as Record<string, string> };
      if (body !== undefined) target.headers['content-type'] = 'application/json';
      const req = http.request({ ...target, method, path, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  async function run(args: string[]) {
    output = '';
    // setpriv (util-linux) makes Caddy die with this process, even when a test runner kills it mid-test.
    const started = spawn('setpriv', ['--pdeathsig', 'TERM', '--', 'caddy', 'run', ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child = started;
    started.stderr?.setEncoding('utf8');
    started.stderr?.on('data', (chunk: string) => {
      output += chunk;
    });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (started.exitCode !== null) throw new Error(`caddy exited with ${started.exitCode}:\n${output}`);
      try {
        if ((await request('GET', '/config/')).status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`caddy did not answer on ${listen} within 15 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function stop() {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  await run(['--config', configFile]);
  return {
    adminAddress: listen,
    httpPort,
    initialConfig,
    async restart(restartOptions = {}) {
      await stop();
      await run(restartOptions.resume ? ['--config', configFile, '--resume'] : ['--config', configFile]);
    },
    async load(config) {
      const r = await request('POST', '/load', JSON.stringify(config));
      if (r.status !== 200) throw new Error(`POST /load answered ${r.status}: ${r.body}`);
    },
    async rawGet(path) {
      const r = await request('GET', path);
      if (r.status !== 200) throw new Error(`GET ${path} answered ${r.status}: ${r.body}`);
      return r.body;
    },
    async stop() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => output,
  };
}
