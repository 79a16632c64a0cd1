import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkg from '../../package.json' with { type: 'json' };
import { defaultHostPolicy } from '../deployer/host-policy.js';
import { DeployError } from '../errors.js';
import { isHostname } from '../manifest/patterns.js';
import { formatIssues, validateManifest } from '../manifest/validate.js';
import { type KeySource, looksLikeNixKey } from '../options.js';
import {
  applyArchiveRetention,
  DEFAULT_KEEP_ARCHIVES,
  planArchiveRetention,
} from '../push/archive-retention.js';
import {
  applyCacheGc,
  initBucket,
  planCacheGc,
  readFleet,
  renderBucketInit,
  renderFleet,
} from '../push/bucket.js';
import { gitRevision, runBuild } from '../push/build.js';
import type { PushContext } from '../push/context.js';
import { readHistory, renderHistory, rollbackManifest } from '../push/history.js';
import { currentManifest, nextManifest, writeServiceChange } from '../push/manifest-change.js';
import { formatBytes, planManifestChange, renderPushPlan } from '../push/plan.js';
import { readRollout, renderRolloutResult, runRollout } from '../push/rollout.js';
import {
  describeParameters,
  describeRollout,
  isOpenRollout,
  isRolloutRequest,
  planRollout,
  type RolloutRequest,
  rolloutParameters,
} from '../push/rollout-plan.js';
import { PUSH_SETTINGS, type PushSettings, resolvePushSettings } from '../push/settings.js';
import type { ManifestSigning, ManifestTrust } from '../push/signing.js';
import { parseServiceSpec, serviceOfChange } from '../push/spec.js';
import { publishClosure } from '../push/upload.js';
import { waitForHosts } from '../push/wait.js';
import { createClock } from '../runtime/clock.js';
import type { EventSink } from '../runtime/events.js';
import type { CacheUploadEvent } from '../s3/cache-upload.js';
import { type CommandDef, defineCommand, type ProgramDef, runProgram, type SettingFlags } from './command.js';
import { type CliIo, EXIT, readConfigFile, readInput, usageError } from './io.js';
import { formatEvent } from './log.js';

/** Where push looks for its config file when neither `--config` nor PUSH_CONFIG names one. */
export const DEFAULT_PUSH_CONFIG = 'deploy/push.json';

/** Builds the push context from settings (default: real adapters). Tests inject fakes. */
export interface PushCliDeps {
  createContext?: (settings: PushSettings, onEvent: EventSink) => PushContext;
}

const json = { kind: 'boolean', description: 'print the result as JSON on standard output' } as const;
const verbose = {
  kind: 'boolean',
  short: 'v',
  description: 'also log debug events (each status read of --wait)',
} as const;
const wait = {
  kind: 'boolean',
  description:
    "follow the hosts' status until the new manifest is live and healthy on every host it names (exit 0), or a host failed or --timeout passed (exit 1)",
} as const;
const WAIT_SETTINGS = ['timeoutMs', 'pollMs'];

/** `push deploy`'s staged rollout flags (docs/operations.md, "Staged rollouts"). */
const ROLLOUT_FLAGS = {
  canary: {
    kind: 'count',
    value: 'N',
    description:
      "staged rollout: switch N of the service's hosts first (its first N, in the spec's order), then the rest in waves",
  },
  'canary-hosts': {
    kind: 'string',
    value: 'HOST,HOST',
    description: 'staged rollout: switch these hosts first (instead of --canary N)',
  },
  'max-parallel': {
    kind: 'count',
    value: 'M',
    description: 'staged rollout: after the canary, switch M hosts at a time (default: all the rest at once)',
  },
  'min-healthy-time': {
    kind: 'duration',
    value: 'DURATION',
    description:
      'staged rollout: how long every host of a wave stays live and healthy before the next wave starts (default 10s)',
  },
  'healthy-deadline': {
    kind: 'duration',
    value: 'DURATION',
    description:
      'staged rollout: how long a switched host has to report the new version healthy before the rollout halts (default 5m)',
  },
  'auto-revert': {
    kind: 'boolean',
    default: true,
    description:
      'staged rollout: when it halts, put the switched hosts back on the previous version (on by default; --no-auto-revert leaves them as they are)',
  },
} as const;
/** Which signatures push accepts on the manifest it builds on (see `ManifestTrust`). */
const TRUST_SETTINGS = ['trustedPublicKeys', 'insecureAllowUnsignedManifest'];

