/**
 * What the fleet simulation's S3 server saw, and the arithmetic on it (pure): requests by kind, rates over
 * windows, the busiest second, bytes per second from the cumulative wire counters.
 */

/** One answered request: epoch ms, kind (see {@link classify}), HTTP status. */
export type RequestRecord = [at: number, kind: string, status: number];

/** What the server process hands over on each `dump`. */
export interface TrafficDump {
  requests: RequestRecord[];
  /** Cumulative bytes read and written on all sockets: [epoch ms, in, out], in time order. */
  wire: [at: number, bytesIn: number, bytesOut: number][];
}

/** Where a key lives in the layout of a manifest store (relative to the store's root). */
function area(key: string): string {
  if (key.startsWith('status/')) return 'status';
  if (key.startsWith('manifests/')) return 'archive';
  if (key.startsWith('leases/')) return 'lease';
  if (/^[^/]+\.json$/.test(key)) return key === 'bucket-mode.json' ? 'other' : 'manifest';
  return 'other';
}

/**
 * The kind of a path-style S3 request, e.g. `GET manifest`, `PUT status`, `LIST status`, `PUT archive`:
 * the method (LIST for a bucket listing) and the area of the key (or of the listed prefix). Every key is taken
 * to sit under one run prefix (`<run>/manifest.json`), as the simulation lays them out.
 */
export function classify(method: string, url: string, bucket: string): string {
  const [path = '', query = ''] = url.split('?');
  const key = decodeURIComponent(path.replace(new RegExp(`^/${bucket}/?`), ''));
  const inRun = (k: string) => k.replace(/^[^/]*\//, '');
  if (key === '' && method === 'GET') {
    const prefix = new URLSearchParams(query).get('prefix') ?? '';
    return `LIST ${area(inRun(prefix))}`;
  }
  return `${method} ${area(inRun(key))}`;
}

/** A span of time, epoch ms. */
export interface Span {
  from: number;
  to: number;
}

/** The requests in a span, optionally only those matching. */
export function within(requests: RequestRecord[], span: Span, match?: (r: RequestRecord) => boolean) {
  return requests.filter((r) => r[0] >= span.from && r[0] < span.to && (!match || match(r)));
}

/** Requests per kind (with `304` kept apart: `GET manifest 304`). */
export function byKind(requests: RequestRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [, kind, status] of requests) {
    const name = status === 304 || status >= 400 ? `${kind} ${status}` : kind;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Mean requests per second over a span. */
export function rate(requests: RequestRecord[], span: Span): number {
  return within(requests, span).length / ((span.to - span.from) / 1000);
}

/** Requests in each `windowMs` window of the span (the last partial window dropped). */
export function windows(requests: RequestRecord[], span: Span, windowMs = 1000): number[] {
  const n = Math.max(1, Math.floor((span.to - span.from) / windowMs));
  const counts = new Array<number>(n).fill(0);
  for (const [at] of requests) {
    const i = Math.floor((at - span.from) / windowMs);
    if (i >= 0 && i < n) counts[i] = (counts[i] ?? 0) + 1;
  }
  return counts;
}

/** The busiest second of a span (sliding by 100 ms), in requests per second. */
export function peak(requests: RequestRecord[], span: Span): number {
  const times = within(requests, span)
    .map((r) => r[0])
    .sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while ((times[end] as number) - (times[start] as number) >= 1000) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

/** Bytes in and out per second over a span, from the cumulative counters (interpolated at the span's ends). */
export function wireRate(wire: TrafficDump['wire'], span: Span): { in: number; out: number } {
  const at = (t: number): [number, number] => {
    let before = wire[0];
    for (const w of wire) {
      if (w[0] > t) {
        if (!before || before[0] >= t) return [w[1], w[2]];
        const f = (t - before[0]) / (w[0] - before[0]);
        return [before[1] + f * (w[1] - before[1]), before[2] + f * (w[2] - before[2])];
      }
      before = w;
    }
    return before ? [before[1], before[2]] : [0, 0];
  };
  const [inFrom, outFrom] = at(span.from);
  const [inTo, outTo] = at(span.to);
  const seconds = (span.to - span.from) / 1000;
  return { in: (inTo - inFrom) / seconds, out: (outTo - outFrom) / seconds };
}
