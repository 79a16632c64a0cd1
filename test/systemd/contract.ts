/**
 * The contract every {@link Systemd} honours, run against the real adapter (systemctl in a booted host) and the
 * shipped fake. The deployer relies on exactly these behaviours; when real systemd and the fake disagree, this
 * suite says where.
 */
import { describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import type { Service } from '../../src/manifest/index.js';
import { renderUnit, type Systemd, type UnitStatus } from '../../src/systemd/index.js';
import type { FakeOutcome, FakeStart } from '../../src/testing/index.js';
import { makeService } from '../builders.js';

/** What a contract run needs from its target. */
export interface SystemdTarget {
  systemd: Systemd;
  /** A store path holding `bin/runs` (runs until stopped) and `bin/exits` (exits 3 after a moment); no `bin/missing`. */
  programs: string;
  /** Writes a file into the units directory behind the adapter's back (a unit that is not the deployer's). */
  plantFile(name: string, text: string): Promise<void>;
}

/** The contract programs as the fake plays them: decided by the program's name. */
export function contractBehaviour({ argv }: FakeStart): FakeOutcome {
  const program = argv[0] ?? '';
  if (program.endsWith('/bin/runs')) return 'runs';
  if (program.endsWith('/bin/exits')) return { exits: 3 };
  return 'missing';
}

/** The programs' files, for a real build (see test/host/build-service.ts). */
export const CONTRACT_PROGRAMS = {
  'bin/runs': '#!/bin/sh\nexec sleep infinity\n',
  // The pause lets `Type=exec`'s start job finish first, so the start itself reliably succeeds.
  'bin/exits': '#!/bin/sh\nsleep 0.3\nexit 3\n',
};

/** Polls `status` until `done` holds (real systemd acts asynchronously) and returns that status. */
export async function waitForStatus(
  systemd: Systemd,
  name: string,
  done: (status: UnitStatus) => boolean,
  timeoutMs = 20_000,
): Promise<UnitStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await systemd.status(name);
    if (done(status)) return status;
    if (Date.now() > deadline)
      throw new Error(`${name}: status never reached the expected state; last: ${JSON.stringify(status)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const HOSTILE_NAMES = [
  'sshd.service',
  '../../etc/passwd',
  'deploy-../../etc/x.service',
  'deploy-web/../../x.service',
  'deploy-web.socket',
  'deploy-Web.service',
  'other-web.service',
  '-deploy-web.service',
  'deploy-web.service\nExecStartPre=/bin/sh',
  'deploy-.service',
  '',
];

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Registers the contract suite for one target. `setup` runs once, after the suite's `beforeAll`s. */
export function systemdContract(label: string, target: () => SystemdTarget): void {
  describe(`Systemd contract: ${label}`, () => {
    let counter = 0;
    /** A unit for a fresh service name, running `program` from the contract closure. */
    const unit = (program: 'runs' | 'exits' | 'missing', overrides: Partial<Service> = {}) => {
      const name = `contract-${program}-${++counter}`;
      return renderUnit(
        makeService({
          name,
          artifact: { type: 'nix-closure', storePath: target().programs },
          exec: { command: program },
          systemd: { restart: 'no' },
          ...overrides,
        }),
      );
    };

    it('installs, lists and reads back unit files exactly, and lists only its own', async () => {
      const { systemd, plantFile } = target();
      const a = unit('runs');
      const b = unit('runs', { env: { GREETING: 'hé %n $X "q" \\' } });
      await plantFile('contract-foreign.service', '[Service]\nExecStart=/bin/true\n');
      await systemd.installUnit(b);
      await systemd.installUnit(a);
      const listed = await systemd.listUnits();
      expect(listed.filter((n) => n === a.name || n === b.name)).toEqual([a.name, b.name].sort());
      expect(listed).not.toContain('contract-foreign.service');
      expect(listed.every((n) => n.startsWith('deploy-') && n.endsWith('.service'))).toBe(true);
      expect(await systemd.readUnit(a.name)).toBe(a.text);
      expect(await systemd.readUnit(b.name)).toBe(b.text);
      expect(await systemd.readUnit('deploy-never-installed.service')).toBeUndefined();
      await Promise.all([systemd.removeUnit(a.name), systemd.removeUnit(b.name)]);
    });

    it('refuses every unit name that is not its own, in every method, before touching anything', async () => {
      const { systemd } = target();
      const before = await systemd.listUnits();
      for (const name of HOSTILE_NAMES) {
        const calls: [string, () => Promise<unknown>][] = [
          ['installUnit', () => systemd.installUnit({ name, text: '[Service]\nExecStart=/bin/sh\n' })],
          ['readUnit', () => systemd.readUnit(name)],
          ['removeUnit', () => systemd.removeUnit(name)],
          ['start', () => systemd.start(name)],
          ['restart', () => systemd.restart(name)],
          ['stop', () => systemd.stop(name)],
          ['enable', () => systemd.enable(name)],
          ['disable', () => systemd.disable(name)],
          ['status', () => systemd.status(name)],
        ];
        for (const [method, call] of calls) {
          const error = await rejection(call());
          expect(isDeployError(error, 'SYSTEMD_UNIT_NAME'), `${method}(${JSON.stringify(name)})`).toBe(true);
        }
      }
      expect(await systemd.listUnits()).toEqual(before);
    });

    it('starts a new unit without a daemon-reload; it runs', async () => {
      const { systemd } = target();
      const u = unit('runs');
      await systemd.installUnit(u);
      await systemd.start(u.name);
      const s = await systemd.status(u.name);
      expect(s).toMatchObject({
        unit: u.name,
        loadState: 'loaded',
        activeState: 'active',
        subState: 'running',
        result: 'success',
        nRestarts: 0,
        needDaemonReload: false,
        unitFileState: 'disabled',
      });
      expect(s.mainPid).toBeGreaterThan(0);
      // Starting what runs is a no-op: same process.
      await systemd.start(u.name);
      expect((await systemd.status(u.name)).mainPid).toBe(s.mainPid);
      await systemd.stop(u.name);
    });

    it('restart replaces the running process', async () => {
      const { systemd } = target();
      const u = unit('runs');
      await systemd.installUnit(u);
      await systemd.start(u.name);
      const before = await systemd.status(u.name);
      await systemd.restart(u.name);
      const after = await systemd.status(u.name);
      expect(after).toMatchObject({ activeState: 'active', subState: 'running', nRestarts: 0 });
      expect(after.mainPid).toBeGreaterThan(0);
      expect(after.mainPid).not.toBe(before.mainPid);
      await systemd.stop(u.name);
    });

    it('stops a unit; stopping it again, or one never installed, succeeds', async () => {
      const { systemd } = target();
      const u = unit('runs');
      await systemd.installUnit(u);
      await systemd.start(u.name);
      await systemd.stop(u.name);
      expect(await systemd.status(u.name)).toMatchObject({
        activeState: 'inactive',
        subState: 'dead',
        mainPid: 0,
      });
      await systemd.stop(u.name);
      await systemd.stop('deploy-never-installed.service');
      expect(await systemd.status('deploy-never-installed.service')).toMatchObject({
        loadState: 'not-found',
        activeState: 'inactive',
        unitFileState: '',
        mainPid: 0,
      });
    });

    it('a changed unit file needs a daemon-reload; until then the old unit stays loaded', async () => {
      const { systemd } = target();
      const v1 = unit('runs');
      const v2 = { name: v1.name, text: v1.text.replace('Restart=no', 'Restart=on-failure') };
      await systemd.installUnit(v1);
      await systemd.start(v1.name);
      await systemd.installUnit(v2);
      expect(await systemd.readUnit(v1.name)).toBe(v2.text);
      expect((await systemd.status(v1.name)).needDaemonReload).toBe(true);
      await systemd.daemonReload();
      expect(await systemd.status(v1.name)).toMatchObject({ needDaemonReload: false, activeState: 'active' });
      await systemd.stop(v1.name);
    });

    it('enables and disables for boot, idempotently', async () => {
      const { systemd } = target();
      const u = unit('runs');
      await systemd.installUnit(u);
      await systemd.enable(u.name);
      await systemd.enable(u.name);
      const expected = systemd.unitsDir.startsWith('/run/') ? 'enabled-runtime' : 'enabled';
      expect((await systemd.status(u.name)).unitFileState).toBe(expected);
      await systemd.disable(u.name);
      await systemd.disable(u.name);
      expect((await systemd.status(u.name)).unitFileState).toBe('disabled');
      await systemd.removeUnit(u.name);
    });

    it('removes a unit file with its enablement; removing it again succeeds', async () => {
      const { systemd } = target();
      const u = unit('runs');
      await systemd.installUnit(u);
      await systemd.enable(u.name);
      await systemd.start(u.name);
      await systemd.stop(u.name);
      await systemd.removeUnit(u.name);
      await systemd.removeUnit(u.name);
      expect(await systemd.listUnits()).not.toContain(u.name);
      expect(await systemd.readUnit(u.name)).toBeUndefined();
      await systemd.daemonReload();
      expect(await systemd.status(u.name)).toMatchObject({ loadState: 'not-found', activeState: 'inactive' });
      // Reinstalled, it is not enabled: the removal took the boot link with it.
      await systemd.installUnit(u);
      expect((await systemd.status(u.name)).unitFileState).toBe('disabled');
      await systemd.removeUnit(u.name);
    });

    it('fails the start of a program that cannot be executed (Type=exec): failed, status 203', async () => {
      const { systemd } = target();
      const u = unit('missing');
      await systemd.installUnit(u);
      const error = await rejection(systemd.start(u.name));
      expect(isDeployError(error, 'SYSTEMD_COMMAND')).toBe(true);
      expect((error as Error).message).toContain(
        `systemctl start -- ${u.name}: expected exit status 0, found`,
      );
      expect(await systemd.status(u.name)).toMatchObject({
        activeState: 'failed',
        subState: 'failed',
        result: 'exit-code',
        execMainStatus: 203,
        mainPid: 0,
      });
      // Stopping a failed unit leaves it failed (systemd keeps the failure until the next start).
      await systemd.stop(u.name);
      expect((await systemd.status(u.name)).activeState).toBe('failed');
    });

    it('reports a program that exits non-zero under Restart=no as failed with its exit status', async () => {
      const { systemd } = target();
      const u = unit('exits');
      await systemd.installUnit(u);
      await systemd.start(u.name);
      const s = await waitForStatus(systemd, u.name, (x) => x.activeState !== 'active');
      expect(s).toMatchObject({
        activeState: 'failed',
        result: 'exit-code',
        execMainStatus: 3,
        nRestarts: 0,
      });
    });

    it('shows a crash loop under Restart=on-failure as activating/auto-restart with NRestarts growing', async () => {
      const { systemd } = target();
      const u = unit('exits', { systemd: { restart: 'on-failure', restartSec: 0.5 } });
      await systemd.installUnit(u);
      await systemd.start(u.name);
      const s = await waitForStatus(
        systemd,
        u.name,
        (x) => x.nRestarts >= 2 && x.subState === 'auto-restart',
      );
      expect(s).toMatchObject({
        activeState: 'activating',
        result: 'exit-code',
        execMainStatus: 3,
        mainPid: 0,
      });
      await systemd.stop(u.name);
      // Stopped between two runs it is failed; caught while the program ran, the stop ends it cleanly.
      const stopped = await systemd.status(u.name);
      expect(['failed', 'inactive']).toContain(stopped.activeState);
      expect(stopped.mainPid).toBe(0);
    });
  });
}
