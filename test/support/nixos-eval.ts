/**
 * The evaluation of the NixOS module (examples/nixos/eval/snapshot.json, written by
 * scripts/eval-nixos-module.sh) and unit files rendered from it the way NixOS renders them, for tests that
 * check what the module generates against real programs (the deployer, systemd, Caddy).
 */
import { readFileSync } from 'node:fs';

export const SNAPSHOT_FILE = new URL('../../examples/nixos/eval/snapshot.json', import.meta.url).pathname;

/** A unit option value: a list gives one line per element. */
export type UnitValue = string | number | boolean | (string | number | boolean)[];

/** What NixOS gives a systemd unit, as the evaluation records it (eval/stubs.nix declares these options). */
export interface NixosUnit {
  description: string;
  wants: string[];
  requires: string[];
  after: string[];
  before: string[];
  wantedBy: string[];
  unitConfig: Record<string, UnitValue>;
  path?: string[];
  serviceConfig?: Record<string, UnitValue>;
  timerConfig?: Record<string, UnitValue>;
}

/** The NixOS options one evaluated host ends up with, as far as the module sets them. */
export interface HostEvaluation {
  deployerConfig: Record<string, unknown>;
  /** environment.systemPackages, as store paths. */
  systemPackages: string[];
  services: Record<string, NixosUnit>;
  timers: Record<string, NixosUnit>;
  caddy: {
    enable: boolean;
    package: string;
    adapter: string | null;
    resume: boolean;
    enableReload: boolean;
    globalConfig: string;
    extraConfig: string;
  };
  sysctl: Record<string, unknown>;
  tmpfiles: string[];
  nixSettings: Record<string, unknown>;
  warnings: string[];
}

/**
 * The whole snapshot: the files it was made from, the nixpkgs lib, package.nix's arguments, two hosts, and
 * what differs in variations of the first (eval/default.nix).
 */
export interface NixosSnapshot {
  sources: Record<string, string>;
  lib: { rev: string; version: string };
  package: Record<string, unknown>;
  hosts: Record<'biz' | 'without-caddy', HostEvaluation>;
  variants: {
    /** caddy.service's ExecStartPre with services.caddy.adapter = null (a JSON config). */
    jsonCaddyConfig: string[];
    /** `refused` when services.caddy.resume = true fails the evaluation. */
    resume: string;
    /** caddy.service's ExecReload with services.caddy.enableReload = false. */
    withoutReload: string[];
  };
}

export function readSnapshot(): NixosSnapshot {
  return JSON.parse(readFileSync(SNAPSHOT_FILE, 'utf8')) as NixosSnapshot;
}

/** The lines of one unit section, as NixOS writes them. */
export function renderSection(entries: Record<string, UnitValue>): string {
  return Object.entries(entries)
    .flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${key}=${String(v)}\n`))
    .join('');
}

/**
 * A unit file from NixOS's unit options, as NixOS renders it: dependencies in [Unit], PATH from `path`, the
 * options as written. NixOS links wantedBy instead of writing [Install]; the [Install] line says the same here.
 */
export function renderNixosUnit(unit: NixosUnit, kind: 'Service' | 'Timer'): string {
  const head: Record<string, UnitValue> = {};
  if (unit.description) head.Description = unit.description;
  for (const [key, list] of [
    ['Wants', unit.wants],
    ['Requires', unit.requires],
    ['After', unit.after],
    ['Before', unit.before],
  ] as const)
    if (list.length) head[key] = list.join(' ');
  const body: Record<string, UnitValue> = {};
  if (unit.path?.length) {
    const dirs = [...unit.path.map((p) => `${p}/bin`), ...unit.path.map((p) => `${p}/sbin`)];
    body.Environment = `"PATH=${dirs.join(':')}"`;
  }
  Object.assign(body, kind === 'Service' ? unit.serviceConfig : unit.timerConfig);
  const install = unit.wantedBy.length ? `\n[Install]\nWantedBy=${unit.wantedBy.join(' ')}\n` : '';
  return `[Unit]\n${renderSection({ ...head, ...unit.unitConfig })}\n[${kind}]\n${renderSection(body)}${install}`;
}

/**
 * Replaces every store path of the evaluation's stub packages, `/nix/store/<hash>-<name>` with an optional
 * `/bin/<program>`, by what `local(name, program)` returns: the stubs have no files, so a test points them at
 * this machine's programs.
 */
export function replaceStorePaths(text: string, local: (name: string, program?: string) => string): string {
  return text.replace(
    /\/nix\/store\/\w{32}-([^/\s":]+)(?:\/bin\/([^\s":]+))?/g,
    (_, name: string, program?: string) => local(name, program),
  );
}

/** Where NixOS's system profile has the programs of environment.systemPackages. */
export const SYSTEM_BIN = '/run/current-system/sw/bin/';

/**
 * The module's lines for caddy.service (`serviceConfig` of the evaluation) as a drop-in for a Debian host: the
 * stub store paths of Caddy and systemd become this host's programs, and the deployer (by its store path or
 * the system profile's) `deployer` (default: where the e2e hosts put its wrapper).
 */
export function caddyDropInOnDebian(
  serviceConfig: Record<string, UnitValue>,
  deployer = '/usr/local/bin/deployer',
): string {
  return replaceStorePaths(`[Service]\n${renderSection(serviceConfig)}`, (name, program) => {
    if (program === undefined) return '/usr';
    return name.startsWith('omni-deploy-') ? deployer : `/usr/bin/${program}`;
  }).replaceAll(`${SYSTEM_BIN}deployer`, deployer);
}

/** The Caddyfile NixOS's caddy module writes to /etc/caddy/caddy_config: `{ globalConfig }`, then extraConfig. */
export function nixosCaddyfile(caddy: HostEvaluation['caddy'], sites = ''): string {
  return `{\n${caddy.globalConfig}}\n${caddy.extraConfig}${sites}`;
}
