/**
 * README.md's "Quick start for an operator", followed literally on a stock Debian host: a booted host with the
 * packages as apt installs them (Caddy's caddy.service and /etc/caddy/Caddyfile untouched, nix-bin), the
 * commands and files read out of the README itself and run in order, and at the end the deployed service
 * answering through Caddy. Only what these machines force is substituted, each listed in SUBSTITUTIONS
 * below with its reason; anything else the README says is run as written.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyManifest } from '../../src/manifest/index.js';
import { type BootedHost, bootHost, NIX_ENV } from '../host/index.js';
import { getSite, waitActive } from './caddy-host.js';
import { packTarball } from './pack.js';
import { REPO } from './support.js';

const DEV = '/root/dev';
const BUCKET = '/srv/omni-bucket';

/** The quick start's blocks, in order: what each is, and what is done with it. */
interface Block {
  lang: 'sh' | 'json';
  text: string;
}

function quickStart(): Block[] {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('## Quick start for an operator');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  return [...section.matchAll(/^( *)```(sh|json)\n([\s\S]*?)^\1```$/gm)].map((m) => ({
    lang: m[2] as 'sh' | 'json',
    // The block's lines without the list indentation they carry in the README.
    text: (m[3] as string)
      .split('\n')
      .map((line) => line.slice((m[1] as string).length))
      .join('\n'),
  }));
}

/** A tiny HTTP service for `push deploy` to build: `hello 1` on /, `ok` on /healthz, on $PORT. */
const HELLO_NIX = `derivation {
  name = "hello-1";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/usr/bin:/bin";
  args = [ "-c" ''
    mkdir -p $out/bin
    echo "require('http').createServer((q, s) => s.end(q.url === '/healthz' ? 'ok' : 'hello 1' + String.fromCharCode(10))).listen(Number(process.env.PORT), '127.0.0.1');" > $out/server.js
    printf '#!/bin/sh\\nexec /usr/bin/node %s/server.js "$@"\\n' $out > $out/bin/hello
    chmod +x $out/bin/hello
  '' ];
}
`;
const HELLO_SPEC = {
  name: 'hello',
  hosts: ['biz'],
  exec: { command: 'hello' },
  env: { PORT: '8000' },
  http: { domain: 'hello.test', path: '/', internalPort: 8000, healthCheck: '/healthz' },
};

let tarball = '';
/**
 * Every change made to what the README says, and why. Applied to the README's text before it runs; each must
 * match, so a README that no longer says what is substituted fails here instead of being skipped.
 */
