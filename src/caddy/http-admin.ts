import http from 'node:http';
import { DeployError, isDeployError } from '../errors.js';
import { DEFAULT_CADDY_ADMIN_ADDRESS, formatCaddyAdminEndpoint, parseCaddyAdminAddress } from './address.js';
import type { CaddyAdmin, CaddyRead, CaddyRequestEvent, CaddyWriteOptions } from './admin.js';
import { rejection } from './rejection.js';
import { assertSendable, type CaddyTarget, formatTarget } from './target.js';

/** Options of {@link createCaddyAdmin}. */
export interface CaddyAdminOptions {
  /** Admin address: `localhost:2019` (default), `127.0.0.1:PORT`, `[::1]:PORT` or `unix//run/caddy/admin.sock`. */
  address?: string;
  /** Accept a non-loopback TCP address (off by default: the admin API is unauthenticated). */
  allowRemote?: boolean;
  /** Give up on one request after this long. Default 10 s; a config change returns once Caddy runs it. */
  timeoutMs?: number;
  /** Called after every request, answered or not: count requests and mutations with it. */
  onRequest?: (event: CaddyRequestEvent) => void;
  /**
   * Pauses before repeating a GET that got no answer, one per repeat. Default `[50, 250]`; `[]` never repeats
   * (a caller that expects Caddy may well be down, and must not wait for it).
   */
  getRetryDelaysMs?: readonly number[];
}

type Method = CaddyRequestEvent['method'];

/** Pauses before repeating a GET that got no answer (default of `getRetryDelaysMs`). */
const GET_RETRY_DELAYS_MS = [50, 250];

interface Answer {
  status: number;
  body: string;
  etag: string | undefined;
}

/**
 * The real {@link CaddyAdmin}, over `node:http` on loopback TCP or a unix socket. Not `fetch`: Caddy >= 2.11
 * refuses requests that carry fetch's `Sec-Fetch-Mode` header, and Caddy 2.6/2.7 send the ETag as an HTTP
 * trailer, which fetch cannot read. On a unix socket the Host header is sent empty, the only value Caddy's
 * DNS-rebinding check accepts there. A GET that gets no answer is repeated twice (50 ms, 250 ms later); a
 * mutating request never is: the caller re-reads and decides (see `reconcileRoutes`).
 */
export function createCaddyAdmin(options: CaddyAdminOptions = {}): CaddyAdmin {
  const endpoint = parseCaddyAdminAddress(options.address ?? DEFAULT_CADDY_ADMIN_ADDRESS, {
    allowRemote: options.allowRemote,
  });
  const address = formatCaddyAdminEndpoint(endpoint);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const retryDelays = options.getRetryDelaysMs ?? GET_RETRY_DELAYS_MS;

  function send(method: Method, path: string, body: unknown, write: CaddyWriteOptions = {}): Promise<Answer> {
    const mutating = method !== 'GET';
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    // Caddy answers 400 to a mutation without it, even a DELETE with no body is safer with it.
    if (mutating) headers['content-type'] = 'application/json';
    if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
    if (write.ifMatch !== undefined) headers['if-match'] = write.ifMatch;
    const target =
      endpoint.kind === 'unix'
        ? { socketPath: endpoint.socketPath, setHost: false, headers: { ...headers, host: '' } }
        : { host: endpoint.host, port: endpoint.port, headers };

    return new Promise<Answer>((resolve, reject) => {
      const report = (status: number | undefined) => options.onRequest?.({ method, path, status, mutating });
      const req = http.request({ ...target, method, path, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => {
          report(res.statusCode);
          reject(unreachable(method, path, error));
        });
        res.on('end', () => {
          report(res.statusCode);
          const etag = res.headers.etag ?? res.trailers.etag;
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), etag });
        });
      });
      req.setTimeout(timeoutMs, () => {
        req.destroy(new Error(`no answer within ${timeoutMs} ms`));
      });
      req.on('error', (error) => {
        report(undefined);
        reject(unreachable(method, path, error));
      });
      req.end(payload);
    });
  }

  function unreachable(method: Method, path: string, error: Error): DeployError {
    const code = (error as NodeJS.ErrnoException).code;
    const hint =
      endpoint.kind === 'unix'
        ? `is Caddy running with "admin": {"listen": "${address}"}, and may this user open the socket?`
        : `is Caddy running with its admin API on ${address}?`;
    return new DeployError(
      'CADDY_UNREACHABLE',
      `Caddy admin API ${address}: ${method} ${path} got no answer (${code ?? error.message}); ${hint}`,
      { cause: error, details: { address, method, path } },
    );
  }

  async function call(method: Method, path: string, body?: unknown, write?: CaddyWriteOptions) {
    const answer = await send(method, path, body, write);
    if (answer.status >= 200 && answer.status < 300) return answer;
    throw rejection(address, method, path, answer.status, answer.body);
  }

  async function mutate(method: Method, target: CaddyTarget, value: unknown, write?: CaddyWriteOptions) {
    const path = formatTarget(target);
    if (value !== undefined) assertSendable(value, `the ${method} ${path} body`);
    await call(method, path, value, write);
  }

  return {
    address,
    async get(target): Promise<CaddyRead> {
      const path = formatTarget(target);
      let answer: Answer;
      for (let attempt = 0; ; attempt++) {
        try {
          answer = await call('GET', path);
          break;
        } catch (error) {
          // After a config it could not load, Caddy 2.6 restarts its admin listener and resets connections
          // that arrive in between. A read is safe to repeat; a change never is, so only reads retry.
          if (!isDeployError(error, 'CADDY_UNREACHABLE') || attempt >= retryDelays.length) throw error;
          await new Promise((resolve) => setTimeout(resolve, retryDelays[attempt]));
        }
      }
      let value: unknown;
      try {
        value = JSON.parse(answer.body);
      } catch (error) {
        throw new DeployError(
          'CADDY_REJECTED',
          `Caddy admin API ${address}: GET ${path} answered ${answer.status} with a body that is not JSON`,
          { cause: error, details: { address, path, body: answer.body.slice(0, 200) } },
        );
      }
      return { value, etag: answer.etag };
    },
    put: (target, value, write) => mutate('PUT', target, value, write),
    post: (path, value, write) => mutate('POST', { path }, value, write),
    patch: (target, value, write) => mutate('PATCH', target, value, write),
    delete: (target, write) => mutate('DELETE', target, undefined, write),
  };
}
