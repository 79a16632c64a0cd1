import type { Manifest, Service } from './schema.js';

/**
 * The services that run on `host` (host names compare case-insensitively, as DNS does), in manifest order.
 */
export function servicesForHost(manifest: Manifest, host: string): Service[] {
  const wanted = host.toLowerCase();
  return manifest.services.filter((service) => service.hosts.some((h) => h.toLowerCase() === wanted));
}