const SUBSTITUTIONS: { why: string; from: RegExp | string; to: () => string }[] = [
  {
    why: 'the package is this checkout, packed (npm pack), not the registry; npm reads only its cache (npm_config_offline) because the host has no network',
    from: '@omni/deploy\n',
    to: () => `${tarball}\n`,
  },
  {
    why: "the bucket is a local directory (the README's own alternative), not a provider's",
    from: /s3:\/\/omni-nix-cache\/manifest\.json\?[^"]*/g,
    to: () => `file://${BUCKET}/manifest.json`,
  },
  {
    why: 'the cache is the same local directory',
    from: /s3:\/\/omni-nix-cache\?[^"]*/g,
    to: () => `file://${BUCKET}`,
  },
  {
    why: 'the service is a tiny one of this test (deploy/hello.json, hello.nix), not podcastitlater-web',
    from: 'podcastitlater-web',
    to: () => 'hello',
  },
];
/** Substitutions in one file only (the README tells the user to fill them in). */
const PUSH_JSON_BUILD = {
  why: 'push.json names a build command: there is no `bild` here, hello.nix is built with nix-build',
  build: 'nix-build --no-out-link {target}.nix',
};
const PUBLIC_KEY = {
  why: 'the key is the text of cache-pub-key.pem, as the README says',
  from: 'omni-cache:...',
};
/** NIX_CONFIG for push's nix-build: no nixpkgs or binary cache is reachable, Nix runs single-user as root. */
const ENV = { ...NIX_ENV, npm_config_offline: 'true', npm_config_update_notifier: 'false' };

function substitute(text: string): string {
  let out = text;
  for (const s of SUBSTITUTIONS) out = out.replace(s.from, s.to());
  return out;
}

let host: BootedHost;
let dir = '';
const blocks = quickStart();

/** The bucket's manifest as push wrote it: signed with the key of step 1 (verified here), then its payload. */
async function readManifest(): Promise<{ services: { name: string }[] }> {
  const key = (await host.readFile('/root/.config/nix/cache-pub-key.pem')).trim();
  const verified = verifyManifest(await host.readFile(`${BUCKET}/manifest.json`), [key]);
  if (!verified.ok) throw new Error(`the bucket's manifest: ${JSON.stringify(verified)}`);
  return JSON.parse(verified.payload);
}

/** Runs one README block with bash in the dev directory, as root, as a user would paste it. */
async function paste(block: Block, cwd = DEV) {
  expect(block.lang).toBe('sh');
  const script = substitute(block.text);
  // cd inside: a cwd option would name a directory of this machine, where nsenter starts.
  const r = await host.exec('bash', ['-e', '-c', `cd "$1"\n${script}`, 'bash', cwd], { env: ENV });
  return { ...r, script };
}

beforeAll(async () => {
  dir = mkdtempSync('/var/tmp/omni-quickstart-');
  tarball = packTarball(dir);
  host = await bootHost({ hostname: 'biz', mask: ['tmp.mount'], bindReadOnly: [dir] });
  await waitActive(host, 'caddy.service');
  // The repository one deploys from: an npm project with the service's Nix expression and spec.
  await host.run('mkdir', ['-p', `${DEV}/deploy`]);
  await host.run('sh', ['-c', 'cd "$1" && npm init -y', 'sh', DEV], { env: ENV });
  await host.writeFile(`${DEV}/hello.nix`, HELLO_NIX);
  await host.writeFile(`${DEV}/deploy/hello.json`, JSON.stringify(HELLO_SPEC, null, 2));
}, 600_000);

afterAll(async () => {
  await host?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("README's quick start on a stock Debian host", () => {
  it('has the blocks this test follows, and every substitution still matches the README', () => {
    expect(blocks.map((b) => b.lang)).toEqual(['sh', 'sh', 'json', 'sh', 'sh', 'json', 'sh', 'sh']);
    const all = blocks.map((b) => b.text).join('\n');
    for (const s of SUBSTITUTIONS) expect(all, s.why).toMatch(s.from);
    expect(all, PUBLIC_KEY.why).toContain(PUBLIC_KEY.from);
  });

  it('1. a key pair', async () => {
    const r = await paste(blocks[0] as Block);
    expect(r.exitCode, `${r.script}\n${r.stderr}`).toBe(0);
    expect(await host.readFile('/root/.config/nix/cache-pub-key.pem')).toMatch(/^omni-cache:/);
  });

  it('2. push init in the repository', async () => {
    const install = await paste(blocks[1] as Block);
    expect(install.exitCode, `${install.script}\n${install.stderr}`).toBe(0);
    const pushJson = JSON.parse(substitute((blocks[2] as Block).text));
    await host.writeFile(
      `${DEV}/deploy/push.json`,
      JSON.stringify({ ...pushJson, build: PUSH_JSON_BUILD.build }),
    );
    const init = await paste(blocks[3] as Block);
    expect(init.exitCode, `${init.script}\n${init.stdout}\n${init.stderr}`).toBe(0);
    expect(await readManifest()).toMatchObject({ services: [] });
  }, 120_000);

  it('3. the deployer on the host, with Caddy as apt installed it', async () => {
    const install = await paste(blocks[4] as Block, '/root');
    expect(install.exitCode, `${install.script}\n${install.stderr}`).toBe(0);
    const key = (await host.readFile('/root/.config/nix/cache-pub-key.pem')).trim();
    await host.writeFile(
      '/etc/omni-deploy/deployer.json',
      substitute((blocks[5] as Block).text).replace(PUBLIC_KEY.from, key),
    );
    const units = await paste(blocks[6] as Block, '/root');
    expect(units.exitCode, `${units.script}\n${units.stdout}\n${units.stderr}`).toBe(0);
    expect(units.stdout).toContain('tick unchanged');
    expect(
      (await host.run('systemctl', ['is-enabled', 'omni-deployer.service', 'omni-deployer.timer'])).split(
        '\n',
      ),
    ).toEqual(['enabled', 'enabled', '']);
    expect((await host.run('systemctl', ['is-active', 'omni-deployer.timer'])).trim()).toBe('active');
  }, 180_000);

  it('4. push deploy --wait: the service answers through Caddy', async () => {
    const deploy = paste(blocks[7] as Block);
    // The README: push waits for the host's next tick; `systemctl start omni-deployer.service` ticks now.
    for (let i = 0; !(await readManifest()).services.some((s) => s.name === 'hello'); i++) {
      if (i > 600) throw new Error(`push deploy wrote no manifest: ${JSON.stringify(await deploy)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await host.run('systemctl', ['start', 'omni-deployer.service']);
    const r = await deploy;
    expect(
      r.exitCode,
      `${r.script}\n${r.stdout}\n${r.stderr}\n${await host.journal('omni-deployer.service')}`,
    ).toBe(0);
    expect(await getSite(host, 'hello.test')).toBe('hello 1 200');
    // Debian's own site is still there for every other name.
    expect(await getSite(host, 'localhost')).toMatch(/Caddy works!.* 200$/);
  }, 300_000);
});
