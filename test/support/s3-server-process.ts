/**
 * Runs {@link startS3Server} as its own process (for benchmarks: a client in the same process would share
 * s3rver's event loop and be billed for the server's work). Prints `{"endpoint","bucket"}` as one JSON line,
 * serves until SIGTERM, then removes its data.
 */
import { startS3Server } from './s3-server.js';

const server = await startS3Server(process.argv[2] ?? 'omni-test');
process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint, bucket: server.bucket })}\n`);
process.on('SIGTERM', () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
