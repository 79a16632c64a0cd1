import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthProbe } from '../../src/deployer/probe.js';

let server: Server;
let port: number;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/healthz?deep=1') res.writeHead(204).end();
    else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 2000);
    else if (req.url === '/redirect') res.writeHead(302, { location: '/healthz' }).end();
    else res.writeHead(503).end('down');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('createHealthProbe (real HTTP on loopback)', () => {
  const probe = createHealthProbe();
  it('2xx is healthy, with the query string passed through', async () => {
    expect(await probe.check(port, '/healthz?deep=1', 1000)).toEqual({ ok: true, status: 204 });
  });
  it.each([
    ['/down', 503],
    ['/redirect', 302],
  ])('%s answering %i is unhealthy', async (path, status) => {
    expect(await probe.check(port, path, 1000)).toEqual({ ok: false, status });
  });
  it('a refused connection is unhealthy with the reason', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const free = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    expect(await probe.check(free, '/', 1000)).toEqual({ ok: false, error: 'ECONNREFUSED' });
  });
  it('no answer within the timeout is unhealthy', async () => {
    const r = await probe.check(port, '/slow', 200);
    expect(r.ok).toBe(false);
    expect(r.error).toContain('no response within 200ms');
  });
});
