import { randomUUID } from 'node:crypto';
import { isDeployError } from '../errors.js';
import type { ProbeFinding, WriteMode } from './bucket-mode.js';
import { type EtagForm, formatEtag } from './etag.js';
import type { ObjectStore, PutOptions } from './object-store.js';

/** Which write conditions a store enforces. */
export interface ConditionalWriteSupport {
  /** A create with `If-None-Match: *` over an existing object is refused. */
  ifNoneMatch: boolean;
  /** A write with a stale `If-Match` ETag is refused. */
  ifMatch: boolean;
}

/** What {@link probeBucket} found. */
export interface BucketProbe {
  /** The write mode this bucket needs. */
  mode: WriteMode;
  /** Each check, in the order tried. */
  findings: ProbeFinding[];
  /** The enforcement found, in the old shape of {@link probeConditionalWrites}. */
  support: ConditionalWriteSupport;
}

/** What a probe write did: landed, refused (412/409), or refused as not implemented (501). */
type Outcome = 'written' | 'refused' | 'not implemented';

/** The scratch objects of probes live under this prefix and are deleted afterwards. */
export const PROBE_PREFIX = 'probes/';

/**
 * Finds out how a bucket treats conditional writes, on a scratch object (`probes/conditional-write-<uuid>`,
 * deleted afterwards), and so which write mode compare-and-swap of the manifest needs:
 * 1. create it with `If-None-Match: *` (must be written);
 * 2. create it again (must be refused);
 * 3. replace it with `If-Match` and its current ETag, quoted (must be written; if refused, 3b: unquoted);
 * 4. replace it with a stale ETag in the form that worked (must be refused).
 * `conditional` when 1–4 hold with the quoted ETag, `conditional-unquoted` when they hold with the unquoted one,
 * `lease` otherwise. After every write the object is read back, so a write the bucket answered with an error but
 * carried out anyway (or the reverse) is caught too. About a dozen requests.
 */
export async function probeBucket(objects: ObjectStore): Promise<BucketProbe> {
  const key = `${PROBE_PREFIX}conditional-write-${randomUUID()}`;
  const findings: ProbeFinding[] = [];
  let body = 0;
  /** Tries a write, reads the object back, and says what really happened. */
  const attempt = async (options: PutOptions): Promise<Outcome> => {
    const text = `probe ${++body}`;
    let answered: Outcome = 'written';
    try {
      await objects.put(key, text, options);
    } catch (error) {
      if (isDeployError(error, 'S3_CONFLICT')) answered = 'refused';
      else if (isDeployError(error, 'S3_UNSUPPORTED')) answered = 'not implemented';
      else throw error;
    }
    const got = await objects.get(key);
    const landed = got.status === 'found' && got.text === text;
    if (landed !== (answered === 'written')) {
      findings.push({
        check: 'read-back',
        ok: false,
        message: `the bucket answered "${answered}" but the object ${landed ? 'was' : 'was not'} replaced: it cannot be trusted with conditions`,
      });
      return landed ? 'written' : 'refused';
    }
    return answered;
  };
  const record = (check: string, what: string, outcome: Outcome, expected: 'written' | 'refused') => {
    const ok = outcome === expected;
    findings.push({
      check,
      ok,
      message: `${what}: ${outcome}${ok ? '' : ` (compare-and-swap needs it ${expected})`}`,
    });
    return ok;
  };

  try {
    const created = await attempt({ ifNoneMatch: '*' });
    const create = record('create', 'If-None-Match: * on a new key', created, 'written');
    if (created !== 'written') await objects.put(key, `probe ${++body}`);
    const createExisting = record(
      'create-existing',
      'If-None-Match: * on an existing key',
      await attempt({ ifNoneMatch: '*' }),
      'refused',
    );

    let form: EtagForm | undefined;
    for (const candidate of ['quoted', 'unquoted'] as const) {
      const etag = (await objects.head(key))?.etag ?? '';
      const outcome = await attempt({ ifMatch: formatEtag(etag, candidate) });
      const shown = formatEtag(etag, candidate);
      if (
        record(
          `if-match-${candidate}`,
          `If-Match with the current ETag, ${candidate} (${shown})`,
          outcome,
          'written',
        )
      ) {
        form = candidate;
        break;
      }
    }

    let stale = false;
    if (form) {
      const etag = (await objects.head(key))?.etag ?? '';
      const wrong = etag.includes('0000000000') ? '1'.repeat(32) : '0'.repeat(32);
      stale = record(
        'if-match-stale',
        `If-Match with a stale ETag, ${form}`,
        await attempt({ ifMatch: formatEtag(wrong, form) }),
        'refused',
      );
    }

    const trustworthy = findings.every((f) => f.check !== 'read-back');
    const enforced = create && createExisting && stale && trustworthy;
    return {
      mode: enforced ? (form === 'quoted' ? 'conditional' : 'conditional-unquoted') : 'lease',
      findings,
      support: { ifNoneMatch: createExisting, ifMatch: stale },
    };
  } finally {
    await objects.delete(key);
  }
}

/**
 * Finds out whether a store enforces conditional writes (see {@link probeBucket}, which also says in which form
 * and which write mode follows). Compare-and-swap of the manifest is only as good as this: AWS S3 enforces both;
 * s3rver and some S3-compatible stores silently ignore them.
 */
export async function probeConditionalWrites(objects: ObjectStore): Promise<ConditionalWriteSupport> {
  return (await probeBucket(objects)).support;
}