/** Settings, the context and an output helper for a command; `close` removes a key written to a temporary file. */
async function open(
  input: { command: CommandDef; settingFlags: SettingFlags; io: CliIo },
  deps: PushCliDeps,
  verbose = false,
) {
  const settings = await loadPushSettings(input);
  const onEvent: EventSink = (event) => {
    // push is run by people and CI logs, not journald: plain text lines.
    const line = formatEvent(event, 'text', new Date(), verbose);
    if (line) input.io.stderr(line);
  };
  const ctx = deps.createContext
    ? deps.createContext(settings, onEvent)
    : await createPushContext(settings, onEvent);
  return { settings, ctx, say: (text: string) => input.io.stdout(`${text}\n`) };
}

const deploy = defineCommand({
  name: 'deploy',
  summary: "build, sign and upload a service's closure, then set it in the manifest",
  description:
    "Builds --target with the build command (it must print the store path), or takes --store-path; signs its closure with the key and uploads what the cache lacks (without a key, the closure must already be in the cache); then sets the service in the manifest from its spec, with compare-and-swap, archiving the previous manifest. --plan prints what would change on every host and writes nothing. With --canary, --canary-hosts or --max-parallel it is a staged rollout: the canary hosts switch first, then the rest in waves, each live and healthy for --min-healthy-time before the next; a host that fails the new version, or does not report it healthy within --healthy-deadline, halts it, the switched hosts go back to the previous version (unless --no-auto-revert), and it exits 1 with a table of every host (a rollout follows the hosts itself: --wait adds nothing, and --healthy-deadline, not --timeout, bounds each wave). Run again (with the same store path) while the service's rollout is in progress or halted, it resumes it; push rollback ends it.",
  args: [{ name: 'service', description: 'the service to deploy: its spec is <spec-dir>/<service>.json' }],
  flags: {
    target: { kind: 'string', value: 'TARGET', description: 'what to build (default: <service>)' },
    spec: {
      kind: 'string',
      value: 'FILE',
      description: "the service's spec (default: <spec-dir>/<service>.json)",
    },
    'store-path': {
      kind: 'string',
      value: 'PATH',
      description: 'deploy this store path instead of building',
    },
    revision: {
      kind: 'string',
      value: 'REV',
      description:
        "the source revision recorded with the service (default: the git checkout's commit, if any)",
    },
    plan: {
      kind: 'boolean',
      description:
        'print what would change on every host (marking what a host with the default policy would refuse); upload and write nothing',
    },
    wait,
    verbose,
    ...ROLLOUT_FLAGS,
  },
  settings: [
    'manifest',
    'cache',
    'keyFile',
    ...TRUST_SETTINGS,
    'build',
    'specDir',
    'secretsDir',
    'status',
    ...WAIT_SETTINGS,
  ],
  async run(input, deps: PushCliDeps) {
    const { args, flags, io } = input;
    const { settings, ctx, say } = await open(input, deps, flags.verbose);
    // The key is read before anything else: a missing or wrong key fails at once, not after a long build.
    const key = flags.plan
      ? await readKey(settings.keyFile, io)
      : await requireKey(settings.keyFile, io, 'deploy');
    const request = rolloutRequestOf(flags);
    const waves =
      request.canary !== undefined || request.canaryHosts !== undefined || request.maxParallel !== undefined;
    const target = args[0] as string;
    // Timing flags alone only resume a rollout: said before a long build, not after.
    if (!waves && isRolloutRequest(request)) {
      const recorded = await readRollout(ctx);
      if (!recorded || recorded.service !== target || !isOpenRollout(recorded)) throw timingAlone();
    }
    const specFile = flags.spec ?? join(settings.specDir, `${target}.json`);
    const spec = parseServiceSpec(await readInput(io, specFile), specFile, {
      secretsDir: settings.secretsDir,
    });
    let storePath = flags['store-path'];
    if (storePath === undefined) {
      const buildTarget = flags.target ?? target;
      say(`building ${buildTarget}: ${settings.build}`);
      storePath = await runBuild(ctx.shell, settings.build, buildTarget);
    }
    say(`${spec.name}: ${storePath}`);
    const revision = flags.revision ?? (await gitRevision(ctx.shell));
    const change = { spec, storePath, ...(revision === undefined ? {} : { revision }) };
    if (flags.plan) {
      const read = await ctx.manifests.read();
      const before = currentManifest(
        read.status === 'found' ? read.text : undefined,
        ctx.manifests.url,
        settings.secretsDir,
        planTrust(settings, key, ctx),
      );
      const now = new Date(ctx.clock.now());
      const planned = waves
        ? planRollout(before, serviceOfChange(change), rolloutParameters(request), now)
        : undefined;
      if (planned) {
        const checked = validateManifest(planned.manifest, { secretsDir: settings.secretsDir });
        if (!checked.ok)
          throw new DeployError(
            'MANIFEST_INVALID',
            `the first wave's manifest would be invalid:\n${formatIssues(checked.issues)}`,
          );
        say(
          `staged rollout in ${planned.record.waves.length} wave(s): ${planned.record.waves.map((w) => w.join(', ')).join(' | ')} (${describeParameters(planned.record.parameters)}); the first wave:`,
        );
      }
      const after = planned?.manifest ?? nextManifest(before, change, now, settings.secretsDir);
      const old = before?.services.find((s) => s.name === spec.name)?.artifact.storePath;
      const sizes = await closureSizes(ctx, [old, storePath]);
      say(
        renderPushPlan({
          before,
          after,
          hosts: planManifestChange(
            before,
            after,
            settings.secretsDir,
            defaultHostPolicy(settings.secretsDir, before?.services.map((s) => s.name) ?? []),
          ),
          closureSize: {
            service: spec.name,
            ...(sizes[0] === undefined ? {} : { before: sizes[0] }),
            ...(sizes[1] === undefined ? {} : { after: sizes[1] }),
          },
        }),
      );
      return EXIT.ok;
    }
    const signing = signingOf(settings, key as ReadKey);
    const keyFile = await keyFileOf(key as ReadKey);
    let published: Awaited<ReturnType<typeof publishClosure>>;
    try {
      published = await publishClosure(ctx, storePath, keyFile.path, progressPrinter(io));
    } finally {
      await keyFile.cleanup?.();
    }
    if (published.uploaded)
      say(`uploaded ${published.files} file(s), ${formatBytes(published.bytes)} to ${ctx.cache?.url}`);
    const resuming = await openRolloutOf(ctx, spec.name, signing);
    if (!waves && !resuming && isRolloutRequest(request)) throw timingAlone();
    if (waves || resuming) {
      const result = await runRollout(ctx, { change, request, signing, pollMs: settings.pollMs });
      say(renderRolloutResult(result));
      return result.outcome === 'done' || result.outcome === 'unchanged' ? EXIT.ok : EXIT.failed;
    }
    const since = ctx.clock.now();
    const written = await writeServiceChange(ctx, change, { signing });
    if (!written.changed) say(`manifest already has ${spec.name} at ${storePath}: nothing written`);
    else {
      const archived = written.archive ? `; previous archived as ${written.archive.id}` : '';
      say(
        `manifest generation ${written.manifest.generation}, signed by ${keyName(signing)}: ${spec.name} → ${storePath}${archived}`,
      );
    }
    if (!flags.wait) return EXIT.ok;
    return await waitFor(ctx, io, settings, {
      hosts: spec.hosts,
      etag: written.etag,
      since,
      service: { name: spec.name, storePath },
    });
  },
});

