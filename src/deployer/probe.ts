import { request } from 'node:http';

/** The outcome of one health-check request. */
export interface ProbeResult {
  ok: boolean;
  /** HTTP status, when a response arrived. */
  status?: number;
  /** Why it failed without a response (refused, timeout, ...). */
  error?: string;
}

/** Asks a service on this host whether it is healthy: `GET http://127.0.0.1:<port><path>`. */
export interface HealthProbe {
  check(port: number, path: string, timeoutMs: number): Promise<ProbeResult>;
}

/**
 * The real {@link HealthProbe}, over node:http to loopback. 2xx is healthy; redirects are not followed (a
 * health endpoint that redirects is a misconfiguration worth seeing).
 */
export function createHealthProbe(host = '127.0.0.1'): HealthProbe {
  return {
    check: (port, path, timeoutMs) =>
      new Promise((resolve) => {
        const req = request(
          { host, port, path, method: 'GET', timeout: timeoutMs, headers: { 'user-agent': 'omni-deployer' } },
          (res) => {
            res.resume();
            const status = res.statusCode ?? 0;
            res.on('end', () => resolve({ ok: status >= 200 && status < 300, status }));
            res.on('error', (error) => resolve({ ok: false, status, error: error.message }));
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs}ms`)));
        req.on('error', (error) =>
          resolve({ ok: false, error: (error as NodeJS.ErrnoException).code ?? error.message }),
        );
        req.end();
      }),
  };
}
