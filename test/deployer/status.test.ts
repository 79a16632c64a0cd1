import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { renderMetrics } from '../../src/deployer/metrics.js';
import { emptyState } from '../../src/deployer/state.js';
import {
  assertHostStatus,
  buildHostStatus,
  HostStatusSchema,
  parseHostStatus,
  renderHostStatus,
} from '../../src/deployer/status.js';
import { isDeployError } from '../../src/errors.js';
import { CONTROL_CHARS_RE } from '../../src/manifest/patterns.js';
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

  it('lists the refused services and routes with their rule, field and since when', () => {
    const s = state();
    s.refused = [
      {
        service: 'evil',
        scope: 'service',
        rule: 'env-file.not-own',
        path: 'services[2].envFile',
        message: '"/var/lib/biz-secrets/payments.env" is not this service\'s',
        storePath: storePath('evil-1'),
        since: '2025-01-15T12:00:05Z',
      },
      {
        service: 'web',
        scope: 'route',
        rule: 'route.foreign-host',
        path: 'http.domain',
        message: 'example.com is served by a route of someone else',
        since: '2025-01-15T12:00:05Z',
      },
    ];
    const status = buildHostStatus(s, '0.1.0', '2025-01-15T12:00:06Z');
    expect(assertHostStatus(status).refused).toEqual(s.refused);
    expect(renderHostStatus(status, Date.parse('2025-01-15T12:01:05Z'))).toMatch(
      /\n\nrefused \(nothing of a refused service is touched; a refused route is not given to Caddy\):\n {2}evil: env-file\.not-own at services\[2\]\.envFile: "\/var\/lib\/biz-secrets\/payments\.env" is not this service's \(since 2025-01-15T12:00:05Z\)\n {2}web \(route\): route\.foreign-host at http\.domain: example\.com is served by a route of someone else \(since 2025-01-15T12:00:05Z\)$/,
    );
    const metrics = renderMetrics(s, '0.1.0');
    expect(metrics).toContain(
      '# TYPE omni_deployer_service_refused gauge\nomni_deployer_service_refused{host="biz",service="evil",rule="env-file.not-own"} 1\nomni_deployer_service_refused{host="biz",service="web",rule="route.foreign-host"} 1\n',
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

describe('the host status schema', () => {
  const built = () => buildHostStatus(state(), '0.1.0', '2025-01-15T12:00:06Z');

  it('accepts what the deployer writes, for the writer and for every reader', () => {
    const status = built();
    expect(v.parse(HostStatusSchema, status)).toEqual(JSON.parse(JSON.stringify(status)));
    expect(assertHostStatus(status)).toBe(status);
    // A reader sees the JSON text, where undefined fields are gone.
    expect(parseHostStatus(JSON.parse(JSON.stringify(status)))).toEqual({
      ok: true,
      status: JSON.parse(JSON.stringify(status)),
    });
    expect(
      parseHostStatus(JSON.parse(JSON.stringify(buildHostStatus(emptyState('x'), '0.1.0', 'now')))),
    ).toEqual({
      ok: true,
      status: {
        host: 'x',
        deployerVersion: '0.1.0',
        updatedAt: 'now',
        services: [],
        failures: [],
        refused: [],
        rollbacks: 0,
      },
    });
  });

  it('lets readers take a report with fewer fields (another deployer version), dropping unknown ones', () => {
    expect(parseHostStatus({})).toEqual({ ok: true, status: {} });
    expect(
      parseHostStatus({
        generation: 'g',
        services: [{ name: 'web', storePath: '/nix/store/x', health: 'healthy' }],
        later: 'a field a newer deployer writes',
      }),
    ).toEqual({
      ok: true,
      status: { generation: 'g', services: [{ name: 'web', storePath: '/nix/store/x', health: 'healthy' }] },
    });
  });

  it.each([
    ['not an object', 'healthy', 'status: expected a JSON object, found "healthy"'],
    ['an array', [], 'status: expected a JSON object, found an array of 0'],
    ['generation a number', { generation: 42 }, 'generation: expected string, found 42'],
    ['services an object', { services: { web: 'healthy' } }, 'services: expected Array, found an object'],
    [
      'an unknown health',
      { services: [{ name: 'web', storePath: '/nix/store/x', health: 'great' }] },
      'services[0].health: expected ("healthy" | "unhealthy" | "unknown"), found "great"',
    ],
    [
      'a service without a name',
      { services: [{ storePath: '/nix/store/x', health: 'healthy' }] },
      'services[0].name: missing',
    ],
    ['an unknown tick outcome', { lastTick: { at: 'now', outcome: 'great' } }, 'lastTick.outcome: expected'],
    [
      'hostile text, quoted',
      { rollbacks: '\u001b[2J\nfake line' },
      'rollbacks: expected number, found "\\u001b[2J\\nfake line"',
    ],
    ['rollbacks as text', { rollbacks: '2' }, 'rollbacks: expected number, found "2"'],
  ])('refuses a report with %s, naming the field', (_name, report, fragment) => {
    const parsed = parseHostStatus(report);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.message).toContain(fragment);
    expect(!parsed.ok && parsed.message).not.toMatch(CONTROL_CHARS_RE);
  });

  it('the writer refuses to publish a status its readers would refuse (STATUS_INVALID)', () => {
    const status = { ...built(), services: [{ name: 'web', storePath: 'x', health: 'great', since: 'now' }] };
    const error = (() => {
      try {
        assertHostStatus(status as never);
      } catch (e) {
        return e;
      }
    })();
    expect(isDeployError(error, 'STATUS_INVALID')).toBe(true);
    expect((error as Error).message).toContain('services[0].health');
  });
});