const rollback = defineCommand({
  name: 'rollback',
  summary: 'write a new manifest with the services of an archived one (default: the one before the current)',
  description:
    'Restores the services of an archived manifest: writes a new manifest with them, a generation later than the current one (hosts refuse an older generation as a replay) and rollbackOf naming the archive, signed with the key (the current one is archived first; push history shows it as a rollback). The archive must verify with the key or a --trusted-public-key and still be valid. A current manifest that does not verify is replaced, not built on: this is the way back from a tampered manifest. The hosts then converge to it on their next tick. When the archive has the same services as the current manifest (after an interrupted push the newest archive can be the current manifest), it says so and exits 1, writing nothing. The manifest before a staged rollout is its rollback point: its waves are not (--steps skips them, --to refuses them), so a rollback during or after a rollout returns there and ends the rollout. --service restores one service only, so a later push of another service is not undone.',
  flags: {
    to: { kind: 'string', value: 'ARCHIVE', description: 'the archive to restore, as push history names it' },
    steps: {
      kind: 'count',
      value: 'N',
      description:
        'go back N rollback points (default 1; the waves of a staged rollout are not rollback points); with --service, N earlier versions of that service',
    },
    service: {
      kind: 'string',
      value: 'SERVICE',
      description:
        "restore only this service's entries from the archive (default archive: the one before its rollout, or its previous version); every other service stays as it is now",
    },
    wait,
    verbose,
  },
  settings: ['manifest', 'keyFile', ...TRUST_SETTINGS, 'secretsDir', 'status', ...WAIT_SETTINGS],
  async run(input, deps: PushCliDeps) {
    const { flags, io } = input;
    if (flags.to !== undefined && flags.steps !== undefined)
      throw usageError('give --to or --steps, not both');
    const { settings, ctx, say } = await open(input, deps, flags.verbose);
    const signing = signingOf(settings, await requireKey(settings.keyFile, io, 'rollback'));
    const since = ctx.clock.now();
    const result = await rollbackManifest(
      ctx,
      {
        ...(flags.to === undefined ? {} : { to: flags.to }),
        ...(flags.steps === undefined ? {} : { steps: flags.steps }),
        ...(flags.service === undefined ? {} : { service: flags.service }),
      },
      signing,
    );
    const what = result.service === undefined ? 'the services' : `${result.service} (only)`;
    say(
      `restored ${what} of ${result.archive.id} (generation ${result.restored.generation}) as generation ${result.manifest.generation}, signed by ${keyName(signing)}`,
    );
    if (result.endedRollout)
      say(
        `ended the rollout of ${result.endedRollout.service} (it was ${result.endedRollout.state.replace('-', ' ')})`,
      );
    if (!flags.wait) return EXIT.ok;
    const hosts = [...new Set(result.manifest.services.flatMap((s) => s.hosts))];
    return await waitFor(ctx, io, settings, { hosts, etag: result.etag, since });
  },
});

