# An example host for the evaluation: the module as docs/operations.md shows it, plus the command lines NixOS's
# caddy module itself sets for it (each list starts with "" to reset the caddy package's own unit's), so that
# the module's own lines are seen replacing NixOS's (the evaluation without Caddy keeps them).
{ pkgs, ... }:
{
  networking.hostName = "biz";

  services.omni-deployer = {
    enable = true;
    package = pkgs.omni-deploy;
    manifest = "s3://omni-nix-cache/manifest.json?region=nyc3&endpoint=https://nyc3.digitaloceanspaces.com&profile=digitalocean";
    substituter = "s3://omni-nix-cache?region=nyc3&scheme=https&endpoint=nyc3.digitaloceanspaces.com&profile=digitalocean";
    trustedPublicKeys = [ "omni-cache:2oVYmCfS6Vd0z2eA1+Kq5pFfD0x3cN8k9YrJ8w7T6Qs=" ];
    environmentFile = "/etc/omni-deploy/deployer.env";
    metricsFile = "/var/lib/prometheus-node-exporter/omni-deployer.prom";
    extraSettings.policy = {
      users = [ "pil-web" "pil-worker" ];
      allowUnits = [ "postgresql.service" ];
    };
  };

  systemd.services.caddy.serviceConfig = {
    ExecStart = [
      ""
      "${pkgs.caddy}/bin/caddy run --config /etc/caddy/caddy_config --adapter caddyfile"
    ];
    ExecReload = [
      ""
      "${pkgs.caddy}/bin/caddy reload --config /etc/caddy/caddy_config --adapter caddyfile --force"
    ];
  };
}
