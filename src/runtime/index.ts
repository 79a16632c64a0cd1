/**
 * Runtime pieces every orchestration module shares (the deployer and push alike): the injected clock, the
 * event shape the library reports through, durations, atomic file writes, bounded-concurrency pools and small
 * JSON helpers. Imports no other module of the package.
 */
export { type AtomicWriteOptions, replaceFileAtomic, writeFileAtomic } from './atomic-write.js';
export { type Clock, createClock } from './clock.js';
export { formatDuration, parseDuration } from './duration.js';
export { type DeployerEvent, type EventLevel, type EventSink, ignoreEvents } from './events.js';
export { isObject } from './json.js';
export { mapPool, runPool } from './pool.js';