const history = defineCommand({
  name: 'history',
  summary: 'archived manifests, newest first, with what changed after each',
  description:
    'Lists the current manifest, then the archived ones, newest first: when each was archived, its generation (a rollback says which archive it restored), and which services the manifest after it added (+), changed (~) or removed (-). For display: signatures are not checked here.',
  flags: { limit: { kind: 'count', value: 'N', description: 'how many to list (default 20)' }, json },
  settings: ['manifest'],
  async run(input, deps: PushCliDeps) {
    const { ctx, say } = await open(input, deps);
    const entries = await readHistory(ctx, input.flags.limit ?? 20);
    say(input.flags.json ? JSON.stringify(entries, null, 2) : renderHistory(entries));
    return EXIT.ok;
  },
});

const status = defineCommand({
  name: 'status',
  summary: "every host's last report",
  description:
    "Prints the status every host published (beside the manifest, or at --status): its generation, its last tick and outcome, and how many of its services are healthy. A report that is not a host status is listed as invalid-status, one that is not JSON or names another host as untrusted-status; neither is counted. Above the table, the staged rollout the manifest records, if any: its service, how many hosts are on the new version, and whether it is in progress, halted, done, reverted or rolled back (--json prints the hosts only; the record is the manifest's rollout).",
  flags: { json },
  settings: ['manifest', 'status'],
  async run(input, deps: PushCliDeps) {
    const { ctx, say } = await open(input, deps);
    const rows = await readFleet(ctx);
    if (input.flags.json) say(JSON.stringify(rows, null, 2));
    else {
      const rollout = await readRollout(ctx);
      say(`${rollout ? `${describeRollout(rollout)}\n` : ''}${renderFleet(rows)}`);
    }
    return EXIT.ok;
  },
});

