#!/usr/bin/env bash
# A push.sh that keeps NixOS deploys and sends service deploys through @omni/deploy (docs/design.md):
#   push.sh Biz.nix                         NixOS deploy (unchanged): build, copy to the host, switch
#   push.sh Biz/PodcastItLater/Web.py [service] [push options...]
#                                           service deploy: bild --cache, then push deploy --wait
# The service name defaults to the target's last two path parts, lowercased: podcastitlater-web.
# Settings come from deploy/push.json (see examples/deploy/push.json); the signing key from NIX_CACHE_KEY.
set -euo pipefail

target=${1:?usage: push.sh <target> [service] [push options...]}
shift

case "$target" in
  *.nix)
    host=${DEPLOY_HOST:-biz}
    out=$(bild "$target")
    nix copy --to "ssh://root@$host" "$out"
    ssh "root@$host" "$out/bin/switch-to-configuration" switch
    ;;
  *)
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
      service=$1
      shift
    else
      dir=$(basename "$(dirname "$target")")
      file=$(basename "${target%.*}")
      service=$(printf '%s-%s' "$dir" "$file" | tr '[:upper:]' '[:lower:]')
    fi
    exec npx --no-install push deploy "$service" --target "$target" --wait "$@"
    ;;
esac
