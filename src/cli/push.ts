import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pkg from '../../package.json' with { type: 'json' };
import { DeployError } from '../errors.js';
import { formatIssues } from '../manifest/validate.js';
import { applyCacheGc, initBucket, planCacheGc, readFleet, renderFleet } from '../push/bucket.js';
import { gitRevision, runBuild } from '../push/build.js';
import type { PushContext } from '../push/context.js';
import { readHistory, renderHistory, rollbackManifest } from '../push/history.js';
import { currentManifest, nextManifest, writeServiceChange } from '../push/manifest-change.js';
import { formatBytes, planManifestChange, renderPushPlan } from '../push/plan.js';
import { PUSH_SETTINGS, type PushSettings, resolvePushSettings } from '../push/settings.js';
import { parseServiceSpec } from '../push/spec.js';
import { publishClosure } from '../push/upload.js';
import { waitForHosts } from '../push/wait.js';
import { createClock } from '../runtime/clock.js';
import type { EventSink } from '../runtime/events.js';
import type { CacheUploadEvent } from '../s3/cache-upload.js';
import { answerHelp, type CliIo, EXIT, readConfigFile, readInput, usageError, usageExit } from './io.js';
import { formatEvent } from './log.js';

const HELP = `push ${pkg.version}: from a build to a live deploy

Usage:
  push deploy <service> [--target T] [--spec FILE] [--store-path PATH] [--revision R] [--plan] [--wait]
      Build --target (default <service>) with the build command (default "bild {target} --cache"; it must
      print the store path), or take --store-path; sign and upload its closure to --cache when a key is given; then set the service in the
      manifest from its spec (default deploy/<service>.json) with compare-and-swap, archiving the previous
      manifest. --plan prints what would change on every host and writes nothing. --wait follows the hosts'
      status until the new version is live and healthy (or fails: exit 1).
  push rollback [--to ARCHIVE | --steps N] [--wait]
      Restore an archived manifest (default: the one before the current) as the current one.
  push history [--limit N] [--json]     archived manifests, newest first, with what changed after each
  push status [--json]                  every host's last report
  push init                             create an empty manifest and the cache's nix-cache-info
  push gc [--keep N] [--apply]          cache objects not reachable from the last N manifests (default 5):
                                        listed, or deleted with --apply
  push --help | --version

Settings (flag, else environment, else --config FILE / PUSH_CONFIG, default deploy/push.json):
  --manifest LOCATION   PUSH_MANIFEST     s3://bucket/manifest.json?region=&endpoint=&profile=, file:///..., path
  --cache LOCATION      PUSH_CACHE        binary cache to upload closures to (s3://bucket?..., file:///dir)
  --key-file FILE       NIX_CACHE_KEY     Nix secret key to sign with (never printed or uploaded)
  --build COMMAND       PUSH_BUILD        default "bild {target} --cache"
  --spec-dir DIR        PUSH_SPEC_DIR     default deploy
  --secrets-dir DIR     PUSH_SECRETS_DIR  default /var/lib/biz-secrets (as on the hosts)
  --timeout 5m --poll 2s                  for --wait

Exit codes: 0 done, 1 failed (build, upload, invalid manifest, conflict, a host failed or timed out), 2 usage.
`;

/** Builds the push context from settings (default: real adapters). Tests inject fakes. */
export interface PushCliDeps {
  createContext?: (settings: PushSettings, onEvent: EventSink) => PushContext;
}