const init = defineCommand({
  name: 'init',
  summary:
    "probe the bucket's conditional writes, record the write mode, create an empty manifest and nix-cache-info",
  description:
    "Probes how the bucket treats conditional writes (on a scratch object under probes/): a create with If-None-Match: *, a second create, a write with the current ETag (quoted, then unquoted), a write with a stale one. Records the write mode that follows in bucket-mode.json beside the manifest, which every push then reads: conditional (AWS S3, R2, MinIO), conditional-unquoted (DigitalOcean Spaces), or lease (a lock object, for buckets that ignore conditions). Then creates an empty manifest, signed with the key, and, with --cache, the cache's nix-cache-info; what exists already is left as it is. Re-running it re-probes.",
  settings: ['manifest', 'cache', 'keyFile'],
  async run(input, deps: PushCliDeps) {
    const { settings, ctx, say } = await open(input, deps);
    const signing = signingOf(settings, await requireKey(settings.keyFile, input.io, 'init'));
    say(renderBucketInit(await initBucket(ctx, { signing })));
    return EXIT.ok;
  },
});

const gc = defineCommand({
  name: 'gc',
  summary:
    'cache objects not reachable from the last N manifests, and old archived manifests: listed, or deleted with --apply',
  description:
    "Lists the binary cache's objects that no closure of the current manifest or of the newest archived ones needs, and the archived manifests beyond the newest --keep-archives; --apply deletes them. nix-cache-info, the manifest, the archives kept and the hosts' status are never candidates.",
  flags: {
    keep: {
      kind: 'count',
      value: 'N',
      description: 'keep the closures of the current manifest and the N-1 newest archives (default 5)',
    },
    'keep-archives': {
      kind: 'count',
      value: 'N',
      description: `keep the N newest archived manifests, delete older ones (default ${DEFAULT_KEEP_ARCHIVES}, and at least --keep minus 1)`,
    },
    apply: { kind: 'boolean', description: 'delete the objects (default: only list them)' },
  },
  settings: ['manifest', 'cache'],
  async run(input, deps: PushCliDeps) {
    const { flags } = input;
    const keep = flags.keep ?? 5;
    const keepArchives = flags['keep-archives'] ?? Math.max(DEFAULT_KEEP_ARCHIVES, keep - 1);
    if (keepArchives < keep - 1)
      throw usageError(
        `--keep-archives ${keepArchives}: expected at least --keep minus 1 (${keep - 1}): the closures of that many archives are kept`,
      );
    const { ctx, say } = await open(input, deps);
    if (!ctx.cache) throw usageError('gc needs --cache (or PUSH_CACHE, or "cache" in the config file)');
    const plan = await planCacheGc(ctx, keep);
    const bytes = plan.delete.reduce((sum, o) => sum + o.size, 0);
    say(
      `kept the closures of ${plan.manifests.length} manifest(s): ${plan.reachable.length} store path(s), ${plan.keep.length} object(s)`,
    );
    for (const missing of plan.missing)
      say(`  warning: ${missing} is named by a manifest but not in the cache`);
    say(
      `${flags.apply ? 'deleting' : 'would delete'} ${plan.delete.length} object(s), ${formatBytes(bytes)}${flags.apply ? '' : ' (run with --apply to delete)'}`,
    );
    for (const o of plan.delete) say(`  ${o.key}`);
    if (flags.apply) await applyCacheGc(ctx, plan);
    const archives = planArchiveRetention(await ctx.manifests.listArchives(), keepArchives);
    const [newest, oldest] = [archives.delete[0], archives.delete[archives.delete.length - 1]];
    say(
      newest && oldest
        ? `archived manifests: keeping the newest ${archives.keep.length}; ${flags.apply ? 'deleting' : 'would delete'} ${archives.delete.length} older, ${oldest.id} to ${newest.id}${flags.apply ? '' : ' (run with --apply to delete)'}`
        : `archived manifests: keeping all ${archives.keep.length} (--keep-archives ${keepArchives})`,
    );
    if (flags.apply) await applyArchiveRetention(ctx, archives);
    return EXIT.ok;
  },
});

