import { describe, expect, it } from 'vitest';
import { renderMetrics } from '../../src/deployer/metrics.js';
import { emptyState } from '../../src/deployer/state.js';
import { buildHostStatus, renderHostStatus } from '../../src/deployer/status.js';
import { storePath } from '../builders.js';

const state = () => {
  const s = emptyState('biz');
  s.manifest = { etag: '"e1"', generation: '2025-01-15T12:00:00Z', appliedAt: '2025-01-15T12:00:05Z' };
  s.lastTick = { at: '2025-01-15T12:00:05Z', outcome: 'partial', message: '1 service rolled back' };
  s.services.web = {
    storePath: storePath('web-1.2.3'),
    unitName: 'u',
    unitText: '',
    specHash: 'h',
    health: 'healthy',
    since: '2025-01-15T11:00:00Z',
    revision: 'abc',
  };
  s.services.api = {
    storePath: storePath('api-0.1'),
    unitName: 'u',
    unitText: '',
    specHash: 'h',
    health: 'unhealthy',
    since: '2025-01-15T12:00:00Z',
  };
  s.failures.push({
    service: 'api',
    storePath: storePath('api-0.2'),
    specHash: 'x',
    at: '2025-01-15T12:00:04Z',
    reason: 'unit failed (result exit-code, exit status 1)',
  });
  s.rollbacks = 2;
  return s;
};

describe('host status', () => {
  it('renders a table of services, versions and health, and what is held back', () => {
    const text = renderHostStatus(
      buildHostStatus(state(), '0.1.0', '2025-01-15T12:00:06Z'),
      Date.parse('2025-01-15T12:01:05Z'),
    );
    expect(text).toBe(
      [
        'host biz: generation 2025-01-15T12:00:00Z; last tick 1m ago (partial: 1 service rolled back)',
        '',
        'SERVICE  VERSION    REVISION  HEALTH     SINCE',
        'api      api-0.1    -         unhealthy  1m5s ago',
        'web      web-1.2.3  abc       healthy    1h1m5s ago',
        '',
        'held back (failed their health gate; not retried until the manifest changes them):',
        `  api: ${storePath('api-0.2')} at 2025-01-15T12:00:04Z: unit failed (result exit-code, exit status 1)`,
      ].join('\n'),
    );
  });

  it('renders Prometheus metrics with escaped labels', () => {
    const s = state();
    s.services.web = { ...(s.services.web as NonNullable<typeof s.services.web>), revision: 'a"b\\c\nd' };
    const text = renderMetrics(s, '0.1.0');
    expect(text).toContain('omni_deployer_last_tick_success{host="biz",outcome="partial"} 0');
    expect(text).toContain(
      `omni_deployer_service_info{host="biz",service="web",store_path="${storePath('web-1.2.3')}",revision="a\\"b\\\\c\\nd"} 1`,
    );
    expect(text).toContain('omni_deployer_service_healthy{host="biz",service="api"} 0');
    expect(text).toContain('omni_deployer_rollbacks_total{host="biz"} 2');
    expect(text).toContain('omni_deployer_last_tick_timestamp_seconds{host="biz"} 1736942405');
    expect(text.endsWith('\n')).toBe(true);
  });
});
