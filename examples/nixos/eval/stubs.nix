# The NixOS options ../deployer.nix reads and sets, declared loosely enough to evaluate it under nixpkgs' lib
# alone (no nixpkgs, no NixOS here), with NixOS's merge rules where the module depends on them: list options
# concatenate, and a systemd option given as a list concatenates with the others in priority order (mkAfter
# lands last), as NixOS's own systemd option type does. `pkgs` holds stub packages: only their store paths
# are used. Dev and test only: a real NixOS declares all of this itself.
{ lib, pkgs, ... }:

let
  inherit (lib) mkOption types;

  # A store path that looks like one: 32 characters of Nix's base32 alphabet, derived from the name.
  stub =
    name:
    let
      hash = builtins.replaceStrings [ "e" ] [ "z" ] (
        builtins.substring 0 32 (builtins.hashString "sha256" "omni-stub-${name}")
      );
    in
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/${hash}-${name}";
    };

  unitOption = types.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      if lib.any (def: lib.isList def.value) defs then
        lib.concatMap (def: lib.toList def.value) defs
      else
        lib.mergeEqualOption loc defs;
  };

  strs = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };

  unit =
    extra:
    types.submodule {
      options = {
        description = mkOption {
          type = types.str;
          default = "";
        };
        wants = strs;
        requires = strs;
        after = strs;
        before = strs;
        wantedBy = strs;
        unitConfig = mkOption {
          type = types.attrsOf unitOption;
          default = { };
        };
      }
      // extra;
    };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.attrs;
      default = [ ];
    };
    warnings = strs;

    networking.hostName = mkOption {
      type = types.str;
      default = "nixos";
    };

    nix.package = mkOption {
      type = types.package;
      default = stub "nix-2.28.4";
    };
    nix.settings = mkOption {
      type = types.submodule {
        freeformType = types.attrsOf types.anything;
        options.substituters = strs;
        options.trusted-public-keys = strs;
      };
      default = { };
    };

    systemd.package = mkOption {
      type = types.package;
      default = stub "systemd-257.9";
    };
    systemd.services = mkOption {
      type = types.attrsOf (unit {
        path = mkOption {
          type = types.listOf types.package;
          default = [ ];
        };
        serviceConfig = mkOption {
          type = types.attrsOf unitOption;
          default = { };
        };
      });
      default = { };
    };
    systemd.timers = mkOption {
      type = types.attrsOf (unit {
        timerConfig = mkOption {
          type = types.attrsOf unitOption;
          default = { };
        };
      });
      default = { };
    };
    systemd.tmpfiles.rules = strs;

    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    environment.etc = mkOption {
      type = types.attrsOf (
        types.submodule {
          options.text = mkOption {
            type = types.nullOr types.lines;
            default = null;
          };
        }
      );
      default = { };
    };

    boot.kernel.sysctl = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };

    services.caddy = {
      enable = mkOption {
        type = types.bool;
        default = false;
      };
      package = mkOption {
        type = types.package;
        default = pkgs.caddy;
      };
      # NixOS: "caddyfile" for its generated Caddyfile or a configFile of the user's, null (JSON) with `settings`.
      adapter = mkOption {
        type = types.nullOr types.str;
        default = "caddyfile";
      };
      resume = mkOption {
        type = types.bool;
        default = false;
      };
      enableReload = mkOption {
        type = types.bool;
        default = true;
      };
      globalConfig = mkOption {
        type = types.lines;
        default = "";
      };
      extraConfig = mkOption {
        type = types.lines;
        default = "";
      };
    };
  };

  config._module.args.pkgs = {
    caddy = stub "caddy-2.10.2";
    getent = stub "getent-glibc-2.40";
    iproute2 = stub "iproute2-6.14.0";
    omni-deploy = stub "omni-deploy-0.1.0";
  };
}
