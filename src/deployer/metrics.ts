import { liveInstance } from './live.js';
import { type DeployerState, MANIFEST_REFUSAL_REASONS } from './state.js';

/** Escapes a Prometheus label value (backslash, double quote, newline). */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Renders the state as a Prometheus textfile (for node_exporter's textfile collector): last tick time and
 * result, per-service version and health, rollbacks. Pure: `now` is not read here, the tick time is in state.
 */
export function renderMetrics(state: DeployerState, version: string): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, type: 'gauge' | 'counter', samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  const host = `host="${label(state.host)}"`;
  const tick = state.lastTick;
  metric('omni_deployer_info', 'Deployer version.', 'gauge', [[`{${host},version="${label(version)}"}`, 1]]);
  if (tick) {
    metric('omni_deployer_last_tick_timestamp_seconds', 'When the last tick ended.', 'gauge', [
      [`{${host}}`, Date.parse(tick.at) / 1000],
    ]);
    const ok = tick.outcome === 'applied' || tick.outcome === 'unchanged';
    metric(
      'omni_deployer_last_tick_success',
      '1 when the last tick applied or found nothing to do.',
      'gauge',
      [[`{${host},outcome="${tick.outcome}"}`, ok ? 1 : 0]],
    );
  }
  if (state.manifest) {
    metric(
      'omni_deployer_manifest_generation_timestamp_seconds',
      'Generation of the manifest last applied.',
      'gauge',
      [[`{${host}}`, Date.parse(state.manifest.generation) / 1000]],
    );
  }
  const services = Object.entries(state.services).sort(([a], [b]) => a.localeCompare(b));
  metric(
    'omni_deployer_service_info',
    'The version each service runs.',
    'gauge',
    services.map(([name, s]) => [
      `{${host},service="${label(name)}",store_path="${label(s.storePath)}",revision="${label(s.revision ?? '')}"}`,
      1,
    ]),
  );
  metric(
    'omni_deployer_service_healthy',
    '1 when the service passed its health gate.',
    'gauge',
    services.map(([name, s]) => [`{${host},service="${label(name)}"}`, s.health === 'healthy' ? 1 : 0]),
  );
  metric(
    'omni_deployer_service_live',
    'The instance that serves: the service unit at rest, its candidate during a blue/green switch.',
    'gauge',
    services.map(([name, s]) => {
      const live = liveInstance(s);
      return [`{${host},service="${label(name)}",unit="${label(live.unit)}",port="${live.port ?? ''}"}`, 1];
    }),
  );
  metric(
    'omni_deployer_service_switching',
    '1 while a blue/green or overlap update of the service is under way (left by an interrupted tick).',
    'gauge',
    services.map(([name, s]) => [
      `{${host},service="${label(name)}",step="${s.switch?.phase ?? ''}"}`,
      s.switch ? 1 : 0,
    ]),
  );
  metric(
    'omni_deployer_known_bad_versions',
    'Versions that failed their health gate and are not retried.',
    'gauge',
    [[`{${host}}`, state.failures.length]],
  );
  const refused = [
    ...new Map((state.refused ?? []).map((r) => [`${r.service}\0${r.rule}`, r] as const)).values(),
  ].sort((a, b) => a.service.localeCompare(b.service) || a.rule.localeCompare(b.rule));
  metric(
    'omni_deployer_service_refused',
    'Services (or their routes) refused by the host policy or a pre-flight check, by rule; retried every tick.',
    'gauge',
    refused.map((r) => [`{${host},service="${label(r.service)}",rule="${label(r.rule)}"}`, 1]),
  );
  metric('omni_deployer_rollbacks_total', 'Automatic rollbacks since the state was created.', 'counter', [
    [`{${host}}`, state.rollbacks],
  ]);
  metric(
    'omni_deployer_manifest_refused',
    '1 while the newest manifest read is refused (its signature, its age or its content): nothing of it applies.',
    'gauge',
    [[`{${host}}`, state.rejected ? 1 : 0]],
  );
  metric(
    'omni_deployer_manifests_refused_total',
    'Manifests refused since the state was created, by reason (unsigned, untrusted_key, bad_signature, envelope_invalid, stale, replayed, invalid).',
    'counter',
    MANIFEST_REFUSAL_REASONS.map((reason) => [
      `{${host},reason="${reason}"}`,
      state.manifestRefusals?.[reason] ?? 0,
    ]),
  );
  return `${lines.join('\n')}\n`;
}
