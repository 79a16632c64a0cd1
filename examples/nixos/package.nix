# @omni/deploy as a Nix package (bin/deployer, bin/push), built from this repository with nixpkgs'
# buildNpmPackage. In a NixOS configuration next to ./deployer.nix:
#   services.omni-deployer.package = pkgs.callPackage ./package.nix { npmDepsHash = "sha256-..."; };
# npmDepsHash is the hash of the npm dependencies package-lock.json pins. Leave it out the first time: the build
# fails with "hash mismatch ... got: sha256-..."; pass that value. It changes whenever package-lock.json does.
# Only parsed on this project's machines (no nixpkgs there); see docs/operations.md.
{
  lib,
  buildNpmPackage,
  nodejs_20,
  # What the build reads, and nothing else of the checkout (not node_modules, dist or docs).
  src ? lib.cleanSourceWith {
    name = "omni-deploy-source";
    src = ../..;
    filter =
      path: _type:
      lib.elem (lib.head (lib.splitString "/" (lib.removePrefix "${toString ../..}/" (toString path)))) [
        "package.json"
        "package-lock.json"
        "tsconfig.json"
        "tsup.config.ts"
        "bin"
        "src"
        "schema"
      ];
  },
  npmDepsHash ? lib.fakeHash,
}:

buildNpmPackage {
  pname = "omni-deploy";
  version = (lib.importJSON (src + "/package.json")).version;
  inherit src npmDepsHash;
  # package.json engines: node >= 20.19.
  nodejs = nodejs_20;
  # `npm run build` (tsup) writes dist/; the install step then keeps package.json's "files" (dist, schema),
  # drops the devDependencies and links its "bin" entries into $out/bin, their `#!/usr/bin/env node` patched
  # to this nodejs.
  npmBuildScript = "build";

  meta = {
    description = "Deploy Nix-built services to systemd hosts without rebuilding NixOS";
    license = lib.licenses.mit;
    mainProgram = "deployer";
    platforms = lib.platforms.linux;
  };
}
