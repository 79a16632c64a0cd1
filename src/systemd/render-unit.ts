import { DeployError } from '../errors.js';
import { CREDENTIAL_NAME_RE, RESTART_VALUES } from '../manifest/patterns.js';
import type { Service } from '../manifest/schema.js';
import { DEFAULT_SECRETS_DIR } from '../manifest/validate.js';
import {
  assertUnitValue,
  escapeSpecifiers,
  quoteEnvironmentAssignment,
  quoteExecArgument,
} from './escape.js';
import { FIXED_HARDENING_LINES, hardeningDirectives, resolveHardening } from './hardening.js';
import type { UnitFile } from './types.js';
import { candidateUnitNameFor, DEFAULT_UNIT_PREFIX, unitNameFor } from './unit-name.js';

/** Deployer settings that shape a unit besides the service itself. */
export interface RenderUnitOptions {
  /** Prefix of the deployer's unit names. Default {@link DEFAULT_UNIT_PREFIX}. */
  unitPrefix?: string;
  /** Directory every `envFile` and credential file must be inside (checked again here). Default `/var/lib/biz-secrets`. */
  secretsDir?: string;
  /**
   * `candidate`: the unit a new version runs in beside the service's own unit during a blue/green or overlap
   * update (`deploy-web@next.service`): same program and sandbox, the dynamic user of the service's own unit
   * (so both share one uid and its state directories), and no `[Install]` section (never started at boot).
   * Default `main`: the service's own unit.
   */
  instance?: 'main' | 'candidate';
}

/** The `Restart=` policy and delay when the manifest gives none (those of the example in docs/design.md). */
export const DEFAULT_RESTART = { restart: 'on-failure', restartSec: 5 } as const;

/** A program path that needs no quoting or escaping in `ExecStart=` (store paths are this strict already). */
const PROGRAM_RE = /^\/[A-Za-z0-9+._?=/-]+$/;

/**
 * A value that becomes one word of a list directive (paths, users, sandbox values): no whitespace, quotes or
 * backslashes, which systemd would split or unquote.
 */
