import { DEFAULT_UNIT_PREFIX } from '../systemd/unit-name.js';
import type { HostPolicy, PolicyContext } from './policy.js';

/** Where systemd puts `StateDirectory=` entries. */
export const STATE_ROOT = '/var/lib';

/** `path` without trailing slashes (`/` stays `/`). */
function trim(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

/** True when `path` is `base` or lies below it. `/` as a base counts only as itself (see below). */
export function isUnder(path: string, base: string): boolean {
  const p = trim(path);
  const b = trim(base);
  if (b === '/') return p === '/';
  return p === b || p.startsWith(`${b}/`);
}

/**
 * True when `path` is `location`, lies below it, or contains it. `/` as a location matches only `/` itself:
 * every path lies below it, and "never the root directory" is what a denied `/` means.
 */
export function touches(path: string, location: string): boolean {
  const p = trim(path);
  const l = trim(location);
  if (l === '/') return p === '/';
  return isUnder(p, l) || (p === '/' ? true : isUnder(l, p));
}

/** A protected location and why it is protected (for the message). */
export interface ProtectedLocation {
  path: string;
  what: string;
}

/**
 * The deployer's own locations, protected whatever the policy says: its state, secrets, profiles, GC roots,
 * units directory, Caddy's admin socket (its API can rewrite every site) and metrics file.
 */
export function deployerLocations(ctx: PolicyContext): ProtectedLocation[] {
  const out: ProtectedLocation[] = [
    { path: ctx.stateDir, what: "the deployer's state directory" },
    { path: ctx.secretsDir, what: 'the secrets directory' },
    { path: ctx.profilesDir, what: "the deployer's profiles directory" },
    { path: ctx.gcrootsDir, what: "the deployer's GC roots directory" },
  ];
  if (ctx.unitsDir) out.push({ path: ctx.unitsDir, what: "the deployer's units directory" });
  if (ctx.caddyAdmin?.startsWith('unix//'))
    out.push({ path: ctx.caddyAdmin.slice('unix/'.length), what: "Caddy's admin socket" });
  if (ctx.metricsFile) out.push({ path: ctx.metricsFile, what: "the deployer's metrics file" });
  return out;
}

/**
 * The system locations of the policy that `path` touches and that `allowedPaths` do not exempt. An allowed
 * prefix exempts a path below it only from the denied locations it lies in (`/etc/myapp` opens
 * `/etc/myapp/...` despite `/etc`), never from narrower ones (`/var` does not open `/var/lib/systemd`).
 */
export function deniedLocationsFor(path: string, policy: HostPolicy): string[] {
  return policy.deniedPaths.filter(
    (denied) =>
      touches(path, denied) &&
      !policy.allowedPaths.some((allowed) => isUnder(path, allowed) && isUnder(allowed, denied)),
  );
}

/** The state directory root of every other service of the deployer: `/var/lib/<name>` (by the own-name rule). */
export function otherServiceStates(self: string, ctx: PolicyContext): { path: string; service: string }[] {
  return (ctx.serviceNames ?? [])
    .filter((name) => name !== self)
    .map((service) => ({ path: `${STATE_ROOT}/${service}`, service }));
}

/** The unit prefix of the context. */
export function unitPrefixOf(ctx: PolicyContext): string {
  return ctx.unitPrefix ?? DEFAULT_UNIT_PREFIX;
}
