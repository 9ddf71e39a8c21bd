#!/bin/sh
# Run inside the Dockerfile's runtime-files stage: copies into an empty DEST only what the plugin runs —
# node (stripped), ip, iptables and ebtables (the nft multi-call binary and its extension modules), sh,
# mount and setpriv for the entrypoint — with every shared library they load, at the paths the loader uses.
# The plugin's rootfs is this tree plus the compiled plugin: no shell utilities, apt, npm or docs.
#
# usage: sh runtime-rootfs.sh DEST
set -eu
dest=${1:?usage: runtime-rootfs.sh DEST}

# Copies a file to the same absolute path under DEST, following links to the real file.
copy() {
  mkdir -p "$dest$(dirname "$1")"
  cp -L "$1" "$dest$1"
}

# Every absolute path in `ldd` output is a library or the ELF interpreter the program needs.
copy_libraries() {
  for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
    [ -e "$dest$lib" ] || copy "$lib"
  done
}

need() {
  path=$(command -v "$1") || {
    echo "runtime-rootfs.sh: $1 is not in this image" >&2
    exit 1
  }
  readlink -f "$path"
}

node=$(need node)
ip=$(need ip)
xtables=$(need xtables-nft-multi)
sh=$(need sh)
mount=$(need mount)
setpriv=$(need setpriv)

mkdir -p "$dest/usr/local/bin" "$dest/usr/sbin" "$dest/usr/bin" "$dest/bin"
cp "$node" "$dest/usr/local/bin/node"
# Node's symbol table and debug information are an eighth of its size; JavaScript stack traces do not
# need them.
strip "$dest/usr/local/bin/node"
cp "$ip" "$dest/usr/sbin/ip"
cp "$xtables" "$dest/usr/sbin/xtables-nft-multi"
cp "$sh" "$dest/bin/sh"
cp "$mount" "$dest/bin/mount"
cp "$setpriv" "$dest/usr/bin/setpriv"
# xtables-nft-multi acts as the tool its argv[0] names: every name Debian gives it, with the plain
# names (iptables, iptables-restore, …) on the nft backend. nft, because it is what current
# distributions and dockerd itself use; the rules must live in the same backend as the host's.
for family in iptables ip6tables ebtables arptables; do
  for suffix in "" -save -restore; do
    ln -s xtables-nft-multi "$dest/usr/sbin/$family$suffix"
    ln -s xtables-nft-multi "$dest/usr/sbin/$family-nft$suffix"
  done
done
for binary in "$node" "$ip" "$xtables" "$sh" "$mount" "$setpriv"; do copy_libraries "$binary"; done

# iptables and ebtables load each match and target (comment, SNAT, …) from this folder at run time.
modules=""
for candidate in /usr/lib/*/xtables /usr/lib64/xtables /usr/lib/xtables; do
  if [ -d "$candidate" ]; then
    modules=$candidate
    break
  fi
done
[ -n "$modules" ] || {
  echo "runtime-rootfs.sh: no xtables extension folder" >&2
  exit 1
}
mkdir -p "$dest$modules"
cp -L "$modules"/*.so "$dest$modules/"
for module in "$modules"/*.so; do copy_libraries "$module"; done

# Protocol and ethertype names (-p tcp, -p ARP) and iproute2's tables, when the image has them.
for file in /etc/protocols /etc/ethertypes /etc/iproute2 /usr/share/iproute2; do
  if [ -e "$file" ]; then
    mkdir -p "$dest$(dirname "$file")"
    cp -RL "$file" "$dest$file"
  fi
done

# Mount points and folders the plugin and dockerd expect: dockerd bind-mounts the plugin's socket
# folder on /run/docker/plugins, and (config.json) the host's /var/lib on /var/lib and the host's
# /var/run, which holds docker.sock, on /var/run.
mkdir -p "$dest/run/docker/plugins" "$dest/var/lib" "$dest/var/run" "$dest/tmp" "$dest/proc" "$dest/sys" "$dest/dev" "$dest/etc"
chmod 1777 "$dest/tmp"
: >"$dest/etc/hosts"
: >"$dest/etc/resolv.conf"
