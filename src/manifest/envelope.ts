/**
 * The signed manifest's envelope: the manifest's exact JSON text carried as a string next to its signature, so
 * nothing is re-serialised between signing and verifying. Structure only; the cryptography is in signature.ts.
 */
import * as v from 'valibot';
import { KEY_NAME_RE } from '../keys/nix-key.js';
import { describeValue, formatPath } from './describe.js';

/** The value of an envelope's `format` field. */
export const SIGNED_MANIFEST_FORMAT = 'omni-deploy-signed-manifest';

/** The envelope format version this library reads and writes. */
export const SIGNED_MANIFEST_FORMAT_VERSION = 1;

/** Longest signed manifest text accepted, in UTF-8 bytes; longer input is refused before it is parsed. */
export const MAX_SIGNED_MANIFEST_BYTES = 8 * 1024 * 1024;

/** An ed25519 signature as base64: exactly 64 bytes, canonical (the last character's unused bits are zero). */
const SIGNATURE_RE = /^[A-Za-z0-9+/]{85}[AQgw]==$/;

/** The envelope's keys; a JSON object carrying any of them is judged as an envelope, never as a plain manifest. */
const ENVELOPE_KEYS = ['format', 'formatVersion', 'payload', 'signature'] as const;

type AnyIssue = v.BaseIssue<unknown>;

function expected(what: string): (issue: AnyIssue) => string {
  return (issue) => `expected ${what}, found ${describeValue(issue.input)}`;
}

function strict<const TEntries extends v.ObjectEntries>(entries: TEntries, what: string) {
  const allowed = Object.keys(entries).join(', ');
  return v.pipe(
    // valibot's object schemas accept arrays.
    v.custom<Record<string, unknown>>(
      (input) => typeof input === 'object' && input !== null && !Array.isArray(input),
      expected(what),
    ),
    v.strictObject(entries, (issue) => {
      if (issue.expected === 'never')
        return `unknown key ${describeValue(issue.input)}; allowed keys: ${allowed}`;
      if (issue.input === undefined && issue.expected?.startsWith('"')) return 'required, but missing';
      return expected(what)(issue);
    }),
  );
}

/**
 * A signed manifest, format version 1. Its text must also be exactly `JSON.stringify(envelope) + "\n"` with the
 * keys in this order, which JSON Schema cannot say: {@link readSignedManifest} checks it.
 */
export const SignedManifestSchema = strict(
  {
    format: v.pipe(
      v.literal(SIGNED_MANIFEST_FORMAT, expected(JSON.stringify(SIGNED_MANIFEST_FORMAT))),
      v.description('what this object is: a signed @omni/deploy manifest'),
    ),
    formatVersion: v.pipe(
      // Other numbers are answered before schema validation ("unsupported ... format version N").
      v.literal(SIGNED_MANIFEST_FORMAT_VERSION, expected(String(SIGNED_MANIFEST_FORMAT_VERSION))),
      v.description('version of the envelope format'),
    ),
    payload: v.pipe(
      v.string(expected('the manifest JSON text as a string')),
      v.minLength(1, expected('the manifest JSON text as a string')),
      v.maxLength(MAX_SIGNED_MANIFEST_BYTES, expected('at most 8 MiB of manifest text')),
      v.description(
        'the manifest exactly as signed: its JSON text (a v1 manifest, see manifest.schema.json) as a string',
      ),
    ),
    signature: strict(
      {
        keyName: v.pipe(
          v.string(expected('a Nix key name')),
          v.regex(KEY_NAME_RE, expected('a Nix key name (letters, digits, ".", "_", "-"; at most 64)')),
          v.description('name of the Nix signing key, as in its public key "name:base64"'),
        ),
        sig: v.pipe(
          v.string(expected('base64 of a 64-byte ed25519 signature (88 characters)')),
          v.regex(SIGNATURE_RE, expected('base64 of a 64-byte ed25519 signature (88 characters)')),
          v.description(
            'base64 ed25519 signature over "omni-deploy signed manifest v1\\n" followed by the payload\'s UTF-8 bytes',
          ),
        ),
      },
      'a signature object { keyName, sig }',
    ),
  },
  'a signed manifest object { format, formatVersion, payload, signature }',
);

