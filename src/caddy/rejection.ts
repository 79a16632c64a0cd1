import { DeployError } from '../errors.js';

/** The {@link DeployError} for a non-2xx answer; shared with the fake so both report alike. */
export function rejection(
  address: string,
  method: string,
  path: string,
  status: number,
  body: string,
): DeployError {
  let message = body.trim();
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') message = parsed.error;
  } catch {
    // Not JSON (e.g. Go's plain-text "400 Bad Request: ..."): keep the text.
  }
  const code = status === 412 ? 'CADDY_CONFLICT' : status === 404 ? 'CADDY_NOT_FOUND' : 'CADDY_REJECTED';
  const what =
    status === 412
      ? 'the config changed since it was read (If-Match did not match)'
      : `Caddy answered ${status}: ${message}`;
  return new DeployError(code, `Caddy admin API ${address}: ${method} ${path} failed: ${what}`, {
    details: { address, method, path, status, error: message },
  });
}
