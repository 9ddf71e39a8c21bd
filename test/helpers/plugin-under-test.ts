/**
 * Runs the real plugin service on a temporary unix socket and state directory for API tests, with a
 * fake host (two NICs, eth0 and eth1) and a pool from a file or from the Azure stand-in.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import supertest from "supertest";
import type { PoolFile } from "../../ipam-driver/sources/file.js";
import { loadConfig, type PluginConfig } from "../../plugin/config.js";
import { createLogger, type Logger } from "../../lib/logger.js";
import { startService, type RunningService } from "../../plugin/service.js";
import { createFakeHost, ETH0_MAC, ETH1_MAC, type FakeHost } from "./fake-host.js";

export { ETH0_MAC, ETH1_MAC };

/** eth0 in 10.1.0.0/24 with `count` secondaries from 10.1.0.5; eth1 in 10.2.0.0/24 with two. */
export function twoNicPool(count = 4): PoolFile {
  return {
    interfaces: [
      {
        macAddress: ETH1_MAC,
        subnets: [
          { prefix: "10.2.0.0/24", primaryAddress: "10.2.0.4", secondaryAddresses: ["10.2.0.5", "10.2.0.6"] },
        ],
      },
      {
        macAddress: ETH0_MAC,
        subnets: [
          {
            prefix: "10.1.0.0/24",
            primaryAddress: "10.1.0.4",
            secondaryAddresses: Array.from({ length: count }, (_, i) => `10.1.0.${5 + i}`),
          },
        ],
      },
    ],
  };
}

export type PluginUnderTest = {
  dir: string;
  socketPath: string;
  stateFile: string;
  poolFile: string;
  logs: string[];
  host: FakeHost;
  service: RunningService;
  /** supertest over the unix socket. */
  api(): supertest.Agent;
  setPool(pool: PoolFile): Promise<void>;
  /**
   * Stops and starts the service on the same state directory; `whileStopped` runs in between (to
   * change the state file as an earlier release would have left it, say).
   */
  restart(overrides?: Partial<PluginConfig>, whileStopped?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
};

export async function startPlugin(
  options: { pool?: PoolFile; config?: Partial<PluginConfig> } = {},
): Promise<PluginUnderTest> {
  const dir = await mkdtemp(join(tmpdir(), "azure-vnet-test-"));
  const poolFile = join(dir, "pool.json");
  const socketPath = join(dir, "azure.sock");
  await writeFile(poolFile, JSON.stringify(options.pool ?? twoNicPool()));
  const logs: string[] = [];
  const logger: Logger = createLogger("debug", (line) => logs.push(line));
  const host = createFakeHost();
  const base = loadConfig(
    [
      "--socket",
      socketPath,
      "--state-dir",
      join(dir, "state"),
      "--pool-source",
      "file",
      "--pool-file",
      poolFile,
      "--reconcile-interval",
      "0",
    ],
    {},
  );
  const start = (overrides?: Partial<PluginConfig>) =>
    startService({ ...base, ...options.config, ...overrides }, { logger, host, minSpacingMs: 10 });
  let service: RunningService | undefined = await start();
  const handle: PluginUnderTest = {
    dir,
    socketPath,
    stateFile: join(dir, "state", "state.json"),
    poolFile,
    logs,
    host,
    get service() {
      return service!;
    },
    api: () => supertest.agent(`http+unix://${encodeURIComponent(socketPath)}`),
    setPool: (pool) => writeFile(poolFile, JSON.stringify(pool)),
    async restart(overrides, whileStopped) {
      await service?.close();
      service = undefined;
      await whileStopped?.();
      service = await start(overrides);
    },
    async stop() {
      await service?.close();
      service = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/** POSTs exactly these bytes, with no Content-Type, like dockerd. */
export function rawPost(
  socketPath: string,
  path: string,
  body: string,
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path, method: "POST", headers: { Accept: "application/vnd.docker.plugins.v1.2+json" } },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as unknown }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const MAIN = fileURLToPath(new URL("../../plugin/main.js", import.meta.url));

/** Runs the `azure-vnet` command line (status, doctor, log-level, ...) as a child process. */
export function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("close", (code) => resolve({ code, stdout, stderr })); // "close": all output read
  });
}
