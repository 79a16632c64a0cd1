import { request } from 'node:http';

/** The outcome of one health-check request. */
export interface ProbeResult {
  ok: boolean;
  /** HTTP status, when a response arrived. */
  status?: number;
  /** Why it failed without a complete response (refused, timeout, closed mid-body, ...). */
  error?: string;
}

/** Asks a service on this host whether it is healthy: `GET http://127.0.0.1:<port><path>`. */
export interface HealthProbe {
  /**
   * One request. `timeoutMs` bounds the whole exchange (connecting, the headers and the complete body), not the
   * pauses between bytes, so the promise settles within about `timeoutMs` whatever the service does.
   */
  check(port: number, path: string, timeoutMs: number): Promise<ProbeResult>;
}

/** Bytes of a health response body read at most; a longer body is not an answer from a health endpoint. */
export const MAX_HEALTH_BODY_BYTES = 64 * 1024;

/**
 * The real {@link HealthProbe}, over node:http to loopback. Healthy is a 2xx status with its complete body
 * (at most {@link MAX_HEALTH_BODY_BYTES}, discarded) within the timeout. Redirects are not followed (a health
 * endpoint that redirects is a misconfiguration worth seeing). The timeout is one deadline for the whole
 * request: a service that trickles a byte now and then, accepts and never answers, or closes mid-body fails the
 * check instead of holding it open.
 */
export function createHealthProbe(host = '127.0.0.1'): HealthProbe {
  return {
    check: (port, path, timeoutMs) =>
      new Promise((resolve) => {
        let settled = false;
        let status: number | undefined;
        let deadline: NodeJS.Timeout | undefined;
        const settle = (result: ProbeResult) => {
          if (settled) return;
          settled = true;
          clearTimeout(deadline);
          req.destroy();
          resolve(result);
        };
        const fail = (error: string) =>
          settle({ ok: false, ...(status === undefined ? {} : { status }), error });
        const req = request(
          { host, port, path, method: 'GET', headers: { 'user-agent': 'omni-deployer' } },
          (res) => {
            const code = res.statusCode ?? 0;
            status = code;
            let bytes = 0;
            res.on('data', (chunk: Buffer) => {
              bytes += chunk.length;
              if (bytes > MAX_HEALTH_BODY_BYTES)
                fail(`response body larger than ${MAX_HEALTH_BODY_BYTES} bytes`);
            });
            res.on('end', () => settle({ ok: code >= 200 && code < 300, status: code }));
            // An error or 'close' without 'end': the connection went away mid-body.
            const cut = 'connection closed before the response was complete';
            res.on('error', (error) => fail(`${cut} (${error.message})`));
            res.on('close', () => fail(cut));
          },
        );
        // One timer for everything, unlike `request({ timeout })`, which only notices an idle socket.
        deadline = setTimeout(
          () =>
            fail(
              status === undefined
                ? `no response within ${timeoutMs}ms`
                : `response not complete within ${timeoutMs}ms`,
            ),
          Math.max(0, timeoutMs),
        );
        req.on('error', (error) => fail((error as NodeJS.ErrnoException).code ?? error.message));
        req.end();
      }),
  };
}
