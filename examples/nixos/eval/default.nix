# Evaluates ../deployer.nix with nixpkgs' module system (lib.evalModules), without nixpkgs or NixOS: ./stubs.nix
# declares the NixOS options it uses, ./host.nix is the host (as is, and with caddy.enable = false). Prints
# what NixOS would get, as JSON:
#   nix-instantiate --eval --strict --json --read-write-mode examples/nixos/eval \
#     --arg lib 'import /path/to/nixpkgs.lib/lib' --argstr libRev <git revision of that checkout>
# scripts/eval-nixos-module.sh runs this and writes ./snapshot.json, which the tests check.
{
  lib,
  libRev ? "unknown",
}:

let
  evaluate =
    modules:
    let
      inherit
        (lib.evalModules {
          modules = [
            ./stubs.nix
            ../deployer.nix
          ]
          ++ modules;
        })
        config
        ;
      failed = lib.filter (a: !a.assertion) config.assertions;
    in
    if failed != [ ] then
      throw (lib.concatMapStringsSep "\n" (a: a.message) failed)
    else
      {
        inherit (config) warnings;
        deployerConfig = builtins.fromJSON config.environment.etc."omni-deploy/deployer.json".text;
        systemPackages = map toString config.environment.systemPackages;
        services = lib.mapAttrs (_: s: s // { path = map toString s.path; }) config.systemd.services;
        timers = config.systemd.timers;
        caddy = config.services.caddy;
        sysctl = config.boot.kernel.sysctl;
        tmpfiles = config.systemd.tmpfiles.rules;
        nixSettings = config.nix.settings;
      };
in
{
  # What the snapshot was made from: a test compares these hashes with the files, without needing lib.
  sources = lib.genAttrs [
    "deployer.nix"
    "package.nix"
    "eval/default.nix"
    "eval/stubs.nix"
    "eval/host.nix"
  ] (
    file: builtins.hashFile "sha256" (../. + "/${file}")
  );
  lib = {
    rev = libRev;
    inherit (lib) version;
  };
  # package.nix as far as lib alone goes: buildNpmPackage (nixpkgs) is a stub that returns its arguments, and the
  # version is read through the fileset of sources (so every path it names exists).
  package =
    let
      args = import ../package.nix {
        inherit lib;
        buildNpmPackage = lib.id;
        nodejs_20 = "nodejs_20";
      };
    in
    {
      inherit (args) pname npmBuildScript npmDepsHash;
      inherit (args.meta) mainProgram;
      versionFromPackageJson = args.version == (lib.importJSON ../../../package.json).version;
    };
  hosts = {
    biz = evaluate [ ./host.nix ];
    without-caddy = evaluate [
      ./host.nix
      { services.omni-deployer.caddy.enable = false; }
    ];
  };
  # Variations of biz, as far as they differ.
  variants = {
    # services.caddy.settings (JSON): NixOS's adapter is null; caddy-config is told the file is JSON.
    jsonCaddyConfig =
      (evaluate [
        ./host.nix
        { services.caddy.adapter = null; }
      ]).services.caddy.serviceConfig.ExecStartPre;
    # services.caddy.resume is refused with the module's message (an assertion).
    resume =
      let
        tried = builtins.tryEval (
          builtins.deepSeq (evaluate [
            ./host.nix
            { services.caddy.resume = true; }
          ]) "evaluated"
        );
      in
      if tried.success then tried.value else "refused";
    # No reload when NixOS restarts Caddy instead (enableReload = false): ExecReload is reset only.
    withoutReload =
      (evaluate [
        ./host.nix
        { services.caddy.enableReload = false; }
      ]).services.caddy.serviceConfig.ExecReload;
  };
}
