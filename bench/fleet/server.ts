/**
 * The fleet simulation's S3 endpoint: s3rver on loopback behind the test proxy (test/support/s3-server.ts: it
 * makes s3rver atomic per object, as S3 is, so a status read never sees half a status write), in a process of
 * its own so the simulated hosts do not share its event loop. Prints `{"endpoint","direct","bucket"}` (the proxy's
 * endpoint, and s3rver's own for seeding without being counted) as one JSON line, then answers each `dump` line on stdin with one JSON line of
 * {@link TrafficDump}: every request the proxy answered since the last dump (arrival time, kind, status) and the bytes
 * on the wire (sampled every 100 ms over all of the proxy's sockets, headers included). Serves until SIGTERM or
 * until stdin closes, then removes its data.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { startS3Server } from '../../test/support/s3-server.js';
import { classify, type TrafficDump } from './traffic.js';

const server = await startS3Server(process.argv[2] ?? 'omni-fleet');
const { proxy } = server.httpServers;

let requests: TrafficDump['requests'] = [];
let samples: TrafficDump['wire'] = [];
const live = new Set<Socket>();
let closedIn = 0;
let closedOut = 0;
proxy.on('connection', (socket: Socket) => {
  live.add(socket);
  socket.on('close', () => {
    live.delete(socket);
    closedIn += socket.bytesRead;
    closedOut += socket.bytesWritten;
  });
});
proxy.on('request', (req: IncomingMessage, res: ServerResponse) => {
  // Counted when it arrives (what a provider's rate limit sees), with the status it was answered with.
  const at = Date.now();
  res.on('finish', () =>
    requests.push([at, classify(req.method ?? '', req.url ?? '', server.bucket), res.statusCode]),
  );
});
const sample = () => {
  let bytesIn = closedIn;
  let bytesOut = closedOut;
  for (const socket of live) {
    bytesIn += socket.bytesRead;
    bytesOut += socket.bytesWritten;
  }
  samples.push([Date.now(), bytesIn, bytesOut]);
};
const timer = setInterval(sample, 100);

process.stdout.write(
  `${JSON.stringify({ endpoint: server.proxyEndpoint, direct: server.endpoint, bucket: server.bucket })}\n`,
);
const stop = async () => {
  clearInterval(timer);
  await server.close().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'dump') continue;
  sample();
  server.requests.length = 0; // the test server's own log (with headers) is not needed here
  const dump: TrafficDump = { requests, wire: samples };
  requests = [];
  samples = [samples[samples.length - 1] as TrafficDump['wire'][number]];
  process.stdout.write(`${JSON.stringify(dump)}\n`);
}
await stop(); // stdin closed: the parent is gone
