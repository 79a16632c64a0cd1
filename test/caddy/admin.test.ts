import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CaddyRequestEvent, createCaddyAdmin } from '../../src/caddy/index.js';
import { createFakeCaddyAdmin } from '../../src/testing/index.js';
import { testCaddyAdmin } from './admin-contract.js';
import { type CaddyProcess, freePort, startCaddy } from './caddy-process.js';

testCaddyAdmin('createFakeCaddyAdmin (in memory)', async () => {
  const baseConfig = { apps: { http: { servers: { srv0: { listen: [':443'], routes: [] } } } } };
  const fake = createFakeCaddyAdmin({ config: baseConfig });
  let seen = 0;
  return {
    admin: fake,
    baseConfig,
    requests: () => fake.requests.slice(seen),
    async reset(config) {
      fake.setConfig(config);
      seen = fake.requests.length;
    },
    async close() {},
  };
});

for (const unixSocket of [false, true]) {
  testCaddyAdmin(
    `createCaddyAdmin against caddy run (${unixSocket ? 'unix socket' : 'TCP loopback'})`,
    async () => {
      const caddy = await startCaddy({ unixSocket });
      const events: CaddyRequestEvent[] = [];
      return {
        admin: createCaddyAdmin({ address: caddy.adminAddress, onRequest: (e) => events.push(e) }),
        baseConfig: caddy.initialConfig,
        requests: () => events,
        async reset(config) {
          await caddy.load(config);
          events.length = 0;
        },
        close: () => caddy.stop(),
      };
    },
  );
}

describe('createCaddyAdmin', () => {
  let caddy: CaddyProcess;
  beforeAll(async () => {
    caddy = await startCaddy();
  });
  afterAll(async () => {
    await caddy?.stop();
  });

  it('reads the ETag that Caddy 2.6 sends as a trailer, and it guards writes', async () => {
    const admin = createCaddyAdmin({ address: caddy.adminAddress });
    const { etag } = await admin.get({ path: [] });
    expect(etag).toMatch(/^"\/config\/ [0-9a-f]+"$/);
  });

  it('reports a stopped Caddy as CADDY_UNREACHABLE, naming the address', async () => {
    const port = await freePort();
    const admin = createCaddyAdmin({ address: `127.0.0.1:${port}` });
    await expect(admin.get({ path: [] })).rejects.toMatchObject({
      code: 'CADDY_UNREACHABLE',
      message: expect.stringContaining(`127.0.0.1:${port}`),
    });
    const socket = createCaddyAdmin({ address: 'unix//nonexistent/omni-test/admin.sock' });
    await expect(socket.delete({ id: 'x' })).rejects.toMatchObject({
      code: 'CADDY_UNREACHABLE',
      message: expect.stringContaining('unix//nonexistent/omni-test/admin.sock'),
    });
  });

  it('repeats a GET that got no answer twice, or never with getRetryDelaysMs: []', async () => {
    const port = await freePort();
    const attempts = async (options: { getRetryDelaysMs?: number[] }) => {
      let count = 0;
      const admin = createCaddyAdmin({ address: `127.0.0.1:${port}`, onRequest: () => count++, ...options });
      await expect(admin.get({ path: [] })).rejects.toMatchObject({ code: 'CADDY_UNREACHABLE' });
      return count;
    };
    expect(await attempts({})).toBe(3);
    expect(await attempts({ getRetryDelaysMs: [] })).toBe(1);
  });

  it('refuses a non-loopback admin address unless remote access is explicitly allowed', () => {
    expect(() => createCaddyAdmin({ address: '10.1.2.3:2019' })).toThrow(/not a loopback address/);
    expect(createCaddyAdmin({ address: '10.1.2.3:2019', allowRemote: true }).address).toBe('10.1.2.3:2019');
  });
});

describe('createFakeCaddyAdmin', () => {
  it('loses API changes on restart unless resumed, and can be made unreachable', async () => {
    const fake = createFakeCaddyAdmin();
    await fake.put({ path: ['apps', 'http', 'servers', 'srv0', 'routes'] }, []);
    fake.restart({ resume: true });
    expect((await fake.get({ path: ['apps', 'http', 'servers', 'srv0', 'routes'] })).value).toEqual([]);
    fake.restart();
    expect((await fake.get({ path: ['apps', 'http', 'servers', 'srv0', 'routes'] })).value).toBeNull();
    fake.setReachable(false);
    await expect(fake.get({ path: [] })).rejects.toMatchObject({ code: 'CADDY_UNREACHABLE' });
    fake.setReachable(true);
    expect(fake.mutations).toBe(1);
  });

  it('sends no ETag when configured like a Caddy without one', async () => {
    expect((await createFakeCaddyAdmin({ etags: false }).get({ path: [] })).etag).toBeUndefined();
  });
});
