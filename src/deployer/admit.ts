/**
 * What a deployer lets through before anything else is done with a manifest: its signature by a trusted key,
 * its content, and its age against the last manifest this host accepted. Pure: text, settings and state in,
 * a verdict out.
 */
import { createHash } from 'node:crypto';
import { type AppliedManifest, describeReplay, judgeGeneration } from '../manifest/replay.js';
import type { Manifest } from '../manifest/schema.js';
import { type ManifestSignatureCode, openManifest } from '../manifest/signature.js';
import { formatIssues, type ManifestIssue, parseManifest } from '../manifest/validate.js';
import type { DeployerState, ManifestRefusalReason } from './state.js';

/** The settings that decide which manifests a host accepts. */
export interface AdmitSettings {
  /** Public keys (`name:base64`) whose manifest signatures are accepted; several during a key rotation. */
  trustedPublicKeys: readonly string[];
  /** Accept a manifest that carries no signature (migration only). */
  insecureAllowUnsignedManifest: boolean;
  secretsDir: string;
}

/** The outcome of {@link admitManifest}. */
export type Admission =
  | {
      ok: true;
      manifest: Manifest;
      /** `sha256:<hex>` of the manifest text as signed (or as read, when unsigned manifests are allowed). */
      digest: string;
      /** The trusted key that signed it; `undefined` for an unsigned manifest let through. */
      keyName: string | undefined;
      /** `new`: later than the last accepted one (or the first); `same`: that manifest read again. */
      verdict: 'new' | 'same';
      warnings: ManifestIssue[];
    }
  | {
      ok: false;
      reason: ManifestRefusalReason;
      /** One line (several for an invalid manifest: one per problem), ending in "nothing changed". */
      message: string;
      warnings: ManifestIssue[];
    };

const REASON_OF: Record<ManifestSignatureCode, ManifestRefusalReason> = {
  MANIFEST_UNSIGNED: 'unsigned',
  MANIFEST_UNTRUSTED_KEY: 'untrusted_key',
  MANIFEST_BAD_SIGNATURE: 'bad_signature',
  MANIFEST_ENVELOPE_INVALID: 'envelope_invalid',
};

/** The manifest replay protection compares with: the newest accepted, else (older state) the last applied. */
export function lastAccepted(state: DeployerState): AppliedManifest | undefined {
  return state.accepted ?? state.manifest;
}

/**
 * Judges a manifest text as the deployer does, in this order: the signature (before the text is even parsed
 * as a manifest), the manifest's content, then its generation against `last` (see `judgeGeneration`). `etag`
 * names the manifest in messages. A malformed trusted key throws `NIX_INPUT`: that is configuration, not input.
 */
export function admitManifest(
  text: string,
  etag: string,
  settings: AdmitSettings,
  last: AppliedManifest | undefined,
): Admission {
  const opened = openManifest(text, {
    trustedPublicKeys: settings.trustedPublicKeys,
    allowUnsigned: settings.insecureAllowUnsignedManifest,
  });
  if (!opened.ok) {
    const hint =
      opened.code === 'MANIFEST_UNSIGNED'
        ? ' (a deployer migrating from unsigned manifests needs --insecure-allow-unsigned-manifest)'
        : '';
    return {
      ok: false,
      reason: REASON_OF[opened.code],
      message: `manifest ${etag} refused, nothing changed: ${opened.message}${hint}`,
      warnings: [],
    };
  }
  const parsed = parseManifest(opened.payload, { secretsDir: settings.secretsDir });
  if (!parsed.ok) {
    return {
      ok: false,
      reason: 'invalid',
      message: `manifest ${etag} refused, nothing changed:\n${formatIssues(parsed.issues)}`,
      warnings: parsed.warnings,
    };
  }
  const identity = { generation: parsed.manifest.generation, digest: opened.digest };
  const verdict = judgeGeneration(last, identity);
  if (verdict === 'stale' || verdict === 'replayed') {
    return {
      ok: false,
      reason: verdict,
      message: `manifest ${etag} refused: ${describeReplay(verdict, last, identity)}`,
      warnings: parsed.warnings,
    };
  }
  return {
    ok: true,
    manifest: parsed.manifest,
    digest: opened.digest,
    keyName: opened.keyName,
    verdict,
    warnings: parsed.warnings,
  };
}

/**
 * A fingerprint of what decides signature verdicts (the trusted keys, the unsigned-manifest setting): a refusal
 * recorded under other settings is judged again, so adding a key to a host takes effect at its next tick.
 */
export function trustFingerprint(settings: Omit<AdmitSettings, 'secretsDir'>): string {
  const keys = [...settings.trustedPublicKeys].map((k) => k.trim()).sort();
  const text = JSON.stringify({ keys, unsigned: settings.insecureAllowUnsignedManifest });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
