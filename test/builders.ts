import { createHash } from 'node:crypto';
import type { Manifest, Service } from '../src/manifest/index.js';

const BASE32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** A syntactically real store path whose hash is derived from `name` (stable across runs). */
export function storePath(name: string): string {
  const digest = createHash('sha256').update(name).digest();
  const hash = Array.from({ length: 32 }, (_, i) => BASE32[(digest[i] as number) % 32]).join('');
  return `/nix/store/${hash}-${name}`;
}

/** A valid service; `overrides` replace whole top-level fields. */
export function makeService(overrides: Record<string, unknown> = {}): Service {
  const name = (overrides.name as string | undefined) ?? 'web';
  return {
    name,
    artifact: { type: 'nix-closure', storePath: storePath(`${name}-1.0.0`) },
    hosts: ['biz'],
    exec: { command: name },
    ...overrides,
  } as Service;
}

/** A valid manifest around `services`. */
export function makeManifest(
  services: Service[] = [makeService()],
  overrides: Record<string, unknown> = {},
): Manifest {
  return { version: 1, generation: '2025-01-15T12:34:56Z', services, ...overrides } as Manifest;
}

/** Deep copy of a JSON value, for mutating fixtures without aliasing. */
export function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
