/**
 * Runs inside the booted test host (`node --import tsx test/e2e/driver.ts <command> ...`), where the bucket
 * (s3rver) and Caddy live on the host's own loopback. Uses the library's real S3 module, as push will.
 *
 *   s3rver <dir> <port> <bucket>         serve a bucket (long-running; start it with systemd-run)
 *   upload <endpoint> <bucket> <cacheDir> <storePath>...   upload closures from a file:// binary cache
 *   publish <manifest location> <file> [<secret key file>]   archive the current manifest, then write <file>
 *                                        with compare-and-swap, signed with the key as push signs it (if given)
 *   restore <manifest location> <archive id>   write an archived manifest back, byte for byte, as the current
 *                                        one (what someone who can write the bucket can do: a replay)
 */
import { readFileSync } from 'node:fs';
import S3rver from 's3rver';
import { signManifest } from '../../src/manifest/index.js';
import { openManifestStore, openObjectStore, uploadClosure } from '../../src/s3/index.js';

const [command, ...args] = process.argv.slice(2);

async function publish(location: string, text: string): Promise<void> {
  const store = openManifestStore(location);
  const current = await store.read();
  let archived: string | undefined;
  if (current.status === 'found') archived = (await store.archive(current.text, { now: new Date() })).id;
  const { etag } = await store.write(
    text,
    current.status === 'found' ? { ifMatch: current.etag } : { ifNoneMatch: '*' },
  );
  process.stdout.write(JSON.stringify({ etag, archived }));
}

if (command === 's3rver') {
  const [directory, port, bucket] = args as [string, string, string];
  const server = new S3rver({
    address: '127.0.0.1',
    port: Number(port),
    silent: true,
    directory,
    allowMismatchedSignatures: true,
    configureBuckets: [{ name: bucket }],
  });
  await server.run();
  process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
} else if (command === 'upload') {
  const [endpoint, bucket, cacheDir, ...paths] = args as [string, string, string, ...string[]];
  const target = openObjectStore(`s3://${bucket}?endpoint=${endpoint}&region=us-east-1`);
  const result = await uploadClosure({ cacheDir, paths, target });
  process.stdout.write(JSON.stringify({ files: result.files, bytes: result.bytes }));
} else if (command === 'publish') {
  const [location, file, keyFile] = args as [string, string, string | undefined];
  const text = readFileSync(file, 'utf8');
  await publish(location, keyFile ? signManifest(text, readFileSync(keyFile, 'utf8')) : text);
} else if (command === 'restore') {
  const [location, id] = args as [string, string];
  const { text } = await openManifestStore(location).readArchive(id);
  await publish(location, text);
} else {
  process.stderr.write(`driver: unknown command ${command}\n`);
  process.exit(2);
}
