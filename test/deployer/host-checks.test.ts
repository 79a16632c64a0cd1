import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createHostChecks, type HostChecks } from '../../src/deployer/host-checks.js';
import { createFakeHostChecks } from '../../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'omni-checks-'));
const secret = join(dir, 'web.env');
writeFileSync(secret, 'TOKEN=x\n');
chmodSync(secret, 0o640);
mkdirSync(join(dir, 'data'));
chmodSync(join(dir, 'data'), 0o750);

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
  });
}

contract('createHostChecks (getent and stat on this machine)', () => createHostChecks());
contract('createFakeHostChecks', () =>
  createFakeHostChecks({
    paths: {
      [secret]: { type: 'file', uid: 0, gid: 0, mode: 0o640 },
      [join(dir, 'data')]: { type: 'directory', uid: 0, gid: 0, mode: 0o750 },
    },
  }),
);

describe('createHostChecks', () => {
  it('passes hostile names as one argument', async () => {
    expect(await createHostChecks().userExists('root; touch /tmp/pwned')).toBe(false);
    expect(await createHostChecks().pathInfo(`${dir}/$(id)`)).toBeUndefined();
  });
});
