import type { DeployerEvent } from '../runtime/events.js';

/**
 * Renders an event as one line. `text` is for people on a terminal (`HH:MM:SS level [service] message`);
 * `json` is one JSON object per line for journald and log shippers. Debug events only with `verbose`.
 */
export function formatEvent(
  event: DeployerEvent,
  format: 'text' | 'json',
  now: Date,
  verbose = false,
): string | undefined {
  if (event.level === 'debug' && !verbose) return undefined;
  if (format === 'json') {
    return `${JSON.stringify({ time: now.toISOString(), level: event.level, type: event.type, service: event.service, message: event.message, ...event.data })}\n`;
  }
  const level = event.level === 'info' ? '' : `${event.level.toUpperCase()} `;
  const service = event.service ? `[${event.service}] ` : '';
  return `${now.toISOString().slice(11, 19)} ${level}${service}${event.message}\n`;
}
