import { parseHostStatus } from '../deployer/status.js';
import { formatDuration } from '../runtime/duration.js';
import { otherHost } from './bucket.js';
import type { PushContext } from './context.js';
import { createStatusReader } from './status-reader.js';

/** Where one host stands after a push. */
export interface HostWait {
  host: string;
  state: 'applied' | 'failed' | 'pending';
  message: string;
}

/**
 * Judges one host's report against a manifest write. `applied` once the host reports that manifest (by ETag)
 * applied, or, for a service push, any manifest applied after the push (`since`) in which the service is
 * healthy at `storePath`: a concurrent push that landed right after ours carries our change too, and the host
 * may never report our exact ETag. `failed` when the host reports that manifest (or any tick after `since`) not
 * converged, or that manifest applied without our version running. `pending` otherwise, and for a report that
 * is not a valid host status or names another host (untrusted: it is not counted; the message says why). Pure.
 */
export function judgeHost(
  host: string,
  reported: unknown,
  want: { etag: string; since: number; service?: { name: string; storePath: string } },
): HostWait {
  if (reported === undefined || reported === null)
    return { host, state: 'pending', message: 'no status reported yet' };
  const parsed = parseHostStatus(reported);
  if (!parsed.ok)
    return { host, state: 'pending', message: `invalid status report, not counted: ${parsed.message}` };
  const status = parsed.status;
  const other = otherHost(host, status.host);
  if (other !== undefined)
    return { host, state: 'pending', message: `untrusted status report, not counted: ${other}` };
  const outcome = status.lastTick?.outcome ?? 'unknown';
  const detail = status.lastTick?.message ? `: ${status.lastTick.message}` : '';
  const converged = outcome === 'applied' || outcome === 'unchanged';
  const recent = Date.parse(status.lastTick?.at ?? '') >= want.since;
  const ours = status.etag === want.etag;
  const live = `live (generation ${status.generation ?? '?'})`;
  if ((ours || recent) && !converged) {
    return {
      host,
      state: 'failed',
      message: `${ours ? 'applied the manifest with outcome' : 'last tick'} ${outcome}${detail}`,
    };
  }
  if (!want.service)
    return ours
      ? { host, state: 'applied', message: live }
      : { host, state: 'pending', message: `still on generation ${status.generation ?? 'none'}` };
  const s = status.services?.find((x) => x.name === want.service?.name);
  const running = s?.storePath === want.service.storePath;
  if ((ours || recent) && running && s?.health === 'healthy')
    return { host, state: 'applied', message: live };
  if (ours && !running)
    return {
      host,
      state: 'failed',
      message: `${want.service.name} runs ${s?.storePath ?? 'nothing'}, not ${want.service.storePath}`,
    };
  if (ours && running)
    return { host, state: 'failed', message: `${want.service.name} is ${s?.health ?? 'unknown'}` };
  return { host, state: 'pending', message: `still on generation ${status.generation ?? 'none'}` };
}

/**
 * Follows `status/<host>.json` of every host until each reports the manifest written as `etag` applied and
 * healthy, one fails, or `timeoutMs` passes. Returns every host's state; the caller turns failures into an exit
 * code. Each round reads only the statuses that changed (see `createStatusReader`).
 */
export async function waitForHosts(
  ctx: PushContext,
  options: {
    hosts: string[];
    etag: string;
    since: number;
    timeoutMs: number;
    intervalMs?: number;
    service?: { name: string; storePath: string };
  },
): Promise<{ ok: boolean; timedOut: boolean; hosts: HostWait[] }> {
  const deadline = ctx.clock.now() + options.timeoutMs;
  const intervalMs = options.intervalMs ?? 2000;
  const reader = createStatusReader(ctx.manifests);
  let hosts: HostWait[] = [];
  for (;;) {
    const statuses = await reader.read(options.hosts);
    hosts = options.hosts.map((host): HostWait => {
      const read = statuses.get(host);
      if (read?.invalid !== undefined)
        return { host, state: 'pending', message: `untrusted status report, not counted: ${read.invalid}` };
      return judgeHost(host, read?.status, options);
    });
    const pending = hosts.filter((h) => h.state === 'pending');
    if (hosts.some((h) => h.state === 'failed') || pending.length === 0) break;
    if (ctx.clock.now() >= deadline) {
      ctx.onEvent({
        level: 'error',
        type: 'push.wait-timeout',
        message: `gave up after ${formatDuration(options.timeoutMs)}: ${pending.map((h) => h.host).join(', ')} not there yet`,
      });
      return { ok: false, timedOut: true, hosts };
    }
    ctx.onEvent({
      level: 'debug',
      type: 'push.waiting',
      message: `waiting for ${pending.map((h) => h.host).join(', ')}`,
    });
    await ctx.clock.sleep(intervalMs);
  }
  return { ok: hosts.every((h) => h.state === 'applied'), timedOut: false, hosts };
}