function word(value: string, where: string, allowBackslash = false): string {
  assertUnitValue(value, where);
  if (value === '' || /\s|["']/.test(value) || (!allowBackslash && value.includes('\\')))
    throw new DeployError(
      'SYSTEMD_UNIT_VALUE',
      `${where}: expected one word without whitespace, quotes${allowBackslash ? '' : ' or backslashes'}, found ${JSON.stringify(value)}`,
      { details: { where } },
    );
  return escapeSpecifiers(value);
}

/** A unit name in `After=`/`Requires=`/`Wants=`: systemd keeps `\` escapes there as written (`\x2d`). */
const unitWord = (value: string, where: string) => word(value, where, true);

/** `RestartSec=`: whole seconds as written, fractions as milliseconds (systemd's own time-span syntax). */
function timeSpan(seconds: number, where: string): string {
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > 86_400)
    throw new DeployError(
      'SYSTEMD_UNIT_VALUE',
      `${where}: expected a number of seconds from 0 to 86400 (one day), found ${seconds}`,
    );
  return Number.isInteger(seconds) ? String(seconds) : `${Math.round(seconds * 1000)}ms`;
}

/** The absolute program path: `web` → `<storePath>/bin/web`, `libexec/web` → `<storePath>/libexec/web`. */
function programPath(service: Service): string {
  const { command } = service.exec;
  const storePath = service.artifact.storePath;
  if (command.startsWith('/')) return command;
  return command.includes('/') ? `${storePath}/${command}` : `${storePath}/bin/${command}`;
}

/**
 * Renders the systemd unit of one validated service. Pure and deterministic: the same service and options give
 * byte-identical text (environment variables sorted), so "did the unit change?" is a string comparison, and
 * `ExecStart=` names the exact store path, so the file says which version runs. Hardening is on by default and
 * relaxed only by the manifest's `hardening`. Throws `SYSTEMD_UNIT_VALUE` for a value no unit file can hold
 * exactly (control characters, lone surrogates) even if the caller skipped validation.
 */
export function renderUnit(service: Service, options: RenderUnitOptions = {}): UnitFile {
  const prefix = options.unitPrefix ?? DEFAULT_UNIT_PREFIX;
  const candidate = options.instance === 'candidate';
  const name = candidate ? candidateUnitNameFor(service.name, prefix) : unitNameFor(service.name, prefix);
  const secretsDir = (options.secretsDir ?? DEFAULT_SECRETS_DIR).replace(/\/+$/, '');
  const { exec, systemd = {}, env = {} } = service;
  const revision = service.revision === undefined ? '' : service.revision;
  assertUnitValue(revision, 'revision');

  const unit: string[] = [
    `Description=${escapeSpecifiers(`${revision ? `${service.name} (revision ${revision})` : service.name}${candidate ? ', next instance' : ''}`)}`,
  ];
  for (const key of ['after', 'requires', 'wants'] as const) {
    const units = systemd[key] ?? [];
    if (units.length === 0) continue;
    const directive = key[0]?.toUpperCase() + key.slice(1);
    unit.push(`${directive}=${units.map((u, i) => unitWord(u, `systemd.${key}[${i}]`)).join(' ')}`);
  }

  const program = programPath(service);
  if (
    !program.startsWith(`${service.artifact.storePath}/`) ||
    !PROGRAM_RE.test(program) ||
    program.split('/').includes('..')
  )
    throw new DeployError(
      'SYSTEMD_UNIT_VALUE',
      `exec.command: expected a program inside ${service.artifact.storePath}, found ${JSON.stringify(exec.command)}`,
    );
  const argv = [program, ...(exec.args ?? []).map((arg, i) => quoteExecArgument(arg, `exec.args[${i}]`))];
  const hardening = resolveHardening(service.hardening, exec.user !== undefined);
  const ineffective = hardening.dynamicUser
    ? [
        ...(hardening.protectSystem !== 'strict' ? ['protectSystem'] : []),
        ...(hardening.protectHome === false ? ['protectHome'] : []),
        ...(hardening.privateTmp ? [] : ['privateTmp']),
      ]
    : [];
  if (ineffective.length)
    throw new DeployError(
      'SYSTEMD_UNIT_VALUE',
      `hardening.${ineffective[0]}: expected no relaxation with a dynamic user (systemd applies ProtectSystem=strict, ProtectHome=read-only and PrivateTmp=yes to it anyway), found ${ineffective.join(', ')} relaxed; set exec.user and hardening.dynamicUser: false`,
      { details: { where: `hardening.${ineffective[0]}` } },
    );
  const svc: string[] = ['Type=exec', `ExecStart=${argv.join(' ')}`];
  if (exec.user !== undefined) svc.push(`User=${word(exec.user, 'exec.user')}`);
  // systemd names a dynamic user after its unit: the candidate takes the service unit's, so both share one uid.
  else if (candidate && hardening.dynamicUser)
    svc.push(`User=${unitNameFor(service.name, prefix).slice(0, -8)}`);
  if (exec.group !== undefined) svc.push(`Group=${word(exec.group, 'exec.group')}`);
  for (const key of Object.keys(env).sort()) {
    svc.push(`Environment=${quoteEnvironmentAssignment(key, env[key] as string)}`);
  }
  if (service.envFile !== undefined) {
    const file = word(service.envFile, 'envFile');
    if (!service.envFile.startsWith(`${secretsDir}/`) || service.envFile.split('/').includes('..'))
      throw new DeployError(
        'SYSTEMD_UNIT_VALUE',
        `envFile: expected a file inside ${secretsDir}/, found ${JSON.stringify(service.envFile)}`,
      );
    svc.push(`EnvironmentFile=${file}`);
  }
  const credentials = service.credentials ?? {};
  for (const name of Object.keys(credentials).sort()) {
    if (!CREDENTIAL_NAME_RE.test(name))
      throw new DeployError(
        'SYSTEMD_UNIT_VALUE',
        `credentials: expected a credential name of letters, digits, "_", "-" and ".", found ${JSON.stringify(name)}`,
      );
    const source = credentials[name] as string;
    const file = word(source, `credentials.${name}`);
    if (!source.startsWith(`${secretsDir}/`) || source.split('/').includes('..'))
      throw new DeployError(
        'SYSTEMD_UNIT_VALUE',
        `credentials.${name}: expected a file inside ${secretsDir}/, found ${JSON.stringify(source)}`,
      );
    // systemd (as root) copies the file into /run/credentials/<unit>/, readable by this unit's user only.
    svc.push(`LoadCredential=${name}:${file}`);
  }
  const restart = systemd.restart ?? DEFAULT_RESTART.restart;
  if (!(RESTART_VALUES as readonly string[]).includes(restart))
    throw new DeployError(
      'SYSTEMD_UNIT_VALUE',
      `systemd.restart: expected one of ${RESTART_VALUES.join(', ')}, found ${JSON.stringify(restart)}`,
    );
  svc.push(`Restart=${restart}`);
  svc.push(`RestartSec=${timeSpan(systemd.restartSec ?? DEFAULT_RESTART.restartSec, 'systemd.restartSec')}`);
  for (const [key, values] of hardeningDirectives(hardening)) {
    svc.push(`${key}=${values.map((w) => word(w, `hardening (${key})`)).join(' ')}`);
  }
  svc.push(...FIXED_HARDENING_LINES);

  const text = [
    `# Generated by @omni/deploy from the manifest service "${service.name}"; the deployer overwrites edits.`,
    '[Unit]',
    ...unit,
    '',
    '[Service]',
    ...svc,
    '',
    ...(candidate ? [] : ['[Install]', 'WantedBy=multi-user.target', '']),
  ].join('\n');
  return { name, text };
}
