/**
 * Every failure the library reports on purpose. Callers switch on `code`, never on message text.
 */
export type DeployErrorCode = 'MANIFEST_INVALID' | 'MANIFEST_JSON' | 'USAGE' | 'IO' | (string & {});

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
