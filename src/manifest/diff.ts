import { isObject } from '../runtime/json.js';
import { formatPath } from './describe.js';
import type { Manifest, Service } from './schema.js';
import { servicesForHost } from './select.js';

/** How one service differs between two manifests. */
export interface ServiceDiff {
  name: string;
  kind: 'added' | 'removed' | 'changed' | 'unchanged';
  /** Paths of the fields that differ inside the service (`artifact.storePath`, `env.PORT`), for `changed`. */
  fields: string[];
  /** The service before (absent for `added`). */
  before?: Service;
  /** The service after (absent for `removed`). */
  after?: Service;
}

/** The difference between two manifests as seen from one host (or from all hosts). */
export interface ManifestDiff {
  /** The host the diff is for; `undefined` means every service regardless of hosts. */
  host: string | undefined;
  generationBefore: string | undefined;
  generationAfter: string;
  /** Every service present on either side, sorted by name. */
  services: ServiceDiff[];
}

/**
 * Compares two manifests for one host (pass `undefined` for all services). A service that moves off the host
 * is `removed` for it. `before` may be `undefined` (first deploy: everything is `added`).
 */
export function diffManifests(before: Manifest | undefined, after: Manifest, host?: string): ManifestDiff {
  // During a rollout a service has two entries (one version per host): across all hosts, its first (the new
  // version, as push writes it) stands for it.
  const pick = (m: Manifest) =>
    new Map(
      (host === undefined ? m.services : servicesForHost(m, host)).toReversed().map((s) => [s.name, s]),
    );
  const old = before ? pick(before) : new Map<string, Service>();
  const next = pick(after);
  const names = [...new Set([...old.keys(), ...next.keys()])].sort();
  const services = names.map((name): ServiceDiff => {
    const a = old.get(name);
    const b = next.get(name);
    if (!a) return { name, kind: 'added', fields: [], after: b as Service };
    if (!b) return { name, kind: 'removed', fields: [], before: a };
    const fields = changedPaths(a, b, []);
    return { name, kind: fields.length ? 'changed' : 'unchanged', fields, before: a, after: b };
  });
  return { host, generationBefore: before?.generation, generationAfter: after.generation, services };
}

/** True when the diff has any added, removed or changed service. */
export function hasChanges(diff: ManifestDiff): boolean {
  return diff.services.some((s) => s.kind !== 'unchanged');
}

/** Paths where two JSON values differ; objects recurse, arrays and scalars compare whole. */
function changedPaths(a: unknown, b: unknown, keys: string[]): string[] {
  if (isObject(a) && isObject(b)) {
    const all = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return all.flatMap((key) => changedPaths(a[key], b[key], [...keys, key]));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [formatPath(keys)];
}

const MARK = { added: '+', removed: '-', changed: '~', unchanged: '=' } as const;

/**
 * A human rendering of a diff: a summary line, then one line per service (`+` added, `-` removed, `~` changed
 * with its fields, store path changes shown as old → new). Unchanged services are counted, not listed, unless
 * `verbose`.
 */
export function renderManifestDiff(diff: ManifestDiff, options: { verbose?: boolean } = {}): string {
  const count = (kind: ServiceDiff['kind']) => diff.services.filter((s) => s.kind === kind).length;
  const scope = diff.host === undefined ? 'all hosts' : `host ${diff.host}`;
  const lines = [
    `${scope}: ${count('added')} added, ${count('changed')} changed, ${count('removed')} removed, ${count('unchanged')} unchanged` +
      ` (generation ${diff.generationBefore ?? 'none'} → ${diff.generationAfter})`,
  ];
  const width = Math.max(0, ...diff.services.map((s) => s.name.length));
  for (const s of diff.services) {
    if (s.kind === 'unchanged' && !options.verbose) continue;
    const head = `  ${MARK[s.kind]} ${s.name.padEnd(width)}`;
    if (s.kind === 'added') lines.push(`${head}  new: ${s.after?.artifact.storePath}`);
    else if (s.kind === 'removed') lines.push(`${head}  removed (was ${s.before?.artifact.storePath})`);
    else if (s.kind === 'unchanged') lines.push(head);
    else {
      const other = s.fields.filter((f) => f !== 'artifact.storePath');
      const parts: string[] = [];
      if (other.length < s.fields.length)
        parts.push(`${s.before?.artifact.storePath} → ${s.after?.artifact.storePath}`);
      if (other.length) parts.push(`fields: ${other.join(', ')}`);
      lines.push(`${head}  ${parts.join('; ')}`);
    }
  }
  return lines.join('\n');
}
