/**
 * True for a JSON object: not `null` and not an array (both are `typeof 'object'`). The one check the manifest
 * validator, the Caddy planner and the fakes use to walk untrusted JSON.
 */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
