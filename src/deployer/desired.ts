import { isDeployError } from '../errors.js';
import { instanceService, secondPortOf, updateStrategy } from '../manifest/ports.js';
import type { Manifest, Service } from '../manifest/schema.js';
import { servicesForHost } from '../manifest/select.js';
import { renderUnit } from '../systemd/render-unit.js';
import { type CandidateUnit, type DesiredService, hashSpec } from './plan.js';

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
      const route = service.http;
      // Under blue/green the port variable is the deployer's: internalPort here, the second port beside it.
      const unit = renderUnit(instanceService(service, route?.internalPort ?? 0), options);
      desired.push({
        service,
        unitName: unit.name,
        unitText: unit.text,
        route,
        specHash: hashSpec(unit.text, route),
        ...candidateOf(service, options),
      });
    } catch (error) {
      if (!isDeployError(error)) throw error;
      failures.push({ service: service.name, storePath: service.artifact.storePath, reason: error.message });
    }
  }
  return { desired, failures };
}

/** The candidate unit of a service that is not restarted in place (see {@link DesiredService.candidate}). */
function candidateOf(
  service: Service,
  options: { secretsDir: string; unitPrefix?: string },
): { candidate?: CandidateUnit } {
  const strategy = updateStrategy(service);
  if (strategy === 'restart') return {};
  const port = strategy === 'blue-green' ? secondPortOf(service) : undefined;
  const unit = renderUnit(port === undefined ? service : instanceService(service, port), {
    ...options,
    instance: 'candidate',
  });
  return {
    candidate: {
      strategy,
      unitName: unit.name,
      unitText: unit.text,
      ...(port === undefined ? {} : { port }),
    },
  };
}
