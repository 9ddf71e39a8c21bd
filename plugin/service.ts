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
import type { Metrics } from "./metrics.js";
import { pluginStateCodec, type PluginState } from "./plugin-state.js";
import { Reconciler, type ReconcileReport } from "./reconciler.js";
import { routeTable, undoTable } from "./routes.js";
import { createApp } from "./server.js";
import { StateFile } from "../lib/state-file.js";
import { fieldOf, sectionOf } from "../lib/state-section.js";
import { listenOnUnixSocket } from "./unix-socket.js";

/** The state file's name inside `--state-dir`. */
export const STATE_FILE_NAME = "state.json";
/** Reads of the pool source before giving up at start when nothing is known about the pool. */
const STARTUP_ATTEMPTS = 3;

/** What tests substitute: the logger, the host (a recording fake) and the pool refresh's spacing. */
export type ServiceDeps = { logger: Logger; host?: HostNetwork; minSpacingMs?: number };

/** A started plugin, as the command line and the API tests hold it. */
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

/**
 * Starts the plugin: takes the instance lock, opens the state, reads the pool, builds both drivers,
 * verifies the data path, then answers on the socket and starts the background work. Whatever fails
 * before the socket answers releases the lock and stops the refresher again.
 */
export async function startService(config: PluginConfig, deps: ServiceDeps): Promise<RunningService> {
  const { logger } = deps;
  const host = deps.host ?? createHostNetwork();
  const lock = await acquireInstanceLock(config.stateDir, config.socketPath);
  let refresher: InventoryRefresher | undefined;
  try {
    const state = await StateFile.open(join(config.stateDir, STATE_FILE_NAME), pluginStateCodec);
    const source = createSource(config);
    refresher = createRefresher(config, deps, source, host, state);
    await readPoolAtStart(refresher, source, logger);
    const drivers = createDrivers(config, logger, state, refresher, host);
    await restoreDataPath(drivers.network, logger);
    const metrics = await loadMetrics(config, drivers);
    const reconciler = new Reconciler(drivers.network, drivers.ipam, logger, {
      socketPath: config.dockerSocket,
      intervalMs: config.reconcileIntervalMs,
      graceMs: config.reconcileGraceMs,
      onReport: (report) => metrics?.observeReconciliation(report),
    });
    const server = createServer(
      createPluginApp({ ...drivers, logger, refresher, source, state, metrics, reconciler }),
    );
    await listenOnUnixSocket(server, config.socketPath);
    const metricsServer =
      metrics && config.metricsAddress ? await metrics.listen(config.metricsAddress) : undefined;
    startBackgroundWork(refresher, reconciler, drivers.ipam);
    logger.info("azure-vnet listening", {
      socket: config.socketPath,
      stateDir: config.stateDir,
      source: source.name,
    });
    const running = { ...drivers, refresher, reconciler, server, metricsServer, state, lock };
    return runningService(config, running);
  } catch (error) {
    refresher?.stop();
    await lock.release();
    throw error;
  }
}

/** Reads the pool source periodically and keeps the last good inventory in the state file. */
function createRefresher(
  config: PluginConfig,
  { logger, minSpacingMs }: ServiceDeps,
  source: PoolSource,
  host: HostNetwork,
  state: StateFile<PluginState>,
): InventoryRefresher {
  return new InventoryRefresher(
    source,
    host,
    logger,
    { intervalMs: config.refreshIntervalMs, minSpacingMs: minSpacingMs ?? 1000 },
    async (inventory: Inventory, previous: Inventory | undefined) => {
      await state.update((draft) => {
        draft.ipam.inventory = inventory;
      });
      logInventoryChange(logger, previous, inventory, state.current.ipam);
    },
    state.current.ipam.inventory,
  );
}

/** Both drivers, on one state file; Azure Resource Manager behind them for pool growth and Azure links. */
type Drivers = { ipam: IpamDriver; network: NetworkDriver };

function createDrivers(
  config: PluginConfig,
  logger: Logger,
  state: StateFile<PluginState>,
  refresher: InventoryRefresher,
  host: HostNetwork,
): Drivers {
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
  const growth = {
    editor: azure,
    options: {
      minFree: config.poolMinFree,
      step: config.poolGrowStep,
      waitMs: config.poolGrowWaitMs,
      maxFree: config.poolMaxFree,
      shrinkAfterMs: config.poolShrinkAfterMs,
    },
  };
  const ipam = new IpamDriver({
    state: sectionOf(state, "ipam"),
    refresher,
    logger,
    growth: config.poolMinFree > 0 ? growth : undefined,
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
  return { ipam, network };
}

/** Checks and repairs the kernel's side of every network at start; resumes unfinished Azure links. */
async function restoreDataPath(network: NetworkDriver, logger: Logger): Promise<void> {
  await network.restore().catch((error: unknown) => {
    logger.error("could not verify the data path at start", { error: (error as Error).message });
  });
  network.linker?.resume();
}

async function loadMetrics(config: PluginConfig, { ipam, network }: Drivers): Promise<Metrics | undefined> {
  if (!config.metricsAddress) return undefined;
  // Loaded only when asked for: prom-client costs memory a plugin without metrics need not pay.
  const { Metrics } = await import("./metrics.js");
  return new Metrics(
    () => ipam.usage(),
    () => {
      const { endpoints, unlinks } = network.summary();
      return {
        growth: ipam.growth?.status() ?? [],
        azureLinkStates: [
          ...endpoints.flatMap((e) => (e.azure ? [e.azure.state] : [])),
          ...unlinks.map(() => "unlinking"),
        ],
      };
    },
  );
}

/** The HTTP app: both plugin APIs, and GET /status with everything `azure-vnet status` shows. */
function createPluginApp({
  ipam,
  network,
  logger,
  refresher,
  source,
  state,
  metrics,
  reconciler,
}: Drivers & {
  reconciler: Reconciler;
  logger: Logger;
  refresher: InventoryRefresher;
  source: PoolSource;
  state: StateFile<PluginState>;
  metrics: Metrics | undefined;
}): ReturnType<typeof createApp> {
  return createApp({
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
      reconciliation: reconciler.status(),
    }),
    onRequest: metrics ? (...args) => metrics.observeRequest(...args) : undefined,
  });
}

function startBackgroundWork(refresher: InventoryRefresher, reconciler: Reconciler, ipam: IpamDriver): void {
  refresher.start();
  reconciler.start();
  ipam.growth?.start();
  ipam.growth?.afterChange();
}

/** What a started service is made of, for running and stopping it. */
type ServiceParts = Drivers & {
  refresher: InventoryRefresher;
  reconciler: Reconciler;
  server: Server;
  metricsServer: Server | undefined;
  state: StateFile<PluginState>;
  lock: InstanceLock;
};

function runningService(config: PluginConfig, parts: ServiceParts): RunningService {
  const { ipam, network, refresher, reconciler, server, metricsServer, state, lock } = parts;
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
