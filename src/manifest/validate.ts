import * as v from 'valibot';
import { DeployError } from '../errors.js';
import { isObject } from '../runtime/json.js';
import { compileAcceptor } from './acceptor.js';
import { describeValue, formatPath } from './describe.js';
import { findJsonSyntaxError } from './json-error.js';
import { ABSOLUTE_PATH_RE, RELATIVE_PATH_RE, SECRET_KEY_RE } from './patterns.js';
import { checkUpdate, claimPorts, type PortClaim } from './ports.js';
import { checkServiceEntries } from './rollout.js';
import { MANIFEST_VERSION, type Manifest, ManifestSchema } from './schema.js';

/** The default secrets directory (secrets stay out of the manifest: docs/design.md); `envFile` points inside. */
export const DEFAULT_SECRETS_DIR = '/var/lib/biz-secrets';

/** One problem (or warning) in a manifest: where it is and what was expected and found. */
export interface ManifestIssue {
  /** Where, e.g. `services[2].http.internalPort`; `manifest` for the document itself. */
  path: string;
  /** What was expected and what was found. */
  message: string;
}

/** Settings that make validation host-specific. */
export interface ValidateOptions {
  /** Absolute directory that every `envFile` must be inside. Default {@link DEFAULT_SECRETS_DIR}. */
  secretsDir?: string;
}

/** The outcome of validating a manifest: the manifest and its warnings, or every issue found. */
export type ManifestResult =
  | { ok: true; manifest: Manifest; warnings: ManifestIssue[] }
  | { ok: false; issues: ManifestIssue[]; warnings: ManifestIssue[] };

const acceptManifest = compileAcceptor(ManifestSchema);

/** Keys that JavaScript object handling would silently drop; refused rather than lost. */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Validates a parsed JSON value as a v1 manifest. Never throws for bad input: it returns every issue at once,
 * each with its path, or the manifest with its warnings. The returned manifest holds values exactly as written.
 */
export function validateManifest(input: unknown, options: ValidateOptions = {}): ManifestResult {
  const secretsDir = normaliseSecretsDir(options.secretsDir ?? DEFAULT_SECRETS_DIR);
  if (
    isObject(input) &&
    'version' in input &&
    input.version !== MANIFEST_VERSION &&
    typeof input.version === 'number'
  ) {
    // Another version's rules would only produce noise: say the one thing that matters.
    const message = `unsupported manifest version ${input.version}; this deployer reads ${MANIFEST_VERSION}`;
    return { ok: false, issues: [{ path: 'version', message }], warnings: [] };
  }
  const issues: ManifestIssue[] = [];
  const warnings: ManifestIssue[] = [];
  // Valid input needs no output copy: JSON in, the same JSON out. Only rejected input pays for valibot's issues.
  if (!acceptManifest(input)) {
    const parsed = v.safeParse(ManifestSchema, input, { abortPipeEarly: true });
    if (parsed.success)
      throw new Error('manifest acceptor and schema disagree; this is a bug in @omni/deploy');
    issues.push(...parsed.issues.map(toIssue));
  }
  checkServices(input, secretsDir, issues, warnings);
  if (issues.length === 0) return { ok: true, manifest: input as Manifest, warnings };
  return { ok: false, issues, warnings };
}

/**
 * Parses manifest text (JSON) and validates it. Invalid JSON yields one issue with line and column.
 */
export function parseManifest(text: string, options: ValidateOptions = {}): ManifestResult {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    const where = findJsonSyntaxError(body) ?? { line: 1, column: 1, message: 'not valid JSON' };
    const message = `invalid JSON at line ${where.line}, column ${where.column}: ${where.message}`;
    return { ok: false, issues: [{ path: 'manifest', message }], warnings: [] };
  }
  return validateManifest(value, options);
}

/**
 * Like {@link parseManifest} (for a string) or {@link validateManifest} (for a value), but returns the
 * manifest or throws a `DeployError` with code `MANIFEST_INVALID` whose `details` are the issues.
 */
export function assertManifest(input: unknown, options: ValidateOptions = {}): Manifest {
  const result = typeof input === 'string' ? parseManifest(input, options) : validateManifest(input, options);
  if (result.ok) return result.manifest;
  throw new DeployError('MANIFEST_INVALID', `invalid manifest:\n${formatIssues(result.issues)}`, {
    details: result.issues,
  });
}

/** Renders issues one per line as `path: message`. */
export function formatIssues(issues: readonly ManifestIssue[]): string {
  return issues.map((issue) => `${issue.path}: ${issue.message}`).join('\n');
}

function toIssue(issue: v.BaseIssue<unknown>): ManifestIssue {
  const keys = (issue.path ?? []).map((item) => item.key as string | number);
  return { path: formatPath(keys), message: issue.message };
}

