/**
 * The README's first command (`npm run demo`): the whole loop on embedded defaults, with the real bins.
 *  1. `deployer validate` / `plan` on examples/ (and a hostile manifest refused);
 *  2. an embedded S3 server (s3rver) as the bucket; a small HTTP service built with Nix, v1 and v2;
 *  3. `push init`, `push deploy` (sign + upload + compare-and-swap; the manifest signed with the same key),
 *     `push deploy --plan`, `push history`;
 *  4. `deployer plan` against the bucket for host `demo`, the manifest's signature checked;
 *  5. where root and systemd-nspawn are available: a booted throwaway host that applies the manifest for real
 *     and serves the service through Caddy.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import S3rver from 's3rver';
import { bootHost, HTTP_SERVICE_NIX } from '../test/host/index.js';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const bold = (text: string) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text);
const NIX_ENV = { NIX_CONFIG: 'experimental-features = nix-command\nbuild-users-group =\nsubstituters =' };
const AWS = {
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_REGION: 'us-east-1',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

/**
 * Runs one of our bins as a user would (a child process: the embedded S3 server in this process must keep
 * answering meanwhile), shows the command and its output, returns the exit code.
 */
async function bin(
  name: 'deployer' | 'push',
  args: string[],
  options: { cwd?: string; input?: string } = {},
): Promise<number> {
  const shown = args.map((a) => (/^[\w./:=@,+-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  console.log(`\n${bold(`$ ${name} ${shown}`)}`);
  const child = spawn(process.execPath, [join(ROOT, `dist/bin/${name}.js`), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...AWS, ...NIX_ENV },
    stdio: ['pipe', 'inherit', 'inherit'],
  });
  child.stdin.end(options.input ?? '');
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) console.log(`(exit ${code})`);
  return code ?? 1;
}

function need(program: string, pkg: string) {
  const found = spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;
  if (!found)
    throw new Error(
      `${program} not found: the demo needs the Debian package ${pkg} (npm run setup installs it)`,
    );
}

/** Builds the demo service `hello` at `version` with Nix (no nixpkgs needed) and returns its store path. */
function buildHello(dir: string, version: string): string {
  const file = join(dir, 'hello.nix');
  writeFileSync(file, HTTP_SERVICE_NIX);
  return execFileSync(
    'nix-build',
    [
      '--no-out-link',
      file,
      '--argstr',
      'prefix',
      'demo',
      '--argstr',
      'name',
      'hello',
      '--argstr',
      'version',
      version,
    ],
    {
      env: { ...process.env, ...NIX_ENV },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  ).trim();
}

const work = mkdtempSync(join(tmpdir(), 'omni-demo-'));
let s3: S3rver | undefined;
try {
  console.log(bold('1. The manifest: validated, planned, hostile input refused'));
  await bin('deployer', ['validate', 'examples/manifest.json', '--host', 'biz']);
  await bin('deployer', [
    'plan',
    '--manifest',
    'examples/manifest.json',
    '--host',
    'biz',
    '--state-dir',
    join(work, 'no-state'),
  ]);
  const hostile = readFileSync(join(ROOT, 'examples/manifest.json'), 'utf8')
    .replace('"command": "podcastitlater-web"', '"command": "../../../bin/sh"')
    .replace('"AREA": "Live"', '"AREA": "Live\\nExecStartPre=/bin/rm -rf /"');
  await bin('deployer', ['validate', '-', '--host', 'biz'], { input: hostile });

  console.log(`\n${bold('2. An embedded S3 bucket and a service built with Nix')}`);
  need('nix-build', 'nix-bin');
  s3 = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(work, 's3'),
    allowMismatchedSignatures: true,
    configureBuckets: [{ name: 'demo' }],
  });
  const { port } = await s3.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const v1 = buildHello(work, '1');
  const v2 = buildHello(work, '2');
  execFileSync('nix-store', ['--generate-binary-cache-key', 'demo-1', join(work, 'sk'), join(work, 'pk')], {
    env: { ...process.env, ...NIX_ENV },
  });
  console.log(`s3rver on ${endpoint} (bucket demo); built ${v1} and ${v2}`);
  mkdirSync(join(work, 'repo/deploy'), { recursive: true });
  writeFileSync(
    join(work, 'repo/deploy/hello.json'),
    JSON.stringify(
      {
        name: 'hello',
        hosts: ['demo'],
        exec: { command: 'hello' },
        env: { PORT: '8001' },
        http: { domain: 'hello.example', path: '/', internalPort: 8001, healthCheck: '/healthz' },
      },
      null,
      2,
    ),
  );
  const manifest = `s3://demo/manifest.json?endpoint=${endpoint}&region=us-east-1`;
  writeFileSync(
    join(work, 'repo/deploy/push.json'),
    JSON.stringify(
      { manifest, cache: `s3://demo?endpoint=${endpoint}&region=us-east-1`, keyFile: join(work, 'sk') },
      null,
      2,
    ),
  );
  const repo = { cwd: join(work, 'repo') };

  console.log(`\n${bold('3. push: init, deploy, plan the next deploy, history')}`);
  await bin('push', ['init'], repo);
  await bin('push', ['deploy', 'hello', '--store-path', v1, '--revision', 'demo-1'], repo);
  await bin('push', ['deploy', 'hello', '--store-path', v2, '--revision', 'demo-2', '--plan'], repo);
  await bin('push', ['deploy', 'hello', '--store-path', v2, '--revision', 'demo-2'], repo);
  await bin('push', ['history'], repo);

  console.log(`\n${bold('4. What the deployer on host "demo" would do with it (signature checked)')}`);
  await bin('deployer', [
    'plan',
    '--manifest',
    manifest,
    '--host',
    'demo',
    '--state-dir',
    join(work, 'no-state'),
    '--trusted-public-key',
    readFileSync(join(work, 'pk'), 'utf8').trim(),
  ]);

  console.log(`\n${bold('5. A real apply in a booted throwaway host')}`);
  const nspawn = spawnSync('sh', ['-c', 'command -v systemd-nspawn']).status === 0;
  if (process.getuid?.() !== 0 || !nspawn) {
    console.log(
      'skipped: needs root and systemd-nspawn (Debian package systemd-container); run npm run demo as root to see it',
    );
  } else {
    // The host has its own network, so the bucket is mirrored into a directory it can read.
    const mirror = mkdtempSync('/var/tmp/omni-demo-bucket-');
    const list = execFileSync('find', [join(work, 's3', 'demo'), '-name', '*._S3rver_object'], {
      encoding: 'utf8',
    })
      .trim()
      .split('\n');
    for (const file of list) {
      const key = file.slice(join(work, 's3', 'demo').length + 1, -'._S3rver_object'.length);
      mkdirSync(dirname(join(mirror, key)), { recursive: true });
      writeFileSync(join(mirror, key), readFileSync(file));
    }
    console.log(`mirrored the bucket into ${mirror}; booting host "demo"...`);
    const host = await bootHost({
      hostname: 'demo',
      mask: ['caddy.service', 'tmp.mount'],
      bindReadOnly: [ROOT],
      files: {
        '/etc/demo/caddy.json': JSON.stringify({
          admin: { listen: 'localhost:2019' },
          apps: { http: { servers: { omni: { listen: [':8080'], automatic_https: { disable: true } } } } },
        }),
      },
    });
    try {
      await host.run('systemd-run', [
        '--unit=demo-caddy',
        '--',
        '/usr/bin/caddy',
        'run',
        '--config',
        '/etc/demo/caddy.json',
      ]);
      const apply = await host.exec(
        'node',
        [
          join(ROOT, 'dist/bin/deployer.js'),
          'apply',
          '--manifest',
          join(mirror, 'manifest.json'),
          '--substituter',
          `file://${mirror}`,
          '--trusted-public-key',
          readFileSync(join(work, 'pk'), 'utf8').trim(),
          '--health-settle',
          '1s',
          '--log-format',
          'text',
        ],
        { env: { ...NIX_ENV, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
      );
      console.log(`\n${bold('$ deployer apply   (inside host demo)')}\n${apply.stderr}${apply.stdout}`);
      const curl = await host.exec('curl', ['-s', '-H', 'Host: hello.example', 'http://127.0.0.1:8080/']);
      console.log(
        `${bold('$ curl -H "Host: hello.example" http://127.0.0.1:8080/   (through Caddy, inside host demo)')}\n${curl.stdout}`,
      );
      const status = await host.exec('node', [join(ROOT, 'dist/bin/deployer.js'), 'status']);
      console.log(`${bold('$ deployer status   (inside host demo)')}\n${status.stdout}${status.stderr}`);
    } finally {
      await host.stop();
      rmSync(mirror, { recursive: true, force: true });
    }
  }
  console.log(
    `\n${bold('Done.')} Everything above ran for real: s3rver, Nix, and (as root) systemd and Caddy in a booted host.`,
  );
} finally {
  await s3?.close();
  rmSync(work, { recursive: true, force: true });
  if (existsSync(work)) console.error(`could not remove ${work}`);
}
