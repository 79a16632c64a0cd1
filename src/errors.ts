/** Codes any module may use: a file or stream that could not be read or written, a call made wrongly. */
export type CommonErrorCode = 'IO' | 'USAGE';

/**
 * Codes of `src/manifest`. The signature codes (`ManifestSignatureCode`) are also thrown by push when a manifest
 * it would build on does not verify.
 */
export type ManifestErrorCode =
  | 'MANIFEST_INVALID'
  | 'MANIFEST_SIGN'
  | 'MANIFEST_GENERATION'
  | 'MANIFEST_UNSIGNED'
  | 'MANIFEST_UNTRUSTED_KEY'
  | 'MANIFEST_BAD_SIGNATURE'
  | 'MANIFEST_ENVELOPE_INVALID';

/** Codes of `src/systemd` (and its fake). */
export type SystemdErrorCode =
  | 'SYSTEMD_COMMAND'
  | 'SYSTEMD_IO'
  | 'SYSTEMD_STATUS'
  | 'SYSTEMD_UNIT_NAME'
  | 'SYSTEMD_UNIT_VALUE';

/** Codes of `src/caddy` (and its fake). */
export type CaddyErrorCode =
  | 'CADDY_ADAPT'
  | 'CADDY_ADDRESS'
  | 'CADDY_CONFIG_UNEXPECTED'
  | 'CADDY_CONFLICT'
  | 'CADDY_FOREIGN_ID'
  | 'CADDY_INVALID_TARGET'
  | 'CADDY_INVALID_VALUE'
  | 'CADDY_NOT_FOUND'
  | 'CADDY_NO_SERVER'
  | 'CADDY_PLAN_BUG'
  | 'CADDY_REJECTED'
  | 'CADDY_ROUTES_INVALID'
  | 'CADDY_UNREACHABLE';

/** Codes of `src/nix` (and its fake); a `.narinfo` that does not parse is `CACHE_INVALID`, as in `src/s3`. */
export type NixErrorCode =
  | 'NIX_COMMAND'
  | 'NIX_INPUT'
  | 'NIX_KEY'
  | 'NIX_MISSING'
  | 'NIX_NOT_FOUND'
  | 'NIX_OUTPUT'
  | 'NIX_PROFILE'
  | 'NIX_SIGNATURE'
  | 'NIX_UNREACHABLE'
  | 'NIX_UNSUPPORTED_STORE'
  | 'CACHE_INVALID';

/** Codes of `src/s3`: the object stores, the manifest store and the binary cache upload. */
export type S3ErrorCode =
  | 'S3_ACCESS_DENIED'
  | 'S3_CONFLICT'
  | 'S3_UNSUPPORTED'
  | 'S3_INPUT'
  | 'S3_INVALID'
  | 'S3_LOCATION'
  | 'S3_NOT_FOUND'
  | 'S3_REQUEST'
  | 'S3_UNREACHABLE'
  | 'CACHE_INVALID'
  | 'CACHE_UNSIGNED'
  | 'CACHE_UPLOAD';

/** Codes of `src/deployer`. */
export type DeployerErrorCode =
  | 'HOST_CHECK'
  | 'STATE_HOST'
  | 'STATE_INVALID'
  | 'STATE_UNREADABLE'
  | 'STATUS_INVALID';

/** Codes of `src/push`. */
export type PushErrorCode =
  | 'BUILD_FAILED'
  | 'CACHE_MISSING'
  | 'MANIFEST_STALE'
  | 'ROLLBACK_UNCHANGED'
  | 'ROLLOUT_CONFLICT'
  | 'SPEC_INVALID';

/** Codes of `src/cli` (the bins map every code to an exit status; they add only the common ones). */
export type CliErrorCode = CommonErrorCode;

/**
 * Every failure the library reports on purpose: a closed union, so a `switch` over it can be exhaustive and a
 * typo in a code is a type error. Callers switch on `code`, never on message text.
 */
export type DeployErrorCode =
  | CommonErrorCode
  | ManifestErrorCode
  | SystemdErrorCode
  | CaddyErrorCode
  | NixErrorCode
  | S3ErrorCode
  | DeployerErrorCode
  | PushErrorCode
  | CliErrorCode;

/**
 * The one error class of @omni/deploy: a stable `code`, a message that says what failed, where, what was
 * expected and what was found, optional structured `details`, and the underlying `cause`.
 */
export class DeployError extends Error {
  override readonly name = 'DeployError';
  readonly code: DeployErrorCode;
  readonly details: unknown;

  constructor(code: DeployErrorCode, message: string, options: { cause?: unknown; details?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

/** True when `error` is a {@link DeployError}, optionally with the given code. */
export function isDeployError(error: unknown, code?: DeployErrorCode): error is DeployError {
  return error instanceof DeployError && (code === undefined || error.code === code);
}
