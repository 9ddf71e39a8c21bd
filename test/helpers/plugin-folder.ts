/**
 * The managed plugin's folder (config.json + rootfs/), made on this machine without `docker build`:
 * the same tree the Dockerfile makes — packaging/runtime-rootfs.sh's tools and libraries (run here,
 * with the node that runs the tests), the compiled plugin from dist/, the production dependencies from
 * node_modules (those package-lock.json does not mark dev) with the Dockerfile's pruning, and the
 * entrypoint — next to the repository's own config.json. `docker plugin create NAME FOLDER` then makes
 * the plugin on any dockerd in seconds, where the packaging suite's offline image build takes minutes.
 */
import { existsSync, readFileSync } from "node:fs";
import { chmod, cp, mkdir, rm } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { REPO } from "./readme.js";
import { runOk } from "./run.js";

/** Folders of dist/ the plugin loads (dist/test, dist/bench and dist/demo are the repository's own). */
const DIST_PARTS = ["plugin", "driver", "ipam-driver", "lib"];
/** Never loaded by the plugin, as the Dockerfile prunes them. */
const PRUNED_DIRS = ["dist/browser", "dist/react-native", "dist/workerd"];
const PRUNED_PACKAGES = ["node_modules/@azure/msal-browser"];

/** Whether a file of the production tree is left out, as the Dockerfile's `find … -delete` does. */
function pruned(path: string): boolean {
  const name = path.slice(path.lastIndexOf(sep) + 1);
  if (/^licen[cs]e/i.test(name)) return false;
  if (/\.d\.[mc]?ts$/.test(name) || name.endsWith(".map") || /\.md$/i.test(name)) return true;
  const posix = path.split(sep).join("/");
  if (PRUNED_DIRS.some((dir) => posix.endsWith(`/${dir}`) || posix.includes(`/${dir}/`))) return true;
  return posix.includes("node_modules/@azure/arm-network/dist/commonjs");
}

/**
 * Makes the plugin folder in `dest` (which must not exist): `dest/config.json` and `dest/rootfs`.
 * Needs a built checkout (npm run build) and the tools runtime-rootfs.sh copies (node, ip,
 * xtables-nft-multi, sh, mount, setpriv, strip, ldd).
 */
export async function makePluginFolder(dest: string): Promise<string> {
  if (existsSync(dest)) throw new Error(`${dest} exists`);
  const rootfs = join(dest, "rootfs");
  await mkdir(dest, { recursive: true });
  // runtime-rootfs.sh copies the `node` on PATH: the one running these tests.
  await runOk("sh", [join(REPO, "packaging", "runtime-rootfs.sh"), rootfs], {
    timeoutMs: 120_000,
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env["PATH"] ?? ""}` },
  });
  const app = join(rootfs, "opt", "azure-vnet");
  await mkdir(app, { recursive: true });
  await cp(join(REPO, "package.json"), join(app, "package.json"));
  for (const part of DIST_PARTS) {
    const from = join(REPO, "dist", part);
    if (!existsSync(from)) throw new Error(`${from} is missing: run npm run build first`);
    await cp(from, join(app, "dist", part), { recursive: true, filter: (src) => !pruned(src) });
  }
  const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as {
    packages: Record<string, { dev?: boolean }>;
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.startsWith("node_modules/") || entry.dev === true) continue;
    if (PRUNED_PACKAGES.includes(path)) continue;
    const from = join(REPO, path);
    // A nested package was copied with its parent; an optional one may be absent on this platform.
    if (!existsSync(from) || existsSync(join(app, path))) continue;
    await cp(from, join(app, path), {
      recursive: true,
      dereference: true,
      filter: (src) => {
        // Nested node_modules are their own lock entries, copied when reached.
        const inner = relative(from, src);
        return !pruned(src) && !inner.split(sep).includes("node_modules");
      },
    });
  }
  await cp(join(REPO, "packaging", "plugin-entrypoint.sh"), join(app, "entrypoint.sh"));
  await chmod(join(app, "entrypoint.sh"), 0o755);
  await cp(join(REPO, "config.json"), join(dest, "config.json"));
  return dest;
}

/** Removes a folder made by {@link makePluginFolder}. */
export async function removePluginFolder(dest: string): Promise<void> {
  await rm(dest, { recursive: true, force: true });
}
