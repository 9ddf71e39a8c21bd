#!/bin/sh
# Entrypoint of the managed plugin: makes /proc/sys/net writable, then becomes the plugin itself.
#
# Docker mounts /proc/sys read-only in every plugin container, and the network driver must set
# per-interface sysctls (proxy_arp, proxy_delay) and ip_forward in the host's network namespace. With
# CAP_SYS_ADMIN (config.json) this bind-mounts /proc/sys/net onto itself and makes only that mount
# writable; the rest of /proc/sys stays read-only. The host service needs none of this.
set -eu
if [ ! -w /proc/sys/net/ipv4/ip_forward ]; then
  if ! mount --bind /proc/sys/net /proc/sys/net || ! mount -o remount,bind,rw /proc/sys/net; then
    echo '{"level":"error","msg":"cannot make /proc/sys/net writable — the plugin needs CAP_SYS_ADMIN (see config.json)"}'
    exit 1
  fi
fi
exec /usr/local/bin/node --max-semi-space-size=2 --lite-mode /opt/azure-vnet/dist/plugin/main.js "$@"
