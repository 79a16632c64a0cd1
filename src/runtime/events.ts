/** Severity of a {@link DeployerEvent}. */
export type EventLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Something the deployer or push did or saw. The library reports only through these (it never prints); the
 * bins render them as human lines on a TTY and JSON lines for journald. Every event the library emits, these
 * and the typed progress events of single operations (`CacheUploadEvent`, `CaddyEvent`), is discriminated by
 * `type`.
 */
export interface DeployerEvent {
  level: EventLevel;
  /** Stable dotted name, e.g. `service.rollback`, `manifest.not-modified`, `push.waiting`. */
  type: string;
  message: string;
  /** The service concerned, if any. */
  service?: string;
  /** Structured details (store paths, durations, counts). */
  data?: Record<string, unknown>;
}

/** Receives events. */
export type EventSink = (event: DeployerEvent) => void;

/** Discards events (the default sink). */
export const ignoreEvents: EventSink = () => {};
