import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHostChecks,
  gatherHostFacts,
  type HostChecks,
  parseSsListeners,
  unitFromCgroup,
} from '../../src/deployer/host-checks.js';
import { createFakeHostChecks } from '../../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'omni-checks-'));
const secret = join(dir, 'web.env');
// Only names count: comments, and a value that looks like an assignment, do not.
writeFileSync(secret, 'TOKEN=x\n# PORT=1\n; NOPE=1\n  export PORT = 9000\nEMPTY=\nA="B=1"\n');
chmodSync(secret, 0o640);
mkdirSync(join(dir, 'data'));
chmodSync(join(dir, 'data'), 0o750);
symlinkSync(join(dir, 'data'), join(dir, 'link'));

// A socket this process listens on, and a port nothing listens on (a second server, closed again).
let server: Server;
let port = 0;
let freePort = 0;
const listen = (s: Server) =>
  new Promise<number>((resolve) =>
    s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)),
  );
beforeAll(async () => {
  server = createServer();
  port = await listen(server);
  const other = createServer();
  freePort = await listen(other);
  await new Promise((resolve) => other.close(resolve));
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

function contract(name: string, make: () => HostChecks) {
  describe(`HostChecks contract: ${name}`, () => {
    it('knows root and not a made-up user or group', async () => {
      const checks = make();
      expect(await checks.userExists('root')).toBe(true);
      expect(await checks.groupExists('root')).toBe(true);
      expect(await checks.userExists('no-such-user-omni')).toBe(false);
      expect(await checks.groupExists('no-such-group-omni')).toBe(false);
    });

    it('reports type, owner and mode of a path, and nothing for a missing one', async () => {
      const checks = make();
      expect(await checks.pathInfo(secret)).toEqual({ type: 'file', uid: 0, gid: 0, mode: 0o640 });
      expect(await checks.pathInfo(join(dir, 'data'))).toEqual({
        type: 'directory',
        uid: 0,
        gid: 0,
        mode: 0o750,
      });
      expect(await checks.pathInfo(join(dir, 'missing'))).toBeUndefined();
    });

    it('resolves an account to its ids, and nothing for a missing or numeric name', async () => {
      const checks = make();
      const root = await checks.lookupUser('root');
      expect(root).toMatchObject({ name: 'root', uid: 0, gid: 0 });
      expect(root?.groups).toContain(0);
      expect(await checks.lookupUser('no-such-user-omni')).toBeUndefined();
      // getent would answer "0" with root's entry (a uid lookup): not an account named "0".
      expect(await checks.lookupUser('0')).toBeUndefined();
    });

    it('resolves the groups that exist, in one call for several names', async () => {
      const checks = make();
      expect(await checks.lookupGroups(['root', 'no-such-group-omni', 'root'])).toEqual([
        { name: 'root', gid: 0 },
      ]);
      expect(await checks.lookupGroups([])).toEqual([]);
    });

    it('resolves symlinks, and nothing for a missing path', async () => {
      const checks = make();
      expect(await checks.realPath(join(dir, 'link'))).toBe(join(dir, 'data'));
      expect(await checks.realPath(join(dir, 'link', 'missing'))).toBeUndefined();
      expect(await checks.realPath(secret)).toBe(secret);
      expect(await checks.pathInfo(join(dir, 'link'))).toMatchObject({ type: 'directory', mode: 0o750 });
    });

    it('finds the process listening on a port, and nobody on a free one', async () => {
      const checks = make();
      const found = await checks.listeners(port);
      expect(found).toContainEqual(
        expect.objectContaining({ address: `127.0.0.1:${port}`, pid: process.pid }),
      );
      expect(await checks.listeners(freePort)).toEqual([]);
    });

    it('reads the names an env file assigns, never a value', async () => {
      const checks = make();
      expect(await checks.envFileNames(secret)).toEqual(['TOKEN', 'PORT', 'EMPTY', 'A']);
    });

    it('gathers the facts of one service', async () => {
      const facts = await gatherHostFacts(
        {
          user: 'root',
          group: 'root',
          privilegedGroups: ['root', 'no-such-group-omni'],
          paths: [join(dir, 'link'), join(dir, 'missing')],
          stateDirectories: [join(dir, 'data'), join(dir, 'missing')],
          ports: [port],
        },
        make(),
      );
      expect(facts).toMatchObject({
        user: { name: 'root', uid: 0, gid: 0 },
        group: { name: 'root', gid: 0 },
        privilegedGroups: [{ name: 'root', gid: 0 }],
        realPaths: { [join(dir, 'link')]: join(dir, 'data'), [join(dir, 'missing')]: undefined },
        stateOwners: { [join(dir, 'data')]: 0, [join(dir, 'missing')]: undefined },
      });
      expect(facts.listeners[port]).toContainEqual(expect.objectContaining({ pid: process.pid }));
    });
  });
}

contract('createHostChecks (getent and stat on this machine)', () => createHostChecks());
contract('createFakeHostChecks', () =>
  createFakeHostChecks({
    paths: {
      [secret]: { type: 'file', uid: 0, gid: 0, mode: 0o640 },
      [join(dir, 'data')]: { type: 'directory', uid: 0, gid: 0, mode: 0o750 },
    },
    links: { [join(dir, 'link')]: join(dir, 'data') },
    ports: { [port]: [{ address: `127.0.0.1:${port}`, pid: process.pid, process: 'node' }] },
    envFiles: { [secret]: ['TOKEN', 'PORT', 'EMPTY', 'A'] },
  }),
);

describe('createHostChecks', () => {
  it('passes hostile names as one argument', async () => {
    expect(await createHostChecks().userExists('root; touch /tmp/pwned')).toBe(false);
    expect(await createHostChecks().pathInfo(`${dir}/$(id)`)).toBeUndefined();
    expect(await createHostChecks().realPath(`${dir}/$(id)`)).toBeUndefined();
    expect(await createHostChecks().lookupUser('root; touch /tmp/pwned')).toBeUndefined();
    expect(await createHostChecks().lookupGroups(['-x', 'root'])).toEqual([{ name: 'root', gid: 0 }]);
  });

  it('refuses a port that is not one', async () => {
    for (const bad of [0, 65536, 1.5, Number.NaN])
      await expect(createHostChecks().listeners(bad)).rejects.toMatchObject({ code: 'HOST_CHECK' });
  });
});

describe('parseSsListeners', () => {
  it.each([
    ['nothing', '', []],
    [
      'one process on IPv4',
      'LISTEN 0      511    127.0.0.1:8000 0.0.0.0:* users:(("node",pid=23183,fd=19))\n',
      [{ address: '127.0.0.1:8000', pid: 23183, process: 'node' }],
    ],
    [
      'workers sharing one socket, on IPv6',
      'LISTEN 0 511 [::]:8000 [::]:* users:(("nginx",pid=10,fd=6),("nginx",pid=11,fd=6))',
      [
        { address: '[::]:8000', pid: 10, process: 'nginx' },
        { address: '[::]:8000', pid: 11, process: 'nginx' },
      ],
    ],
    [
      'a socket without a visible process',
      'LISTEN 0 128 0.0.0.0:2024 0.0.0.0:*',
      [{ address: '0.0.0.0:2024' }],
    ],
    [
      'a process named a",pid=1,fd=3),("x (pid 666) adds an entry, its real pid is still there',
      'LISTEN 0 5 *:8000 *:* users:(("a",pid=1,fd=3),("x",pid=666,fd=4))',
      [
        { address: '*:8000', pid: 1, process: 'a' },
        { address: '*:8000', pid: 666, process: 'x' },
      ],
    ],
    ['lines of other states', 'ESTAB 0 0 127.0.0.1:8000 127.0.0.1:5000\nnonsense', []],
  ])('%s', (_, text, expected) => {
    expect(parseSsListeners(text)).toEqual(expected);
  });
});

describe('unitFromCgroup', () => {
  it.each([
    ['a service (cgroup v2)', '0::/system.slice/deploy-web.service\n', 'deploy-web.service'],
    ['a sub-cgroup of a service', '0::/system.slice/docker.service/payload\n', 'docker.service'],
    ['PID 1', '0::/init.scope\n', 'init.scope'],
    ['a login session', '0::/user.slice/user-0.slice/session-3.scope\n', 'session-3.scope'],
    [
      'a user manager',
      '0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service',
      'user@1000.service',
    ],
    [
      'a template instance',
      '0::/system.slice/system-modprobe.slice/modprobe@loop.service',
      'modprobe@loop.service',
    ],
    [
      'hybrid: the named systemd hierarchy when the unified one is the root',
      '12:pids:/\n1:name=systemd:/system.slice/prometheus-node-exporter.service\n0::/\n',
      'prometheus-node-exporter.service',
    ],
    ['outside any unit', '0::/\n', undefined],
    ['a cgroup that is no unit', '0::/machine/payload\n', undefined],
    ['nothing', '', undefined],
  ])('%s', (_, text, unit) => {
    expect(unitFromCgroup(text)).toBe(unit);
  });
});
