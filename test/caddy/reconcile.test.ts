import { canonicalJson } from '../../src/caddy/config-tree.js';
import { createCaddyAdmin } from '../../src/caddy/index.js';
import { createFakeCaddyAdmin } from '../../src/testing/index.js';
import { FOREIGN_ROUTES, freePort, startCaddy } from './caddy-process.js';
import { testReconcile } from './reconcile-contract.js';

testReconcile('createFakeCaddyAdmin (in memory)', async () => {
  const baseConfig = {
    apps: {
      http: { servers: { srv0: { listen: ['127.0.0.1:8080'], routes: structuredClone(FOREIGN_ROUTES) } } },
    },
  };
  const fake = createFakeCaddyAdmin({ config: baseConfig });
  return {
    admin: fake,
    foreign: fake,
    baseConfig,
    spareListen: '127.0.0.1:8081',
    async reset(config) {
      fake.setConfig(config);
    },
    async restart() {
      fake.restart();
    },
    async raw(path) {
      const target = path.startsWith('/id/')
        ? { id: path.slice(4) }
        : { path: path.split('/').filter(Boolean).slice(1) };
      return `${canonicalJson((await fake.get(target)).value)}\n`;
    },
    async close() {},
  };
});

for (const unixSocket of [false, true]) {
  testReconcile(
    `createCaddyAdmin against caddy run (${unixSocket ? 'unix socket' : 'TCP loopback'})`,
    async () => {
      const caddy = await startCaddy({ unixSocket });
      return {
        admin: createCaddyAdmin({ address: caddy.adminAddress }),
        foreign: createCaddyAdmin({ address: caddy.adminAddress }),
        baseConfig: caddy.initialConfig,
        spareListen: `127.0.0.1:${await freePort()}`,
        reset: (config) => caddy.load(config),
        restart: () => caddy.restart(),
        raw: (path) => caddy.rawGet(path),
        close: () => caddy.stop(),
      };
    },
  );
}
