#!/usr/bin/env bash
# The one command that makes the managed plugin: builds the Dockerfile's image, exports a container of
# it as the rootfs, creates the plugin from that rootfs and config.json, and with --push pushes it.
#
# usage: packaging/build-plugin.sh [--name NAME] [--push] [-- DOCKER-BUILD-ARGS...]
#   --name NAME  plugin name, a registry reference (default azure-vnet:latest); push needs the
#                registry in it, e.g. registry.example.com/azure-vnet:0.1.0
#   --push       docker plugin push NAME afterwards
#   after --     passed to docker build, e.g. --build-arg NODE_IMAGE=... or --network none
# environment: DOCKER (CLI to run, default docker), DOCKER_HOST and friends as the CLI reads them.
# A plugin of the same name on this dockerd is replaced; an enabled one is refused (disable it first).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
docker_cli=${DOCKER:-docker}
name=azure-vnet:latest
push=false
build_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=${2:?--name needs a plugin name}; shift 2 ;;
    --push) push=true; shift ;;
    --) shift; build_args=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-plugin.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$name" in *:*) ;; *) name=$name:latest ;; esac
# `command` runs the program even when DOCKER is unset and docker_cli is "docker", this function's own
# name: without it the function would call itself until bash runs out of stack.
docker() { command "$docker_cli" "$@"; }
elapsed() { echo "$((SECONDS - $1)) s"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/azure-vnet-plugin-XXXXXX")
container=""
cleanup() {
  if [ -n "$container" ]; then docker rm -f "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The image is named after the plugin so that a second build reuses its cached layers.
image="azure-vnet-rootfs:$(printf '%s' "$name" | tr -c 'a-zA-Z0-9_.-' '-')"
start=$SECONDS
echo "== docker build -t $image ${build_args[*]}"
docker build -t "$image" "${build_args[@]}" "$repo"
echo "== built in $(elapsed "$start")"

start=$SECONDS
container=$(docker create "$image")
mkdir "$work/rootfs"
docker export "$container" | tar -C "$work/rootfs" -xf -
docker rm "$container" >/dev/null
container=""
cp "$repo/config.json" "$work/config.json"
echo "== rootfs $(du -sh --apparent-size "$work/rootfs" | cut -f1) ($(du -s --apparent-size --block-size=1 "$work/rootfs" | cut -f1) bytes)"

if docker plugin inspect "$name" >/dev/null 2>&1; then
  if [ "$(docker plugin inspect -f '{{.Enabled}}' "$name")" = true ]; then
    echo "build-plugin.sh: plugin $name is enabled here; docker plugin disable $name first" >&2
    exit 1
  fi
  docker plugin rm "$name" >/dev/null
fi
docker plugin create "$name" "$work"
echo "== plugin $name created in $(elapsed "$start")"

if [ "$push" = true ]; then
  start=$SECONDS
  docker plugin push "$name"
  echo "== pushed $name in $(elapsed "$start")"
fi
