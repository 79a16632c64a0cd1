/**
 * Tiny upstreams that answer with their own name, so a test can tell which one served a request through Caddy,
 * and a client that sends one request with a chosen Host header.
 */
import http from 'node:http';

export interface Upstream {
  name: string;
  port: number;
  /** Requests answered so far. */
  served: number;
  /** Requests being answered right now. */
  active: number;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 answering `<name> <path>` after `delayMs`. */
export function startUpstream(name: string, options: { delayMs?: number } = {}): Promise<Upstream> {
  return new Promise((resolve) => {
    const upstream: Upstream = {
      name,
      port: 0,
      served: 0,
      active: 0,
      // Stops accepting at once; connections still busy get a second to finish (Caddy may keep one open).
      close: () =>
        new Promise<void>((done) => {
          server.close(() => done());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 1000).unref();
        }),
    };
    const server = http.createServer((req, res) => {
      upstream.active++;
      const answer = () => {
        upstream.active--;
        upstream.served++;
        res.setHeader('content-type', 'text/plain');
        res.end(`${name} ${req.url}`);
      };
      if (options.delayMs) setTimeout(answer, options.delayMs);
      else answer();
    });
    server.listen(0, '127.0.0.1', () => {
      upstream.port = (server.address() as { port: number }).port;
      resolve(upstream);
    });
  });
}

export interface Reply {
  status: number;
  body: string;
}

/** One GET to `127.0.0.1:port` with `Host: host`, on a fresh connection unless an agent is given. */
export function get(
  port: number,
  host: string,
  path: string,
  agent: http.Agent | false = false,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
