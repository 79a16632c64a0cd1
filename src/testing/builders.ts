import { createHash } from 'node:crypto';
import type { Manifest, Service } from '../manifest/schema.js';

const BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

/**
 * A syntactically real store path (`/nix/store/<32 base-32 chars>-<name>`) whose hash is derived from `name`,
 * so the same name gives the same path in every run. Nothing is built: use it with the fakes.
 */
export function makeStorePath(name: string): string {
  const digest = createHash('sha256').update(name).digest();
  const hash = Array.from({ length: 32 }, (_, i) => BASE32[(digest[i] as number) % 32]).join('');
  return `/nix/store/${hash}-${name}`;
}

/**
 * A valid service (named `web` unless `overrides.name` says otherwise, on host `biz`, running its closure's
 * `<name>` program); `overrides` replace whole top-level fields, and may be invalid on purpose (to test a
 * validator). Not validated: pass it through `validateManifest` when a test needs to know.
 */
export function makeService(overrides: Record<string, unknown> = {}): Service {
  const name = (overrides.name as string | undefined) ?? 'web';
  return {
    name,
    artifact: { type: 'nix-closure', storePath: makeStorePath(`${name}-1.0.0`) },
    hosts: ['biz'],
    exec: { command: name },
    ...overrides,
  } as Service;
}

/** A valid manifest (version 1) around `services`; `overrides` replace whole top-level fields. */
export function makeManifest(
  services: Service[] = [makeService()],
  overrides: Record<string, unknown> = {},
): Manifest {
  return { version: 1, generation: '2025-01-15T12:34:56Z', services, ...overrides } as Manifest;
}
