import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import * as v from 'valibot';
import { DeployError, isDeployError } from '../errors.js';
import type { ObjectStore } from './object-store.js';

/** The lock object of a lease, as stored. */
export interface LeaseRecord {
  version: 1;
  /** Who holds it, for messages (`host pid 1234`). */
  owner: string;
  /** What makes this acquisition unique: a lease is ours only while the object holds our nonce. */
  nonce: string;
  acquiredAt: string;
  /** By the holder's clock: see the clock-skew bound in {@link LeaseOptions.marginMs}. */
  expiresAt: string;
}

/** Options of {@link acquireLease}. */
export interface LeaseOptions {
  /** Shown to writers who wait. Default `<hostname> pid <pid>`. */
  owner?: string;
  /** Lifetime of a lease from its acquisition. Default 60 s: it covers a read, an archive and a write. */
  ttlMs?: number;
  /**
   * Wait between writing the lock and reading it back (longer when our own read-then-write took longer). A
   * competitor that read the lock as free before our write landed has written within this time, so the
   * read-back sees the last writer. The lease is safe while every request lands within this time. Default 2 s.
   */
  settleMs?: number;
  /**
   * A holder writes only while at least this much of its lease is left, so its write lands before anyone may
   * take the lease over. Tolerated clock skew between pushing machines: `marginMs + settleMs` minus the longest
   * request. Default 10 s.
   */
  marginMs?: number;
  /** How long to wait for a lease someone else holds before giving up (`S3_CONFLICT`). Default 2 × `ttlMs`. */
  waitMs?: number;
  /** How often to look again while waiting. Default `settleMs`. */
  pollMs?: number;
  /** Milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
  /** Default: a timer. Tests pass a fake clock's. */
  sleep?: (ms: number) => Promise<void>;
  /** Called once per holder we wait for. */
  onWait?: (holder: LeaseRecord) => void;
}

/** What {@link Lease.check} found. */
export type LeaseState = 'held' | 'lost' | 'expired';

/** A lease held on an object store. */
export interface Lease {
  /** The lock object's key. */
  readonly key: string;
  readonly owner: string;
  readonly nonce: string;
  /** Milliseconds since the epoch, by this writer's clock. */
  readonly expiresAt: number;
  /**
   * Reads the lock back: `held` while it still holds our nonce with more than the margin left, `expired` when it
   * holds ours with less, `lost` when another writer took it over (or it is gone). Write only after `held`.
   */
  check(): Promise<LeaseState>;
  /** Deletes the lock if it is still ours with time left; otherwise leaves it to expire. */
  release(): Promise<void>;
}

const MAX_LEASE_BYTES = 4096;
const LeaseSchema = v.object({
  version: v.literal(1),
  owner: v.pipe(v.string(), v.maxLength(200)),
  nonce: v.pipe(v.string(), v.minLength(1), v.maxLength(100)),
  acquiredAt: v.pipe(v.string(), v.isoTimestamp()),
  expiresAt: v.pipe(v.string(), v.isoTimestamp()),
});

/** Parses a lock object; anything else is `S3_INVALID` naming it, never taken for free or for ours. */
export function parseLease(text: string, where: string): LeaseRecord {
  const help = `; if no push is running, delete it`;
  let value: unknown;
  try {
    if (Buffer.byteLength(text) > MAX_LEASE_BYTES) throw new Error(`more than ${MAX_LEASE_BYTES} bytes`);
    value = JSON.parse(text);
  } catch (cause) {
    throw new DeployError('S3_INVALID', `${where}: expected a lease as JSON, found something else${help}`, {
      cause,
    });
  }
  const parsed = v.safeParse(LeaseSchema, value);
  if (!parsed.success) {
    const issues = parsed.issues.map(
      (i) => `${(i.path ?? []).map((p) => p.key).join('.') || 'lease'}: ${i.message}`,
    );
    throw new DeployError(
      'S3_INVALID',
      `${where}: expected {"version":1,"owner","nonce","acquiredAt","expiresAt"}, found ${issues.slice(0, 3).join('; ')}${help}`,
      { details: issues },
    );
  }
  return parsed.output as LeaseRecord;
}

