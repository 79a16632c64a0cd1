import { isDeployError } from '../errors.js';
import type { Manifest } from '../manifest/schema.js';
import { servicesForHost } from '../manifest/select.js';
import { renderUnit } from '../systemd/render-unit.js';
import { type DesiredService, hashSpec } from './plan.js';

/** A service of this host whose unit could not be rendered: refused, and left as it runs. */
export interface RenderFailure {
  service: string;
  /** The store path the manifest asked for. */
  storePath: string;
  reason: string;
}

/**
 * This host's services from a validated manifest, each with the unit file it needs and its route (the
 * service's `http` block, turned into a Caddy route when routes are reconciled). Pure.
 */
export function desiredServices(
  manifest: Manifest,
  host: string,
  options: { secretsDir: string; unitPrefix?: string },
): { desired: DesiredService[]; failures: RenderFailure[] } {
  const desired: DesiredService[] = [];
  const failures: RenderFailure[] = [];
  for (const service of servicesForHost(manifest, host)) {
    try {
      const unit = renderUnit(service, options);
      const route = service.http;
      desired.push({
        service,
        unitName: unit.name,
        unitText: unit.text,
        route,
        specHash: hashSpec(unit.text, route),
      });
    } catch (error) {
      if (!isDeployError(error)) throw error;
      failures.push({ service: service.name, storePath: service.artifact.storePath, reason: error.message });
    }
  }
  return { desired, failures };
}
