// Runs Debian's docker-registry on 127.0.0.1 inside one VM namespace, with its storage in a folder the
// caller owns, so that e2e tests can push and install managed plugins without any outside registry.
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { killPid, pollUntil } from "./run.js";
import type { Vnet } from "./vnet.js";

/** Where the docker-registry package (Debian 12) installs its binary. */
export const REGISTRY_BINARY = "/usr/bin/docker-registry";

/** A registry started by {@link startLocalRegistry}. */
export type LocalRegistry = {
  /** `127.0.0.1:<port>`: loopback, which dockerd accepts over plain HTTP without configuration. */
  address: string;
  logFile: string;
  /** The last lines of the registry's log, for failure messages. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
};

/** Options of {@link startLocalRegistry}. */
export type RegistryOptions = {
  /** Serve HTTPS with this certificate and key (PEM files), as a registry users push to does. */
  tls?: { certFile: string; keyFile: string };
};

/**
 * Starts the registry in `vm`'s namespace, listening on 127.0.0.1:`port` and storing blobs under
 * `dir`, and resolves once it answers. Only dockerds in that same namespace can reach it. The VNet's
 * teardown stops it too.
 */
export async function startLocalRegistry(
  vnet: Vnet,
  vm: string,
  dir: string,
  port = 5000,
  options: RegistryOptions = {},
): Promise<LocalRegistry> {
  if (!existsSync(REGISTRY_BINARY)) {
    throw new Error(`no ${REGISTRY_BINARY}: apt-get install docker-registry (test/run-all.sh does)`);
  }
  const address = `127.0.0.1:${port}`;
  await mkdir(join(dir, "data"), { recursive: true });
  const configFile = join(dir, "config.yml");
  // JSON is YAML: no YAML writer needed, and paths need no quoting rules of their own.
  const config = {
    version: 0.1,
    log: { level: "warn" },
    storage: { filesystem: { rootdirectory: join(dir, "data") }, delete: { enabled: true } },
    http: {
      addr: address,
      ...(options.tls ? { tls: { certificate: options.tls.certFile, key: options.tls.keyFile } } : {}),
    },
  };
  await writeFile(configFile, JSON.stringify(config, null, 2) + "\n");
  const logFile = join(dir, "registry.log");
  const log = openSync(logFile, "a");
  let child;
  try {
    child = vnet.spawnIn(vm, [REGISTRY_BINARY, "serve", configFile], { stdio: ["ignore", log, log] });
  } finally {
    closeSync(log);
  }
  const logTail = (lines = 20) => {
    try {
      return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no registry log)";
    }
  };
  const stop = async () => {
    if (child.pid !== undefined) await killPid(child.pid);
  };
  try {
    await pollUntil(
      `the registry on ${address} in ${vm}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`the registry exited (${child.exitCode}): ${logTail()}`);
        if (options.tls) {
          // Talking TLS needs a client; that it listens is enough, dockerd's push checks the rest.
          return (await vnet.tcpProbe(vm, "127.0.0.1", port, { timeoutMs: 1_000 })).connected;
        }
        const probe = await vnet.tcpProbe(vm, "127.0.0.1", port, {
          payload: "GET /v2/ HTTP/1.0\r\n\r\n",
          timeoutMs: 1_000,
        });
        return probe.connected && /^HTTP\/1\.[01] 200/.test(probe.data);
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { address, logFile, logTail, stop };
}
