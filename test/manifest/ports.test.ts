import { describe, expect, it } from 'vitest';
import {
  deriveSecondPort,
  describeUpdate,
  instanceService,
  type Service,
  secondPortOf,
  servicePorts,
  updateStrategy,
  validateManifest,
} from '../../src/manifest/index.js';
import { makeManifest, makeService } from '../builders.js';

const http = (internalPort: number, more: Record<string, unknown> = {}) => ({
  domain: 'example.com',
  path: '/',
  internalPort,
  ...more,
});
/** A service that reads its port from PORT: blue/green by default. */
const reader = (overrides: Record<string, unknown> = {}) =>
  makeService({ env: { PORT: '8000', AREA: 'Live' }, http: http(8000), ...overrides });

describe('updateStrategy', () => {
  it.each([
    ['a worker (no http)', makeService(), 'restart'],
    ['a worker that asks for overlap', makeService({ update: 'overlap' }), 'overlap'],
    ['http without the port variable', makeService({ http: http(8000) }), 'restart'],
    ['http, PORT set to internalPort', reader(), 'blue-green'],
    ['http, PORT set to another port', reader({ env: { PORT: '9000' } }), 'restart'],
    [
      'http, PORT in the arguments too',
      reader({ exec: { command: 'web', args: ['--port', '8000'] } }),
      'restart',
    ],
    [
      'http, --port=8000 in the arguments',
      reader({ exec: { command: 'web', args: ['--port=8000'] } }),
      'restart',
    ],
    ['http, opted out', reader({ update: 'restart' }), 'restart'],
    [
      'http, explicit blue-green without env',
      makeService({ http: http(8000), update: 'blue-green' }),
      'blue-green',
    ],
    [
      'http, another port variable',
      makeService({ env: { HTTP_PORT: '8000' }, http: http(8000, { portEnv: 'HTTP_PORT' }) }),
      'blue-green',
    ],
  ])('%s → %s', (_, service, expected) => {
    expect(updateStrategy(service)).toBe(expected);
  });

  it('explains its choice for deployer plan', () => {
    expect(describeUpdate(reader())).toMatch(/^blue\/green: the new version starts on port 18000/);
    expect(describeUpdate(makeService({ http: http(8010) }))).toBe(
      'restart in place (env.PORT is not "8010")',
    );
    expect(describeUpdate(reader({ exec: { command: 'web', args: ['8000'] } }))).toBe(
      'restart in place (exec.args names port 8000)',
    );
    expect(describeUpdate(makeService({ update: 'overlap' }))).toMatch(/^overlap/);
  });
});

describe('ports', () => {
  it.each([
    [1024, 11024],
    [8000, 18000],
    [55535, 65535],
    [55536, 45536],
    [65535, 55535],
  ])('the second port of %i is %i', (port, second) => {
    expect(deriveSecondPort(port)).toBe(second);
  });

  it('servicePorts lists the second port only under blue/green', () => {
    expect(servicePorts(makeService())).toEqual([]);
    expect(servicePorts(makeService({ http: http(8010) }))).toEqual([8010]);
    expect(servicePorts(reader())).toEqual([8000, 18000]);
    expect(servicePorts(reader({ http: http(8000, { secondPort: 9000 }) }))).toEqual([8000, 9000]);
    expect(secondPortOf(makeService())).toBeUndefined();
  });

  it('instanceService sets only the port variable, and only under blue/green', () => {
    const service = reader();
    expect(instanceService(service, 18000).env).toEqual({ PORT: '18000', AREA: 'Live' });
    expect(instanceService(service, 8000)).toBe(service);
    const explicit = makeService({ http: http(8000), update: 'blue-green', env: { A: 'b' } });
    expect(instanceService(explicit, 8000).env).toEqual({ A: 'b', PORT: '8000' });
    const restart = makeService({ http: http(8010) });
    expect(instanceService(restart, 18010)).toBe(restart);
    expect(service.env).toEqual({ PORT: '8000', AREA: 'Live' }); // not modified
  });
});

describe('validation of updates and ports', () => {
  const issues = (...services: Service[]) => {
    const result = validateManifest(makeManifest(services));
    return result.ok ? [] : result.issues;
  };

  it.each([
    ['blue-green without http', makeService({ update: 'blue-green' }), 'services[0].update', /without http/],
    [
      'overlap with http',
      reader({ update: 'overlap' }),
      'services[0].update',
      /"overlap" is for services without http/,
    ],
    [
      'blue-green with PORT set to something else',
      reader({ update: 'blue-green', env: { PORT: '9000' } }),
      'services[0].env.PORT',
      /expected "8000" \(http.internalPort\) or no value/,
    ],
    [
      'blue-green with the port in the arguments',
      reader({ update: 'blue-green', exec: { command: 'web', args: ['--port', '8000'] } }),
      'services[0].exec.args[1]',
      /names port 8000 while update is "blue-green"/,
    ],
    [
      'a second port on a service that restarts',
      makeService({ http: http(8010, { secondPort: 9010 }) }),
      'services[0].http.secondPort',
      /only used by blue\/green updates, and this service restarts in place \(env.PORT is not "8010"\)/,
    ],
    [
      'a port variable on a service that restarts',
      makeService({ http: http(8010, { portEnv: 'HTTP_PORT' }) }),
      'services[0].http.portEnv',
      /only used by blue\/green updates/,
    ],
    [
      'a second port equal to the first',
      reader({ http: http(8000, { secondPort: 8000 }) }),
      'services[0].http.secondPort',
      /other than http.internalPort/,
    ],
  ])('refuses %s', (_, service, path, message) => {
    expect(issues(service)).toContainEqual({ path, message: expect.stringMatching(message) });
  });

  it('accepts the blue/green forms and a worker in overlap mode', () => {
    expect(issues(reader())).toEqual([]);
    expect(issues(reader({ update: 'blue-green', http: http(8000, { secondPort: 9000 }) }))).toEqual([]);
    expect(issues(makeService({ http: http(8000), update: 'blue-green' }))).toEqual([]);
    expect(issues(makeService({ update: 'overlap' }))).toEqual([]);
    expect(issues(makeService({ http: http(8010), update: 'restart' }))).toEqual([]);
  });

  it('refuses a second port that another service uses on the same host, either way round', () => {
    const other = makeService({ name: 'api', http: { ...http(18000), path: '/api' } });
    expect(issues(reader(), other)).toEqual([
      {
        path: 'services[1].http.internalPort',
        message:
          'port 18000 on host biz is already used by services[0] (web) as its second port (blue/green updates)',
      },
    ]);
    expect(issues(other, reader())).toEqual([
      {
        path: 'services[1].http',
        message:
          'second port 18000 (derived: internalPort + 10000) on host biz is already used by services[0] (api); set http.secondPort to a free port, or update "restart"',
      },
    ]);
    const explicit = reader({ http: http(8000, { secondPort: 18000 }) });
    expect(issues(other, explicit)[0]?.path).toBe('services[1].http.secondPort');
    // Another host, or a service that restarts in place, uses no second port.
    expect(issues(reader(), { ...other, hosts: ['elsewhere'] })).toEqual([]);
    expect(issues(reader({ update: 'restart' }), other)).toEqual([]);
  });

  it('refuses two blue/green services whose second ports meet', () => {
    const api = makeService({
      name: 'api',
      env: { PORT: '8001' },
      http: { ...http(8001), path: '/api', secondPort: 18000 },
    });
    expect(issues(reader(), api)).toEqual([
      expect.objectContaining({
        path: 'services[1].http.secondPort',
        message: expect.stringContaining('already used by services[0] (web) as its second port'),
      }),
    ]);
  });
});
