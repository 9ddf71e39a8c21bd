/**
 * Assembles and runs the plugin: instance lock, state file, pool source, both drivers and the HTTP
 * server on the unix socket. Used by the command line and by the API tests, so both run the same thing.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { unlink } from "node:fs/promises";
import { join } from "node:path";
import { NetworkDriver } from "../driver/network-driver.js";
import { InventoryRefresher } from "../ipam-driver/inventory-refresher.js";
import type { Inventory } from "../ipam-driver/inventory.js";
import { logInventoryChange } from "../ipam-driver/inventory-changes.js";
import { IpamDriver } from "../ipam-driver/ipam-driver.js";
import { createFileSource } from "../ipam-driver/sources/file.js";
import { createImdsSource } from "../ipam-driver/sources/imds.js";
import type { PoolSource } from "../ipam-driver/sources/source.js";
import { createWireserverSource } from "../ipam-driver/sources/wireserver.js";
import { AzureNics } from "../lib/arm/azure-nics.js";
import type { PluginConfig } from "./config.js";
import { UnavailableError } from "../lib/errors.js";
import { createHostNetwork, type HostNetwork } from "../lib/host-net/host-network.js";
import { acquireInstanceLock, type InstanceLock } from "./instance-lock.js";
import type { Logger } from "../lib/logger.js";
import { pluginStateCodec, type PluginState } from "./plugin-state.js";
import { Reconciler, type ReconcileReport } from "./reconciler.js";
import { routeTable, undoTable } from "./routes.js";
import { createApp } from "./server.js";
import { StateFile } from "../lib/state-file.js";
import { fieldOf, sectionOf } from "../lib/state-section.js";
import { listenOnUnixSocket } from "./unix-socket.js";

export const STATE_FILE_NAME = "state.json";
/** Reads of the pool source before giving up at start when nothing is known about the pool. */
const STARTUP_ATTEMPTS = 3;

export type ServiceDeps = { logger: Logger; host?: HostNetwork; minSpacingMs?: number };

export type RunningService = {
  ipam: IpamDriver;
  /** Reads the pool source now (as the periodic refresh would). */
  refreshPool(): Promise<void>;
  /** Reconciles with Docker now (as the periodic pass would). */
  reconcile(): Promise<ReconcileReport | undefined>;
  /** Where metrics are served (`http://host:port/metrics`), when they are on. */
  metricsUrl: string | undefined;
  /** The state document as held in memory; the model-based test compares it with the file. */
  currentState(): Readonly<PluginState>;
  close(): Promise<void>;
};

