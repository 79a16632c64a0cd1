import * as v from 'valibot';
import { DeployError } from '../errors.js';
import { describeValue, formatPath } from './describe.js';
import { findJsonSyntaxError } from './json-error.js';
import { ABSOLUTE_PATH_RE, SECRET_KEY_RE } from './patterns.js';
import { MANIFEST_VERSION, type Manifest, ManifestSchema } from './schema.js';

/** The secrets directory the seed uses; `envFile` must point inside it unless configured otherwise. */
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
  const parsed = v.safeParse(ManifestSchema, input, { abortPipeEarly: true });
  const issues: ManifestIssue[] = parsed.success ? [] : parsed.issues.map(toIssue);
  const warnings: ManifestIssue[] = [];
  checkServices(input, secretsDir, issues, warnings);
  if (parsed.success && issues.length === 0) return { ok: true, manifest: parsed.output, warnings };
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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
  const names = new Map<string, number>();
  const routes = new Map<string, number>();
  const ports = new Map<string, number>();
  input.services.forEach((service: unknown, i: number) => {
    if (!isObject(service)) return;
    const at = (...keys: (string | number)[]) => formatPath(['services', i, ...keys]);
    const label = (j: number) => {
      const other = (input.services as unknown[])[j];
      return isObject(other) && typeof other.name === 'string'
        ? `services[${j}] (${other.name})`
        : `services[${j}]`;
    };

    if (typeof service.name === 'string') {
      const first = names.get(service.name);
      if (first === undefined) names.set(service.name, i);
      else
        issues.push({
          path: at('name'),
          message: `duplicate service name ${describeValue(service.name)}; also ${label(first)}`,
        });
    }

    const http = service.http;
    if (isObject(http) && typeof http.domain === 'string' && typeof http.path === 'string') {
      const route = `${http.domain.toLowerCase()}${http.path}`;
      const first = routes.get(route);
      if (first === undefined) routes.set(route, i);
      else issues.push({ path: at('http'), message: `route ${route} is already served by ${label(first)}` });
    }
    if (isObject(http) && typeof http.internalPort === 'number' && Array.isArray(service.hosts)) {
      for (const host of new Set(
        service.hosts.filter((h): h is string => typeof h === 'string').map((h) => h.toLowerCase()),
      )) {
        const key = `${host}:${http.internalPort}`;
        const first = ports.get(key);
        if (first === undefined) ports.set(key, i);
        else
          issues.push({
            path: at('http', 'internalPort'),
            message: `port ${http.internalPort} on host ${host} is already used by ${label(first)}`,
          });
      }
    }

    if (Array.isArray(service.hosts)) {
      const seen = new Set<string>();
      service.hosts.forEach((host: unknown, k: number) => {
        if (typeof host !== 'string') return;
        if (seen.has(host.toLowerCase()))
          issues.push({ path: at('hosts', k), message: `host ${describeValue(host)} is listed twice` });
        seen.add(host.toLowerCase());
      });
    }

    if (
      typeof service.envFile === 'string' &&
      ABSOLUTE_PATH_RE.test(service.envFile) &&
      !service.envFile.startsWith(`${secretsDir}/`)
    ) {
      issues.push({
        path: at('envFile'),
        message: `expected a file inside the secrets directory ${secretsDir}/, found ${describeValue(service.envFile)}`,
      });
    }

    const exec = service.exec;
    const artifact = service.artifact;
    if (
      isObject(exec) &&
      typeof exec.command === 'string' &&
      exec.command.startsWith('/') &&
      isObject(artifact)
    ) {
      const storePath = artifact.storePath;
      const rest =
        typeof storePath === 'string' && exec.command.startsWith(`${storePath}/`)
          ? exec.command.slice(storePath.length + 1)
          : undefined;
      if (rest === undefined || rest.split('/').some((s) => s === '' || s === '.' || s === '..')) {
        issues.push({
          path: at('exec', 'command'),
          message: `expected an absolute command inside this service's storePath (${describeValue(storePath)}), found ${describeValue(exec.command)}`,
        });
      }
    }

    if (isObject(service.env)) {
      for (const [key, value] of Object.entries(service.env)) {
        if (RESERVED_KEYS.has(key)) {
          issues.push({
            path: at('env', key),
            message: `environment variable name ${describeValue(key)} is not supported`,
          });
        } else if (SECRET_KEY_RE.test(key)) {
          warnings.push({
            path: at('env', key),
            message:
              'looks like a secret; the manifest is stored in plain text, so put it in the envFile instead',
          });
        }
        if (typeof value === 'string') checkWritableDir(service, key, value, at('env', key), warnings);
      }
    }
  });
}

/** Directories the default sandbox (ProtectSystem=strict, PrivateTmp) leaves writable. */
const ALWAYS_WRITABLE = ['/tmp', '/var/tmp', '/dev/shm', '/run/user'];

/**
 * Warns when an env value names a directory the service will not be able to write: under
 * ProtectSystem=strict (the default) everything outside the declared writable paths is read-only.
 * The seed's own example (DATA_DIR=/var/podcastitlater) is such a case.
 */
function checkWritableDir(
  service: Record<string, unknown>,
  key: string,
  value: string,
  path: string,
  warnings: ManifestIssue[],
): void {
  if (!/(^|_)(DIR|DIRECTORY)$/i.test(key) || !value.startsWith('/')) return;
  const hardening = isObject(service.hardening) ? service.hardening : {};
  const protect = hardening.protectSystem;
  if (protect !== undefined && protect !== 'strict') return;
  const writable = [
    ...ALWAYS_WRITABLE,
    ...(Array.isArray(hardening.readWritePaths)
      ? hardening.readWritePaths.filter((p): p is string => typeof p === 'string')
      : []),
    ...(Array.isArray(hardening.stateDirectory)
      ? hardening.stateDirectory.filter((p): p is string => typeof p === 'string').map((p) => `/var/lib/${p}`)
      : []),
  ];
  const clean = value.replace(/\/+$/, '');
  if (writable.some((dir) => clean === dir || clean.startsWith(`${dir}/`))) return;
  warnings.push({
    path,
    message: `${describeValue(value)} is read-only for the service under ProtectSystem=strict (the default); list it in hardening.readWritePaths or use hardening.stateDirectory`,
  });
}
