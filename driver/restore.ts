/**
 * Re-verifies the data path when the plugin starts, before it answers dockerd: what the records say
 * should exist is re-applied (missing rules, routes and settings of live endpoints come back), links
 * and chains of ours that no record explains are removed, and a reboot since the records were written
 * (another kernel boot id) is recognised: the veths died with it, the network-wide changes are rebuilt.
 */
import type { HostNetwork } from "../lib/host-net/host-network.js";
import type { Table } from "../lib/host-net/iptables.js";
import type { Logger } from "../lib/logger.js";
import { shortId } from "../lib/short-id.js";
import type { StateField, StateSection } from "../lib/state-section.js";
import { teardownNicBridge } from "./bridge.js";
import type { DataPath } from "./data-path.js";
import type { DriverState, NetworkMode } from "./driver-state.js";
import {
  bridgeName,
  bridgeNic,
  FORWARD_CHAIN_PREFIX,
  forwardChainName,
  hostVethName,
  ISOLATION_CHAIN_PREFIX,
  isolationChainName,
  isVethName,
  NAT_CHAIN_PREFIX,
  natChainName,
} from "./names.js";
import { enableForwarding, ensureNetworkRules } from "./network-setup.js";
import { HOST_ROUTES_RULE, sourceRule } from "./source-routing.js";
import { MAIN_TABLE, type PolicyRule } from "../lib/host-net/policy-routing.js";

export type RestoreReport = {
  rebooted: boolean;
  networks: number;
  /** Live endpoints whose host side was re-applied. */
  repaired: string[];
  /** Endpoints whose veth is gone (their container ended while the plugin was away). */
  gone: string[];
  /** Links and chains of ours that no record explains, now removed. */
  leftovers: string[];
};

/**
 * Re-verifies the host against the driver's records; `recordedBoot` is the kernel boot those records'
 * host changes were made in, and becomes the current one.
 */
export async function restoreDataPath(
  host: HostNetwork,
  state: StateSection<DriverState>,
  recordedBoot: StateField<string | undefined>,
  dataPathFor: (mode: NetworkMode) => DataPath,
  logger: Logger,
): Promise<RestoreReport> {
  const bootId = await host.readBootId();
  const rebooted = recordedBoot.current !== undefined && recordedBoot.current !== bootId;
  const report: RestoreReport = { rebooted, networks: 0, repaired: [], gone: [], leftovers: [] };
  const driver = structuredClone(state.current);
  if (rebooted) {
    // Every veth died with the old boot.
    for (const endpoint of Object.values(driver.endpoints)) {
      if (endpoint.hostInterface) report.gone.push(endpoint.id);
      endpoint.hostInterface = undefined;
    }
  }
  const failures: string[] = [];
  const attempt = async (what: string, step: () => Promise<unknown>) => {
    try {
      await step();
    } catch (error) {
      failures.push(`${what}: ${(error as Error).message}`);
    }
  };

  for (const network of Object.values(driver.networks)) {
    const dataPath = dataPathFor(network.mode);
    await attempt(`network ${shortId(network.id)}`, async () => {
      await enableForwarding(host);
      await dataPath.setupNetwork(host, network, driver);
      await ensureNetworkRules(host, network, dataPath.trafficPath(network), driver);
    });
    report.networks += 1;
  }
  for (const endpoint of Object.values(driver.endpoints)) {
    const network = driver.networks[endpoint.networkId];
    if (!network || !endpoint.hostInterface) continue;
    if (!(await host.linkExists(endpoint.hostInterface))) {
      report.gone.push(endpoint.id);
      endpoint.hostInterface = undefined;
      continue;
    }
    await attempt(`endpoint ${shortId(endpoint.id)}`, () =>
      dataPathFor(network.mode).repairEndpoint(host, network, endpoint, driver),
    );
    report.repaired.push(endpoint.id);
  }
  await attempt("leftovers", () => removeLeftovers(host, driver, report));

  // The records first, the boot id last: a crash in between leaves the old boot id, and the next start
  // redoes this restore for the same reboot, which finds the records already as it would make them.
  await state.update((draft) => {
    for (const endpoint of Object.values(driver.endpoints)) {
      const record = draft.endpoints[endpoint.id];
      if (record) record.hostInterface = endpoint.hostInterface;
    }
  });
  await recordedBoot.set(bootId);
  if (failures.length > 0) logger.error("data path could not be fully restored", { failures });
  logger.info("data path verified", {
    ...report,
    repaired: report.repaired.length,
    gone: report.gone.length,
  });
  return report;
}

