/**
 * Zero-downtime updates in a really booted systemd host with real Caddy, under steady load from inside the host
 * (4 loops opening a new connection per request, 2 over keep-alive connections): five blue/green deploys, a bad
 * version refused, a push rollback and a deployer killed with SIGKILL at each step of a switch, without one
 * failed request; keep-alive clients only see connections Caddy closed before any answer (which clients repeat).
 * A worker still deploys and rolls back as before, and in overlap mode always has one copy running.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bootDeployHost,
  type ClosureSpec,
  type DeployHost,
  httpService,
  pushToServing,
  type TickRun,
  workerService,
} from './deploy-host.js';
import type { LoadReport } from './load.js';

const PORT = 8001;
const CLOSURES: ClosureSpec[] = [
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((v) => ({ name: 'web', version: String(v), kind: 'http' as const })),
  { name: 'web', version: 'bad', kind: 'crash' },
  { name: 'worker', version: '1', kind: 'worker' },
  { name: 'worker', version: '2', kind: 'worker' },
  { name: 'worker', version: '3', kind: 'worker' },
  { name: 'worker', version: 'bad', kind: 'crash' },
];

let d: DeployHost;
const web = (version: string) => httpService('web', d.paths[`web-${version}`] as string, PORT);
let worker = workerService('worker', '');

/** Deploys `services` under load; returns the tick and the load report of that deploy alone. */
async function underLoad(
  run: () => Promise<TickRun | undefined>,
): Promise<{ tick?: TickRun; load: LoadReport }> {
  await d.startLoad();
  const tick = await run();
  // Requests keep going a little after the tick, through whatever it left behind.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return { ...(tick ? { tick } : {}), load: await d.stopLoad() };
}

/** Nothing failed; keep-alive requests were at most repeated after a connection closed before any answer. */
function expectNoFailures(load: LoadReport, what = expect.getState().currentTestName): void {
  console.log(
    `${what}: ${load.fresh.ok} fresh-connection requests, ${load.fresh.failed} failed; ${load.keepAlive.ok} keep-alive requests, ` +
      `${load.keepAlive.failed} failed, ${load.keepAlive.retried} repeated after Caddy closed the connection before any answer`,
  );
  expect(load.failures).toEqual([]);
  expect(load.fresh.failed).toBe(0);
  expect(load.keepAlive.failed).toBe(0);
  expect(load.fresh.ok).toBeGreaterThan(100);
  expect(load.keepAlive.ok).toBeGreaterThan(100);
}

beforeAll(async () => {
  d = await bootDeployHost({ closures: CLOSURES });
  worker = workerService('worker', d.paths['worker-1'] as string);
  await d.publish([web('1'), worker]);
  const first = await d.apply();
  expect(first.exitCode, first.stderr).toBe(0);
  expect(first.stdout).toContain('tick applied: 2 installed');
  expect(await d.get()).toBe('web 1 200');
}, 300_000);

afterAll(async () => {
  await d?.stop();
});