/** The `push` program: its commands, settings and exit codes (help and docs/cli.md are generated from it). */
export const PUSH: ProgramDef<PushCliDeps> = {
  name: 'push',
  version: pkg.version,
  summary: 'from a build to a live deploy',
  settings: PUSH_SETTINGS,
  config: { env: 'PUSH_CONFIG', default: DEFAULT_PUSH_CONFIG },
  commands: [deploy, rollback, history, status, init, gc],
  exitCodes: [
    { code: EXIT.ok, meaning: 'done' },
    {
      code: EXIT.failed,
      meaning: 'failed: build, upload, invalid manifest, conflict, or (--wait) a host failed or timed out',
    },
    {
      code: EXIT.usage,
      meaning: 'usage: a wrong command, flag, argument or setting, or an unreadable input file',
    },
  ],
};

/** Runs `push <argv>`; returns the exit code (0 done, 1 failed, 2 usage). */
export function runPush(argv: readonly string[], io: CliIo, deps: PushCliDeps = {}): Promise<number> {
  return runProgram(PUSH, argv, io, deps);
}

/**
 * Resolves the settings `command` reads: flag, then environment, then config file (`--config`, PUSH_CONFIG, or
 * deploy/push.json when it exists); a usage error lists every problem.
 */
export async function loadPushSettings({
  command,
  settingFlags,
  io,
}: {
  command: CommandDef;
  settingFlags: SettingFlags;
  io: CliIo;
}): Promise<PushSettings> {
  const env = io.env ?? {};
  const { config, file, dir } = await readConfigFile(
    io,
    (settingFlags.config as string | undefined) || env.PUSH_CONFIG,
    DEFAULT_PUSH_CONFIG,
  );
  const result = resolvePushSettings({
    flags: settingFlags,
    env,
    config,
    configName: file,
    configDir: dir,
    cwd: io.cwd(),
    read: command.settings ?? [],
  });
  if (!result.ok) throw usageError(`invalid settings:\n${formatIssues(result.issues)}`);
  return result.settings;
}

/** The signing key as read: its text (never printed), and the file it came from, if any. */
interface ReadKey {
  text: string;
  path?: string;
}

/**
 * Reads the signing key once, to check it is one (never printing it): a key file keeps its path for
 * `nix store sign`; a key from standard input or NIX_CACHE_KEY is kept as text until {@link keyFileOf} needs a
 * file.
 */
async function readKey(source: KeySource | undefined, io: CliIo): Promise<ReadKey | undefined> {
  if (source === undefined) return undefined;
  if (source.type === 'inline') return { text: source.text };
  const where = source.type === 'stdin' ? 'standard input (--key-file -)' : source.path;
  const text = (await readInput(io, source.type === 'stdin' ? '-' : source.path)).trim();
  if (!looksLikeNixKey(text))
    throw usageError(
      `${where} does not hold a Nix secret key (name:base64, as nix-store --generate-binary-cache-key writes it)`,
    );
  return source.type === 'file' ? { path: source.path, text } : { text };
}

/** {@link readKey} for a command that writes a manifest: every manifest write is signed, so no key is a usage error. */
async function requireKey(source: KeySource | undefined, io: CliIo, command: string): Promise<ReadKey> {
  const key = await readKey(source, io);
  if (key === undefined)
    throw usageError(
      `push ${command} signs the manifest it writes and needs the signing key: --key-file FILE (or - for standard input), NIX_CACHE_KEY, or "keyFile" in the config file; nothing was done`,
    );
  return key;
}

/** What a manifest write is signed with, and which signatures it accepts on what it builds on. */
function signingOf(settings: PushSettings, key: ReadKey): ManifestSigning {
  return {
    secretKey: key.text,
    trustedPublicKeys: settings.trustedPublicKeys,
    allowUnsigned: settings.insecureAllowUnsignedManifest,
  };
}

