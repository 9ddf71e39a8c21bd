#!/usr/bin/env bash
# Makes the Dockerfile's Node base image (ARG NODE_IMAGE) exist on a machine that cannot pull it: a
# Debian rootfs from this machine's own installed packages, the node and npm on PATH, and npm's
# cache of package-lock.json's packages, imported into the local Docker under that same name.
#
# Why each extra is there: `docker build` runs its RUN steps in containers that have no network here,
# so the stand-in already holds what the Dockerfile would otherwise download: iproute2, iptables and
# binutils (the Dockerfile installs them only when the base lacks them), and the npm cache (the image
# sets npm_config_offline=true, so a missing package fails at once instead of waiting for a registry).
#
# usage: packaging/offline-base-image.sh [--name IMAGE]
#   --name IMAGE   default: the default of ARG NODE_IMAGE in the Dockerfile. Its Node version and
#                  Debian release must be this machine's, or the stand-in would carry a false name.
# environment: DOCKER (CLI to run, default docker), DOCKER_HOST and friends as the CLI reads them.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
docker_cli=${DOCKER:-docker}
name=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=${2:?--name needs an image name}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "offline-base-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$name" ]; then
  name=$(sed -n 's/^ARG NODE_IMAGE=\(.*\)$/\1/p' "$repo/Dockerfile" | head -n 1)
  [ -n "$name" ] || { echo "offline-base-image.sh: no ARG NODE_IMAGE=... in $repo/Dockerfile" >&2; exit 1; }
fi

die() { echo "offline-base-image.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root: the rootfs must keep root ownership of every file"

node_bin=$(readlink -f "$(command -v node)") || die "no node on PATH"
node_version=$(node -p process.versions.node)
# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
tag=${name##*:}
case "$tag" in
  "$node_version"-"$codename"*) ;;
  *) die "$name does not describe this machine (node $node_version, Debian $codename); pass --name node:$node_version-$codename-slim and build with --build-arg NODE_IMAGE=that, or put the node that $name names first on PATH (source test/node24.sh)" ;;
esac
npm_cache=$(npm config get cache)/_cacache
# The npm on PATH, wherever it is installed: `npm root -g` would name the global folder of the node
# running it, which for a node without npm of its own (test/node24.sh's) holds no npm.
npm_dir=$(readlink -f "$(command -v npm)") || die "no npm on PATH"
npm_dir=$(dirname "$(dirname "$npm_dir")")
[ -f "$npm_dir/bin/npm-cli.js" ] && [ "$(node -p "require('$npm_dir/package.json').name")" = npm ] ||
  die "the npm on PATH is not an npm package folder's bin/npm-cli.js ($npm_dir)"

stage=$(mktemp -d "${TMPDIR:-/tmp}/azure-vnet-base-XXXXXX")
trap 'rm -rf "$stage"' EXIT

# The packages a Debian slim image would have that the Dockerfile's steps run (sh, ldd, cp, find,
# mount, setpriv), plus what its runtime-files stage installs (iproute2, iptables, binutils), closed over
# Pre-Depends and Depends as installed here.
roots=(base-files dash bash coreutils libc-bin findutils grep sed mount util-linux iproute2 iptables binutils netbase
  libstdc++6 libgcc-s1)
declare -A installed=() provider=() wanted=()
while read -r status pkg provides; do
  [ "$status" = ii ] || continue
  installed[$pkg]=1
  for virtual in ${provides//,/ }; do
    case "$virtual" in "(" | "="* | *")") continue ;; esac
    provider[$virtual]=${provider[$virtual]:-$pkg}
  done
done < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Provides}\n' | sed 's/([^)]*)//g')

