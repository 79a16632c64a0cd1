/**
 * Load through Caddy, run inside a booted test host (its loopback is its own) until a stop file appears:
 * `loops` concurrent loops, each sending one request to every target in turn, each on a new connection
 * (`Connection: close`: what Caddy's graceful reload never drops with net.ipv4.tcp_migrate_req = 1). Prints one
 * JSON LoadReport on stdout.
 *
 *   node --import tsx test/e2e/caddy-load.ts '{"port":80,"stopFile":"/run/load-stop","loops":2,"targets":[...]}'
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';

/** One site to ask: the Host header, and a text the answer's body must contain (status 200). */
export interface LoadTarget {
  name: string;
  host: string;
  expect: string;
}

export interface LoadOptions {
  port: number;
  stopFile: string;
  loops: number;
  targets: LoadTarget[];
  /** Give up on one request after this long (counted as failed). Default 2000. */
  timeoutMs?: number;
}

/** Per target: each request as `[epoch ms when it was sent, 1 ok | 0 failed]`, and why the failed ones failed. */
export interface LoadReport {
  results: Record<string, [number, 0 | 1][]>;
  errors: Record<string, string[]>;
}

function ask(options: LoadOptions, target: LoadTarget): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: options.port,
        path: '/',
        agent: false,
        headers: { host: target.host, connection: 'close' },
        timeout: options.timeoutMs ?? 2000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () =>
          resolve(
            res.statusCode === 200 && body.includes(target.expect)
              ? undefined
              : `${res.statusCode} ${body.slice(0, 60).replace(/\s+/g, ' ')}`,
          ),
        );
        res.on('error', (error) => resolve(error.message));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve((error as NodeJS.ErrnoException).code ?? error.message));
    req.end();
  });
}

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const report: LoadReport = { results: {}, errors: {} };
  for (const t of options.targets) {
    report.results[t.name] = [];
    report.errors[t.name] = [];
  }
  const loop = async () => {
    while (!existsSync(options.stopFile)) {
      for (const target of options.targets) {
        // The time it was sent: a request sent after another succeeded found Caddy listening.
        const sent = Date.now();
        const error = await ask(options, target);
        report.results[target.name]?.push([sent, error === undefined ? 1 : 0]);
        if (error !== undefined) report.errors[target.name]?.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.loops }, loop));
  return report;
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const options = JSON.parse(process.argv[2] as string) as LoadOptions;
  process.stdout.write(JSON.stringify(await runLoad(options)));
}
