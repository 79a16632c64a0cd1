import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pkg from '../../package.json' with { type: 'json' };
import type { BuiltCaddyConfig } from '../deployer/caddy-config.js';
import type { DeployerContext } from '../deployer/context.js';
import { createFileStateStore } from '../deployer/file-state-store.js';
import { type DeployerSettings, resolveSettings } from '../deployer/settings.js';
import { buildHostStatus, renderHostStatus } from '../deployer/status.js';
import { runTick, type TickReport } from '../deployer/tick.js';
import { watch } from '../deployer/watch.js';
import { DeployError } from '../errors.js';
import { formatIssues } from '../manifest/validate.js';
import type { EventSink } from '../runtime/events.js';
import type { CommandDef, SettingFlags } from './command.js';
import { type CliIo, EXIT, readConfigFile, readInput, usageError } from './io.js';
import { formatEvent } from './log.js';

/** Where the deployer looks for its config file when neither `--config` nor DEPLOYER_CONFIG names one. */
export const DEFAULT_CONFIG_FILE = '/etc/omni-deploy/deployer.json';

/** Exit code of `apply` when another run holds the lock. */
export const EXIT_BUSY = 3;

/** What the long-running commands need beyond {@link CliIo}. */
export interface DeployerRunDeps {
  /** Builds the tick context from settings (default: the real adapters). Tests inject fakes here. */
  createContext?: (settings: DeployerSettings, onEvent: EventSink) => DeployerContext;
  /**
   * Called by `watch` after a tick that did something (any outcome but `unchanged`), to give memory back
   * (default: a full garbage collection, see {@link releaseMemory}).
   */
  releaseMemory?: () => void;
}

let collect: (() => void) | undefined;

/**
 * A full garbage collection, so that a long-running `deployer watch` gives back the heap a deploy grew: V8's
 * memory reducer shrinks the heap after start-up, but not again after a burst of allocation in an otherwise
 * idle process, which held ~8 MB more after a series of deploys (docs/performance.md). Enables `gc` on first
 * use (`--expose-gc` set at run time); costs a few milliseconds, and runs only after ticks that changed
 * something.
 */
export function releaseMemory(): void {
  if (collect === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (typeof exposed === 'function') collect = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
  }
  collect();
}

/**
 * Resolves the settings `command` reads from its flags, the environment and the config file (`--config`,
 * DEPLOYER_CONFIG or /etc/omni-deploy/deployer.json), or throws a usage error listing every problem.
 */
export async function loadSettings(
  { command, settingFlags, io }: { command: CommandDef; settingFlags: SettingFlags; io: CliIo },
  complete: boolean,
): Promise<DeployerSettings> {
  const env = io.env ?? {};
  const { config, file, dir } = await readConfigFile(
    io,
    (settingFlags.config as string | undefined) || env.DEPLOYER_CONFIG,
    DEFAULT_CONFIG_FILE,
  );
  const result = resolveSettings({
    flags: settingFlags,
    env,
    config,
    configName: file,
    configDir: dir,
    cwd: io.cwd(),
    hostname: io.hostname(),
    complete,
    read: command.settings ?? [],
  });
  if (!result.ok) throw usageError(`invalid settings:\n${formatIssues(result.issues)}`);
  return result.settings;
}

/** The text of a manifest at a location: `-` (stdin), a path or `file://` URL, or `s3://...` through the S3 module. */
export async function readManifestText(io: CliIo, location: string): Promise<string> {
  if (!location.startsWith('s3://'))
    return readInput(io, location.startsWith('file://') ? location.slice('file://'.length) : location);
  // Loaded on demand: the AWS SDK is most of the bin's start-up time, and only s3:// locations need it.
  const { openManifestStore } = await import('../s3/open.js');
  const read = await openManifestStore(location).read();
  if (read.status !== 'found') throw new DeployError('IO', `no manifest at ${location}`);
  return read.text;
}

