#!/usr/bin/env bash
# Builds, once per machine, a Debian root filesystem that carries another release's dockerd, so that the
# end-to-end suites run against the Docker versions users have, not only this machine's docker.io:
#   bookworm -> the machine's own (20.10, nothing to build), trixie -> 26.1, sid -> 28.5.
# The e2e harness (test/helpers/dockerd.ts) runs that dockerd with the rootfs made the root of its own
# mount namespace (pivot_root). The rootfs is cached in $AZURE_VNET_TEST_CACHE (default
# /var/cache/azure-vnet-test), so a rerun on the same machine reuses it; a stamp file marks a complete
# build, so an interrupted one is built again. The Debian mirror is the machine's own apt source.
#
# usage: test/dockerd-rootfs.sh SUITE      prints the rootfs path on stdout
set -euo pipefail

suite=${1:?usage: test/dockerd-rootfs.sh SUITE (trixie or sid)}
case "$suite" in
  trixie | sid) ;;
  *) echo "dockerd-rootfs.sh: SUITE must be trixie (dockerd 26) or sid (dockerd 28), not $suite" >&2; exit 2 ;;
esac
cache=${AZURE_VNET_TEST_CACHE:-/var/cache/azure-vnet-test}
rootfs=$cache/dockerd-$suite
# Bump when the package list changes, so cached trees are rebuilt.
recipe="minbase docker.io iptables iproute2 ca-certificates v1"

if [ -f "$rootfs/.azure-vnet-rootfs" ] && [ "$(cat "$rootfs/.azure-vnet-rootfs")" = "$recipe" ]; then
  echo "$rootfs"
  exit 0
fi

command -v debootstrap >/dev/null || {
  echo "== installing debootstrap" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
}

# The first Debian archive the machine's apt uses (deb822 .sources files or one-line lists), not
# the security archive.
sources=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
mirror=$(
  {
    sed -n 's/^URIs:[[:space:]]*//p' <<<"$sources" | tr ' ' '\n'
    sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' <<<"$sources"
  } | grep -E '/debian/?$' | grep -v security | head -n 1 || true
)
[ -n "$mirror" ] || { echo "dockerd-rootfs.sh: no Debian archive in /etc/apt/sources.list{,.d}" >&2; exit 1; }

echo "== debootstrap $suite from $mirror into $rootfs (about a minute)" >&2
mkdir -p "$cache"
rm -rf "$rootfs" "$rootfs.partial"
debootstrap --variant=minbase --include=docker.io,iptables,iproute2,ca-certificates \
  "$suite" "$rootfs.partial" "$mirror" >&2
# Mount points the harness binds into; the dockerd under test sees the same paths as the host.
mkdir -p "$rootfs.partial/run/docker/plugins" "$rootfs.partial/.oldroot"
echo "$recipe" >"$rootfs.partial/.azure-vnet-rootfs"
mv "$rootfs.partial" "$rootfs"
echo "$rootfs"
