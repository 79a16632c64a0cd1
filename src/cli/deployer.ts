import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pkg from '../../package.json' with { type: 'json' };
import { desiredServices } from '../deployer/desired.js';
import { createFileStateStore } from '../deployer/file-state-store.js';
import { planDeploy, renderPlan } from '../deployer/plan.js';
import { emptyState } from '../deployer/state.js';
import { isDeployError } from '../errors.js';
import {
  diffManifests,
  formatIssues,
  type ManifestResult,
  parseManifest,
  renderManifestDiff,
  summarizeManifest,
} from '../manifest/index.js';
import { isHostname } from '../manifest/patterns.js';
import { servicesForHost } from '../manifest/select.js';
import { renderUnit } from '../systemd/render-unit.js';
import type { UnitFile } from '../systemd/types.js';
import {
  type DeployerRunDeps,
  loadSettings,
  readManifestText,
  runApply,
  runStatus,
  runWatch,
} from './deployer-run.js';
import {
  answerHelp,
  type CliIo,
  EXIT,
  prefixLines,
  readInput,
  usageError,
  usageExit,
  writeOutput,
} from './io.js';

const HELP = `deployer ${pkg.version}: converge this host to the services of a manifest

Usage:
  deployer validate <file|-> [--host NAME] [--secrets-dir DIR] [--json]
      Check a manifest. Exit 0 valid (warnings on stderr), 1 invalid (every problem listed), 2 usage error.
  deployer plan --manifest <file|-> [--host NAME] [--state-dir DIR | --previous <file>] [--secrets-dir DIR]
               [--units-out DIR] [--json]
      What the next tick would do on the host (default: this machine's name): install, update (with the
      unit lines and store paths that change), remove, or hold back, compared to what the host runs (its
      state in --state-dir, default /var/lib/biz-deployer; nothing if it never deployed), or, with
      --previous, the manifest changes since an earlier manifest. Changes nothing; with --units-out, writes
      the unit files the deployer would install into DIR (and nothing else), to read before a deploy.
  deployer apply [settings] [--json] [-v]
      One tick: restore units after a reboot, poll the manifest, apply what changed (health-gated, with
      per-service rollback), reconcile Caddy routes, publish status. Exit 0 converged, 1 something failed,
      3 another run holds the lock. For a systemd timer.
  deployer watch [settings] [--interval 5m] [-v]
      Tick forever with a little random jitter; SIGTERM finishes the tick in progress, then exits.
  deployer status [--state-dir DIR] [--json]
      Services, versions and health on this host, and the last tick, from local state.
  deployer --help | --version

Settings (flag, else environment variable DEPLOYER_<NAME>, else --config FILE / DEPLOYER_CONFIG,
default /etc/omni-deploy/deployer.json, with keys in camelCase):
  --manifest LOCATION          s3://bucket/manifest.json?region=&endpoint=&profile=, file:///path or a path
  --substituter URL            binary cache for closures (s3://..., http://..., file://...)
  --trusted-public-key KEY     repeatable; closures must be signed by one (or --insecure-allow-unsigned)
  --host NAME                  default: this machine's host name
  --state-dir DIR              default /var/lib/biz-deployer
  --units-dir DIR              default /run/systemd/system (restored from state at boot)
  --profiles-dir DIR           default /nix/var/nix/profiles/biz
  --gcroots-dir DIR            default /nix/var/nix/gcroots/biz
  --secrets-dir DIR            default /var/lib/biz-secrets
  --caddy-admin ADDRESS        default http://127.0.0.1:2019; unix//run/caddy/admin.sock; off
  --caddy-server NAME          default omni
  --keep N                     versions kept per service, default 5
  --health-settle 5s --health-timeout 5s --health-interval 1s --deploy-timeout 30s --interval 5m
  --on-success CMD --on-failure CMD   run after a tick, outcome in DEPLOYER_OUTCOME, ...
  --metrics-file PATH          Prometheus textfile
  --log-format auto|text|json  default auto: text on a terminal, JSON lines otherwise
`;

