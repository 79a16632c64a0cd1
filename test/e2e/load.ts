/**
 * Steady HTTP load through Caddy, run inside the booted test host (`node --import tsx test/e2e/load.ts ...`,
 * started with systemd-run): loops that open a new connection per request, and loops over a keep-alive agent.
 * Runs until SIGTERM, then writes one JSON report ({@link LoadReport}) to `--out` and exits.
 *
 *   load.ts --port 8080 --host example.com --fresh 4 --keep-alive 2 --out /run/load.json
 *
 * A keep-alive request whose reused connection was closed before any byte of the answer arrived is repeated
 * once on a new connection, as browsers, curl and Go do (RFC 9110 9.2.2): it counts as `retried`, not failed.
 * Every other error, and every answer that is not 200, is a failure.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

/** What one kind of loop saw. */
export interface LoopStats {
  ok: number;
  failed: number;
  /** Keep-alive only: requests repeated after their reused connection was closed before any answer. */
  retried: number;
}

/** One failed request. */
export interface LoadFailure {
  /** When it was sent (ms since the epoch). */
  at: number;
  kind: 'fresh' | 'keep-alive';
  /** `HTTP 502`, `ECONNRESET`, ... */
  error: string;
}

/** The report written at the end. */
export interface LoadReport {
  startedAt: number;
  endedAt: number;
  fresh: LoopStats;
  keepAlive: LoopStats;
  /** Every failure (at most 100,000), in order. */
  failures: LoadFailure[];
  /** When each answer body (e.g. `web 3`) was first and last seen (ms since the epoch), and how often. */
  versions: Record<string, { first: number; last: number; count: number }>;
}

type Outcome = { body: string } | { error: string; reused: boolean; answered: boolean };

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: 'example.com' },
    path: { type: 'string', default: '/' },
    fresh: { type: 'string', default: '4' },
    'keep-alive': { type: 'string', default: '2' },
    out: { type: 'string', default: '/run/load.json' },
  },
});

const report: LoadReport = {
  startedAt: Date.now(),
  endedAt: 0,
  fresh: { ok: 0, failed: 0, retried: 0 },
  keepAlive: { ok: 0, failed: 0, retried: 0 },
  failures: [],
  versions: {},
};
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(values['keep-alive']) });
let running = true;

/** One request; `keepAlive` through the pool of reused connections, else on a connection of its own. */
function once(keepAlive: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    let answered = false;
    const req = http.request(
      {
        host: '127.0.0.1',
        port: Number(values.port),
        path: values.path,
        headers: { host: values.host },
        agent: keepAlive ? agent : false,
      },
      (res) => {
        answered = true;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () =>
          resolve(
            res.statusCode === 200
              ? { body: body.trim() }
              : { error: `HTTP ${res.statusCode}`, reused: req.reusedSocket, answered },
          ),
        );
        res.on('error', (error: NodeJS.ErrnoException) =>
          resolve({ error: error.code ?? error.message, reused: req.reusedSocket, answered }),
        );
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ error: error.code ?? error.message, reused: req.reusedSocket, answered }),
    );
    req.end();
  });
}

async function loop(keepAlive: boolean): Promise<void> {
  const stats = keepAlive ? report.keepAlive : report.fresh;
  while (running) {
    const at = Date.now();
    let outcome = await once(keepAlive);
    if ('error' in outcome && keepAlive && outcome.reused && !outcome.answered) {
      stats.retried++;
      // On a new connection, as the comment above says clients do: the pool's other idle connection may be
      // closing at the same moment (Caddy closes idle connections at a config reload).
      outcome = await once(false);
    }
    if ('error' in outcome) {
      stats.failed++;
      if (report.failures.length < 100_000)
        report.failures.push({ at, kind: keepAlive ? 'keep-alive' : 'fresh', error: outcome.error });
      continue;
    }
    stats.ok++;
    const now = Date.now();
    const seen = report.versions[outcome.body] ?? { first: now, last: now, count: 0 };
    seen.last = now;
    seen.count++;
    report.versions[outcome.body] = seen;
  }
}

const loops = [
  ...Array.from({ length: Number(values.fresh) }, () => loop(false)),
  ...Array.from({ length: Number(values['keep-alive']) }, () => loop(true)),
];
process.on('SIGTERM', async () => {
  running = false;
  await Promise.all(loops);
  agent.destroy();
  report.endedAt = Date.now();
  writeFileSync(values.out as string, `${JSON.stringify(report)}\n`);
  process.exit(0);
});
