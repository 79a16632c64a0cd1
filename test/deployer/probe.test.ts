import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthProbe, MAX_HEALTH_BODY_BYTES } from '../../src/deployer/probe.js';

const timers = new Set<NodeJS.Timeout>();
/** Sends one byte every 300 ms until the client goes away: never idle long enough for an idle timeout. */
function trickle(write: (byte: string) => void, socket: Socket) {
  const timer = setInterval(() => write('x'), 300);
  timers.add(timer);
  socket.on('close', () => {
    clearInterval(timer);
    timers.delete(timer);
  });
}

let server: Server;
let port: number;
/** Raw TCP: speaks HTTP by hand where node:http would not misbehave (a status line sent byte by byte). */
let raw: TcpServer;
let rawPort: number;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/healthz?deep=1') res.writeHead(204).end();
    else if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 2000);
    else if (req.url === '/redirect') res.writeHead(302, { location: '/healthz' }).end();
    else if (req.url === '/trickle-body') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      trickle((b) => res.write(b), req.socket);
    } else if (req.url === '/silent') {
      // Accepts the request and never answers.
    } else if (req.url === '/close-mid-body') {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only ten b');
      setTimeout(() => req.socket.destroy(), 50);
    } else if (req.url === '/huge') {
      res.writeHead(200);
      res.end(Buffer.alloc(MAX_HEALTH_BODY_BYTES * 4, 'x'));
    } else res.writeHead(503).end('down');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  raw = createTcpServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      const response = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
      let i = 0;
      trickle(() => {
        if (i < response.length) socket.write(response[i++] as string);
      }, socket);
    });
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  rawPort = (raw.address() as AddressInfo).port;
});
afterAll(() => {
  for (const timer of timers) clearInterval(timer);
  server.closeAllConnections();
  server.close();
  raw.close();
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

  // Each of these would keep a probe with an idle-socket timeout waiting forever (vitest's timeout is the watchdog).
  it('a body trickling one byte every 300 ms ends at the deadline, unhealthy', async () => {
    expect(await probe.check(port, '/trickle-body', 1000)).toEqual({
      ok: false,
      status: 200,
      error: 'response not complete within 1000ms',
    });
  });
  it('a status line trickling one byte every 300 ms ends at the deadline, unhealthy', async () => {
    expect(await probe.check(rawPort, '/', 1000)).toEqual({
      ok: false,
      error: 'no response within 1000ms',
    });
  });
  it('a service that accepts the request and never answers ends at the deadline, unhealthy', async () => {
    expect(await probe.check(port, '/silent', 500)).toEqual({ ok: false, error: 'no response within 500ms' });
  });
  it('a connection closed mid-body is unhealthy, even after a 200', async () => {
    expect(await probe.check(port, '/close-mid-body', 5000)).toEqual({
      ok: false,
      status: 200,
      error: expect.stringMatching(/^connection closed before the response was complete/),
    });
  });
  it('a body larger than the bound is unhealthy without being read to the end', async () => {
    expect(await probe.check(port, '/huge', 5000)).toEqual({
      ok: false,
      status: 200,
      error: `response body larger than ${MAX_HEALTH_BODY_BYTES} bytes`,
    });
  });
});
