# NixOS module for the @omni/deploy deployer (see docs/operations.md and docs/design.md).
#
# NixOS keeps managing the base OS; the deployer manages the services listed in the manifest:
#   imports = [ ./deployer.nix ];
#   services.omni-deployer = {
#     enable = true;
#     package = pkgs.callPackage ./omni-deploy.nix { };   # a derivation with bin/deployer
#     manifest = "s3://omni-nix-cache/manifest.json?region=nyc3&endpoint=https://nyc3.digitaloceanspaces.com&profile=digitalocean";
#     substituter = "s3://omni-nix-cache?region=nyc3&scheme=https&endpoint=nyc3.digitaloceanspaces.com&profile=digitalocean";
#     trustedPublicKeys = [ "omni-cache:..." ];
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.omni-deployer;
  settings = {
    inherit (cfg) manifest substituter trustedPublicKeys stateDir secretsDir keep;
    host = cfg.host;
    unitsDir = "/run/systemd/system";
    profilesDir = "/nix/var/nix/profiles/biz";
    gcrootsDir = "/nix/var/nix/gcroots/biz";
    caddyAdmin = if cfg.caddy.enable then "unix//run/caddy/admin.sock" else "off";
    caddyServer = cfg.caddy.server;
    deployTimeoutMs = cfg.deployTimeout;
  } // lib.optionalAttrs (cfg.metricsFile != null) { metricsFile = cfg.metricsFile; };
  configFile = pkgs.writeText "omni-deployer.json" (builtins.toJSON settings);
in
{
  options.services.omni-deployer = {
    enable = lib.mkEnableOption "the @omni/deploy deployer";

    package = lib.mkOption {
      type = lib.types.package;
      description = "A package providing bin/deployer (for example built with buildNpmPackage from @omni/deploy).";
    };

    manifest = lib.mkOption {
      type = lib.types.str;
      description = "Where the manifest lives: s3://bucket/key?region=&endpoint=&profile=, or file:///path.";
    };

    substituter = lib.mkOption {
      type = lib.types.str;
      description = "The binary cache the closures are copied from.";
    };

    trustedPublicKeys = lib.mkOption {
      type = lib.types.nonEmptyListOf lib.types.str;
      description = "Keys the closures must be signed with (name:base64). Unsigned closures are refused.";
    };

    host = lib.mkOption {
      type = lib.types.str;
      default = config.networking.hostName;
      description = "This host's name in the manifest's hosts lists.";
    };

    interval = lib.mkOption {
      type = lib.types.str;
      default = "5min";
      description = "How often to poll the manifest (systemd time span).";
    };

    deployTimeout = lib.mkOption {
      type = lib.types.str;
      default = "30s";
      description = "How long a changed service may take to become healthy before it is rolled back.";
    };

    keep = lib.mkOption {
      type = lib.types.ints.positive;
      default = 5;
      description = "Versions kept per service (profile generations and GC roots).";
    };

    stateDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/biz-deployer";
    };

    secretsDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/biz-secrets";
      description = "Directory of the services' env files (secrets stay out of the manifest and S3).";
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      description = "Environment for S3 access (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, ...).";
    };

    metricsFile = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      description = "Prometheus textfile written after every tick.";
    };

    caddy = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = "Run Caddy with an admin API the deployer can use, whose changes survive restarts.";
      };
      server = lib.mkOption {
        type = lib.types.str;
        default = "omni";
        description = "Name of the Caddy HTTP server that holds the deployer's routes.";
      };
    };
  };

  config = lib.mkIf cfg.enable {
    nix.settings = {
      substituters = [ cfg.substituter ];
      trusted-public-keys = cfg.trustedPublicKeys;
    };

    services.caddy = lib.mkIf cfg.caddy.enable {
      enable = true;
      # API changes are saved and reloaded at start (caddy run --resume); the deployer also restores its
      # routes on every tick, so a Caddy restarted from its original config heals within one interval.
      resume = true;
      globalConfig = ''
        admin unix//run/caddy/admin.sock
      '';
    };

    systemd.tmpfiles.rules = [
      "d ${cfg.stateDir} 0700 root root -"
      "d ${cfg.secretsDir} 0700 root root -"
      "d /nix/var/nix/gcroots/biz 0755 root root -"
      "d /nix/var/nix/profiles/biz 0755 root root -"
    ];

    systemd.services.omni-deployer = {
      description = "@omni/deploy deployer (one tick)";
      wants = [ "network-online.target" ];
      after = [ "network-online.target" "nix-daemon.service" ] ++ lib.optional cfg.caddy.enable "caddy.service";
      # At boot the first tick restores the last known-good units from local state before polling S3.
      wantedBy = [ "multi-user.target" ];
      path = [ config.nix.package config.systemd.package ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${cfg.package}/bin/deployer apply --config ${configFile}";
        TimeoutStartSec = "15min";
        KillMode = "mixed";
      } // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };
    };

    systemd.timers.omni-deployer = {
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "30s";
        OnUnitActiveSec = cfg.interval;
        RandomizedDelaySec = "30s";
      };
    };
  };
}