/** An event sink that renders to stderr: text on a terminal, JSON lines otherwise (journald). */
function eventPrinter(io: CliIo, settings: DeployerSettings, verbose: boolean): EventSink {
  const format = settings.logFormat === 'auto' ? (io.isTTY ? 'text' : 'json') : settings.logFormat;
  return (event) => {
    const line = formatEvent(event, format, new Date(), verbose);
    if (line) io.stderr(line);
  };
}

/** The real adapters, loaded on demand (they pull in the AWS SDK and zx, which `--help` or `status` never need). */
async function realContext(): Promise<(settings: DeployerSettings, onEvent: EventSink) => DeployerContext> {
  const { createDeployerContext } = await import('../deployer/create.js');
  return (settings, onEvent) => createDeployerContext(settings, { onEvent, version: pkg.version });
}

/** Exit code of a tick: 0 converged, 3 busy, 1 anything else (invalid manifest, pull failure, rollback...). */
function exitCodeOf(report: TickReport): number {
  if (report.outcome === 'applied' || report.outcome === 'unchanged') return EXIT.ok;
  return report.outcome === 'busy' ? EXIT_BUSY : EXIT.failed;
}

/** `deployer apply`: one tick. */
export async function runApply(
  settings: DeployerSettings,
  flags: { json: boolean; verbose: boolean },
  io: CliIo,
  deps: DeployerRunDeps,
): Promise<number> {
  const onEvent = eventPrinter(io, settings, flags.verbose);
  const ctx = (deps.createContext ?? (await realContext()))(settings, onEvent);
  const report = await runTick(ctx);
  if (flags.json) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout(`${summarize(report)}\n`);
  return exitCodeOf(report);
}

/** `deployer watch`: ticks every `--interval` (plus jitter) until SIGTERM/SIGINT, finishing the tick in progress. */
export async function runWatch(
  settings: DeployerSettings,
  flags: { verbose: boolean },
  io: CliIo,
  deps: DeployerRunDeps,
): Promise<number> {
  const onEvent = eventPrinter(io, settings, flags.verbose);
  const ctx = (deps.createContext ?? (await realContext()))(settings, onEvent);
  const signal = io.signal ?? new AbortController().signal;
  const release = deps.releaseMemory ?? releaseMemory;
  await watch({
    tick: async () => {
      const report = await runTick(ctx);
      if (report.outcome !== 'unchanged') release();
    },
    clock: ctx.adapters.clock,
    intervalMs: settings.intervalMs,
    signal,
    onEvent,
  });
  return EXIT.ok;
}

/** `deployer status`: what runs here, from local state. */
export async function runStatus(
  settings: DeployerSettings,
  flags: { json: boolean },
  io: CliIo,
): Promise<number> {
  const state = await createFileStateStore(join(settings.stateDir, 'state.json')).load();
  if (!state) {
    io.stderr(`no deployer state in ${settings.stateDir}: nothing deployed on this host yet\n`);
    return EXIT.failed;
  }
  const status = buildHostStatus(state, pkg.version, new Date().toISOString());
  io.stdout(
    flags.json ? `${JSON.stringify(status, null, 2)}\n` : `${renderHostStatus(status, Date.now())}\n`,
  );
  return EXIT.ok;
}

/** One line for people: the outcome and what changed. */
function summarize(report: TickReport): string {
  const counts = new Map<string, number>();
  for (const r of report.results) counts.set(r.outcome, (counts.get(r.outcome) ?? 0) + 1);
  const parts = [...counts].filter(([o]) => o !== 'unchanged').map(([o, n]) => `${n} ${o}`);
  if (report.repaired.length) parts.push(`${report.repaired.length} restored`);
  return `tick ${report.outcome}${parts.length ? `: ${parts.join(', ')}` : ''}${report.message ? `\n${report.message}` : ''}`;
}

/** What `deployer caddy-config` is asked for: the host's config file, and where the result goes. */
export interface CaddyConfigRequest {
  file: string;
  adapter: string | undefined;
  caddyBin: string | undefined;
  /** Written here (see {@link writeCaddyConfig}); standard output without it. */
  out: string | undefined;
}

