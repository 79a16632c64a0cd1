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
    deployTimeoutMs = cfg.deployTimeout;
  }
  // lib.optionalAttrs (cfg.metricsFile != null) { inherit (cfg) metricsFile; }
  // cfg.extraSettings;

  # PLACEHOLDER (issue 15, item 3: surviving Caddy reloads): the trigger after Caddy starts or reloads. A start
  # or reload of Caddy's config file drops the routes the deployer added through the admin API; this starts a
  # tick at once (`+`: as root, since Caddy runs as its own user) instead of waiting for the timer. The later
  # Caddy work replaces it.
  tickNow = "+${config.systemd.package}/bin/systemctl start --no-block ${name}.service";
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
        description = "Run Caddy with an admin API the deployer can use, whose changes survive restarts.";
      };

      # PLACEHOLDER (issue 15, items 1 and 2: Caddy server discovery, HTTPS): the deployer's server and where it
      # listens. Caddy >= 2.7 names a Caddyfile server after its listener address (`servers <listen> { name }`).
      server = lib.mkOption {
        type = lib.types.str;
        default = "omni";
        description = "Name of the Caddy HTTP server that holds the deployer's routes (the deployer's caddyServer).";
      };

      listen = lib.mkOption {
        type = lib.types.nullOr lib.types.str;
        default = ":80";
        example = ":8080";
        description = ''
          The listener address of that server (a Caddyfile site address: `:80`, `:8080`, `http://:80`). The
          module adds an empty site block for it and names its server `caddy.server`. `null`: the host's own
          Caddy config provides a server of that name.
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
        services.caddy = {
          enable = true;
          # API changes are saved and reloaded at start (caddy run --resume); the deployer also restores its
          # routes on every tick, so a Caddy restarted from its original config heals within one interval.
          resume = true;
          globalConfig = ''
            admin unix/${adminSocket}
          ''
          + lib.optionalString (cfg.caddy.listen != null) ''
            servers ${cfg.caddy.listen} {
              name ${cfg.caddy.server}
            }
          '';
          # An empty site: the server exists (and gets its name) even before the deployer adds a route.
          extraConfig = lib.optionalString (cfg.caddy.listen != null) ''
            ${cfg.caddy.listen} {
            }
          '';
        };

        # NixOS's caddy service has no RuntimeDirectory: without it the admin socket's directory does not exist
        # and Caddy refuses to start ("listen unix /run/caddy/admin.sock: bind: no such file or directory").
        # 0750: root (the deployer) and the caddy user only reach the admin API, which can rewrite every site.
        systemd.services.caddy.serviceConfig = {
          RuntimeDirectory = "caddy";
          RuntimeDirectoryMode = "0750";
          ExecStartPost = lib.mkAfter [ tickNow ];
          # After NixOS's own `caddy reload` (mkAfter: its list starts with "" to reset the upstream unit's).
          ExecReload = lib.mkIf config.services.caddy.enableReload (lib.mkAfter [ tickNow ]);
        };

        # Every route change through the admin API is a graceful reload: Caddy opens a new listening socket
        # (SO_REUSEPORT) and closes the old one, and without this Linux resets the connections still queued on
        # the old one (docs/performance.md). Linux >= 5.14.
        boot.kernel.sysctl."net.ipv4.tcp_migrate_req" = lib.mkDefault 1;
      })
    ]
  );
}
