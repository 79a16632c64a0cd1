/** The builders ship in `@omni/deploy/testing`; tests use the same ones. */
export { makeManifest, makeService, makeStorePath as storePath } from '../src/testing/builders.js';

/** Deep copy of a JSON value, for mutating fixtures without aliasing. */
export function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