const OPTIONS = {
  ...Object.fromEntries(PUSH_SETTINGS.map((s) => [s.flag, { type: 'string' as const }])),
  config: { type: 'string' },
  spec: { type: 'string' },
  'store-path': { type: 'string' },
  target: { type: 'string' },
  revision: { type: 'string' },
  to: { type: 'string' },
  steps: { type: 'string' },
  limit: { type: 'string' },
  keep: { type: 'string' },
  plan: { type: 'boolean', default: false },
  wait: { type: 'boolean', default: false },
  apply: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** Runs `push <argv>`; returns the exit code. */
export async function runPush(argv: readonly string[], io: CliIo, deps: PushCliDeps = {}): Promise<number> {
  const [command, ...rest] = argv;
  let cleanup: (() => Promise<void>) | undefined;
  try {
    const answered = answerHelp(argv, io, HELP, pkg.version);
    if (answered !== undefined) return answered;
    const { values, positionals } = parseArgs({
      args: [...rest],
      allowPositionals: true,
      options: OPTIONS,
      strict: true,
    });
    const settings = await loadPushSettings(values, io);
    const key = await materializeKey(settings.keyFile);
    cleanup = key.cleanup;
    const onEvent: EventSink = (event) => {
      // push is run by people and CI logs, not journald: plain text lines.
      const line = formatEvent(event, 'text', new Date(), values.verbose);
      if (line) io.stderr(line);
    };
    const ctx = deps.createContext
      ? deps.createContext(settings, onEvent)
      : await createPushContext(settings, onEvent);
    const say = (text: string) => io.stdout(`${text}\n`);
    const count = (name: string, text: string | undefined, min: number) => {
      if (text === undefined) return undefined;
      if (!/^\d+$/.test(text) || Number(text) < min)
        throw usageError(`--${name}: expected a whole number >= ${min}, found ${JSON.stringify(text)}`);
      return Number(text);
    };

    if (command === 'deploy') {
      const [target, extra] = positionals;
      if (target === undefined || extra !== undefined)
        throw usageError('deploy takes exactly one service (the build target)');
      const specFile = values.spec ?? join(settings.specDir, `${target}.json`);
      const spec = parseServiceSpec(await readInput(io, specFile), specFile, {
        secretsDir: settings.secretsDir,
      });
      let storePath = values['store-path'];
      if (storePath === undefined) {
        const buildTarget = values.target ?? target;
        say(`building ${buildTarget}: ${settings.build}`);
        storePath = await runBuild(ctx.shell, settings.build, buildTarget);
      }
      say(`${spec.name}: ${storePath}`);
      const revision = values.revision ?? (await gitRevision(ctx.shell));
      const change = { spec, storePath, ...(revision === undefined ? {} : { revision }) };
      if (values.plan) {
        const read = await ctx.manifests.read();
        const before = currentManifest(
          read.status === 'found' ? read.text : undefined,
          ctx.manifests.url,
          settings.secretsDir,
        );
        const after = nextManifest(before, change, new Date(ctx.clock.now()), settings.secretsDir);
        const old = before?.services.find((s) => s.name === spec.name)?.artifact.storePath;
        const sizes = await closureSizes(ctx, [old, storePath]);
        say(
          renderPushPlan({
            before,
            after,
            hosts: planManifestChange(before, after, settings.secretsDir),
            closureSize: {
              service: spec.name,
              ...(sizes[0] === undefined ? {} : { before: sizes[0] }),
              ...(sizes[1] === undefined ? {} : { after: sizes[1] }),
            },
          }),
        );
        return EXIT.ok;
      }
      const published = await publishClosure(ctx, storePath, key.file, progressPrinter(io));
      if (published.uploaded)
        say(`uploaded ${published.files} file(s), ${formatBytes(published.bytes)} to ${ctx.cache?.url}`);
      const since = ctx.clock.now();
      const written = await writeServiceChange(ctx, change);
      if (!written.changed) say(`manifest already has ${spec.name} at ${storePath}: nothing written`);
      else {
        const archived = written.archive ? `; previous archived as ${written.archive.id}` : '';
        say(`manifest generation ${written.manifest.generation}: ${spec.name} → ${storePath}${archived}`);
      }
      if (!values.wait) return EXIT.ok;
      return await wait(ctx, io, settings, {
        hosts: spec.hosts,
        etag: written.etag,
        since,
        service: { name: spec.name, storePath },
      });
    }
    if (command === 'rollback') {
      if (positionals.length) throw usageError('rollback takes no positional arguments');
      if (values.to !== undefined && values.steps !== undefined)
        throw usageError('give --to or --steps, not both');
      const since = ctx.clock.now();
      const steps = count('steps', values.steps, 1);
      const result = await rollbackManifest(ctx, {
        ...(values.to === undefined ? {} : { to: values.to }),
        ...(steps === undefined ? {} : { steps }),
      });
      say(`restored ${result.archive.id} (generation ${result.manifest.generation}) as the current manifest`);
      if (!values.wait) return EXIT.ok;
      const hosts = [...new Set(result.manifest.services.flatMap((s) => s.hosts))];
      return await wait(ctx, io, settings, { hosts, etag: result.etag, since });
    }
    if (command === 'history') {
      const entries = await readHistory(ctx, count('limit', values.limit, 1) ?? 20);
      say(values.json ? JSON.stringify(entries, null, 2) : renderHistory(entries));
      return EXIT.ok;
    }
    if (command === 'status') {
      const rows = await readFleet(ctx);
      say(values.json ? JSON.stringify(rows, null, 2) : renderFleet(rows));
      return EXIT.ok;
    }
    if (command === 'init') {
      const r = await initBucket(ctx);
      say(
        `manifest: ${r.manifest === 'created' ? 'created (empty)' : 'already there, left as it is'} at ${ctx.manifests.url}`,
      );
      say(`nix-cache-info: ${r.cacheInfo}`);
      if (!r.conditionalWrites) {
        io.stderr(
          'warning: this bucket does not enforce conditional writes: two pushes at the same moment can lose an update\n',
        );
      }
      return EXIT.ok;
    }
    if (command === 'gc') {
      if (!ctx.cache) throw usageError('gc needs --cache');
      const plan = await planCacheGc(ctx, count('keep', values.keep, 1) ?? 5);
      const bytes = plan.delete.reduce((sum, o) => sum + o.size, 0);
      say(
        `kept the closures of ${plan.manifests.length} manifest(s): ${plan.reachable.length} store path(s), ${plan.keep.length} object(s)`,
      );
      for (const missing of plan.missing)
        say(`  warning: ${missing} is named by a manifest but not in the cache`);
      say(
        `${values.apply ? 'deleting' : 'would delete'} ${plan.delete.length} object(s), ${formatBytes(bytes)}${values.apply ? '' : ' (run with --apply to delete)'}`,
      );
      for (const o of plan.delete) say(`  ${o.key}`);
      if (values.apply) await applyCacheGc(ctx, plan);
      return EXIT.ok;
    }
    throw usageError(`unknown command ${JSON.stringify(command)}`);
  } catch (error) {
    return usageExit('push', io, error);
  } finally {
    await cleanup?.();
  }
}

/** Flag, then environment, then config file (`--config`, PUSH_CONFIG, or deploy/push.json when it exists). */
async function loadPushSettings(values: Record<string, unknown>, io: CliIo): Promise<PushSettings> {
  const env = io.env ?? {};
  const { config, file } = await readConfigFile(
    io,
    (values.config as string | undefined) ?? env.PUSH_CONFIG,
    'deploy/push.json',
  );
  const flags = Object.fromEntries(PUSH_SETTINGS.map((s) => [s.flag, values[s.flag] as string | undefined]));
  const result = resolvePushSettings({ flags, env, config, configName: file });
  if (!result.ok) throw usageError(`invalid settings:\n${formatIssues(result.issues)}`);
  return result.settings;
}

/**
 * The key file to sign with. NIX_CACHE_KEY may hold the key itself rather than a path (as CI secrets often
 * do): then it goes to a private temporary file, removed when push exits. It is never printed.
 */
async function materializeKey(
  value: string | undefined,
): Promise<{ file: string | undefined; cleanup?: () => Promise<void> }> {
  if (value === undefined || !/^[A-Za-z0-9._-]+:[A-Za-z0-9+/=]{40,}$/.test(value.trim()))
    return { file: value };
  const dir = await mkdtemp(join(tmpdir(), 'omni-push-key-'));
  await chmod(dir, 0o700);
  const file = join(dir, 'key');
  await writeFile(file, `${value.trim()}\n`, { mode: 0o600 });
  return { file, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The real adapters: the manifest store and cache at their locations, Nix and a shell on this machine. Loaded
 * on demand: the AWS SDK and zx are most of the bin's start-up time, and `--help` needs neither.
 */
async function createPushContext(settings: PushSettings, onEvent: EventSink): Promise<PushContext> {
  const [{ openManifestStore, openObjectStore }, { createNix }, { createShell }] = await Promise.all([
    import('../s3/open.js'),
    import('../nix/nix.js'),
    import('../shell/shell.js'),
  ]);
  const shell = createShell();
  return {
    manifests: openManifestStore(settings.manifest),
    cache: settings.cache === undefined ? undefined : openObjectStore(settings.cache),
    nix: createNix({ shell }),
    shell,
    clock: createClock(),
    onEvent,
    secretsDir: settings.secretsDir,
  };
}

async function wait(
  ctx: PushContext,
  io: CliIo,
  settings: PushSettings,
  want: { hosts: string[]; etag: string; since: number; service?: { name: string; storePath: string } },
): Promise<number> {
  io.stdout(`waiting for ${want.hosts.join(', ')} (up to ${Math.round(settings.timeoutMs / 1000)}s)\n`);
  const result = await waitForHosts(ctx, {
    ...want,
    timeoutMs: settings.timeoutMs,
    intervalMs: settings.pollMs,
  });
  for (const host of result.hosts) io.stdout(`  ${host.host}: ${host.state}: ${host.message}\n`);
  if (result.timedOut) io.stderr('push: timed out waiting for the hosts\n');
  return result.ok ? EXIT.ok : EXIT.failed;
}

async function closureSizes(
  ctx: PushContext,
  paths: (string | undefined)[],
): Promise<(number | undefined)[]> {
  return Promise.all(
    paths.map(async (path) => {
      if (path === undefined) return undefined;
      try {
        const infos = await ctx.nix.pathInfo([path], { closure: true });
        return infos.length ? infos.reduce((sum, i) => sum + i.narSize, 0) : undefined;
      } catch (error) {
        if (error instanceof DeployError) return undefined;
        throw error;
      }
    }),
  );
}

/** Upload progress: a bar redrawn in place on a terminal, a line per quarter otherwise. */
function progressPrinter(io: CliIo): (event: CacheUploadEvent) => void {
  let lastQuarter = -1;
  return (event) => {
    if (event.type === 'planned')
      io.stderr(
        `uploading ${event.files} file(s), ${formatBytes(event.bytes)} (${event.skipped} already in the cache)\n`,
      );
    if (event.type === 'retry')
      io.stderr(`retrying ${event.key} (attempt ${event.attempt}): ${event.error}\n`);
    if (event.type !== 'progress' || event.totalBytes === 0) return;
    const fraction = event.sentBytes / event.totalBytes;
    if (io.isTTY) {
      const width = 30;
      const filled = Math.round(fraction * width);
      io.stderr(
        `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(event.sentBytes)} / ${formatBytes(event.totalBytes)}${fraction >= 1 ? '\n' : ''}`,
      );
    } else if (Math.floor(fraction * 4) > lastQuarter) {
      lastQuarter = Math.floor(fraction * 4);
      io.stderr(`uploaded ${formatBytes(event.sentBytes)} of ${formatBytes(event.totalBytes)}\n`);
    }
  };
}
