import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../src/deployer/settings.js';
import { servicePorts, updateStrategy } from '../src/manifest/ports.js';
import { resolvePushSettings } from '../src/push/settings.js';
import { parseServiceSpec } from '../src/push/spec.js';
import { requireCaddy } from './caddy/caddy-process.js';
import { requireBinary } from './support/binaries.js';

/**
 * The units name `deployer` bare (systemd finds it where `npm i -g` put it); verify every other line against a
 * program that exists here.
 */
const withProgram = (unit: string) => unit.replace(/^(Exec\w+=\+?)deployer /gm, `$1${process.execPath} `);

const example = (path: string) => readFileSync(new URL(`../examples/${path}`, import.meta.url), 'utf8');

describe('examples/', () => {
  it('deployer.json is a complete, valid deployer config', () => {
    const r = resolveSettings({
      flags: {},
      env: {},
      config: JSON.parse(example('deployer.json')),
      configName: 'deployer.json',
      hostname: 'biz',
    });
    expect(r.ok ? [] : r.issues).toEqual([]);
  });

  it("deploy/push.json and the service spec are valid; its specDir is the config file's own directory", () => {
    const dir = new URL('../examples/deploy', import.meta.url).pathname;
    const r = resolvePushSettings({
      flags: {},
      env: {},
      config: JSON.parse(example('deploy/push.json')),
      configName: 'push.json',
      configDir: dir,
      cwd: '/elsewhere',
    });
    expect(r.ok ? [] : r.issues).toEqual([]);
    expect(r.ok && r.settings.specDir).toBe(dir);
    expect(parseServiceSpec(example('deploy/podcastitlater-web.json'), 'podcastitlater-web.json').name).toBe(
      'podcastitlater-web',
    );
  });

  it('podcastitlater-web gets blue/green deploys unchanged; storybook restarts in place, or not once its port is in PORT', () => {
    const manifest = JSON.parse(example('manifest.json')) as { services: { name: string }[] };
    const byName = Object.fromEntries(manifest.services.map((s) => [s.name, s]));
    expect(updateStrategy(byName['podcastitlater-web'] as Record<string, unknown>)).toBe('blue-green');
    expect(servicePorts(byName['podcastitlater-web'] as Record<string, unknown>)).toEqual([8000, 18000]);
    expect(updateStrategy(byName['podcastitlater-worker'] as Record<string, unknown>)).toBe('restart');
    expect(updateStrategy(byName.storybook as Record<string, unknown>)).toBe('restart');
    const restart = parseServiceSpec(example('deploy/storybook.json'), 'storybook.json');
    const blueGreen = parseServiceSpec(
      example('deploy/storybook.blue-green.json'),
      'storybook.blue-green.json',
    );
    expect(updateStrategy(restart)).toBe('restart');
    expect(updateStrategy(blueGreen)).toBe('blue-green');
    expect(servicePorts(blueGreen)).toEqual([8010, 18010]);
  });

  it('the NixOS module parses (nix-instantiate --parse)', () => {
    requireBinary('nix-instantiate', 'nix-bin');
    const file = new URL('../examples/nixos/deployer.nix', import.meta.url).pathname;
    expect(() => execFileSync('nix-instantiate', ['--parse', file], { stdio: 'pipe' })).not.toThrow();
  });

  it('omni-deployer.service and omni-deployer.timer pass systemd-analyze verify', () => {
    requireBinary('systemd-analyze', 'systemd');
    const dir = mkdtempSync(join(tmpdir(), 'omni-units-'));
    // The installed bin's path differs per machine: verify every other line against a program that exists.
    writeFileSync(join(dir, 'omni-deployer.service'), withProgram(example('omni-deployer.service')));
    writeFileSync(join(dir, 'omni-deployer.timer'), example('omni-deployer.timer'));
    const r = spawnSync(
      'systemd-analyze',
      ['verify', join(dir, 'omni-deployer.service'), join(dir, 'omni-deployer.timer')],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it("caddy/omni-deploy.conf passes systemd-analyze verify as a drop-in of Debian's caddy.service", () => {
    requireBinary('systemd-analyze', 'systemd');
    requireCaddy();
    const dir = mkdtempSync(join(tmpdir(), 'omni-caddy-unit-'));
    mkdirSync(join(dir, 'caddy.service.d'));
    // Debian's caddy.service as the package ships it, next to the drop-in (bin path as for omni-deployer.service).
    copyFileSync('/lib/systemd/system/caddy.service', join(dir, 'caddy.service'));
    const dropIn = example('caddy/omni-deploy.conf');
    expect(dropIn).toContain('ExecStartPre=+deployer caddy-config /etc/caddy/Caddyfile');
    const verify = (text: string) => {
      writeFileSync(join(dir, 'caddy.service.d/omni-deploy.conf'), text);
      return spawnSync('systemd-analyze', ['verify', join(dir, 'caddy.service')], { encoding: 'utf8' });
    };
    const r = verify(withProgram(dropIn));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The drop-in is really read: a key systemd does not know in it is reported.
    expect(verify(`${withProgram(dropIn)}Bogus=1\n`).stderr).toContain('omni-deploy.conf:');
  });

  it('push.sh sends service targets to push deploy with a derived service name, .nix targets to NixOS', () => {
    const bin = mkdtempSync(join(tmpdir(), 'omni-pushsh-'));
    for (const tool of ['npx', 'bild', 'nix', 'ssh']) {
      writeFileSync(join(bin, tool), `#!/bin/sh\necho ${tool} "$@"\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    const run = (...args: string[]) =>
      execFileSync('bash', [new URL('../examples/push.sh', import.meta.url).pathname, ...args], {
        env: { PATH: `${bin}:/usr/bin:/bin` },
        encoding: 'utf8',
      });
    expect(run('Biz/PodcastItLater/Web.py')).toBe(
      'npx --no-install push deploy podcastitlater-web --target Biz/PodcastItLater/Web.py --wait\n',
    );
    expect(run('Biz/PodcastItLater/Web.py', 'pil-web', '--plan')).toBe(
      'npx --no-install push deploy pil-web --target Biz/PodcastItLater/Web.py --wait --plan\n',
    );
    expect(run('Biz.nix')).toBe(
      'nix copy --to ssh://root@biz bild Biz.nix\nssh root@biz bild Biz.nix/bin/switch-to-configuration switch\n',
    );
  });
});