/**
 * `deployer caddy-config`: the host's Caddy config with the deployer's routes, for caddy.service's ExecStartPre
 * and ExecReload. `settings` is `undefined` when they could not be read: the host's config is still written
 * (without routes), so a broken deployer config never keeps Caddy from starting. Exit 1 only when the host's
 * config itself cannot be adapted (Caddy would refuse it too) or the output cannot be written.
 */
export async function runCaddyConfig(
  settings: DeployerSettings | undefined,
  request: CaddyConfigRequest,
  io: CliIo,
): Promise<number> {
  const [{ buildCaddyConfig }, { createShell }, { createCaddyAdmin }] = await Promise.all([
    import('../deployer/caddy-config.js'),
    import('../shell/shell.js'),
    import('../caddy/http-admin.js'),
  ]);
  const caddy =
    settings === undefined || settings.caddyAdmin === 'off'
      ? undefined
      : // At a start Caddy is not running, and Caddy's start or reload waits for this: no repeats, short.
        createCaddyAdmin({ address: settings.caddyAdmin, timeoutMs: 2_000, getRetryDelaysMs: [] });
  const built = await buildCaddyConfig(
    {
      shell: createShell(),
      state: createFileStateStore(join(settings?.stateDir ?? '/nonexistent', 'state.json')),
      caddy,
    },
    settings ?? { host: io.hostname(), caddyServer: 'auto' },
    {
      file: request.file,
      ...(request.adapter === undefined ? {} : { adapter: request.adapter }),
      ...(request.caddyBin === undefined ? {} : { caddy: request.caddyBin }),
    },
  );
  if (built.adaptLog) io.stderr(`${built.adaptLog}\n`);
  for (const note of built.notes) io.stderr(`caddy-config: ${note}\n`);
  for (const warning of built.warnings) io.stderr(`caddy-config: warning: ${warning}\n`);
  const text = `${JSON.stringify(built.config)}\n`;
  if (request.out === undefined) io.stdout(text);
  else await writeCaddyConfig(request.out, text);
  io.stderr(`caddy-config: ${describeRoutes(built)}${request.out ? `; written to ${request.out}` : ''}\n`);
  return EXIT.ok;
}

function describeRoutes(built: BuiltCaddyConfig): string {
  if (built.routes.length === 0) return "no routes of the deployer: the host's config as it is";
  const list = built.routes
    .map((r) => `${r.service} (${r.from === 'caddy' ? 'as Caddy serves it' : 'from the state'})`)
    .join(', ');
  return `${built.routes.length} route(s) of the deployer in server ${built.plan?.discovered ?? built.plan?.server}: ${list}`;
}

/**
 * Replaces `path` atomically with mode 0600 (the host's config may hold secrets from its environment
 * placeholders), owned by the owner and group of its directory, which must exist: caddy.service's
 * `RuntimeDirectory`, owned by the user Caddy runs as, is what lets Caddy read it and nobody else. That user
 * owns the directory, so nothing is done by path to a name in it except creating the new file exclusively and
 * renaming it: owner and mode are set on the open file, never through a name that could have become a symlink.
 */
async function writeCaddyConfig(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  let owner: { uid: number; gid: number };
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) throw new Error('not a directory');
    owner = { uid: info.uid, gid: info.gid };
  } catch (error) {
    throw new DeployError(
      'IO',
      `cannot write ${path}: its directory ${dir} is missing or unusable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); make it caddy.service's RuntimeDirectory`,
      { cause: error },
    );
  }
  const temp = join(dir, `.${basename(path)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  try {
    // `wx`: created here and now, never an existing file or a symlink someone put in the way.
    const file = await open(temp, 'wx', 0o600);
    try {
      await file.writeFile(text);
      await file.chown(owner.uid, owner.gid);
      await file.chmod(0o600);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw new DeployError('IO', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}
