/**
 * S3 benchmark, each figure next to a baseline measured in the same run, against s3rver on loopback:
 *  - upload of a ~200 MB closure (one large NAR, several medium, many small) with `uploadClosure`, next to
 *    `rclone copy` of the same files to the same server (goal: our throughput >= 0.9x rclone's);
 *  - an idle conditional poll of the manifest: requests and body bytes per poll (goal: 1 request, no body),
 *    next to an unconditional read.
 * Runs alternate between the two uploaders so that neither always gets the warmer page cache.
 */
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { createNix, exportClosure } from '../src/nix/index.js';
import {
  createManifestStore,
  createS3ObjectStore,
  type StoreRequest,
  uploadClosure,
} from '../src/s3/index.js';
import { requireBinary } from '../test/support/binaries.js';
import { NIX_ENV, requireNix } from '../test/support/real-nix.js';
import { startS3Server, TEST_CREDENTIALS } from '../test/support/s3-server.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const MiB = 1024 * 1024;

requireNix();
requireBinary('rclone', 'rclone');
const dir = mkdtempSync(join(tmpdir(), 'omni-bench-s3-'));
const env = { ...process.env, ...NIX_ENV };
// The upload runs against s3rver in a process of its own, as rclone does: in this process it would share the
// event loop with the client under test. The poll part counts requests at the server, so it runs in-process.
const child = spawn(
  process.execPath,
  ['--import', 'tsx', 'test/support/s3-server-process.ts', 'omni-bench'],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
const remote = JSON.parse(line) as { endpoint: string; bucket: string };
const server = await startS3Server('omni-poll');
let built: string[] = [];

try {
  // ~200 MB of incompressible data: 1 x 96 MiB, 8 x 8 MiB, 40 x 1 MiB, plus the top path referring to all.
  writeFileSync(
    join(dir, 'closure.nix'),
    `let
  blob = name: mib: derivation { name = "omni-nixs3-bench-\${name}"; system = builtins.currentSystem; builder = "/bin/sh";
    PATH = "/usr/bin:/bin"; args = [ "-c" "mkdir -p $out; head -c \${toString (mib * 1048576)} /dev/urandom > $out/data" ]; };
  parts = [ (blob "large" 96) ] ++ builtins.genList (i: blob "medium-\${toString i}" 8) 8
    ++ builtins.genList (i: blob "small-\${toString i}" 1) 40;
in derivation { name = "omni-nixs3-bench-top"; system = builtins.currentSystem; builder = "/bin/sh";
  PATH = "/usr/bin:/bin"; inherit parts; args = [ "-c" "mkdir -p $out; echo $parts > $out/parts" ]; }
`,
  );
  console.log('building a ~200 MB closure and exporting it to a local file:// cache (uncompressed)...');
  const top = execFileSync('nix-build', [join(dir, 'closure.nix'), '--no-out-link'], {
    env,
    encoding: 'utf8',
    stdio: 'pipe',
  }).trim();
  const nix = createNix({ env: NIX_ENV });
  const infos = await nix.pathInfo([top], { closure: true });
  built = [...infos.map((i) => i.path), ...infos.flatMap((i) => (i.deriver ? [i.deriver] : []))];
  const publicKey = await nix.generateKey('omni-bench-1', join(dir, 'sk'), join(dir, 'pk'));
  const cacheDir = join(dir, 'cache');
  await exportClosure(nix, { paths: [top], secretKeyFile: join(dir, 'sk'), cacheDir, compression: 'none' });
  for (const extra of ['log', 'realisations'])
    rmSync(join(cacheDir, extra), { recursive: true, force: true });
  const files = [
    ...readdirSync(cacheDir),
    ...readdirSync(join(cacheDir, 'nar')).map((f) => `nar/${f}`),
  ].filter((f) => f !== 'nar');
  const bytes = files.reduce((sum, f) => sum + statSync(join(cacheDir, f)).size, 0);
  console.log(
    `closure: ${infos.length} store paths, ${files.length} files, ${(bytes / MiB).toFixed(1)} MiB\n`,
  );

  const omni: number[] = [];
  const multipart: number[] = [];
  const rclone: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const rotations = [
      ['omni', 'multipart', 'rclone'],
      ['rclone', 'omni', 'multipart'],
      ['multipart', 'rclone', 'omni'],
    ] as const;
    for (const who of rotations[run % 3] as readonly ('omni' | 'multipart' | 'rclone')[]) {
      const start = performance.now();
      if (who !== 'rclone') {
        const target = createS3ObjectStore({
          bucket: remote.bucket,
          endpoint: remote.endpoint,
          credentials: TEST_CREDENTIALS,
          prefix: `${who}-${run}/`,
          // The variant: every NAR over 16 MiB as a multipart upload (16 MiB parts, 4 at a time).
          ...(who === 'multipart' ? { multipartThreshold: 16 * MiB } : {}),
        });
        const result = await uploadClosure({
          cacheDir,
          paths: [top],
          target,
          trustedPublicKeys: [publicKey],
        });
        if (result.files !== files.length)
          throw new Error(`uploaded ${result.files} files, expected ${files.length}`);
        (who === 'omni' ? omni : multipart).push(performance.now() - start);
      } else {
        await promisify(execFile)(
          'rclone',
          [
            'copy',
            cacheDir,
            `:s3:omni-bench/rclone-${run}`,
            '--s3-provider=Other',
            `--s3-endpoint=${remote.endpoint}`,
            `--s3-access-key-id=${TEST_CREDENTIALS.accessKeyId}`,
            `--s3-secret-access-key=${TEST_CREDENTIALS.secretAccessKey}`,
          ],
          // rclone's S3 backend refuses a plain-http endpoint when AWS_CA_BUNDLE is set (ENVIRONMENT.md).
          { env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'AWS_CA_BUNDLE')) },
        );
        rclone.push(performance.now() - start);
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const row = (label: string, xs: number[]) => {
    const m = median(xs);
    console.log(
      `  ${label.padEnd(44)} median ${(m / 1000).toFixed(2).padStart(6)} s  ${(bytes / MiB / (m / 1000)).toFixed(0).padStart(5)} MiB/s  runs: ${xs.map((x) => (x / 1000).toFixed(2)).join(' ')}`,
    );
    return m;
  };
  console.log(`upload of the closure to s3rver in its own process (${RUNS} runs each, order rotated):`);
  const base = row('baseline: rclone copy (defaults: 4 transfers)', rclone);
  const ours = row('uploadClosure (defaults: 4 files at a time)', omni);
  const parts = row('uploadClosure, multipart above 16 MiB', multipart);
  const ratio = base / ours;
  console.log(
    `  throughput ratio uploadClosure / rclone: ${ratio.toFixed(2)}x; goal >= 0.9x: ${ratio >= 0.9 ? 'met' : 'MISSED'}`,
  );
  console.log(
    `  with the 96 MiB NAR in 16 MiB parts: ${(base / parts).toFixed(2)}x (s3rver reassembles parts on disk)\n`,
  );

  // Idle poll: what the deployer pays every 5 minutes when nothing changed.
  const requests: StoreRequest[] = [];
  const store = createManifestStore(
    server.objectStore({ prefix: 'poll/', onRequest: (r) => requests.push(r) }),
  );
  const manifest = JSON.stringify({
    version: 1,
    generation: '2025-01-15T12:34:56Z',
    services: Array.from({ length: 50 }, (_, i) => ({ name: `svc-${i}` })),
  });
  await store.write(manifest, { ifNoneMatch: '*' });
  const first = await store.read();
  if (first.status !== 'found') throw new Error('manifest missing');
  const poll = async (conditional: boolean) => {
    const beforeClient = requests.length;
    const beforeServer = server.requests.length;
    const start = performance.now();
    const result = await store.read(conditional ? { ifNoneMatch: first.etag } : {});
    const ms = performance.now() - start;
    const seen = server.requests.slice(beforeServer);
    return {
      ms,
      status: result.status,
      client: requests.length - beforeClient,
      server: seen.length,
      body: result.status === 'found' ? Buffer.byteLength(result.text) : 0,
    };
  };
  const sample = async (conditional: boolean) => {
    const results = [];
    for (let i = 0; i < 50; i++) results.push(await poll(conditional));
    return results;
  };
  const full = await sample(false);
  const idle = await sample(true);
  const describe = (label: string, xs: Awaited<ReturnType<typeof sample>>) =>
    console.log(
      `  ${label.padEnd(44)} requests/poll: client ${Math.max(...xs.map((x) => x.client))}, server ${Math.max(...xs.map((x) => x.server))}; body ${xs[0]?.body} B; result ${xs[0]?.status}; median ${median(xs.map((x) => x.ms)).toFixed(2)} ms`,
    );
  console.log('manifest poll (50-service manifest, 50 polls each):');
  describe('baseline: unconditional read', full);
  describe('idle conditional poll (If-None-Match)', idle);
  const ok = idle.every(
    (x) => x.client === 1 && x.server === 1 && x.status === 'not-modified' && x.body === 0,
  );
  console.log(`  idle poll costs one request and no body: ${ok ? 'met' : 'MISSED'}`);
} finally {
  child.kill('SIGTERM');
  await once(child, 'exit');
  await server.close();
  execFileSync('chmod', ['-R', 'u+w', dir]);
  rmSync(dir, { recursive: true, force: true });
  // The bench's own ~200 MB of store paths: unrooted, named omni-nixs3-bench-*, removed to give the disk back.
  const ours = built.filter((p) => p.includes('-omni-nixs3-bench-'));
  if (ours.length > 0) spawnSync('nix-store', ['--delete', ...ours], { env, stdio: 'ignore' });
}