const OPTIONS = {
  host: { type: 'string' },
  manifest: { type: 'string' },
  previous: { type: 'string' },
  'secrets-dir': { type: 'string' },
  'units-out': { type: 'string' },
  'state-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/**
 * Runs `deployer <argv>` and returns the exit code: 0 ok, 1 invalid manifest or failed tick, 2 usage or input
 * error, 3 busy (another tick holds the lock).
 */
export async function runDeployer(
  argv: readonly string[],
  io: CliIo,
  deps: DeployerRunDeps = {},
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    const answered = answerHelp(argv, io, HELP, pkg.version);
    if (answered !== undefined) return answered;
    if (command === 'apply') return await runApply(rest, io, deps);
    if (command === 'watch') return await runWatch(rest, io, deps);
    if (command === 'status') return await runStatus(rest, io);
    const { values, positionals } = parseArgs({ args: [...rest], allowPositionals: true, options: OPTIONS });
    if (values.host !== undefined && !isHostname(values.host)) {
      throw usageError(`--host: expected an RFC 1123 host name, found ${JSON.stringify(values.host)}`);
    }
    const load = async (file: string) =>
      parseManifest(await readInput(io, file), { secretsDir: values['secrets-dir'] });

    if (command === 'validate') {
      const [file, extra] = positionals;
      if (file === undefined || extra !== undefined)
        throw usageError('validate takes exactly one manifest file (or - for stdin)');
      return report(io, file, await load(file), values.host, values.json);
    }
    if (command === 'plan') {
      if (positionals.length) throw usageError('plan takes no positional arguments');
      // Host, state and secrets directories and the manifest location as apply would see them (flags,
      // environment, config file), so the plan is the plan of the next tick.
      const pass = (flag: string, value: string | undefined) =>
        value === undefined ? [] : [`--${flag}`, value];
      const { settings } = await loadSettings(
        [
          ...pass('host', values.host),
          ...pass('state-dir', values['state-dir']),
          ...pass('secrets-dir', values['secrets-dir']),
          ...pass('manifest', values.manifest),
          ...pass('config', values.config),
        ],
        io,
        false,
      );
      const location = settings.manifest;
      if (location === undefined)
        throw usageError(
          'plan needs --manifest <file|-|s3://...> (or DEPLOYER_MANIFEST, or "manifest" in the config file)',
        );
      const parse = (text: string) => parseManifest(text, { secretsDir: settings.secretsDir });
      const next = parse(await readManifestText(io, location));
      const previous = values.previous === undefined ? undefined : await load(values.previous);
      if (!next.ok) return report(io, location, next, undefined, false);
      if (previous && !previous.ok) return report(io, values.previous as string, previous, undefined, false);
      const host = settings.host;
      const outDir = values['units-out'];
      let units: UnitFile[] = [];
      if (outDir !== undefined) {
        // Every unit rendered before the first is written: a refused value leaves the directory untouched.
        try {
          units = servicesForHost(next.manifest, host).map((s) =>
            renderUnit(s, { secretsDir: settings.secretsDir }),
          );
        } catch (error) {
          if (!isDeployError(error) || !error.code.startsWith('SYSTEMD_')) throw error;
          io.stderr(`${location}: cannot render the units for host ${host}: ${error.message}\n`);
          return EXIT.failed;
        }
        for (const unit of units) await writeOutput(io, join(outDir, unit.name), unit.text);
      }
      const written = units.map((unit) => join(outDir as string, unit.name));
      const note =
        outDir === undefined
          ? ''
          : `\n${units.length} unit file(s) for host ${host} written to ${outDir}${written.map((f) => `\n  ${f}`).join('')}`;
      if (previous) {
        // Against an earlier manifest: what changed in the manifest for this host.
        const diff = diffManifests(previous.manifest, next.manifest, host);
        io.stdout(
          values.json
            ? `${JSON.stringify(outDir === undefined ? diff : { ...diff, unitFiles: written }, null, 2)}\n`
            : `${renderManifestDiff(diff)}${note}\n`,
        );
        return EXIT.ok;
      }
      // Against what this host runs (its local state; nothing when it has never deployed).
      const stateDir = settings.stateDir;
      const state = (await createFileStateStore(join(stateDir, 'state.json')).load()) ?? emptyState(host);
      if (state.host.toLowerCase() !== host.toLowerCase())
        throw usageError(`the state in ${stateDir} belongs to host ${state.host}, not ${host}`);
      const { desired, failures } = desiredServices(next.manifest, host, { secretsDir: settings.secretsDir });
      const plan = planDeploy({ host, generation: next.manifest.generation, desired, state });
      const refused = failures.map((f) => `\n  ! ${f.service}: refused: ${f.reason}`).join('');
      io.stdout(
        values.json
          ? `${JSON.stringify({ ...plan, refused: failures, ...(outDir === undefined ? {} : { unitFiles: written }) }, null, 2)}\n`
          : `${renderPlan(plan)}${refused}${note}\n`,
      );
      return EXIT.ok;
    }
    throw usageError(`unknown command ${JSON.stringify(command)}`);
  } catch (error) {
    return usageExit('deployer', io, error);
  }
}

/** Prints a validation result as text or JSON and returns its exit code. */
function report(
  io: CliIo,
  file: string,
  result: ManifestResult,
  host: string | undefined,
  json: boolean,
): number {
  const warnings = result.warnings.length ? `${prefixLines('warning', formatIssues(result.warnings))}\n` : '';
  if (json) {
    const body = result.ok
      ? {
          ok: true,
          file,
          generation: result.manifest.generation,
          services: result.manifest.services.map((s) => s.name),
          warnings: result.warnings,
        }
      : { ok: false, file, issues: result.issues, warnings: result.warnings };
    io.stdout(`${JSON.stringify(body, null, 2)}\n`);
  } else if (result.ok) {
    const count = result.warnings.length ? `, ${result.warnings.length} warning(s)` : '';
    io.stdout(`${file}: ${summarizeManifest(result.manifest, host)}${count}\n`);
    io.stderr(warnings);
  } else {
    io.stderr(
      `${file}: invalid manifest, ${result.issues.length} problem(s):\n${formatIssues(result.issues)}\n${warnings}`,
    );
  }
  return result.ok ? EXIT.ok : EXIT.failed;
}
