#!/usr/bin/env bash
# Installs or upgrades azure-vnet as a host service: compiles the plugin, puts it with only its
# production dependencies in /opt/azure-vnet, installs the systemd unit and (once) the settings file
# /etc/default/azure-vnet, and restarts the service. Running it again is the upgrade.
#
# usage: packaging/install-host-service.sh [--destdir DIR] [--no-start]
#   --destdir DIR  install under DIR instead of / (packaging, tests); implies --no-start
#   --no-start     do not run systemctl
# Needs root (for /), Node.js 24 or later and npm, and at run time iproute2 and iptables. The unit runs
# the node found on PATH; a node that test/node24.sh put in this checkout's .node/ is copied to
# /opt/azure-vnet/bin/node instead, so that the service does not depend on the checkout.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
destdir=""
start=true
while [ $# -gt 0 ]; do
  case "$1" in
    --destdir) destdir=$(realpath -m "${2:?--destdir needs a folder}"); start=false; shift 2 ;;
    --no-start) start=false; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-host-service.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "install-host-service.sh: $*" >&2; exit 1; }
[ -n "$destdir" ] || [ "$(id -u)" -eq 0 ] || die "run as root, or give --destdir"
node=$(command -v node) || die "no node on PATH (Node.js 24 or later is needed)"
node_major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 24 ] ||
  die "node on PATH is $("$node" --version); Node.js 24 or later is needed (your distribution's or NodeSource's, or source test/node24.sh)"
prefix=/opt/azure-vnet
service_node=$node

work=$(mktemp -d "${TMPDIR:-/tmp}/azure-vnet-install-XXXXXX")
trap 'rm -rf "$work"' EXIT

cd "$repo"
[ -x node_modules/.bin/tsc ] || npm ci --ignore-scripts --no-audit --no-fund
# A fresh output folder keeps the tests and the demo of an earlier `npm run build` out of the install.
npx tsc -p packaging/tsconfig.build.json --outDir "$work/app/dist"
cp package.json package-lock.json "$work/app/"
(cd "$work/app" && npm ci --omit=dev --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error)
"$node" "$work/app/dist/plugin/main.js" --help >/dev/null
case "$(readlink -f "$node")" in
  "$repo"/.node/*)
    install -D -m 0755 "$(readlink -f "$node")" "$work/app/bin/node"
    service_node=$prefix/bin/node
    ;;
esac

# The new tree replaces the old one in two renames; a running plugin has already loaded its modules.
target=$destdir$prefix
mkdir -p "$(dirname "$target")"
rm -rf "$target.new" "$target.old"
cp -a "$work/app" "$target.new"
if [ -e "$target" ]; then mv "$target" "$target.old"; fi
mv "$target.new" "$target"
rm -rf "$target.old"

unit=$destdir/etc/systemd/system/azure-vnet.service
mkdir -p "$(dirname "$unit")"
sed "s#^ExecStart=/usr/bin/node #ExecStart=$service_node #" packaging/azure-vnet.service >"$unit"
chmod 0644 "$unit"
settings=$destdir/etc/default/azure-vnet
if [ ! -e "$settings" ]; then install -D -m 0644 packaging/azure-vnet.default "$settings"; fi
echo "== installed $target ($(du -sh "$target" | cut -f1)), $unit and $settings"

if [ "$start" = true ]; then
  systemctl daemon-reload
  systemctl enable azure-vnet.service
  systemctl restart azure-vnet.service
  echo "== azure-vnet.service restarted; logs: journalctl -u azure-vnet"
fi
