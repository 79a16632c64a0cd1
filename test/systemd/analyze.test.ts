/**
 * systemd's own judgement of the rendered units: `systemd-analyze verify` (the unit is valid, its program
 * exists and is executable: real store paths from a Nix build) and `systemd-analyze security --offline=true`
 * (exposure 0-10; the default must score at most 2.0).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertManifest, type Service } from '../../src/manifest/index.js';
import { renderUnit, type UnitFile } from '../../src/systemd/index.js';
import { makeService } from '../builders.js';
import { buildService } from '../host/index.js';

const root = new URL('../../', import.meta.url);
const MANIFESTS = [
  'examples/manifest.json',
  ...readdirSync(new URL('examples/manifests/', root)).map((f) => `examples/manifests/${f}`),
  'test/fixtures/design-example-manifest.json',
];
const dir = mkdtempSync(join(tmpdir(), 'omni-analyze-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs systemd-analyze on a unit written to a temp file; fails with the Debian package when it is missing. */
function analyze(unit: UnitFile, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const file = join(dir, unit.name);
  writeFileSync(file, unit.text);
  const r = spawnSync('systemd-analyze', [...args, file], { encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
    throw new Error(
      'systemd-analyze not found: install the Debian package systemd (apt-get install -y systemd)',
    );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function verify(unit: UnitFile): void {
  const r = analyze(unit, ['verify', '--man=no']);
  expect({ status: r.status, stderr: r.stderr }, unit.text).toEqual({ status: 0, stderr: '' });
}

/** The overall exposure `systemd-analyze security --offline=true` gives the unit (0 safest, 10 worst). */
function exposure(unit: UnitFile): number {
  const r = analyze(unit, ['security', '--offline=true', '--no-pager']);
  const match = /Overall exposure level for \S+: (\d+\.\d)/.exec(r.stdout);
  if (r.status !== 0 || !match) throw new Error(`systemd-analyze security failed: ${r.stderr}${r.stdout}`);
  return Number(match[1]);
}

/** The program paths under `$out` that the services' commands name (`web` → `bin/web`). */
function programsOf(services: { exec: { command: string } }[]): string[] {
  return services.map(({ exec: { command } }) =>
    command.startsWith('/')
      ? command.split('/').slice(4).join('/')
      : command.includes('/')
        ? command
        : `bin/${command}`,
  );
}

let closure = '';
beforeAll(async () => {
  const programs = MANIFESTS.flatMap((file) =>
    programsOf(JSON.parse(readFileSync(new URL(file, root), 'utf8')).services),
  );
  closure = await buildService({
    name: 'example-services-1.0',
    files: Object.fromEntries(programs.map((p) => [p, '#!/bin/sh\nexec sleep infinity\n'])),
  });
}, 120_000);

/** The manifest's services with every store path replaced by the real closure, validated. */
function servicesOf(file: string): Service[] {
  const doc = JSON.parse(readFileSync(new URL(file, root), 'utf8'));
  for (const service of doc.services) {
    const old = service.artifact.storePath;
    service.artifact.storePath = closure;
    if (service.exec.command.startsWith(`${old}/`))
      service.exec.command = closure + service.exec.command.slice(old.length);
  }
  return assertManifest(doc).services;
}

describe.each(MANIFESTS)('units rendered from %s', (file) => {
  it('pass systemd-analyze verify and score at most 2.0 on systemd-analyze security', () => {
    const services = servicesOf(file);
    expect(services.length).toBeGreaterThan(0);
    for (const service of services) {
      // The candidate instance of a blue/green or overlap update is held to the same rules.
      for (const unit of [renderUnit(service), renderUnit(service, { instance: 'candidate' })]) {
        verify(unit);
        expect(exposure(unit), unit.name).toBeLessThanOrEqual(2.0);
      }
    }
  });
});

describe('each hardening field', () => {
  const base = () =>
    makeService({
      name: 'svc',
      artifact: { type: 'nix-closure', storePath: closure },
      exec: { command: 'podcastitlater-web' },
    });
  const unit = (hardening: Record<string, unknown>, exec?: Record<string, unknown>) =>
    renderUnit({ ...base(), hardening, ...(exec ? { exec: { ...base().exec, ...exec } } : {}) });

  // A static user: under a dynamic user systemd itself keeps ProtectSystem=strict, ProtectHome, PrivateTmp.
  const asUser = { user: 'svc', group: 'svc' };
  // Exposure is printed with one decimal, so a small relaxation may round to the default's score.
  it.each([
    ['protectSystem: false', 'above', { protectSystem: false }],
    ['protectSystem: "full"', 'at least', { protectSystem: 'full' }],
    ['protectHome: false', 'above', { protectHome: false }],
    ['protectHome: "read-only"', 'at least', { protectHome: 'read-only' }],
    ['privateTmp: false', 'above', { privateTmp: false }],
    ['privateDevices: false', 'above', { privateDevices: false }],
    ['dynamicUser: false without a user (root)', 'above', { dynamicUser: false }],
    [
      'AF_PACKET allowed',
      'above',
      { restrictAddressFamilies: ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_PACKET'] },
    ],
    ['memoryDenyWriteExecute: true', 'below', { memoryDenyWriteExecute: true }],
    ['no sockets at all', 'below', { restrictAddressFamilies: [] }],
    ['procSubset: "pid"', 'at most', { procSubset: 'pid' }],
    [
      'state and writable paths',
      'at most',
      { stateDirectory: ['svc', 'svc/cache'], readWritePaths: ['/var/svc'] },
    ],
  ] as const)('%s: a valid unit, exposure %s the default', (_label, direction, hardening) => {
    const dynamic = 'dynamicUser' in hardening;
    const changed = unit(hardening, dynamic ? undefined : asUser);
    verify(changed);
    const score = exposure(changed);
    const reference = exposure(unit({}, dynamic ? undefined : asUser));
    if (direction === 'above') expect(score).toBeGreaterThan(reference);
    else if (direction === 'at least') expect(score).toBeGreaterThanOrEqual(reference);
    else if (direction === 'below') expect(score).toBeLessThan(reference);
    else expect(score).toBeLessThanOrEqual(reference);
  });

  it('the default scores at most 2.0 with a dynamic user and with a static one', () => {
    expect(exposure(unit({}))).toBeLessThanOrEqual(2.0);
    expect(exposure(unit({}, { user: 'svc', group: 'svc' }))).toBeLessThanOrEqual(2.0);
  });
});
