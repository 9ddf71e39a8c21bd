# The managed plugin's rootfs: compiles the TypeScript, then keeps only node, the compiled plugin, its
# production node_modules and the host tools it runs. packaging/build-plugin.sh turns the image into
# the plugin; docs/installing.md says how, also on a machine without registry access.

# The official Node image, pinned to an exact release; a build argument so that an offline machine can
# provide a local image of the same name (packaging/offline-base-image.sh).
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No dependency needs an install script; skipping them keeps the build offline-safe and free of
# compilers.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY packaging/tsconfig.build.json packaging/
COPY plugin plugin/
COPY driver driver/
COPY ipam-driver ipam-driver/
COPY lib lib/
# Type declarations, source maps and documentation of the production dependencies are never loaded;
# their licence files stay. Nor are the Azure SDK's builds for browsers and React Native, nor the
# browser half of the identity library (Node loads the ESM builds and @azure/msal-node), nor the
# CommonJS build of @azure/arm-network, which only the plugin's ESM imports (6 MiB).
RUN npx tsc -p packaging/tsconfig.build.json \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && find node_modules -type f ! -iname 'licen[cs]e*' \
       \( -name '*.d.ts' -o -name '*.d.[mc]ts' -o -name '*.map' -o -iname '*.md' \) -delete \
  && find node_modules/@azure node_modules/@azure-rest node_modules/@typespec -type d \
       \( -path '*/dist/browser' -o -path '*/dist/react-native' -o -path '*/dist/workerd' \) -prune -exec rm -rf {} + \
  && rm -rf node_modules/@azure/msal-browser node_modules/@azure/arm-network/dist/commonjs \
  && mkdir -p /opt/azure-vnet \
  && cp -R package.json dist node_modules /opt/azure-vnet/

FROM ${NODE_IMAGE} AS runtime-files
# The plugin runs ip, iptables and ebtables; strip (binutils) only shrinks node here and stays behind.
# The official slim image has none of them; a base that already carries them skips the download.
RUN if ! command -v ip >/dev/null || ! command -v xtables-nft-multi >/dev/null || ! command -v strip >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends iproute2 iptables binutils \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY packaging/runtime-rootfs.sh /usr/local/lib/
RUN sh /usr/local/lib/runtime-rootfs.sh /rootfs

FROM scratch
COPY --from=runtime-files /rootfs/ /
COPY --from=build /opt/azure-vnet/ /opt/azure-vnet/
COPY packaging/plugin-entrypoint.sh /opt/azure-vnet/entrypoint.sh
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Fails the build when a tool, a library it loads or a module the plugin imports was left out; the
# plugin's --help loads its whole module graph and exits; the Azure SDK modules, loaded only on first
# use, are loaded here by building the ARM client once (which sends nothing).
RUN ["/usr/local/bin/node", "-e", "const run = (...argv) => require('node:child_process').execFileSync(argv[0], argv.slice(1), { stdio: 'inherit' }); run('ip', '-V'); run('iptables', '-V'); run('iptables-restore', '-V'); run('ebtables', '-V'); run('mount', '-V'); run('setpriv', '--version'); run('sh', '-c', 'true'); run('node', '/opt/azure-vnet/dist/plugin/main.js', '--help'); run('node', '--input-type=module', '-e', 'const arm = await import(\\'/opt/azure-vnet/dist/lib/arm/arm-client.js\\'); await arm.createNetworkClient(\\'s\\', { endpoint: \\'https://management.azure.com\\', imdsUrl: \\'http://169.254.169.254\\' })')"]
ENTRYPOINT ["/opt/azure-vnet/entrypoint.sh"]
