/**
 * Escaping for the places a manifest value lands in a unit file, per systemd.syntax(7), systemd.unit(5)
 * (specifiers), systemd.service(5) ("Command lines") and systemd.exec(5) (`Environment=`). Every function
 * returns text that systemd turns back into exactly the input string, or throws when no such text exists.
 */
import { DeployError } from '../errors.js';

/**
 * Characters no unit file value may hold: C0/C1 controls and DEL (a newline would start a new directive), and
 * lone UTF-16 surrogates, which cannot be written as UTF-8 (Node would write U+FFFD instead of the value).
 */
const UNREPRESENTABLE_RE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this pattern's purpose
  /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

/** Words that need no quoting in a command line: no whitespace, quotes, `\`, `%`, `$` or `;`. */
const BARE_WORD_RE = /^[A-Za-z0-9_@+=:,./-]+$/;

/**
 * Throws `SYSTEMD_UNIT_VALUE` unless `value` can appear in a unit file byte for byte. `where` names the field
 * (e.g. `exec.args[2]`) for the message.
 */
export function assertUnitValue(value: string, where: string): void {
  const match = UNREPRESENTABLE_RE.exec(value);
  if (!match) return;
  const code = (match[0].codePointAt(0) as number).toString(16).padStart(4, '0');
  throw new DeployError(
    'SYSTEMD_UNIT_VALUE',
    `${where}: expected text without control characters or lone surrogates, found U+${code} at index ${match.index} of ${JSON.stringify(value)}`,
    { details: { where, index: match.index } },
  );
}

/** Doubles `%` so that systemd's specifier expansion (`%n`, `%h`, ...) gives back the literal text. */
export function escapeSpecifiers(value: string): string {
  return value.includes('%') ? value.replaceAll('%', '%%') : value;
}

/**
 * One argument of `ExecStart=`: specifiers doubled, `$` doubled (systemd expands `$VAR` and `${VAR}` in
 * command lines at start time), and, unless the word is plainly safe, double-quoted with `\` and `"`
 * escaped. Quoting also keeps a lone `;` from being read as a command separator and `""` an empty argument.
 */
export function quoteExecArgument(value: string, where = 'argument'): string {
  assertUnitValue(value, where);
  if (BARE_WORD_RE.test(value)) return value;
  const escaped = escapeSpecifiers(value).replaceAll('$', '$$$$');
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/**
 * The value of one `Environment=` line for `key=value`: the whole assignment double-quoted, `\` and `"`
 * escaped, specifiers doubled. `$` stays as it is: `Environment=` does no variable expansion.
 */
export function quoteEnvironmentAssignment(key: string, value: string, where = `env.${key}`): string {
  assertUnitValue(value, where);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
    throw new DeployError(
      'SYSTEMD_UNIT_VALUE',
      `${where}: expected an environment variable name matching [A-Za-z_][A-Za-z0-9_]*, found ${JSON.stringify(key)}`,
      { details: { where } },
    );
  }
  const escaped = escapeSpecifiers(`${key}=${value}`).replaceAll('\\', '\\\\').replaceAll('"', '\\"');
  return `"${escaped}"`;
}
