import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { renderUnit } from '../../src/systemd/index.js';
import { createFakeSystemd, type FakeStart } from '../../src/testing/index.js';
import { makeService, storePath } from '../builders.js';
import { contractBehaviour, systemdContract } from './contract.js';
import { HOSTILE_VALUES } from './hostile.js';

const programs = storePath('contract-programs-1.0');
const fake = createFakeSystemd({ behaviour: contractBehaviour });
systemdContract('createFakeSystemd', () => ({
  systemd: fake,
  programs,
  plantFile: async (name, text) => {
    fake.files.set(name, text);
  },
}));

describe('createFakeSystemd', () => {
  const web = renderUnit(makeService({ name: 'web' }));

  it('records every call, so a test can count restarts and subprocesses', async () => {
    const systemd = createFakeSystemd();
    await systemd.installUnit(web);
    await systemd.daemonReload();
    await systemd.start(web.name);
    await systemd.restart(web.name);
    await systemd.status(web.name);
    expect(systemd.calls).toEqual([
      'install deploy-web.service',
      'daemon-reload',
      'start deploy-web.service',
      'restart deploy-web.service',
      'status deploy-web.service',
    ]);
  });

  it('fails an injected call once, with SYSTEMD_COMMAND, then works again', async () => {
    const systemd = createFakeSystemd();
    await systemd.installUnit(web);
    systemd.failOn('start deploy-web.service');
    const error = await systemd.start(web.name).catch((e: unknown) => e);
    expect(isDeployError(error, 'SYSTEMD_COMMAND')).toBe(true);
    await systemd.start(web.name);
    expect((await systemd.status(web.name)).activeState).toBe('active');
  });

  it('lets a running program crash later; Restart= decides between failed and a restart loop', async () => {
    const systemd = createFakeSystemd();
    const looping = renderUnit(makeService({ name: 'loops', systemd: { restart: 'on-failure' } }));
    const once = renderUnit(makeService({ name: 'once', systemd: { restart: 'no' } }));
    for (const u of [looping, once]) {
      await systemd.installUnit(u);
      await systemd.start(u.name);
      systemd.exit(u.name, 1);
    }
    expect(await systemd.status(once.name)).toMatchObject({ activeState: 'failed', execMainStatus: 1 });
    const first = await systemd.status(looping.name);
    const second = await systemd.status(looping.name);
    expect(first).toMatchObject({ activeState: 'activating', subState: 'auto-restart' });
    expect(second.nRestarts).toBeGreaterThan(first.nRestarts);
  });

  it('hands behaviour the argv systemd would pass: hostile arguments come back exactly', async () => {
    const seen: FakeStart[] = [];
    const systemd = createFakeSystemd({
      behaviour: (start) => {
        seen.push(start);
        return 'runs';
      },
    });
    const service = makeService({ name: 'echo', exec: { command: 'echo', args: HOSTILE_VALUES } });
    const u = renderUnit(service);
    await systemd.installUnit(u);
    await systemd.start(u.name);
    expect(seen[0]?.argv).toEqual([`${service.artifact.storePath}/bin/echo`, ...HOSTILE_VALUES]);
  });
});