export async function startService(config: PluginConfig, deps: ServiceDeps): Promise<RunningService> {
  const { logger } = deps;
  const host = deps.host ?? createHostNetwork();
  const lock = await acquireInstanceLock(config.stateDir, config.socketPath);
  let stopRefresher = () => undefined as void;
  try {
    const state = await StateFile.open(join(config.stateDir, STATE_FILE_NAME), pluginStateCodec);
    const source = createSource(config);
    const refresher = new InventoryRefresher(
      source,
      host,
      logger,
      { intervalMs: config.refreshIntervalMs, minSpacingMs: deps.minSpacingMs ?? 1000 },
      async (inventory: Inventory, previous: Inventory | undefined) => {
        await state.update((draft) => {
          draft.ipam.inventory = inventory;
        });
        logInventoryChange(logger, previous, inventory, state.current.ipam);
      },
      state.current.ipam.inventory,
    );
    stopRefresher = () => refresher.stop();
    await readPoolAtStart(refresher, source, logger);
    // Connects to Azure Resource Manager only when a feature first needs it.
    const azure = new AzureNics(
      {
        endpoint: config.armEndpoint,
        caFile: config.armCaFile,
        identityClientId: config.identityClientId,
        imdsUrl: config.imdsUrl,
        sourceTimeoutMs: config.sourceTimeoutMs,
        maxIpConfigurations: config.maxIpConfigurations,
      },
      logger,
    );
    const ipam = new IpamDriver({
      state: sectionOf(state, "ipam"),
      refresher,
      logger,
      growth:
        config.poolMinFree > 0
          ? {
              editor: azure,
              options: {
                minFree: config.poolMinFree,
                step: config.poolGrowStep,
                waitMs: config.poolGrowWaitMs,
                maxFree: config.poolMaxFree,
                shrinkAfterMs: config.poolShrinkAfterMs,
              },
            }
          : undefined,
    });
    const network = new NetworkDriver({
      state: sectionOf(state, "driver"),
      bootId: fieldOf(state, "bootId"),
      addresses: ipam,
      host,
      logger,
      linkEditor: azure,
      inventory: () => refresher.current,
    });
    await network.restore().catch((error: unknown) => {
      logger.error("could not verify the data path at start", { error: (error as Error).message });
    });
    network.linker?.resume();
    // Loaded only when asked for: prom-client costs memory a plugin without metrics need not pay.
    const metrics = config.metricsAddress
      ? new (await import("./metrics.js")).Metrics(
          () => ipam.usage(),
          () => {
            const { endpoints, unlinks } = network.summary();
            return {
              growth: ipam.growth?.status() ?? [],
              linkStates: [
                ...endpoints.flatMap((e) => (e.azure ? [e.azure.state] : [])),
                ...unlinks.map(() => "unlinking"),
              ],
            };
          },
        )
      : undefined;
    const reconciler = new Reconciler(network, ipam, logger, {
      socketPath: config.dockerSocket,
      intervalMs: config.reconcileIntervalMs,
      graceMs: config.reconcileGraceMs,
      onReport: (report) => metrics?.observeReconciliation(report),
    });
    const app = createApp({
      routes: routeTable(ipam, network),
      undo: undoTable(ipam),
      logger,
      status: () => ({
        pool: ipam.usage(),
        growth: ipam.growth?.status() ?? [],
        ...network.summary(),
        source: {
          name: source.name,
          location: source.location,
          lastError: refresher.lastError,
          failures: refresher.consecutiveFailures,
        },
        stateFile: state.path,
      }),
      onRequest: metrics ? (...args) => metrics.observeRequest(...args) : undefined,
    });
    const server = createServer(app);
    await listenOnUnixSocket(server, config.socketPath);
    const metricsServer =
      metrics && config.metricsAddress ? await metrics.listen(config.metricsAddress) : undefined;
    refresher.start();
    reconciler.start();
    ipam.growth?.start();
    ipam.growth?.afterChange();
    logger.info("azure-vnet listening", {
      socket: config.socketPath,
      stateDir: config.stateDir,
      source: source.name,
    });
    return {
      ipam,
      refreshPool: async () => {
        await refresher.refreshNow();
      },
      reconcile: () => reconciler.runOnce(),
      metricsUrl: metricsServer ? metricsUrlOf(metricsServer) : undefined,
      currentState: () => state.current,
      close: async () => {
        metricsServer?.close();
        ipam.growth?.stop();
        await reconciler.stop();
        await network.linker?.stop();
        await shutdown(server, refresher, lock, config.socketPath);
      },
    };
  } catch (error) {
    stopRefresher();
    await lock.release();
    throw error;
  }
}

function createSource(config: PluginConfig): PoolSource {
  switch (config.poolSource) {
    case "imds":
      return createImdsSource(config.imdsUrl, config.sourceTimeoutMs);
    case "wireserver":
      return createWireserverSource(config.wireserverUrl, config.sourceTimeoutMs);
    case "file":
      return createFileSource(config.poolFile!);
  }
}

async function readPoolAtStart(
  refresher: InventoryRefresher,
  source: PoolSource,
  logger: Logger,
): Promise<void> {
  const saved = refresher.current;
  for (let attempt = 1; attempt <= (saved ? 1 : STARTUP_ATTEMPTS); attempt++) {
    await refresher.refreshNow();
    if (refresher.lastError === undefined) return;
  }
  if (saved) {
    logger.warn("starting with the pool saved before the restart; the pool source does not answer", {
      source: source.name,
      error: refresher.lastError,
    });
    return;
  }
  throw new UnavailableError(
    `no address pool: the ${source.name} pool source (${source.location}) did not answer: ${refresher.lastError}`,
    {
      hint:
        source.name === "file"
          ? "fix the pool file (format in docs/ipam.md, 'Outside Azure: the pool file')"
          : "this does not look like an Azure VM. Outside Azure, describe the NIC's addresses in a JSON file and start with " +
            "--pool-source file --pool-file PATH (format in docs/ipam.md, 'Outside Azure: the pool file')",
    },
  );
}

async function shutdown(
  server: Server,
  refresher: InventoryRefresher,
  lock: InstanceLock,
  socketPath: string,
): Promise<void> {
  refresher.stop();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
  await unlink(socketPath).catch(() => undefined);
  await lock.release();
}

function metricsUrlOf(server: Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}/metrics`;
}
