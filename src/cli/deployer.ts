import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pkg from '../../package.json' with { type: 'json' };
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
import { renderUnit, type UnitFile } from '../systemd/index.js';
import { type DeployerRunDeps, runApply, runStatus, runWatch } from './deployer-run.js';
import { type CliIo, EXIT, prefixLines, readInput, usageError, usageExit, writeOutput } from './io.js';

const HELP = `deployer ${pkg.version}: converge this host to the services of a manifest

Usage:
  deployer validate <file|-> [--host NAME] [--secrets-dir DIR] [--json]
      Check a manifest. Exit 0 valid (warnings on stderr), 1 invalid (every problem listed), 2 usage error.
  deployer plan --manifest <file|-> [--host NAME] [--previous <file>] [--secrets-dir DIR]
               [--units-out DIR] [--json]
      What would change on the host (default: this machine's name) compared to a previous manifest
      (default: nothing deployed yet). Changes nothing; with --units-out, writes the systemd unit files the
      deployer would install for the host into DIR (and nothing else), to read before a deploy.
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
    if (command === 'apply') return await runApply(rest, io, deps);
    if (command === 'watch') return await runWatch(rest, io, deps);
    if (command === 'status') return await runStatus(rest, io);
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      io.stdout(HELP);
      return EXIT.ok;
    }
    if (command === '--version') {
      io.stdout(`${pkg.version}\n`);
      return EXIT.ok;
    }
    const { values, positionals } = parseArgs({ args: [...rest], allowPositionals: true, options: OPTIONS });
    if (values.help) {
      io.stdout(HELP);
      return EXIT.ok;
    }
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
      if (values.manifest === undefined || positionals.length)
        throw usageError('plan takes --manifest <file> and no other arguments');
      const next = await load(values.manifest);
      const previous = values.previous === undefined ? undefined : await load(values.previous);
      if (!next.ok) return report(io, values.manifest, next, undefined, false);
      if (previous && !previous.ok) return report(io, values.previous as string, previous, undefined, false);
      const host = values.host ?? io.hostname();
      const diff = diffManifests(previous?.manifest, next.manifest, host);
      const outDir = values['units-out'];
      let units: UnitFile[] = [];
      if (outDir !== undefined) {
        // Every unit rendered before the first is written: a refused value leaves the directory untouched.
        try {
          units = servicesForHost(next.manifest, host).map((s) =>
            renderUnit(s, { secretsDir: values['secrets-dir'] }),
          );
        } catch (error) {
          if (!isDeployError(error) || !error.code.startsWith('SYSTEMD_')) throw error;
          io.stderr(`${values.manifest}: cannot render the units for host ${host}: ${error.message}\n`);
          return EXIT.failed;
        }
        for (const unit of units) await writeOutput(io, join(outDir, unit.name), unit.text);
      }
      const written = units.map((unit) => join(outDir as string, unit.name));
      if (values.json) {
        const body = outDir === undefined ? diff : { ...diff, unitFiles: written };
        io.stdout(`${JSON.stringify(body, null, 2)}\n`);
      } else {
        const list = written.map((file) => `\n  ${file}`).join('');
        const note =
          outDir === undefined
            ? ''
            : `\n${units.length} unit file(s) for host ${host} written to ${outDir}${list}`;
        io.stdout(`${renderManifestDiff(diff)}${note}\n`);
      }
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