/**
 * Takes a lease on `key` for a store that does not enforce conditional writes: the lock object is written
 * unconditionally, then read back after `settleMs`; it is ours only if our nonce is still there. A lease someone
 * else holds is waited for (up to `waitMs`) and taken over once expired. Assumes a strongly consistent store
 * (a read sees every write that completed before it, as on AWS S3 since 2020), requests that land within
 * `settleMs`, and clocks within the skew `marginMs` allows; see docs/buckets-draft.md for the argument.
 */
export async function acquireLease(
  objects: ObjectStore,
  key: string,
  options: LeaseOptions = {},
): Promise<Lease> {
  const owner = options.owner ?? `${hostname()} pid ${process.pid}`;
  const ttlMs = options.ttlMs ?? 60_000;
  const settleMs = options.settleMs ?? 2_000;
  const marginMs = options.marginMs ?? 10_000;
  const waitMs = options.waitMs ?? 2 * ttlMs;
  const pollMs = options.pollMs ?? settleMs;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  if (!(ttlMs > marginMs + settleMs))
    throw new DeployError(
      'S3_INPUT',
      `lease: expected ttlMs (${ttlMs}) > marginMs + settleMs (${marginMs + settleMs})`,
    );
  const where = `${objects.url}${key}`;
  const ours = new Set<string>();
  const reported = new Set<string>();
  const deadline = now() + waitMs;

  const readHolder = async () => {
    const got = await objects.get(key);
    return got.status === 'found' ? parseLease(got.text, where) : undefined;
  };
  /** Our own lock read back: damaged or overwritten with something else is as good as lost. */
  const readOwn = () =>
    readHolder().catch((error: unknown) => {
      if (isDeployError(error, 'S3_INVALID')) return undefined;
      throw error;
    });

  for (;;) {
    const readAt = now();
    const holder = await readHolder();
    if (holder && !ours.has(holder.nonce) && now() < Date.parse(holder.expiresAt)) {
      if (now() >= deadline) {
        throw new DeployError(
          'S3_CONFLICT',
          `${where}: expected to take the lease within ${Math.round(waitMs / 1000)} s, found it held by ${JSON.stringify(holder.owner)} until ${holder.expiresAt}; if no push is running there, delete the lease object`,
          { details: { lease: 'held', holder } },
        );
      }
      if (!reported.has(holder.nonce)) {
        reported.add(holder.nonce);
        options.onWait?.(holder);
      }
      await sleep(Math.max(1, Math.min(pollMs, deadline - now())));
      continue;
    }
    const nonce = randomUUID();
    ours.add(nonce);
    const acquiredAt = now();
    const record: LeaseRecord = {
      version: 1,
      owner,
      nonce,
      acquiredAt: new Date(acquiredAt).toISOString(),
      expiresAt: new Date(acquiredAt + ttlMs).toISOString(),
    };
    await objects.put(key, `${JSON.stringify(record, null, 2)}\n`, { contentType: 'application/json' });
    // Settle at least as long as our own read-then-write took: requests that slow suggest a competitor's may
    // be as slow, and the read-back must come after any write decided on a read that preceded ours.
    await sleep(Math.max(settleMs, now() - readAt));
    const back = await readOwn();
    if (back?.nonce === nonce) return handle(record, acquiredAt + ttlMs);
    // Another writer's lock landed after ours: theirs stands; wait for it like any other.
  }

  function handle(record: LeaseRecord, expiresAt: number): Lease {
    return {
      key,
      owner: record.owner,
      nonce: record.nonce,
      expiresAt,
      async check() {
        const holder = await readOwn();
        if (holder?.nonce !== record.nonce) return 'lost';
        return now() + marginMs < expiresAt ? 'held' : 'expired';
      },
      async release() {
        const holder = await readOwn();
        if (holder?.nonce === record.nonce && now() + marginMs < expiresAt) await objects.delete(key);
      },
    };
  }
}
