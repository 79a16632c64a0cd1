import { join, posix } from 'node:path';
import pkg from '../../package.json' with { type: 'json' };
import { desiredServices } from '../deployer/desired.js';
import { createFileStateStore } from '../deployer/file-state-store.js';
import { policyContext } from '../deployer/host-policy.js';
import { planDeploy, renderPlan } from '../deployer/plan.js';
import { type DeployerSettings, POLICY_KEY, SETTINGS } from '../deployer/settings.js';
import { emptyState } from '../deployer/state.js';
import { isDeployError } from '../errors.js';
import {
  diffManifests,
  formatIssues,
  type ManifestResult,
  renderManifestDiff,
  summarizeManifest,
} from '../manifest/index.js';
import type { Manifest } from '../manifest/schema.js';
import { servicesForHost } from '../manifest/select.js';
import { checkManifestPolicy, formatPolicyIssues, type ManifestPolicyResult } from '../policy/index.js';
import { renderUnit } from '../systemd/render-unit.js';
import type { UnitFile } from '../systemd/types.js';
import { defineCommand, type ProgramDef, runProgram } from './command.js';
import {
  DEFAULT_CONFIG_FILE,
  type DeployerRunDeps,
  EXIT_BUSY,
  loadSettings,
  readManifestText,
  runApply,
  runCaddyConfig,
  runStatus,
  runWatch,
} from './deployer-run.js';
import { type CliIo, EXIT, prefixLines, readInput, usageError, writeOutput } from './io.js';
import { parseManifestInput } from './manifest-input.js';

const json = { kind: 'boolean', description: 'print the result as JSON on standard output' } as const;
const verbose = { kind: 'boolean', short: 'v', description: 'also log debug events' } as const;

/**
 * The settings the host policy reads besides its own `policy` object (config file only): the locations it
 * protects. `validate` and `plan` read them as `apply` does, so they refuse what the host would refuse.
 */
const POLICY_SETTINGS = [
  'secretsDir',
  'stateDir',
  'unitsDir',
  'profilesDir',
  'gcrootsDir',
  'caddyAdmin',
  'metricsFile',
] as const;

/** The host policy of `settings` applied to a valid manifest: every service's, or only `host`'s. */
function applyPolicy(
  manifest: Manifest,
  settings: DeployerSettings,
  host: string | undefined,
  serviceNames: readonly string[] = [],
): ManifestPolicyResult {
  return checkManifestPolicy(manifest, settings.policy, {
    ...policyContext(settings, serviceNames),
    ...(host === undefined ? {} : { host }),
  });
}

/** A policy refusal on standard error: the file, each issue as `path: message (rule id)`. */
function policyRefusal(file: string, result: ManifestPolicyResult): string {
  return `${file}: refused by the host policy, ${result.issues.length} problem(s) (service(s) ${result.refused.join(', ')}; docs/security.md):\n${formatPolicyIssues(result.issues)}\n`;
}

const validate = defineCommand({
  name: 'validate',
  summary:
    'check a manifest and the host policy; exit 0 valid (warnings on stderr), 1 invalid or refused (every problem listed)',
  description:
    "Checks a manifest the way the deployer checks one before applying it: with --trusted-public-key, its signature first (signed by one of those keys and unchanged since, else exit 1 naming the signature; without one a signed manifest is unwrapped but its signature not checked, and a plain manifest is checked as it is); then its schema, values that could inject into unit files or escape their directories, duplicate routes and ports; then the host policy (the config file's policy object, else the defaults: docs/security.md) on everything that can be judged without the host: accounts and groups by name, state directories, writable paths, units started, env files, domains, ports. Every problem is listed with its JSON path (and the policy's rule). Checks every service, or with --host only that host's. Changes nothing.",
  args: [{ name: 'file|-', description: 'the manifest file, or - for standard input' }],
  flags: {
    host: {
      kind: 'host',
      value: 'NAME',
      description: "check only this host's services against the policy, and name them in the summary",
    },
    'trusted-public-key': {
      kind: 'list',
      value: 'KEY',
      description:
        'check the signature as the deployer does: valid only when signed by this key (name:base64) and unchanged since; may be repeated',
    },
    json,
  },
  settings: POLICY_SETTINGS,
  async run(input) {
    const { args, flags, io } = input;
    const file = args[0] as string;
    const settings = await loadSettings(input, false);
    const { result, signature } = parseManifestInput(await readInput(io, file), {
      secretsDir: settings.secretsDir,
      trustedPublicKeys: flags['trusted-public-key'] ?? [],
      allowUnsigned: false,
    });
    const policy = result.ok ? applyPolicy(result.manifest, settings, flags.host) : undefined;
    return report(io, file, result, flags.host, flags.json, policy, signature);
  },
});

