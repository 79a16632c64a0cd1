#!/bin/sh
# The README's first command: what the deployer does with the example manifests, on a fresh machine.
set -eu
cd "$(dirname "$0")/.."
deployer() { node dist/bin/deployer.js "$@"; }
step() { printf '\n\033[1m$ deployer %s\033[0m\n' "$*"; }

step validate examples/manifest.json --host biz
deployer validate examples/manifest.json --host biz

step plan --manifest examples/manifest.json --host biz
deployer plan --manifest examples/manifest.json --host biz

step plan --manifest examples/manifest.json --previous examples/manifests/manifest-20250116T090000.000Z.json --host biz
deployer plan --manifest examples/manifest.json --previous examples/manifests/manifest-20250116T090000.000Z.json --host biz

printf '\n\033[1m$ deployer validate - (a hostile manifest on stdin)\033[0m\n'
sed -e 's#"command": "podcastitlater-web"#"command": "../../../bin/sh"#' \
    -e 's#"AREA": "Live"#"AREA": "Live\\nExecStartPre=/bin/rm -rf /"#' examples/manifest.json |
  deployer validate - --host biz || echo "(exit $? — refused, nothing touched)"