/** The name of the key a manifest is signed with, for messages (the key itself never appears). */
function keyName(signing: ManifestSigning): string {
  return signing.secretKey.slice(0, signing.secretKey.indexOf(':'));
}

/**
 * `deploy --plan`, which writes nothing, verifies the current manifest with whatever keys it has (the key's
 * public half, --trusted-public-key); with none, it reads it unverified and says so.
 */
function planTrust(
  settings: PushSettings,
  key: ReadKey | undefined,
  ctx: PushContext,
): ManifestTrust | 'unverified' {
  if (key === undefined && settings.trustedPublicKeys.length === 0) {
    ctx.onEvent({
      level: 'warn',
      type: 'push.unverified',
      message:
        'no key to verify the current manifest with (--key-file or --trusted-public-key): the plan shows it unverified',
    });
    return 'unverified';
  }
  return {
    trustedPublicKeys: settings.trustedPublicKeys,
    allowUnsigned: settings.insecureAllowUnsignedManifest,
    ...(key === undefined ? {} : { secretKey: key.text }),
  };
}

/**
 * The key as a file for `nix store sign`: a key given as text goes to a private temporary file, which `cleanup`
 * removes right after signing.
 */
async function keyFileOf(key: ReadKey): Promise<{ path: string; cleanup?: () => Promise<void> }> {
  if (key.path !== undefined) return { path: key.path };
  const dir = await mkdtemp(join(tmpdir(), 'omni-push-key-'));
  await chmod(dir, 0o700);
  const path = join(dir, 'key');
  await writeFile(path, `${key.text}\n`, { mode: 0o600 });
  return { path, cleanup: () => rm(dir, { recursive: true, force: true }) };
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
    manifests: openManifestStore(settings.manifest, { status: settings.status }),
    cache: settings.cache === undefined ? undefined : openObjectStore(settings.cache),
    nix: createNix({ shell }),
    shell,
    clock: createClock(),
    onEvent,
    secretsDir: settings.secretsDir,
  };
}

async function waitFor(
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

/** The rollout flags as a request (`--auto-revert` counts only when turned off: on is the default). */
function rolloutRequestOf(flags: {
  canary: number | undefined;
  'canary-hosts': string | undefined;
  'max-parallel': number | undefined;
  'min-healthy-time': string | undefined;
  'healthy-deadline': string | undefined;
  'auto-revert': boolean;
}): RolloutRequest {
  const hosts = flags['canary-hosts']?.split(',').map((h) => h.trim());
  const bad = hosts?.filter((h) => !isHostname(h));
  if (bad?.length)
    throw usageError(
      `--canary-hosts: expected host names separated by commas, found ${JSON.stringify(flags['canary-hosts'])}`,
    );
  if (flags.canary !== undefined && hosts !== undefined)
    throw usageError('give --canary or --canary-hosts, not both');
  const ms = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const request: RolloutRequest = {
    canary: flags.canary,
    canaryHosts: hosts,
    maxParallel: flags['max-parallel'],
    minHealthyTimeMs: ms(flags['min-healthy-time']),
    healthyDeadlineMs: ms(flags['healthy-deadline']),
    autoRevert: flags['auto-revert'] ? undefined : false,
  };
  return Object.fromEntries(Object.entries(request).filter(([, v]) => v !== undefined)) as RolloutRequest;
}

/** True when the current manifest records an open rollout of `service` (push deploy then resumes it). */
async function openRolloutOf(ctx: PushContext, service: string, signing: ManifestSigning): Promise<boolean> {
  const read = await ctx.manifests.read();
  const current = currentManifest(
    read.status === 'found' ? read.text : undefined,
    ctx.manifests.url,
    ctx.secretsDir,
    signing,
  );
  return (
    current?.rollout !== undefined && current.rollout.service === service && isOpenRollout(current.rollout)
  );
}

const timingAlone = () =>
  usageError(
    '--min-healthy-time, --healthy-deadline and --no-auto-revert are for a staged rollout: add --canary N, --canary-hosts or --max-parallel (or run it while a rollout of the service is open, to resume it); nothing was done',
  );
