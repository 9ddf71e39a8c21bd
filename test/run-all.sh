#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh Debian 12 machine,
# builds, lints, and runs every suite — unit and API tests, then the end-to-end tests that build an
# emulated Azure VNet from network namespaces and run a private dockerd in it. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "test/run-all.sh needs root: the end-to-end tests create network namespaces and run dockerd" >&2
  exit 1
fi

packages=(docker.io iptables busybox-static iproute2 util-linux docker-registry systemd openssl)
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

echo "== npm ci"
npm ci --no-audit --no-fund
echo "== build"
npm run build
echo "== lint"
npm run lint
echo "== unit and API tests"
npm test
echo "== end-to-end tests (emulated Azure VNet, real dockerd)"
npm run test:e2e
