/**
 * Credentials at pre-flight: each credential file must be there, a regular file, owned by root and closed to
 * others (as an env file), or the service is refused untouched and retried next tick. The unit then loads each
 * one with LoadCredential=. What systemd does with it is test/systemd/credentials.test.ts's job.
 */
import { describe, expect, it } from 'vitest';
import { createWorld } from './world.js';

const DB = '/var/lib/biz-secrets/web/db-password';
const TLS = '/var/lib/biz-secrets/web/tls.key';

describe('credential files at pre-flight', () => {
  it('refuses the service until every credential file is a private file of root, then installs it', async () => {
    const world = await createWorld();
    await world.publish(
      await world.manifestOf([
        { name: 'web', version: '1.0', overrides: { credentials: { 'db-password': DB, tls: TLS } } },
        { name: 'api', version: '1.0' },
      ]),
    );
    const reason = async () => (await world.tick()).results.find((r) => r.name === 'web')?.reason;

    expect(await reason()).toBe(`pre-flight: credentials.db-password ${DB} does not exist`);
    expect(world.systemd.files.has('deploy-web.service')).toBe(false);
    expect(world.state.current?.services.api).toBeDefined();

    const steps: [info: { type: 'file' | 'directory'; uid: number; mode: number }, expected: string][] = [
      [{ type: 'directory', uid: 0, mode: 0o700 }, `${DB} is not a regular file`],
      [{ type: 'file', uid: 1000, mode: 0o600 }, `${DB} is owned by uid 1000, expected root (0)`],
      [
        { type: 'file', uid: 0, mode: 0o604 },
        `${DB} has mode 0604, expected no access for others (chmod o-rwx)`,
      ],
    ];
    for (const [info, expected] of steps) {
      world.checks.paths.set(DB, { ...info, gid: 0 });
      expect(await reason()).toBe(`pre-flight: credentials.db-password ${expected}`);
    }
    world.checks.paths.set(DB, { type: 'file', uid: 0, gid: 0, mode: 0o640 });
    expect(await reason()).toBe(`pre-flight: credentials.tls ${TLS} does not exist`);

    world.checks.paths.set(TLS, { type: 'file', uid: 0, gid: 0, mode: 0o400 });
    const report = await world.tick();
    expect(report.results.find((r) => r.name === 'web')?.outcome).toBe('installed');
    const unit = world.systemd.files.get('deploy-web.service') ?? '';
    expect(unit.split('\n').filter((line) => line.startsWith('LoadCredential='))).toEqual([
      `LoadCredential=db-password:${DB}`,
      `LoadCredential=tls:${TLS}`,
    ]);
  });
});