resolve() { # one "a (>= 1) | b" group -> the first installed package that satisfies it
  local alternative
  IFS='|' read -ra alternatives <<<"$1"
  for alternative in "${alternatives[@]}"; do
    alternative=$(sed -e 's/([^)]*)//g' -e 's/:any//' -e 's/[[:space:]]//g' <<<"$alternative")
    if [ -n "${installed[$alternative]:-}" ]; then echo "$alternative"; return; fi
    if [ -n "${provider[$alternative]:-}" ]; then echo "${provider[$alternative]}"; return; fi
  done
}
queue=("${roots[@]}")
while [ ${#queue[@]} -gt 0 ]; do
  pkg=${queue[0]}
  queue=("${queue[@]:1}")
  [ -z "${wanted[$pkg]:-}" ] || continue
  [ -n "${installed[$pkg]:-}" ] || die "package $pkg is not installed here (apt-get install $pkg)"
  wanted[$pkg]=1
  deps=$(dpkg-query -W -f='${Pre-Depends}, ${Depends}' "$pkg")
  IFS=',' read -ra groups <<<"$deps"
  for group in "${groups[@]}"; do
    [ -n "${group//[[:space:]]/}" ] || continue
    dep=$(resolve "$group")
    [ -z "$dep" ] || queue+=("$dep")
  done
done

# Their files, minus documentation as in Debian's slim images. Debian 12 is merged-/usr: /bin, /sbin,
# /lib and /lib64 are links into /usr, so every path is stored under its /usr name and the links are
# made once, instead of each package turning them into real directories.
filelist=$stage/files
dpkg-query -L "${!wanted[@]}" |
  grep '^/' |
  grep -Ev '^/usr/share/(doc|man|info|locale|lintian)(/|$)' |
  sed -E 's#^/(bin|sbin|lib|lib64)(/|$)#/usr/\1\2#' |
  grep -Ev '^/usr/(bin|sbin|lib|lib64)$' |
  sort -u >"$filelist.all"
while IFS= read -r path; do
  if [ -e "$path" ] || [ -L "$path" ]; then printf '%s\n' "${path#/}"; fi
done <"$filelist.all" >"$filelist"
# Alternatives (iptables -> iptables-nft, awk -> mawk …) are links made by maintainer scripts, which
# dpkg does not list: keep those whose current choice is a file we copy.
for admin in /var/lib/dpkg/alternatives/*; do
  alternative=$(basename "$admin")
  mapfile -t lines <"$admin"
  links=("${lines[1]}")
  names=("$alternative")
  for ((i = 2; i + 1 < ${#lines[@]} && ${#lines[i]} > 0; i += 2)); do
    names+=("${lines[i]}")
    links+=("${lines[i + 1]}")
  done
  for i in "${!names[@]}"; do
    target=$(readlink "/etc/alternatives/${names[i]}" 2>/dev/null) || continue
    if grep -Fxq "${target#/}" "$filelist"; then
      printf '%s\n' "etc/alternatives/${names[i]}" "${links[i]#/}" >>"$filelist"
    fi
  done
done

rootfs=$stage/rootfs
mkdir -p "$rootfs"
for dir in bin sbin lib lib64; do ln -s "usr/$dir" "$rootfs/$dir"; done
tar -C / --no-recursion -cf - -T "$filelist" | tar -C "$rootfs" -xpf -

# Node and npm where the official image keeps them, and a root user for npm's home directory.
install -D -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
mkdir -p "$rootfs/root/.npm" "$rootfs/tmp" "$rootfs/var/tmp" "$rootfs/etc"
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 0700 "$rootfs/root"
printf '%s\n' 'root:x:0:0:root:/root:/bin/bash' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' \
  >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$rootfs/etc/group"
# Starting from this machine's own cache saves downloading what `npm ci` here already fetched.
if [ -d "$npm_cache" ]; then cp -a "$npm_cache" "$rootfs/root/.npm/_cacache"; fi
# This repository's package-lock.json omits tarball URLs (npm's omit-lockfile-registry-resolved), so
# npm also needs each package's registry metadata. An install against the copied cache proves it holds
# all of it, and fetches what is missing while this machine can still reach the registry.
mkdir "$stage/project"
cp "$repo/package.json" "$repo/package-lock.json" "$stage/project/"
(cd "$stage/project" && npm ci --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error \
  --cache "$rootfs/root/.npm" >/dev/null) ||
  die "npm could not install package-lock.json from its cache or the registry"
rm -rf "$stage/project" "$rootfs/root/.npm/_logs"
ldconfig -r "$rootfs"

echo "== importing $name ($(du -sh "$rootfs" | cut -f1), $(wc -l <"$filelist") files of ${#wanted[@]} packages)"
tar -C "$rootfs" -cf - . |
  "$docker_cli" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$node_version" \
    --change 'ENV npm_config_offline=true' \
    --change 'LABEL org.opencontainers.image.description="offline stand-in assembled by azure-vnet packaging/offline-base-image.sh"' \
    --change 'CMD ["node"]' \
    - "$name"