describe('zero-downtime updates in a booted host (real systemd, Caddy, Nix)', { timeout: 300_000 }, () => {
  it('five blue/green deploys under load: no failed request, fresh connections or keep-alive', async () => {
    const ticks: TickRun[] = [];
    const { load } = await underLoad(async () => {
      for (const version of ['2', '3', '4', '5', '6']) {
        await d.publish([web(version), worker]);
        const tick = await d.apply();
        expect(tick.exitCode, tick.stderr).toBe(0);
        expect(tick.stdout).toContain('tick applied: 1 updated');
        ticks.push(tick);
      }
      return undefined;
    });
    expectNoFailures(load);
    for (const version of ['2', '3', '4', '5', '6'])
      expect(load.versions[`web ${version}`]?.count).toBeGreaterThan(0);
    expect(await d.get()).toBe('web 6 200');
    // Each deploy went through the candidate and back, and the candidate is gone.
    for (const tick of ticks)
      expect(tick.events.filter((e) => e.service === 'web').map((e) => e.type)).toEqual(
        expect.arrayContaining(['service.candidate', 'service.switched', 'service.healthy']),
      );
    expect((await d.host.exec('test', ['-e', '/run/systemd/system/deploy-web@next.service'])).exitCode).toBe(
      1,
    );
    const latency = ticks.map((tick, i) => pushToServing(tick, load, `web ${i + 2}`));
    console.log(
      `5 blue/green deploys: ${load.fresh.ok} fresh-connection and ${load.keepAlive.ok} keep-alive requests, 0 failed; ` +
        `${load.keepAlive.retried} keep-alive requests repeated after Caddy closed an idle connection; ` +
        `closures present → new version serving: ${latency.map((ms) => `${ms} ms`).join(', ')}`,
    );
    for (const ms of latency) expect(ms).toBeGreaterThan(0);
  });

  it('a bad version under load is refused at its candidate; the old one serves on without a restart', async () => {
    const pid = await d.host.run('systemctl', ['show', '-p', 'MainPID', '--value', 'deploy-web.service']);
    const { tick, load } = await underLoad(async () => {
      await d.publish([web('bad'), worker]);
      return d.apply();
    });
    expect(tick?.exitCode).toBe(1);
    expect(tick?.stdout).toMatch(/tick partial: 1 rolled-back/);
    expect(tick?.events.map((e) => e.type)).not.toContain('service.switched');
    expectNoFailures(load);
    expect(Object.keys(load.versions)).toEqual(['web 6']);
    expect(await d.host.run('systemctl', ['show', '-p', 'MainPID', '--value', 'deploy-web.service'])).toBe(
      pid,
    );
    // Held, not retried.
    const again = await d.apply();
    expect(again.events.map((e) => e.type)).not.toContain('service.candidate');
  });

  it('a push rollback under load is a blue/green update too', async () => {
    await d.publish([web('7'), worker]);
    expect((await d.apply()).exitCode).toBe(0);
    expect(await d.get()).toBe('web 7 200');
    const { tick, load } = await underLoad(async () => {
      // Two publishes back (before the bad version): web 6, as `push rollback --steps 2` writes it.
      await d.rollback(2);
      return d.apply();
    });
    expect(tick?.exitCode, tick?.stderr).toBe(0);
    expect(tick?.events.map((e) => e.type)).toContain('service.switched');
    expectNoFailures(load);
    expect(await d.get()).toBe('web 6 200');
  });

  it.each([
    ['the candidate is started', '8', 'test -e /run/systemd/system/deploy-web@next.service'],
    [
      'Caddy is switched to the candidate',
      '9',
      `curl -s localhost:2019/id/omni-deploy:web:proxy/upstreams | grep -q 1${PORT}`,
    ],
    [
      'the service’s own unit is restarted with the new version',
      '10',
      'grep -qF "$(cat /root/next-path)" /run/systemd/system/deploy-web.service',
    ],
  ])(
    'a deployer killed with SIGKILL once %s: the next tick converges, serving throughout',
    async (_, version, condition) => {
      const { load } = await underLoad(async () => {
        await d.publish([web(version), worker]);
        await d.host.writeFile('/root/next-path', d.paths[`web-${version}`] as string);
        await d.applyKilledWhen(condition);
        const next = await d.apply();
        expect(next.exitCode, next.stderr).toBe(0);
        expect(next.events.map((e) => e.type)).toContain('switch.recover');
        return next;
      });
      expectNoFailures(load);
      expect(await d.get()).toBe(`web ${version} 200`);
      expect(
        (await d.host.exec('test', ['-e', '/run/systemd/system/deploy-web@next.service'])).exitCode,
      ).toBe(1);
      expect((await d.apply()).stdout).toBe('tick unchanged\n');
    },
  );

  it('a worker still deploys and rolls back as before; in overlap mode one copy always runs', async () => {
    const current = () => [web('10'), worker];
    worker = workerService('worker', d.paths['worker-2'] as string);
    await d.publish(current());
    const updated = await d.apply();
    expect(updated.exitCode, updated.stderr).toBe(0);
    expect(updated.events.filter((e) => e.service === 'worker').map((e) => e.type)).toContain(
      'service.restart',
    );
    worker = workerService('worker', d.paths['worker-bad'] as string);
    await d.publish(current());
    const bad = await d.apply();
    expect(bad.stdout).toMatch(/rolled-back/);
    expect(await d.host.readFile('/run/systemd/system/deploy-worker.service')).toContain(d.paths['worker-2']);

    // Overlap: the old copy stops only once the new one runs.
    worker = workerService('worker', d.paths['worker-3'] as string, { update: 'overlap' });
    await d.publish(current());
    await d.host.run('systemd-run', [
      '--unit=zdt-copies',
      'sh',
      '-c',
      'while true; do n=0; for u in deploy-worker.service deploy-worker@next.service; do systemctl is-active -q $u && n=$((n+1)); done; echo $n >> /run/copies; sleep 0.02; done',
    ]);
    const overlap = await d.apply();
    await d.host.run('systemctl', ['stop', 'zdt-copies.service']);
    expect(overlap.exitCode, overlap.stderr).toBe(0);
    expect(overlap.events.filter((e) => e.service === 'worker').map((e) => e.type)).toContain(
      'service.candidate',
    );
    const copies = (await d.host.readFile('/run/copies')).trim().split('\n');
    expect(copies).not.toContain('0');
    expect(copies).toContain('2');
    expect(await d.host.readFile('/run/systemd/system/deploy-worker.service')).toContain(d.paths['worker-3']);
  });
});
