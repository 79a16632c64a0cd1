import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3ObjectStore } from '../../src/s3/index.js';

/**
 * A bucket that accepts connections and reads requests but never answers (a stalled load balancer, a hung
 * server): every request must fail within the idle timeout, so a deployer's tick ends and the next one retries.
 */
describe('an S3 endpoint that stops answering', () => {
  let server: Server;
  let port = 0;
  const sockets: Socket[] = [];
  let requests = 0;

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', (chunk) => {
        if (/^(GET|PUT|HEAD|DELETE|POST) /.test(chunk.toString('latin1'))) requests++;
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const store = (maxAttempts: number) =>
    createS3ObjectStore({
      bucket: 'stalled',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      maxAttempts,
      timeouts: { idleMs: 300 },
    });

  it('a read fails instead of waiting forever, and each attempt is a request of its own', async () => {
    const before = requests;
    await expect(store(2).get('manifest.json')).rejects.toThrow(
      /manifest.json.*timed out after 300 ms of inactivity/,
    );
    expect(requests - before).toBe(2);
  }, 20_000);

  it('so does a write', async () => {
    const before = requests;
    await expect(store(1).put('status/biz.json', '{}')).rejects.toThrow();
    expect(requests - before).toBe(1);
  }, 20_000);
});