/** A structurally valid signed manifest (its signature not yet checked). */
export type SignedManifest = v.InferOutput<typeof SignedManifestSchema>;

/** What a manifest text is, judged by its structure alone (no keys, no cryptography). */
export type SignedManifestRead =
  /** A well-formed envelope in its exact serialisation; its signature is still to be verified. */
  | { kind: 'signed'; envelope: SignedManifest }
  /** Not an envelope at all (a plain manifest, or not even JSON); `found` says what it is. */
  | { kind: 'unsigned'; found: string }
  /** Meant as an envelope (or too large to tell) but malformed; `message` names the field. */
  | { kind: 'invalid'; message: string };

/**
 * Reads a manifest text as a signed envelope without verifying the signature. Any JSON object with an envelope
 * key (`format`, `formatVersion`, `payload`, `signature`) is held to the envelope's rules, so a damaged envelope
 * is never mistaken for an unsigned manifest. Every byte matters: the text must be exactly
 * `JSON.stringify(envelope) + "\n"` (keys in schema order, no other whitespace, no BOM), the signature canonical
 * base64, the payload well-formed Unicode, so no two texts carry the same payload and signature.
 */
export function readSignedManifest(text: string): SignedManifestRead {
  // Bytes >= UTF-16 units: the cheap test first, so huge input is never scanned twice.
  if (text.length > MAX_SIGNED_MANIFEST_BYTES || Buffer.byteLength(text) > MAX_SIGNED_MANIFEST_BYTES) {
    return {
      kind: 'invalid',
      message: `manifest: expected at most ${MAX_SIGNED_MANIFEST_BYTES} bytes, found ${Buffer.byteLength(text)}`,
    };
  }
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { kind: 'unsigned', found: 'text that is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'unsigned', found: describeValue(value) };
  }
  if (!ENVELOPE_KEYS.some((key) => Object.hasOwn(value, key))) {
    return { kind: 'unsigned', found: 'a plain manifest' };
  }
  const record = value as Record<string, unknown>;
  if (typeof record.formatVersion === 'number' && record.formatVersion !== SIGNED_MANIFEST_FORMAT_VERSION) {
    const message = `formatVersion: unsupported signed manifest format version ${record.formatVersion}; this deployer reads ${SIGNED_MANIFEST_FORMAT_VERSION}`;
    return { kind: 'invalid', message };
  }
  const parsed = v.safeParse(SignedManifestSchema, value, { abortPipeEarly: true });
  if (!parsed.success) {
    const issues = parsed.issues.map((issue) => {
      const keys = (issue.path ?? []).map((item) => item.key as string | number);
      return `${keys.length === 0 ? 'signed manifest' : formatPath(keys)}: ${issue.message}`;
    });
    return { kind: 'invalid', message: issues.join('; ') };
  }
  const envelope = parsed.output;
  if (Buffer.from(envelope.payload, 'utf8').toString('utf8') !== envelope.payload) {
    // A lone surrogate would be signed as U+FFFD: two payloads with one signature. Refused, never normalised.
    return { kind: 'invalid', message: 'payload: expected well-formed Unicode text, found a lone surrogate' };
  }
  const canonical = renderSignedManifest(envelope);
  if (canonical !== text) {
    let at = 0;
    while (at < text.length && text[at] === canonical[at]) at++;
    return {
      kind: 'invalid',
      message: `signed manifest: expected exactly JSON.stringify(envelope) and one newline (keys format, formatVersion, payload, signature { keyName, sig }; no other whitespace), found a difference at character ${at}`,
    };
  }
  return { kind: 'signed', envelope };
}

/** The exact text of a signed manifest: one line of JSON, keys in schema order, and a final newline. */
export function renderSignedManifest(envelope: SignedManifest): string {
  const { format, formatVersion, payload, signature } = envelope;
  const { keyName, sig } = signature;
  return `${JSON.stringify({ format, formatVersion, payload, signature: { keyName, sig } })}\n`;
}
