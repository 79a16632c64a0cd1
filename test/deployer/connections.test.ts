import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  busyConnections,
  type Connections,
  createConnections,
  isLoopbackAddress,
  parseSsConnections,
  type UpstreamConnection,
  upstreamConnections,
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

describe('upstreamConnections', () => {
  // Real `ss -H -t -n -i state established ( dport = :47123 )` output on this machine, with a listener on
  // 127.0.0.1:47123 and one on the machine's other address 192.0.2.2:47123, each with a request in flight; then
  // the same connection as if to a remote machine (198.51.100.7) and the IPv6 forms.
  const real = [
    '0      0      127.0.0.1:48630 127.0.0.1:47123',
    '\t bbr wscale:10,10 rto:204 rtt:0.05/0.019 mss:32768 pmtu:65535 rcvmss:536 advmss:65483 cwnd:11 bytes_sent:18 bytes_acked:19 segs_out:3 segs_in:2 data_segs_out:1 bbr:(bw:4854515624bps,mrtt:0.05,pacing_gain:2.88672,cwnd_gain:2.88672) send 57671680000bps lastsnd:104 lastrcv:404 lastack:104 pacing_rate 149710259888bps delivery_rate 4854518512bps delivered:2 app_limited rcv_space:65495 rcv_ssthresh:65495 minrtt:0.05 snd_wnd:65536',
    '0      0      192.0.2.2:60996 192.0.2.2:47123',
    '\t bbr wscale:10,10 rto:204 rtt:0.007/0.003 mss:32768 pmtu:65535 rcvmss:536 advmss:65483 cwnd:11 bytes_sent:18 bytes_acked:19 segs_out:3 segs_in:2 data_segs_out:1 bbr:(bw:26214390624bps,mrtt:0.007,pacing_gain:2.88672,cwnd_gain:2.88672) send 411940571429bps lastsnd:104 lastrcv:404 lastack:104 pacing_rate 1069359043824bps delivery_rate 26214400000bps delivered:2 app_limited rcv_space:65495 rcv_ssthresh:65495 minrtt:0.007 snd_wnd:65536',
    '0      0      192.0.2.2:60998 198.51.100.7:47123',
    '\t bbr wscale:10,10 rto:204 bytes_sent:18 segs_out:3 segs_in:2 data_segs_out:1 lastsnd:104 lastrcv:404 lastack:104',
    '0      0      [::1]:48700 [::1]:47123',
    '\t bbr wscale:10,10 rto:204 bytes_sent:18 segs_out:3 segs_in:2 data_segs_out:1 lastsnd:104 lastrcv:404 lastack:104',
    '0      0      [2001:db8::2]:48702 [2001:db8::7]:47123',
    '\t bbr wscale:10,10 rto:204 bytes_sent:18 segs_out:3 segs_in:2 data_segs_out:1 lastsnd:104 lastrcv:404 lastack:104',
    '',
  ].join('\n');

  it('keeps only the connections to the port on a loopback address (where Caddy dials an upstream)', () => {
    expect(parseSsConnections(real)).toHaveLength(5);
    const kept = upstreamConnections(real, 47123);
    expect(kept.map((c) => c.remote)).toEqual(['127.0.0.1:47123', '[::1]:47123']);
    // Busy (a request in flight) like the others: only the address decides.
    expect(busyConnections(parseSsConnections(real))).toHaveLength(5);
    expect(busyConnections(kept)).toHaveLength(2);
    expect(upstreamConnections(real, 4712)).toEqual([]);
  });

  it.each([
    ['127.0.0.1:8000', true],
    ['127.1.2.3:8000', true],
    ['127.0.0.1%lo:8000', true],
    ['[::1]:8000', true],
    ['[::ffff:127.0.0.1]:8000', true],
    ['192.0.2.2:8000', false],
    ['10.127.0.1:8000', false],
    ['[2001:db8::1]:8000', false],
    ['[::ffff:10.0.0.1]:8000', false],
  ])('isLoopbackAddress(%s) is %s', (address, loopback) => {
    expect(isLoopbackAddress(address)).toBe(loopback);
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
