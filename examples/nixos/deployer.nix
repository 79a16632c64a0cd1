# NixOS module for the @omni/deploy deployer (docs/operations.md, "The NixOS module").
#
# NixOS keeps managing the base OS; the deployer manages the services listed in the manifest:
#   imports = [ ./deployer.nix ];
#   services.omni-deployer = {
#     enable = true;
#     package = pkgs.callPackage ./package.nix { npmDepsHash = "sha256-..."; };  # bin/deployer
#     manifest = "s3://omni-nix-cache/manifest.json?region=nyc3&endpoint=https://nyc3.digitaloceanspaces.com&profile=digitalocean";
#     substituter = "s3://omni-nix-cache?region=nyc3&scheme=https&endpoint=nyc3.digitaloceanspaces.com&profile=digitalocean";
#     trustedPublicKeys = [ "omni-cache:..." ];
#   };
#
# Units: omni-deployer.service (one tick) and omni-deployer.timer, the names the Debian examples use too. The
# settings are written to /etc/omni-deploy/deployer.json, where `deployer status` run by hand finds them.
# Caddy starts and reloads from its NixOS config with the deployer's routes already in it (`deployer
# caddy-config`, as examples/caddy/omni-deploy.conf does on Debian), so neither drops a deployed site.
# eval/ evaluates this module under nixpkgs' lib (lib.evalModules) without NixOS; after changing it, refresh
# eval/snapshot.json with scripts/eval-nixos-module.sh.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.omni-deployer;
  name = "omni-deployer";
  configPath = "/etc/omni-deploy/deployer.json";
  adminSocket = "/run/caddy/admin.sock";

  settings = {
    inherit (cfg)
      manifest
      substituter
      trustedPublicKeys
      host
      stateDir
      secretsDir
      keep
      ;
    unitsDir = "/run/systemd/system";
    profilesDir = "/nix/var/nix/profiles/biz";
    gcrootsDir = "/nix/var/nix/gcroots/biz";
    caddyAdmin = if cfg.caddy.enable then "unix/${adminSocket}" else "off";
    caddyServer = cfg.caddy.server;
    caddyListen = cfg.caddy.listen;
    deployTimeoutMs = cfg.deployTimeout;
  }
  // lib.optionalAttrs (cfg.metricsFile != null) { inherit (cfg) metricsFile; }
  // cfg.extraSettings;

  # Caddy as NixOS's caddy module runs it: /etc/caddy/caddy_config (a Caddyfile, or JSON when the adapter is
  # null, i.e. services.caddy.settings), with its package.
  caddy = config.services.caddy;
  caddyBin = "${caddy.package}/bin/caddy";
  caddyAdapter = if caddy.adapter == null then "json" else caddy.adapter;
  # Where `deployer caddy-config` writes the config Caddy loads: caddy.service's runtime directory, owned by
  # the caddy user; the file is 0600 (the Caddyfile's {$ENV} placeholders are filled in).
  caddyConfig = "/run/caddy-omni/caddy.json";
  # Before Caddy starts and before it reloads: the host's Caddy config (/etc/caddy/caddy_config, as NixOS's
  # own lines read it, so a switch that changes it reloads Caddy, not restarts it) with the deployer's routes
  # placed as a tick places them (those Caddy serves now, else the deployer's state). `+`: as root, which reads
  # the deployer's state; Caddy itself runs as caddy. It never fails because of the deployer's settings or
  # state (then: the host's config without routes, with a warning in Caddy's journal).
  # The deployer by its path in the system profile, not its store path: caddy.service's unit text then stays
  # the same when the deployer's package changes, so such a switch does not restart Caddy (a restart closes
  # its listeners for every site). /run/current-system is switched before units are reloaded or started.
  writeCaddyConfig = lib.concatStringsSep " " [
    "+/run/current-system/sw/bin/deployer caddy-config"
    "--config ${configPath}"
    "--caddy-bin ${caddyBin}"
    "--adapter ${caddyAdapter}"
    "/etc/caddy/caddy_config"
    "--out ${caddyConfig}"
  ];
