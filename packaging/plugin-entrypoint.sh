#!/bin/sh
# Entrypoint of the managed plugin: makes /proc/sys/net writable, drops every capability but
# CAP_NET_ADMIN, then becomes the plugin itself.
#
# Docker mounts /proc/sys read-only in every plugin container, and the network driver must set
# per-interface sysctls (proxy_arp, proxy_delay) and ip_forward in the host's network namespace. With
# CAP_SYS_ADMIN (config.json) this bind-mounts /proc/sys/net onto itself and makes only that mount
# writable; the rest of /proc/sys stays read-only. The host service needs none of this.
#
# CAP_SYS_ADMIN is needed for those two mounts only, so node never gets it: setpriv empties the
# bounding, inheritable and ambient sets before exec, and a root process's permitted and effective sets
# after exec are its bounding set, here CAP_NET_ADMIN alone (netlink for links, routes and nftables;
# writing /proc/sys/net). no_new_privs keeps it from regaining anything through a setuid binary.
set -eu
if [ ! -w /proc/sys/net/ipv4/ip_forward ]; then
  if ! mount --bind /proc/sys/net /proc/sys/net || ! mount -o remount,bind,rw /proc/sys/net; then
    echo '{"level":"error","msg":"cannot make /proc/sys/net writable — the plugin needs CAP_SYS_ADMIN (see config.json)"}'
    exit 1
  fi
fi
exec /usr/bin/setpriv --bounding-set=-all,+net_admin --inh-caps=-all --ambient-caps=-all --no-new-privs -- \
  /usr/local/bin/node --max-semi-space-size=2 --lite-mode /opt/azure-vnet/dist/plugin/main.js "$@"
