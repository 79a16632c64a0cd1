import { readFile } from 'node:fs/promises';
import { DeployError } from '../errors.js';
import type { Shell } from '../shell/types.js';

/** Options of {@link adaptCaddyConfig}. */
export interface AdaptCaddyConfigOptions {
  /** The config file Caddy is run with (`/etc/caddy/Caddyfile`). */
  file: string;
  /**
   * Caddy's config adapter: `caddyfile` (the default), another adapter Caddy has, or `json` for a file that
   * already is Caddy's JSON (the default for a name ending in `.json`).
   */
  adapter?: string;
  /** The caddy program. Default `caddy` on PATH. */
  caddy?: string;
  /** Give up on `caddy adapt` after this long. Default 60 s. */
  timeoutMs?: number;
}

/** What {@link adaptCaddyConfig} read: Caddy's JSON, and what `caddy adapt` said on the way (warnings). */
export interface AdaptedCaddyConfig {
  config: unknown;
  log: string;
}

const ADAPTER_RE = /^[a-z][a-z0-9_-]{0,40}$/;

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
}

/**
 * Caddy's JSON for a config file, as `caddy run --config FILE` would load it: a Caddyfile (or any other
 * adapter's input) through `caddy adapt`, which also substitutes `{$ENV}` placeholders from this process's
 * environment, as Caddy does; a JSON file read as it is. Throws `CADDY_ADAPT` with Caddy's own message when
 * the file cannot be read or adapted (Caddy would refuse it too).
 */
export async function adaptCaddyConfig(
  shell: Shell,
  options: AdaptCaddyConfigOptions,
): Promise<AdaptedCaddyConfig> {
  const { file } = options;
  const adapter = options.adapter ?? (file.endsWith('.json') ? 'json' : 'caddyfile');
  if (!ADAPTER_RE.test(adapter))
    throw new DeployError('CADDY_ADAPT', `invalid Caddy config adapter ${JSON.stringify(adapter)}`);
  if (adapter === 'json') {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new DeployError(
        'CADDY_ADAPT',
        `cannot read Caddy's config ${file}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    const parsed = parseJson(text);
    if (!parsed.ok)
      throw new DeployError('CADDY_ADAPT', `Caddy's config ${file} is not JSON: ${parsed.message}`);
    return { config: parsed.value, log: '' };
  }
  const caddy = options.caddy ?? 'caddy';
  const r = await shell.run(caddy, ['adapt', '--config', file, '--adapter', adapter], {
    timeoutMs: options.timeoutMs ?? 60_000,
  });
  if (r.exitCode !== 0) {
    const why =
      r.exitCode === 127 ? `${caddy} not found` : r.stderr.trim() || `exit ${r.exitCode ?? r.signal}`;
    throw new DeployError('CADDY_ADAPT', `caddy adapt --config ${file} --adapter ${adapter} failed: ${why}`, {
      details: { exitCode: r.exitCode, stderr: r.stderr },
    });
  }
  const parsed = parseJson(r.stdout);
  if (!parsed.ok)
    throw new DeployError('CADDY_ADAPT', `caddy adapt --config ${file} printed no JSON: ${parsed.message}`);
  return { config: parsed.value, log: r.stderr.trim() };
}
