import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDeployError } from '../../src/errors.js';
import { createNix, exportClosure, type Nix } from '../../src/nix/index.js';
import { type CacheUploadEvent, type StoreRequest, uploadClosure } from '../../src/s3/index.js';
import { NIX_ENV, requireNix } from '../support/real-nix.js';
import { startS3Server, type TestS3Server } from '../support/s3-server.js';

/**
 * The closure data path end to end, with real Nix and a real S3 protocol: build, sign, export, upload with the
 * S3 module to s3rver (through a proxy that injects failures), then `nix copy` into a separate store from the
 * bucket's http:// URL, trusting the right key and then the wrong one.
 */
describe('closure: nix build → sign → upload to S3 → nix copy on a host', () => {
  let dir: string;
  let server: TestS3Server;
  let source: Nix;
  let host: Nix;
  let top: string;
  let closure: string[];
  let key1: string;
  let key2: string;
  const uploadRequests: StoreRequest[] = [];
  const events: CacheUploadEvent[] = [];
  const substituter = () => `${server.endpoint}/${server.bucket}`;

  beforeAll(async () => {
    requireNix();
    dir = mkdtempSync(join(tmpdir(), 'omni-cache-e2e-'));
    server = await startS3Server();
    writeFileSync(
      join(dir, 'svc.nix'),
      `let
  sh = name: script: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" script ]; };
  dep = sh "omni-nixs3-e2e-dep" "mkdir -p $out; echo dep > $out/data";
  blob = sh "omni-nixs3-e2e-blob" "mkdir -p $out; head -c 7340032 /dev/zero > $out/blob";
in sh "omni-nixs3-e2e-svc" "mkdir -p $out/bin; printf '#!/bin/sh\\\\necho ${'$'}{dep} ${'$'}{blob}\\\\n' > $out/bin/svc; chmod +x $out/bin/svc"
`,
    );
    const env = { ...process.env, ...NIX_ENV };
    top = execFileSync('nix-build', [join(dir, 'svc.nix'), '--no-out-link'], {
      env,
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
    // The dev machine is a chroot store: signing it leaves the system store untouched.
    const nix = ['--extra-experimental-features', 'nix-command'];
    execFileSync('nix', [...nix, 'copy', '--no-check-sigs', '--to', `${dir}/dev`, top], {
      env,
      stdio: 'pipe',
    });
    source = createNix({ env: NIX_ENV, store: `${dir}/dev` });
    host = createNix({ env: NIX_ENV, store: `${dir}/host` });
    key1 = await source.generateKey('omni-cache-1', `${dir}/k1.sk`, `${dir}/k1.pk`);
    key2 = await source.generateKey('omni-cache-2', `${dir}/k2.sk`, `${dir}/k2.pk`);
    closure = (await source.pathInfo([top], { closure: true })).map((i) => i.path).sort();
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    if (dir) {
      execFileSync('chmod', ['-R', 'u+w', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uploads the signed closure, retrying injected failures, with a multipart upload for the large NAR', async () => {
    await exportClosure(source, {
      paths: [top],
      secretKeyFile: `${dir}/k1.sk`,
      cacheDir: `${dir}/cache`,
      compression: 'none', // 7 MiB of zeros stays 7 MiB: large enough for two parts
    });
    writeFileSync(`${dir}/cache/cache-priv-key.pem`, 'must never be uploaded');
    server.faults.push(
      { count: 1, kind: '503', match: (method, url) => method === 'PUT' && url.includes('.narinfo') },
      { count: 1, kind: 'reset', match: (method, url) => method === 'PUT' && url.includes('partNumber=2') },
      // A streamed single PUT cut off: the SDK cannot replay the stream; the upload retries the file.
      {
        count: 1,
        kind: 'reset',
        match: (method, url) => method === 'PUT' && url.includes('/nar/') && !url.includes('partNumber'),
      },
    );
    const target = server.objectStore({
      proxy: true,
      partSize: 5 * 1024 * 1024,
      multipartThreshold: 5 * 1024 * 1024,
      onRequest: (r) => uploadRequests.push(r),
    });
    const result = await uploadClosure({
      cacheDir: `${dir}/cache`,
      paths: [top],
      target,
      trustedPublicKeys: [key1],
      onEvent: (e) => events.push(e),
    });
    expect(result.closure.sort()).toEqual(closure);
    expect(server.faults.map((f) => f.count)).toEqual([0, 0, 0]); // both failures happened...
    expect(uploadRequests.some((r) => r.status === 503)).toBe(true); // ...were seen by the store...
    expect(uploadRequests.some((r) => r.status === 0)).toBe(true);
    expect(server.requests.some((r) => r.method === 'POST' && r.url.includes('uploads'))).toBe(true); // multipart
    const keys = (await target.list('')).map((o) => o.key);
    expect(keys.filter((k) => k.endsWith('.narinfo'))).toHaveLength(closure.length);
    expect(keys).not.toContain('cache-priv-key.pem');
    expect(events.at(-1)).toMatchObject({ type: 'done', files: 2 * closure.length + 1 });
  });

  it('a host that trusts another key refuses the closure, says "signature", and installs nothing', async () => {
    const error = await host
      .copyFrom(substituter(), [top], { trustedPublicKeys: [key2] })
      .catch((e: unknown) => e);
    expect(isDeployError(error, 'NIX_SIGNATURE')).toBe(true);
    expect((error as Error).message).toMatch(/signature/);
    expect(await host.pathInfo(closure)).toEqual([]);
  });

  it('a host that trusts the signing key gets the whole closure, bit for bit', async () => {
    await host.copyFrom(substituter(), [top], { trustedPublicKeys: [key2, key1] });
    const installed = await host.pathInfo([top], { closure: true });
    const built = await source.pathInfo([top], { closure: true });
    const hashes = (infos: typeof built) => infos.map((i) => `${i.path} ${i.narHash}`).sort();
    expect(hashes(installed)).toEqual(hashes(built));
  });

  it('a second upload sends nothing: it only asks what the bucket has', async () => {
    const requests: StoreRequest[] = [];
    const result = await uploadClosure({
      cacheDir: `${dir}/cache`,
      paths: [top],
      target: server.objectStore({ onRequest: (r) => requests.push(r) }),
    });
    expect(result.files).toBe(0);
    expect(new Set(requests.map((r) => r.method))).toEqual(new Set(['HEAD']));
  });
});