const plan = defineCommand({
  name: 'plan',
  summary: 'what the next tick would do on this host; changes nothing',
  description:
    'Shows what the next tick would do on the host: install, update (with the unit lines and store paths that change), remove, or hold back, compared to what the host runs (its state in --state-dir; nothing if it never deployed), or, with --previous, the manifest changes since an earlier manifest. The settings are read as apply reads them, so the plan is the plan of the next tick: a manifest whose signature the host would refuse is invalid here too (without trusted keys a signed manifest is unwrapped unchecked). Changes nothing; with --units-out, writes the unit files the deployer would install (and nothing else), to read before a deploy.',
  flags: {
    previous: {
      kind: 'string',
      value: 'FILE',
      description:
        "compare with an earlier manifest (a file, or - for standard input) instead of the host's state",
    },
    'units-out': {
      kind: 'string',
      value: 'DIR',
      description: 'write the unit files the deployer would install for this host into DIR',
    },
    json,
  },
  settings: ['manifest', 'host', ...POLICY_SETTINGS, 'trustedPublicKeys', 'insecureAllowUnsignedManifest'],
  async run(input) {
    const { flags, io } = input;
    const settings = await loadSettings(input, false);
    const location = settings.manifest;
    if (location === undefined)
      throw usageError(
        'plan needs --manifest <file|-|s3://...> (or DEPLOYER_MANIFEST, or "manifest" in the config file)',
      );
    // As the tick reads it: the signature checked with the host's trusted keys (unwrapped unchecked without any).
    const parse = (text: string) =>
      parseManifestInput(text, {
        secretsDir: settings.secretsDir,
        trustedPublicKeys: settings.trustedPublicKeys,
        allowUnsigned: settings.insecureAllowUnsignedManifest,
      }).result;
    const next = parse(await readManifestText(io, location));
    const previous = flags.previous === undefined ? undefined : parse(await readInput(io, flags.previous));
    if (!next.ok) return report(io, location, next, undefined, false);
    if (previous && !previous.ok) return report(io, flags.previous as string, previous, undefined, false);
    const host = settings.host;
    const outDir = flags['units-out'];
    // Against what this host runs (its local state; nothing when it has never deployed), unless --previous.
    const state = previous ? undefined : await loadHostState(settings.stateDir, host);
    const policy = applyPolicy(next.manifest, settings, host, Object.keys(state?.services ?? {}));
    if (policy.issues.length) io.stderr(policyRefusal(location, policy));
    let units: UnitFile[] = [];
    // A manifest the host policy refuses gets no unit files written: nothing of it is installed either.
    if (outDir !== undefined && policy.issues.length === 0) {
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
        : policy.issues.length
          ? `\nno unit files written to ${outDir}: the host policy refuses the manifest`
          : `\n${units.length} unit file(s) for host ${host} written to ${outDir}${written.map((f) => `\n  ${f}`).join('')}`;
    const extra = {
      ...(policy.issues.length ? { policy } : {}),
      ...(outDir === undefined ? {} : { unitFiles: written }),
    };
    if (previous) {
      // Against an earlier manifest: what changed in the manifest for this host.
      const diff = diffManifests(previous.manifest, next.manifest, host);
      io.stdout(
        flags.json
          ? `${JSON.stringify({ ...diff, ...extra }, null, 2)}\n`
          : `${renderManifestDiff(diff)}${note}\n`,
      );
      return policy.issues.length ? EXIT.failed : EXIT.ok;
    }
    const current = state ?? emptyState(host);
    const { desired, failures } = desiredServices(next.manifest, host, {
      secretsDir: settings.secretsDir,
      policy: { rules: settings.policy, context: policyContext(settings, Object.keys(current.services)) },
    });
    const planned = planDeploy({ host, generation: next.manifest.generation, desired, state: current });
    const refused = failures.map((f) => `\n  ! ${f.service}: refused: ${f.reason}`).join('');
    io.stdout(
      flags.json
        ? `${JSON.stringify({ ...planned, refused: failures, ...extra }, null, 2)}\n`
        : `${renderPlan(planned)}${refused}${note}\n`,
    );
    // A refused service is what the next tick would refuse: its outcome would be partial, exit 1.
    return failures.length ? EXIT.failed : EXIT.ok;
  },
});

/** The host's state in `stateDir` (empty when it never deployed); a state of another host is a usage error. */
async function loadHostState(stateDir: string, host: string) {
  const state = (await createFileStateStore(join(stateDir, 'state.json')).load()) ?? emptyState(host);
  if (state.host.toLowerCase() !== host.toLowerCase())
    throw usageError(`the state in ${stateDir} belongs to host ${state.host}, not ${host}`);
  return state;
}

/** Every setting except `interval`, which only `watch` uses. */
const TICK_SETTINGS = SETTINGS.map((s) => s.key).filter((key) => key !== 'intervalMs');

const apply = defineCommand({
  name: 'apply',
  summary:
    'one tick, for a systemd timer; exit 0 converged, 1 something failed, 3 another run holds the lock',
  description:
    'One tick: restore units after a reboot, poll the manifest, apply what changed (health-gated, with per-service rollback), reconcile Caddy routes, save state and publish status. Log lines go to standard error, a one-line summary (or --json, the whole report) to standard output.',
  flags: {
    json: { kind: 'boolean', description: 'print the tick report as JSON on standard output' },
    verbose,
  },
  settings: TICK_SETTINGS,
  async run(input, deps: DeployerRunDeps) {
    return runApply(await loadSettings(input, true), input.flags, input.io, deps);
  },
});

const watchCommand = defineCommand({
  name: 'watch',
  summary: 'tick forever, every --interval with a little random jitter',
  description:
    'Ticks forever, every --interval plus a little random jitter, for a long-running service instead of a timer. SIGTERM or SIGINT lets the tick in progress finish, then exits 0; a second signal exits at once.',
  flags: { verbose },
  settings: [...TICK_SETTINGS, 'intervalMs'],
  async run(input, deps: DeployerRunDeps) {
    return runWatch(await loadSettings(input, true), input.flags, input.io, deps);
  },
});

const status = defineCommand({
  name: 'status',
  summary: 'services, versions and health on this host, and the last tick, from local state',
  description:
    "Prints the services this host runs, their versions and health, and the last tick's outcome, from the state in --state-dir. Exit 1 when the host never deployed.",
  flags: { json },
  settings: ['stateDir'],
  async run(input) {
    return runStatus(await loadSettings(input, false), input.flags, input.io);
  },
});

const caddyConfig = defineCommand({
  name: 'caddy-config',
  summary:
    "the host's Caddy config with the deployer's routes in it, for caddy.service to start and reload from",
  description:
    "Prints (or with --out writes) the config Caddy should load: <file>, the host's own Caddy config (a Caddyfile, adapted with caddy adapt as Caddy adapts it, or JSON), with the deployer's routes placed as a tick places them (the same server, order and rules for routes of others). The routes are those Caddy serves right now, when it runs (a reload), and those of the services in the state it lacks. Run by caddy.service's ExecStartPre and ExecReload (examples/caddy/omni-deploy.conf), so a reload or restart of Caddy never drops the deployed sites. Needs no bucket and takes no lock. When the deployer's settings or state cannot be read, or the routes cannot be placed, the host's config is written as it is, with a warning: the deployer never keeps Caddy from starting. Exit 1 when <file> cannot be adapted (Caddy would refuse it too).",
  args: [{ name: 'file', description: "the host's Caddy config file, e.g. /etc/caddy/Caddyfile" }],
  flags: {
    adapter: {
      kind: 'string',
      value: 'NAME',
      description:
        'the config adapter of <file>: caddyfile (the default), json (the default for a name ending in .json), or another Caddy knows',
    },
    out: {
      kind: 'path',
      value: 'FILE',
      description:
        "write the config to FILE (atomically, mode 0600, owned by the owner of its directory, which must exist: make it caddy.service's RuntimeDirectory) instead of standard output",
    },
    'caddy-bin': {
      kind: 'string',
      value: 'PROGRAM',
      description: 'the caddy program that adapts <file> (default: caddy on PATH)',
    },
  },
  settings: ['stateDir', 'host', 'caddyAdmin', 'caddyServer', 'caddyListen'],
  async run(input) {
    const { args, flags, io } = input;
    let settings: DeployerSettings | undefined;
    try {
      settings = await loadSettings(input, false);
    } catch (error) {
      if (!isDeployError(error, 'USAGE')) throw error;
      // Caddy must start even when the deployer is misconfigured: the host's config alone, said loudly.
      io.stderr(`caddy-config: warning: ${error.message}; the host's config without the deployer's routes\n`);
    }
    return runCaddyConfig(
      settings,
      {
        file: posix.resolve(io.cwd(), args[0] as string),
        adapter: flags.adapter,
        caddyBin: flags['caddy-bin'],
        out: flags.out,
      },
      io,
    );
  },
});

/** The `deployer` program: its commands, settings and exit codes (help and docs/cli.md are generated from it). */
export const DEPLOYER: ProgramDef<DeployerRunDeps> = {
  name: 'deployer',
  version: pkg.version,
  summary: 'converge this host to the services of a manifest',
  settings: SETTINGS,
  config: {
    env: 'DEPLOYER_CONFIG',
    default: DEFAULT_CONFIG_FILE,
    keys: [
      {
        key: POLICY_KEY,
        description:
          'the host policy, an object that widens or narrows what a service may be given (accounts, groups, writable paths, units it starts, env files, domains, ports); without it, the secure defaults. Read by validate, plan, apply and watch. See [docs/security.md](security.md).',
      },
    ],
  },
  commands: [validate, plan, apply, watchCommand, status, caddyConfig],
  exitCodes: [
    { code: EXIT.ok, meaning: 'done: valid, converged, or printed' },
    {
      code: EXIT.failed,
      meaning: 'failed: an invalid manifest, a tick that failed or rolled a service back, no state yet',
    },
    {
      code: EXIT.usage,
      meaning: 'usage: a wrong command, flag, argument or setting, or an unreadable input file',
    },
    { code: EXIT_BUSY, meaning: 'busy: another deployer run holds the lock (apply)' },
  ],
};

/**
 * Runs `deployer <argv>` and returns the exit code: 0 ok, 1 invalid manifest or failed tick, 2 usage or input
 * error, 3 busy (another tick holds the lock).
 */
export function runDeployer(argv: readonly string[], io: CliIo, deps: DeployerRunDeps = {}): Promise<number> {
  return runProgram(DEPLOYER, argv, io, deps);
}

/**
 * Prints a validation result (and, for a valid manifest, the host policy's refusals) as text or JSON and
 * returns its exit code: 1 when the manifest is invalid or the policy refuses a service.
 */
function report(
  io: CliIo,
  file: string,
  result: ManifestResult,
  host: string | undefined,
  json: boolean,
  policy?: ManifestPolicyResult,
  signature?: string,
): number {
  const warnings = result.warnings.length ? `${prefixLines('warning', formatIssues(result.warnings))}\n` : '';
  const refused = result.ok && policy !== undefined && policy.issues.length > 0;
  if (json) {
    const body = result.ok
      ? {
          ok: !refused,
          file,
          generation: result.manifest.generation,
          services: result.manifest.services.map((s) => s.name),
          ...(refused ? { refused: policy.refused, issues: policy.issues } : {}),
          ...(signature === undefined ? {} : { signature }),
          warnings: result.warnings,
        }
      : { ok: false, file, issues: result.issues, warnings: result.warnings };
    io.stdout(`${JSON.stringify(body, null, 2)}\n`);
  } else if (refused) {
    io.stderr(`${policyRefusal(file, policy)}${warnings}`);
  } else if (result.ok) {
    const count = result.warnings.length ? `, ${result.warnings.length} warning(s)` : '';
    const signed = signature === undefined ? '' : `; ${signature}`;
    io.stdout(`${file}: ${summarizeManifest(result.manifest, host)}${count}${signed}\n`);
    io.stderr(warnings);
  } else {
    io.stderr(
      `${file}: invalid manifest, ${result.issues.length} problem(s):\n${formatIssues(result.issues)}\n${warnings}`,
    );
  }
  return result.ok && !refused ? EXIT.ok : EXIT.failed;
}