in
{
  options.services.omni-deployer = {
    enable = lib.mkEnableOption "the @omni/deploy deployer";

    package = lib.mkOption {
      type = lib.types.package;
      description = "A package providing bin/deployer: examples/nixos/package.nix builds it with buildNpmPackage.";
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
      defaultText = lib.literalExpression "config.networking.hostName";
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
      # At least 2: the version a rollback returns to must stay.
      type = lib.types.ints.between 2 1000;
      default = 5;
      description = "Versions kept per service (profile generations and GC roots).";
    };

    stateDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/biz-deployer";
      description = "The deployer's state (what runs, last known-good versions) and its lock.";
    };

    secretsDir = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/biz-secrets";
      description = "Directory of the services' env files and credentials (secrets stay out of the manifest and S3).";
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

    extraSettings = lib.mkOption {
      type = lib.types.attrsOf lib.types.anything;
      default = { };
      example = {
        policy.allowUnits = [ "postgresql.service" ];
        onFailure = "logger -t omni-deployer tick failed";
      };
      description = "More keys of the deployer's config file (docs/cli.md, deployer settings; the host policy in docs/security.md), written as given.";
    };

    caddy = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Run Caddy (services.caddy) with its admin API on a unix socket for the deployer, starting and
          reloading from its config with the deployer's routes in it, so that neither a restart nor a
          `nixos-rebuild switch` that reloads Caddy drops a deployed site.
        '';
      };

      server = lib.mkOption {
        type = lib.types.str;
        default = "auto";
        example = "omni";
        description = ''
          The Caddy HTTP server that holds the deployer's routes (the deployer's caddyServer). `auto`: the one
          holding them already, else one named `omni`, else the first listening on :443, else on :80 (a
          Caddyfile site such as `example.org { ... }` or `:80 { ... }` makes one), else a server `omni`
          created on `caddy.listen`. A name is used as given, and created on `caddy.listen` when missing.
        '';
      };

      listen = lib.mkOption {
        type = lib.types.nonEmptyListOf lib.types.str;
        default = [ ":443" ];
        example = [ ":80" ];
        description = ''
          Where the server the deployer creates listens (the deployer's caddyListen), when Caddy has no
          server to use. `:443`: Caddy's automatic HTTPS for the deployer's domains, with the redirect from
          HTTP. `:80`: plain HTTP, for a host behind a load balancer that terminates TLS (then also
          `auto_https off` in services.caddy.globalConfig).
        '';
      };
    };
  };

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        nix.settings = {
          substituters = [ cfg.substituter ];
          trusted-public-keys = cfg.trustedPublicKeys;
        };

        environment.etc."omni-deploy/deployer.json".text = builtins.toJSON settings;
        # `deployer status` and the like by hand, and Caddy's start and reload (below) by a stable path.
        environment.systemPackages = [ cfg.package ];

        systemd.tmpfiles.rules = [
          "d ${cfg.stateDir} 0700 root root -"
          "d ${cfg.secretsDir} 0700 root root -"
          "d /nix/var/nix/gcroots/biz 0755 root root -"
          "d /nix/var/nix/profiles/biz 0755 root root -"
        ];

        systemd.services.${name} = {
          description = "@omni/deploy deployer (one tick)";
          wants = [ "network-online.target" ];
          after = [
            "network-online.target"
            "nix-daemon.service"
          ]
          ++ lib.optional cfg.caddy.enable "caddy.service";
          # At boot the first tick restores the last known-good units from local state before polling S3.
          wantedBy = [ "multi-user.target" ];
          # nix-env/nix-store/nix, systemctl, getent (accounts at pre-flight), ss (who listens on a port);
          # NixOS adds coreutils (stat, id, realpath) to every unit's PATH.
          path = [
            config.nix.package
            config.systemd.package
            pkgs.getent
            pkgs.iproute2
          ];
          serviceConfig = {
            Type = "oneshot";
            ExecStart = "${cfg.package}/bin/deployer apply --config ${configPath}";
            # A tick waits for health gates; give it room, but never let one hang forever.
            TimeoutStartSec = "15min";
            # SIGTERM lets the running tick finish its current step and save state.
            KillMode = "mixed";
          }
          // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };
        };

        systemd.timers.${name} = {
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnBootSec = "30s";
            OnUnitActiveSec = cfg.interval;
            RandomizedDelaySec = "30s";
          };
        };
      }

      (lib.mkIf cfg.caddy.enable {
        assertions = [
          {
            assertion = !caddy.resume;
            message = "services.omni-deployer.caddy: Caddy starts from its config with the deployer's routes (${caddyConfig}); services.caddy.resume would have it start from its autosave instead, with an old admin address after the switch that enables this module. Leave services.caddy.resume false.";
          }
        ];

        services.caddy = {
          enable = true;
          # Only the admin socket: the deployer finds or creates its server (caddy.server, caddy.listen).
          globalConfig = ''
            admin unix/${adminSocket}
          '';
        };

        # NixOS's caddy service has no RuntimeDirectory: without it the admin socket's directory does not exist
        # and Caddy refuses to start ("listen unix /run/caddy/admin.sock: bind: no such file or directory").
        # 0750: root (the deployer) and the caddy user only reach the admin API, which can rewrite every site.
        # caddy-omni holds the config Caddy loads.
        # ExecStart and ExecReload replace NixOS's own lines (mkForce; each list starts with "" to reset the
        # caddy package's unit): Caddy loads the written config, never /etc/caddy/caddy_config directly.
        systemd.services.caddy.serviceConfig = {
          RuntimeDirectory = [
            "caddy"
            "caddy-omni"
          ];
          RuntimeDirectoryMode = "0750";
          ExecStartPre = [ writeCaddyConfig ];
          ExecStart = lib.mkForce [
            ""
            "${caddyBin} run --config ${caddyConfig}"
          ];
          ExecReload = lib.mkForce (
            [ "" ]
            ++ lib.optionals caddy.enableReload [
              writeCaddyConfig
              "${caddyBin} reload --config ${caddyConfig} --force"
            ]
          );
        };

        # Every route change through the admin API is a graceful reload: Caddy opens a new listening socket
        # (SO_REUSEPORT) and closes the old one, and without this Linux resets the connections still queued on
        # the old one (docs/performance.md). Linux >= 5.14.
        boot.kernel.sysctl."net.ipv4.tcp_migrate_req" = lib.mkDefault 1;
      })
    ]
  );
}
