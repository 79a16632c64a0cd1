import { createFakeWorld, type FakeWorld, type FakeWorldOptions } from '../../src/testing/index.js';

/** The Caddy config the host starts with: our server holds one foreign route that must never change. */
export const FOREIGN_ROUTE = {
  '@id': 'someone-else',
  match: [{ host: ['other.example'] }],
  handle: [{ handler: 'static_response', body: 'x' }],
};

/**
 * The shipped fake world ({@link createFakeWorld}) as these tests start it: Caddy's server already holds a
 * foreign route, and the service users and groups of the builders' services exist.
 */
export function createWorld(options: FakeWorldOptions = {}): Promise<FakeWorld> {
  return createFakeWorld({
    caddyConfig: { apps: { http: { servers: { omni: { listen: [':80'], routes: [FOREIGN_ROUTE] } } } } },
    users: ['pil-web'],
    groups: ['pil'],
    ...options,
  });
}

export type World = FakeWorld;

/** An http block for a service on port `port`. */
export const http = (port: number, path = '/', healthCheck?: string) => ({
  http: { domain: 'example.com', path, internalPort: port, ...(healthCheck ? { healthCheck } : {}) },
});
