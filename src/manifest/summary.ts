import type { Manifest } from './schema.js';
import { servicesForHost } from './select.js';

/** A one-line description of a valid manifest, e.g. for `deployer validate`. */
export function summarizeManifest(manifest: Manifest, host?: string): string {
  const total = manifest.services.length;
  const base = `valid manifest v${manifest.version}, generation ${manifest.generation}, ${total} service${total === 1 ? '' : 's'}`;
  if (host === undefined) return base;
  const mine = servicesForHost(manifest, host).map((s) => s.name);
  return `${base}; host ${host} runs ${mine.length}${mine.length ? `: ${mine.join(', ')}` : ''}`;
}