function normaliseSecretsDir(dir: string): string {
  const trimmed = dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
  if (!ABSOLUTE_PATH_RE.test(trimmed)) {
    throw new DeployError(
      'USAGE',
      `secrets directory: expected ${'an absolute path without ".."'}, found ${describeValue(dir)}`,
    );
  }
  return trimmed;
}

/**
 * Rules that span fields or services. They read the raw input defensively so that they report alongside
 * schema issues instead of after them ("every problem at once").
 */
function checkServices(
  input: unknown,
  secretsDir: string,
  issues: ManifestIssue[],
  warnings: ManifestIssue[],
): void {
  if (!isObject(input) || !Array.isArray(input.services)) return;
  const services: unknown[] = input.services;
  const label = (j: number) => {
    const other = services[j];
    return isObject(other) && typeof other.name === 'string'
      ? `services[${j}] (${other.name})`
      : `services[${j}]`;
  };
  const names = new Map<string, number[]>();
  const routes = new Map<string, number>();
  const ports = new Map<string, PortClaim>();
  for (let i = 0; i < services.length; i++) {
    const service = services[i];
    if (!isObject(service)) continue;
    const { name, http } = service;
    const hosts = Array.isArray(service.hosts) ? uniqueHosts(service.hosts, i, issues) : [];

    // Names are checked together below: a service may appear twice while its rollout is open.
    if (typeof name === 'string') names.set(name, [...(names.get(name) ?? []), i]);
    if (isObject(http) && typeof http.domain === 'string' && typeof http.path === 'string') {
      const route = `${http.domain.toLowerCase()}${http.path}`;
      const first = routes.get(route);
      if (first === undefined) routes.set(route, i);
      // The two versions of a service during its rollout share its route, each on its own hosts.
      else if (typeof name !== 'string' || (services[first] as Record<string, unknown>).name !== name)
        issues.push({
          path: `services[${i}].http`,
          message: `route ${route} is already served by ${label(first)}`,
        });
    }
    claimPorts(service, i, hosts, ports, label, issues);
    checkUpdate(service, i, issues);
    checkEnvFile(service.envFile, i, secretsDir, issues);
    if (isObject(service.credentials)) checkCredentials(service.credentials, i, secretsDir, issues);
    checkDynamicUserRelaxations(service, i, issues);
    checkAbsoluteCommand(service, i, issues);
    if (isObject(service.env)) checkEnv(service, service.env, i, issues, warnings);
  }
  checkServiceEntries(input, services, names, label, issues);
}

/** The service's host names, lowercased and de-duplicated; a repeated host is an issue. */
function uniqueHosts(hosts: unknown[], i: number, issues: ManifestIssue[]): string[] {
  // A set, not a list: a service on 10,000 hosts took 0.9 s to check with Array.includes (quadratic).
  const seen = new Set<string>();
  for (let k = 0; k < hosts.length; k++) {
    const host = hosts[k];
    if (typeof host !== 'string') continue;
    const lower = host.toLowerCase();
    if (seen.has(lower))
      issues.push({
        path: `services[${i}].hosts[${k}]`,
        message: `host ${describeValue(host)} is listed twice`,
      });
    else seen.add(lower);
  }
  return [...seen];
}

/** `envFile` must be inside the secrets directory (its shape is the schema's job). */
function checkEnvFile(envFile: unknown, i: number, secretsDir: string, issues: ManifestIssue[]): void {
  if (typeof envFile !== 'string' || !ABSOLUTE_PATH_RE.test(envFile) || envFile.startsWith(`${secretsDir}/`))
    return;
  issues.push({
    path: `services[${i}].envFile`,
    message: `expected a file inside the secrets directory ${secretsDir}/, found ${describeValue(envFile)}`,
  });
}

/**
 * Every credential file must be inside the secrets directory (whose service may load which file is the host
 * policy's job), and names JavaScript would drop are refused rather than lost.
 */
function checkCredentials(
  credentials: Record<string, unknown>,
  i: number,
  secretsDir: string,
  issues: ManifestIssue[],
): void {
  for (const name in credentials) {
    const path = formatPath(['services', i, 'credentials', name]);
    const file = credentials[name];
    if (RESERVED_KEYS.has(name))
      issues.push({ path, message: `credential name ${describeValue(name)} is not supported` });
    else if (typeof file === 'string' && ABSOLUTE_PATH_RE.test(file) && !file.startsWith(`${secretsDir}/`))
      issues.push({
        path,
        message: `expected a file inside the secrets directory ${secretsDir}/, found ${describeValue(file)}`,
      });
  }
}

