import { DeployError } from '../errors.js';
import { findJsonSyntaxError } from '../manifest/json-error.js';
import { OPEN_ROLLOUT_STATES } from '../manifest/rollout.js';
import type { Manifest, Service } from '../manifest/schema.js';
import {
  formatIssues,
  type ManifestIssue,
  type ValidateOptions,
  validateManifest,
} from '../manifest/validate.js';

/**
 * The static part of a service, kept in the operator's repository (e.g. `deploy/web.json`): everything but
 * the artifact and revision, which `push` fills in per deploy. Adding a service is a commit, not an S3 edit.
 */
export type ServiceSpec = Omit<Service, 'artifact' | 'revision'>;

/**
 * Parses a service spec file. The spec is checked with the manifest's own rules by validating the manifest it
 * would produce, so a spec can never pass here and fail on the host; issue paths are relative to the spec.
 */
export function parseServiceSpec(text: string, file: string, options: ValidateOptions = {}): ServiceSpec {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const where = findJsonSyntaxError(text);
    const at = where ? ` at line ${where.line}, column ${where.column}: ${where.message}` : '';
    throw new DeployError('SPEC_INVALID', `${file}: invalid JSON${at}`, { cause });
  }
  const issues: ManifestIssue[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    issues.push({ path: 'spec', message: 'expected a service object { name, hosts, exec, ... }' });
  } else {
    for (const key of ['artifact', 'revision'] as const) {
      if (key in value)
        issues.push({ path: key, message: 'set by push for each deploy; remove it from the spec' });
    }
    const probe = {
      ...(value as object),
      artifact: { type: 'nix-closure', storePath: PLACEHOLDER_STORE_PATH },
    };
    const result = validateManifest(
      { version: 1, generation: '2000-01-01T00:00:00Z', services: [probe] },
      options,
    );
    if (!result.ok)
      issues.push(
        ...result.issues.map((i) => ({ ...i, path: i.path.replace(/^services\[0\]\.?/, '') || 'spec' })),
      );
  }
  if (issues.length) {
    throw new DeployError('SPEC_INVALID', `${file}: invalid service spec:\n${formatIssues(issues)}`, {
      details: issues,
    });
  }
  return value as ServiceSpec;
}

/** Any syntactically valid store path, for validating a spec before the real one is known. */
const PLACEHOLDER_STORE_PATH = `/nix/store/${'0'.repeat(32)}-placeholder`;

/** What one `push deploy` changes in the manifest. */
export interface ServiceChange {
  spec: ServiceSpec;
  storePath: string;
  revision?: string;
}

/**
 * The manifest after deploying `change`: the service replaced (or added, at the end) with the spec, store path
 * and revision, and a new generation. The generation is `now`, or just after the current one when the clock is
 * behind it, so generations only grow. The `rollout` record is kept unless it is this service's (a finished
 * one is then dropped); an open rollout of this service throws `ROLLOUT_CONFLICT` (resume or end it instead).
 * Pure; the result is validated by the caller before it is written.
 */
export function applyServiceChange(
  current: Manifest | undefined,
  change: ServiceChange,
  now: Date,
): Manifest {
  const service = serviceOfChange(change);
  const rollout = current?.rollout;
  if (rollout && OPEN_ROLLOUT_STATES.includes(rollout.state) && rollout.service === service.name)
    throw new DeployError(
      'ROLLOUT_CONFLICT',
      `a rollout of ${service.name} to ${rollout.to.storePath} is ${rollout.state} (${rollout.switched.length} of ${rollout.waves.flat().length} hosts switched): push deploy ${service.name} --store-path ${rollout.to.storePath} resumes it, push rollback ends it; nothing was written`,
    );
  const services = [...(current?.services ?? [])];
  const index = services.findIndex((s) => s.name === service.name);
  if (index >= 0) services[index] = service;
  else services.push(service);
  return {
    ...(current?.$schema ? { $schema: current.$schema } : {}),
    version: 1,
    generation: nextGeneration(current?.generation, now),
    services,
    // Another service's rollout goes on (and a finished one stays on record) until this service's next deploy.
    ...(rollout && rollout.service !== service.name ? { rollout } : {}),
  };
}

/** The service entry a change sets: the spec with the store path and revision. */
export function serviceOfChange(change: ServiceChange): Service {
  return {
    ...change.spec,
    artifact: { type: 'nix-closure', storePath: change.storePath },
    ...(change.revision === undefined ? {} : { revision: change.revision }),
  } as Service;
}

/** A generation later than `previous`: `now`, or `previous` + 1 ms when the clock is not ahead of it. */
export function nextGeneration(previous: string | undefined, now: Date): string {
  const floor = previous === undefined ? Number.NEGATIVE_INFINITY : Date.parse(previous) + 1;
  return new Date(Math.max(now.getTime(), floor)).toISOString();
}
