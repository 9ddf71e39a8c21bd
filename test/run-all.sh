#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh Debian 12 machine,
# builds, lints, and runs every suite — unit and API tests, then the end-to-end tests that build an
# emulated Azure VNet from network namespaces and run a private dockerd in it: all of them on the
# machine's dockerd 20.10, then the core suites on dockerd 26 and 28 from cached Debian root
# filesystems (test/dockerd-rootfs.sh; README, "Tested Docker versions"). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test/run-all.sh needs root: the end-to-end tests create network namespaces and run dockerd" >&2
  exit 1
fi

packages=(docker.io iptables busybox-static iproute2 util-linux docker-registry systemd openssl debootstrap)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  # Under systemd the package starts a registry on port 5000 of the whole machine; the managed-plugin
  # test runs its own on loopback inside a test namespace, so the one installed just now is stopped.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry.service
  fi
fi

source test/node24.sh
echo "== npm ci"
npm ci --no-audit --no-fund
echo "== npm audit (production dependencies)"
bash test/audit.sh
echo "== build"
npm run build
echo "== lint"
npm run lint
echo "== unit and API tests"
npm test
timed() {
  local start=$SECONDS
  "$@"
  echo "== $((SECONDS - start)) s"
}
releases=(26:trixie 28:sid)
# Built before any suite runs, so that no test's time includes a debootstrap.
for release in "${releases[@]}"; do
  echo "== root filesystem with dockerd ${release%%:*} (Debian ${release#*:})"
  timed bash test/dockerd-rootfs.sh "${release#*:}"
done
echo "== end-to-end tests (emulated Azure VNet, real dockerd $(dockerd --version | cut -d' ' -f3 | tr -d ,))"
timed npm run test:e2e
for release in "${releases[@]}"; do
  echo "== core end-to-end suites on dockerd ${release%%:*}"
  E2E_DOCKERD=${release%%:*} timed npm run test:e2e:core
done