async function removeLeftovers(host: HostNetwork, driver: DriverState, report: RestoreReport): Promise<void> {
  const networks = Object.values(driver.networks);
  const expectedVeths = new Set(
    Object.values(driver.endpoints)
      .filter((e) => e.hostInterface)
      .map((e) => hostVethName(e.networkId, e.id)),
  );
  const bridgedNics = new Set(
    networks.filter((n) => n.mode === "bridge").map((n) => bridgeName(n.interfaceName)),
  );
  for (const name of await host.listLinkNames()) {
    const nic = bridgeNic(name);
    if (isVethName(name) && !expectedVeths.has(name)) {
      await host.deleteLink(name);
      report.leftovers.push(name);
    } else if (nic !== undefined && !bridgedNics.has(name)) {
      await teardownNicBridge(host, nic);
      report.leftovers.push(name);
    }
  }
  const chains: [table: Table, from: string, prefix: string, expected: Set<string>][] = [
    ["filter", "FORWARD", FORWARD_CHAIN_PREFIX, new Set(networks.map((n) => forwardChainName(n.id)))],
    [
      "mangle",
      "FORWARD",
      ISOLATION_CHAIN_PREFIX,
      new Set(networks.filter((n) => n.internal).map((n) => isolationChainName(n.id))),
    ],
    [
      "nat",
      "POSTROUTING",
      NAT_CHAIN_PREFIX,
      new Set(networks.filter((n) => !n.internal).map((n) => natChainName(n.id))),
    ],
  ];
  for (const [table, from, prefix, expected] of chains) {
    for (const chain of await host.listChains(table, prefix)) {
      if (expected.has(chain)) continue;
      await host.deleteJumpsTo(table, from, chain);
      await host.deleteChain(table, chain);
      report.leftovers.push(chain);
    }
  }
  await removeLeftoverRouting(host, driver, report);
}

/** Our routing rules that no record explains (a container that ended meanwhile), and their tables. */
async function removeLeftoverRouting(host: HostNetwork, driver: DriverState, report: RestoreReport) {
  const tables = new Set(Object.values(driver.networks).map((n) => n.routeTable));
  const expected = new Set<string>(
    tables.size > 1 || !tables.has(undefined) ? [ruleName(HOST_ROUTES_RULE)] : [],
  );
  for (const endpoint of Object.values(driver.endpoints)) {
    const table = driver.networks[endpoint.networkId]?.routeTable;
    if (table !== undefined && endpoint.hostInterface) expected.add(ruleName(sourceRule(table, endpoint)));
  }
  for (const rule of await host.listOwnRules()) {
    if (expected.has(ruleName(rule))) continue;
    await host.deleteRule(rule);
    if (rule.table !== MAIN_TABLE && !tables.has(rule.table)) await host.flushTable(rule.table);
    report.leftovers.push(`rule ${ruleName(rule)}`);
  }
  await removeLeftoverBridgeRoutes(host, driver, report);
}

/**
 * Bridge mode's /32 routes of containers that no record explains (a crash between the route and the
 * record). On a kept bridge they would outlive the address's next owner elsewhere.
 */
async function removeLeftoverBridgeRoutes(host: HostNetwork, driver: DriverState, report: RestoreReport) {
  const live = new Map<string, Set<string>>();
  for (const network of Object.values(driver.networks)) {
    if (network.mode === "bridge") live.set(bridgeName(network.interfaceName), new Set());
  }
  for (const endpoint of Object.values(driver.endpoints)) {
    const network = driver.networks[endpoint.networkId];
    if (network?.mode === "bridge" && endpoint.hostInterface)
      live.get(bridgeName(network.interfaceName))?.add(endpoint.address);
  }
  for (const [bridge, addresses] of live) {
    if (!(await host.linkExists(bridge))) continue;
    for (const address of await host.listOwnHostRoutes(bridge)) {
      if (addresses.has(address)) continue;
      await host.deleteHostRoute(address, bridge);
      report.leftovers.push(`route ${address}/32 dev ${bridge}`);
    }
  }
}

/** How a rule reads in the log, and what tells two rules apart. */
function ruleName(rule: PolicyRule): string {
  return `${rule.priority}: from ${rule.from ?? "all"} lookup ${rule.table}`;
}
