import { DeployError, type NixErrorCode } from '../errors.js';
import type { CommandResult } from '../shell/types.js';

/** Known Nix failures, recognised by their message (2.8 through current wording), most specific first. */
const KNOWN: { re: RegExp; code: NixErrorCode; explain: string }[] = [
  {
    re: /lacks a (?:valid )?signature|lacks a signature by a trusted key|no signature is trusted/,
    code: 'NIX_SIGNATURE',
    explain: 'signature check failed: the path lacks a valid signature by any of the trusted public keys',
  },
  {
    re: /don't know how to open Nix store|unsupported store/i,
    code: 'NIX_UNSUPPORTED_STORE',
    explain: 'this Nix cannot open that store URL (Debian nix-bin is built without s3:// support)',
  },
  {
    re: /unable to download|Couldn't connect|Could not resolve|Connection refused|timed out/i,
    code: 'NIX_UNREACHABLE',
    explain: 'the binary cache could not be reached',
  },
  {
    re: /secret key is corrupt|opening file '[^']*': No such file|key file/i,
    code: 'NIX_KEY',
    explain: 'the signing key file is missing or not a Nix secret key',
  },
  {
    re: /is required, but there is no substituter|does not exist in binary cache|don't know how to build|is not valid/,
    code: 'NIX_NOT_FOUND',
    explain: 'the path is not in that store or cache',
  },
];

/** Turns a failed Nix command into a `DeployError` whose code says what went wrong and whose message quotes Nix. */
export function nixError(context: string, result: CommandResult, command: string): DeployError {
  const stderr = result.stderr.trim();
  if (result.exitCode === 127 && /not found|No such file/.test(stderr)) {
    return new DeployError(
      'NIX_MISSING',
      `${context}: ${command} is not installed or not on PATH; install Nix (Debian: apt-get install nix-bin)`,
      { details: { stderr } },
    );
  }
  const errors = stderr.split('\n').filter((line) => line.startsWith('error:'));
  const said = (errors.length > 0 ? errors.join(' ') : stderr.split('\n').slice(-3).join(' ')).slice(0, 1000);
  const known = KNOWN.find((entry) => entry.re.test(stderr));
  const how =
    result.exitCode === null ? `was killed (${result.signal ?? 'signal'})` : `exited ${result.exitCode}`;
  return new DeployError(
    known?.code ?? 'NIX_COMMAND',
    `${context}: ${known ? `${known.explain}; ` : ''}${command} ${how}: ${said || '(no error output)'}`,
    { details: { exitCode: result.exitCode, signal: result.signal, stderr } },
  );
}
