import { describe, expect, it } from 'vitest';
import { formatCaddyAdminEndpoint, parseCaddyAdminAddress } from '../../src/caddy/index.js';

describe('parseCaddyAdminAddress', () => {
  it.each([
    ['localhost:2019', { kind: 'tcp', host: 'localhost', port: 2019, loopback: true }],
    ['localhost', { kind: 'tcp', host: 'localhost', port: 2019, loopback: true }],
    ['127.0.0.1:40000', { kind: 'tcp', host: '127.0.0.1', port: 40000, loopback: true }],
    ['127.10.0.3:1', { kind: 'tcp', host: '127.10.0.3', port: 1, loopback: true }],
    ['[::1]:2019', { kind: 'tcp', host: '::1', port: 2019, loopback: true }],
    ['http://127.0.0.1:2019/', { kind: 'tcp', host: '127.0.0.1', port: 2019, loopback: true }],
    ['tcp/localhost:2019', { kind: 'tcp', host: 'localhost', port: 2019, loopback: true }],
    ['unix//run/caddy/admin.sock', { kind: 'unix', socketPath: '/run/caddy/admin.sock' }],
  ])('accepts %s', (address, endpoint) => {
    expect(parseCaddyAdminAddress(address)).toEqual(endpoint);
  });

  it.each([
    ['0.0.0.0:2019', /not a loopback address/],
    ['10.0.0.5:2019', /not a loopback address/],
    ['admin.example.com:2019', /not a loopback address/],
    ['[::]:2019', /not a loopback address/],
    ['[::ffff:10.0.0.1]:2019', /not a loopback address/],
    ['127.0.0.1.evil.com:2019', /not a loopback address/],
    ['localhost:2019@evil.com', /expected host:port/],
    ['localhost:2019/load', /expected host:port/],
    ['https://localhost:2019', /not https/],
    ['localhost:99999', /outside 1-65535/],
    ['localhost:0', /outside 1-65535/],
    ['unix/admin.sock', /absolute path/],
    ['unix//run/../tmp/admin.sock', /"\.\." segments/],
    ['localhost:2019\n', /control characters/],
    ['', /non-empty/],
    ['[not-ip]:2019', /expected host:port|not a host name/],
  ])('refuses %j', (address, message) => {
    expect(() => parseCaddyAdminAddress(address)).toThrow(
      expect.objectContaining({ code: 'CADDY_ADDRESS', message: expect.stringMatching(message) }),
    );
  });

  it('accepts a remote address only when explicitly allowed', () => {
    expect(parseCaddyAdminAddress('10.0.0.5:2019', { allowRemote: true })).toEqual({
      kind: 'tcp',
      host: '10.0.0.5',
      port: 2019,
      loopback: false,
    });
  });

  it('writes an endpoint back as an address', () => {
    for (const address of ['127.0.0.1:2019', '[::1]:2019', 'unix//run/caddy/admin.sock']) {
      expect(formatCaddyAdminEndpoint(parseCaddyAdminAddress(address))).toBe(address);
    }
  });
});
