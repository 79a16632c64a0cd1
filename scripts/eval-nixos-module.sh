#!/bin/sh
# Evaluates examples/nixos/deployer.nix under nixpkgs' lib and writes examples/nixos/eval/snapshot.json, which
# test/nixos-module.test.ts checks (units verified, config accepted by the deployer). Run it after changing the
# module or anything under examples/nixos/eval/. Needs Nix and a checkout of nixpkgs' lib, e.g.
#   git clone https://github.com/nix-community/nixpkgs.lib /tmp/nixpkgs.lib
#   sh scripts/eval-nixos-module.sh /tmp/nixpkgs.lib
# (the directory holding lib/, or lib/ itself). Set NIXPKGS_LIB_REV when it is not a git checkout.
set -eu
dir=${1:?usage: eval-nixos-module.sh <nixpkgs.lib checkout>}
[ -f "$dir/lib/default.nix" ] && dir=$dir/lib
[ -f "$dir/default.nix" ] || { echo "no nixpkgs lib in ${1}" >&2; exit 2; }
rev=${NIXPKGS_LIB_REV:-$(git -C "$dir" rev-parse HEAD 2>/dev/null || echo unknown)}
root=$(cd "$(dirname "$0")/.." && pwd)
lib=$(cd "$dir" && pwd)
NIX_CONFIG="${NIX_CONFIG:-}
experimental-features = nix-command
substituters ="
export NIX_CONFIG
out=$root/examples/nixos/eval/snapshot.json
nix-instantiate --eval --strict --json --read-write-mode "$root/examples/nixos/eval" \
  --arg lib "import $lib" --argstr libRev "$rev" >"$out.tmp"
# Formatted as the repository's formatter would, so that `biome check` passes on it.
(cd "$root" && npx --no-install biome format --stdin-file-path=examples/nixos/eval/snapshot.json) \
  <"$out.tmp" >"$out.fmt"
rm "$out.tmp"
mv "$out.fmt" "$out"
echo "wrote examples/nixos/eval/snapshot.json (nixpkgs lib $rev)"
