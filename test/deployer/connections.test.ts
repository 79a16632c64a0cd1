import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  busyConnections,
  type Connections,
  createConnections,
  parseSsConnections,
  type UpstreamConnection,
} from '../../src/deployer/connections.js';
import { createFakeShell } from '../../src/testing/fake-shell.js';
import { createFakeConnections } from '../../src/testing/index.js';

describe('parseSsConnections', () => {
  it('reads each connection and its last send and receive, 0 when ss leaves them out', () => {
    const text = [
      '0      0      127.0.0.1:42618 127.0.0.1:46093',
      '\t bbr wscale:10,10 rto:208 bytes_sent:7452 segs_in:56 data_segs_out:54 data_segs_in:53 lastsnd:16 lastrcv:8 lastack:8 pacing_rate 680501197536bps',
      '0      138    127.0.0.1:42642 127.0.0.1:46093',
      '\t bbr wscale:10,10 rto:208 lastack:8 unacked:1',
      '',
    ].join('\n');
    expect(parseSsConnections(text)).toEqual([
      {
        local: '127.0.0.1:42618',
        remote: '127.0.0.1:46093',
        lastSentMs: 16,
        lastReceivedMs: 8,
        segmentsOut: 54,
        segmentsIn: 53,
      },
      {
        local: '127.0.0.1:42642',
        remote: '127.0.0.1:46093',
        lastSentMs: 0,
        lastReceivedMs: 0,
        segmentsOut: 0,
        segmentsIn: 0,
      },
    ]);
    expect(parseSsConnections('')).toEqual([]);
    expect(parseSsConnections('garbage line\n\tlastsnd:1')).toEqual([]);
  });
});

describe('busyConnections', () => {
  const c = (
    lastSentMs: number,
    lastReceivedMs: number,
    segmentsOut = 3,
    segmentsIn = 3,
  ): UpstreamConnection => ({
    local: 'a',
    remote: 'b',
    lastSentMs,
    lastReceivedMs,
    segmentsOut,
    segmentsIn,
  });
  it.each([
    ['a request awaiting its answer', c(10, 5000), true],
    ['a body being uploaded', c(0, 3000), true],
    ['an answer still arriving', c(3000, 20), true],
    ['answered just now (within the quiet time)', c(400, 300), true],
    ['answered long ago: pooled and idle', c(4010, 4000), false],
    ['request and answer in the same tick, long ago', c(4000, 4000), false],
    ['a fresh connection whose request is not answered yet', c(1504, 1504, 1, 0), true],
    ['a pooled one reused the moment its last answer arrived', c(1504, 1504, 4, 3), true],
    ['a pooled one whose answers were large', c(4000, 4000, 3, 9), false],
  ])('%s: busy %s', (_, connection, busy) => {
    expect(busyConnections([connection], 1000)).toHaveLength(busy ? 1 : 0);
  });
});

describe('createConnections', () => {
  it('says which package is missing without ss', async () => {
    // Nothing answers: the fake shell exits 127, as bash does for a missing program.
    const shell = createFakeShell();
    await expect(createConnections(shell).established(8000)).rejects.toThrow(/install the package iproute2/);
    await expect(createConnections(shell).established(0)).rejects.toThrow(/expected a port from 1 to 65535/);
  });
});

// A server that answers /fast at once and never answers /slow: one pooled idle connection and one in flight.
let server: http.Server;
let port = 0;
const agent = new http.Agent({ keepAlive: true });
let slowArrived: () => void = () => {};
const slow = new Promise<void>((resolve) => {
  slowArrived = resolve;
});
beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/fast') res.end('ok');
    else slowArrived();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  agent.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function contract(name: string, make: () => Connections) {
  describe(`Connections contract: ${name}`, () => {
    it('sees an idle pooled connection and one awaiting its answer, and only the second as busy', async () => {
      const connections = make();
      const seen = await connections.established(port);
      expect(seen).toHaveLength(2);
      expect(seen.every((c) => c.remote === `127.0.0.1:${port}`)).toBe(true);
      expect(busyConnections(seen, 100)).toHaveLength(1);
      expect(await connections.established(port === 65535 ? 1 : port + 1)).toEqual([]);
    });
  });
}

describe('with real sockets', () => {
  beforeAll(async () => {
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/fast', agent }, (res) => res.resume().on('end', resolve))
        .on('error', reject);
    });
    http.get({ host: '127.0.0.1', port, path: '/slow', agent: false }).on('error', () => {});
    // The request is sent (the server has it), and the answered connection is past the quiet time given below.
    await slow;
    await new Promise((resolve) => setTimeout(resolve, 300));
  });
  contract('createConnections (ss on this machine)', () => createConnections());
  contract('createFakeConnections', () => {
    const fake = createFakeConnections();
    fake.set(port, [
      {
        local: '127.0.0.1:40001',
        remote: `127.0.0.1:${port}`,
        lastSentMs: 310,
        lastReceivedMs: 300,
        segmentsOut: 1,
        segmentsIn: 1,
      },
      {
        local: '127.0.0.1:40002',
        remote: `127.0.0.1:${port}`,
        lastSentMs: 300,
        lastReceivedMs: 300,
        segmentsOut: 1,
        segmentsIn: 0,
      },
    ]);
    return fake;
  });
});