/**
 * Relaxations that systemd ignores under a dynamic user (the default without `exec.user`): `DynamicUser=yes`
 * always implies ProtectSystem=strict, ProtectHome=read-only and PrivateTmp=yes. A manifest asking for them
 * would get a service that fails at run time instead of a sandbox that is looser.
 */
function checkDynamicUserRelaxations(
  service: Record<string, unknown>,
  i: number,
  issues: ManifestIssue[],
): void {
  const hardening = isObject(service.hardening) ? service.hardening : {};
  const hasUser = isObject(service.exec) && service.exec.user !== undefined;
  if (!(hardening.dynamicUser ?? !hasUser)) return;
  const implied: [string, unknown, string][] = [
    ['protectSystem', 'strict', 'ProtectSystem=strict'],
    ['protectHome', 'read-only', 'ProtectHome=read-only'],
    ['privateTmp', true, 'PrivateTmp=yes'],
  ];
  for (const [key, strongest, directive] of implied) {
    const value = hardening[key];
    const weaker = key === 'protectHome' ? value === false : value !== undefined && value !== strongest;
    if (!weaker) continue;
    issues.push({
      path: formatPath(['services', i, 'hardening', key]),
      message: `${describeValue(value)} has no effect with a dynamic user (systemd's DynamicUser=yes always applies ${directive}); set exec.user and hardening.dynamicUser: false to relax it, or list writable paths in hardening.readWritePaths`,
    });
  }
}

/** An absolute `exec.command` must lie inside the service's own store path. */
function checkAbsoluteCommand(service: Record<string, unknown>, i: number, issues: ManifestIssue[]): void {
  const { exec, artifact } = service;
  if (!isObject(exec) || typeof exec.command !== 'string' || !exec.command.startsWith('/')) return;
  const storePath = isObject(artifact) ? artifact.storePath : undefined;
  const inside = typeof storePath === 'string' && exec.command.startsWith(`${storePath}/`);
  if (inside && RELATIVE_PATH_RE.test(exec.command.slice(storePath.length + 1))) return;
  issues.push({
    path: `services[${i}].exec.command`,
    message: `expected an absolute command inside this service's storePath (${describeValue(storePath)}), found ${describeValue(exec.command)}`,
  });
}

/** Env keys JavaScript would drop (an issue), secret-looking keys and unwritable data directories (warnings). */
function checkEnv(
  service: Record<string, unknown>,
  env: Record<string, unknown>,
  i: number,
  issues: ManifestIssue[],
  warnings: ManifestIssue[],
): void {
  for (const key in env) {
    if (RESERVED_KEYS.has(key)) {
      const message = `environment variable name ${describeValue(key)} is not supported`;
      issues.push({ path: envPath(i, key), message });
    } else if (SECRET_KEY_RE.test(key)) {
      const message =
        'looks like a secret; the manifest is stored in plain text, so put it in the envFile instead';
      warnings.push({ path: envPath(i, key), message });
    }
    const value = env[key];
    if (
      typeof value === 'string' &&
      value[0] === '/' &&
      DIR_KEY_RE.test(key) &&
      !isWritable(service, value)
    ) {
      warnings.push({
        path: envPath(i, key),
        message: `${describeValue(value)} is read-only for the service under ProtectSystem=strict (the default); list it in hardening.readWritePaths or use hardening.stateDirectory`,
      });
    }
  }
}

/** Directories the default sandbox (ProtectSystem=strict, PrivateTmp) leaves writable. */
const ALWAYS_WRITABLE = ['/tmp', '/var/tmp', '/dev/shm', '/run/user'];

/** Env keys that name a directory: `DATA_DIR`, `CACHE_DIRECTORY`, `DIR`. */
const DIR_KEY_RE = /(?:^|_)DIR(?:ECTORY)?$/i;

function envPath(i: number, key: string): string {
  return formatPath(['services', i, 'env', key]);
}

/**
 * Whether the service can write directory `value`: under ProtectSystem=strict (the default) everything outside
 * the declared writable paths is read-only. The example in docs/design.md (DATA_DIR=/var/podcastitlater) is not.
 */
function isWritable(service: Record<string, unknown>, value: string): boolean {
  const hardening = isObject(service.hardening) ? service.hardening : {};
  const protect = hardening.protectSystem;
  if (protect !== undefined && protect !== 'strict') return true;
  const dir = value.replace(/\/+$/, '');
  const under = (root: unknown) => typeof root === 'string' && (dir === root || dir.startsWith(`${root}/`));
  if (ALWAYS_WRITABLE.some(under)) return true;
  if (Array.isArray(hardening.readWritePaths) && hardening.readWritePaths.some(under)) return true;
  const state = hardening.stateDirectory;
  return Array.isArray(state) && state.some((name) => typeof name === 'string' && under(`/var/lib/${name}`));
}
