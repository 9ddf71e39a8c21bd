/**
 * Source-based routing for containers on a NIC other than the VM's primary one. Azure accepts a frame
 * only from the NIC that owns its source address, but the main routing table sends everything beyond
 * a NIC's own subnet out of the primary NIC, so a container on eth1 would answer the world through eth0
 * and be dropped (the bug of the plugin this one replaces). Such a NIC gets a routing table of its own
 * (its subnet, and a default route through its subnet's gateway); each of its containers' addresses a
 * rule that looks that table up; and one rule ahead of those keeps the host's /32 routes, i.e. the VM's
 * containers on any NIC, first. The table is made with the first network on the NIC and removed with
 * the last; the shared rule with the first and last such network on the VM. Both modes: this wraps
 * either data path. In bridge mode a container's address also gets a /32 route to its NIC's bridge:
 * when two NICs share a subnet, the subnet's route alone would send the answers to its containers
 * (un-NATed replies from the internet, say) to the other NIC's bridge.
 */
import { MAIN_TABLE, type PolicyRule, type TableRoute } from "../lib/host-net/policy-routing.js";
import type { HostNetwork } from "../lib/host-net/host-network.js";
import { keepGoing } from "../lib/keep-going.js";
import type { Logger } from "../lib/logger.js";
import { shortId } from "../lib/short-id.js";
import type { StateSection } from "../lib/state-section.js";
import type { Inventory } from "../ipam-driver/inventory.js";
import type { DataPath } from "./data-path.js";
import type { DriverState, EndpointRecord, NetworkRecord } from "./driver-state.js";
import { FIRST_ROUTE_TABLE, HOST_ROUTES_RULE_PRIORITY, SOURCE_RULE_PRIORITY } from "./names.js";

/** Lets routes of the main table with a prefix of /32 (the VM's containers) win over our tables. */
export const HOST_ROUTES_RULE: PolicyRule = {
  priority: HOST_ROUTES_RULE_PRIORITY,
  table: MAIN_TABLE,
  suppressPrefixLength: 31,
};

/** The rule that sends an endpoint's traffic through its NIC's table. */
export function sourceRule(table: number, endpoint: Pick<EndpointRecord, "address">): PolicyRule {
  return { priority: SOURCE_RULE_PRIORITY, table, from: endpoint.address };
}

/** What the NIC's table holds: its subnet on the link, and the subnet's gateway as the way out. */
export function nicTableRoutes(network: NetworkRecord, egress: string): TableRoute[] {
  return [
    { dst: network.subnet, device: egress },
    { dst: "0.0.0.0/0", device: egress, gateway: network.gateway },
  ];
}

/**
 * The routing table of a new network on a non-primary NIC: the one of another network on the same NIC,
 * or the lowest number no network uses.
 */
export function routeTableFor(state: DriverState, macAddress: string): number {
  const networks = Object.values(state.networks);
  const sameNic = networks.find((n) => n.macAddress === macAddress && n.routeTable !== undefined);
  if (sameNic) return sameNic.routeTable!;
  const used = new Set(networks.map((n) => n.routeTable));
  let table = FIRST_ROUTE_TABLE;
  while (used.has(table)) table += 1;
  return table;
}

/**
 * Networks that a release before source routing made on a non-primary NIC have no routing table in
 * their record, and their containers answer the world through the primary NIC, where Azure drops it.
 * At start they get the table a new network on their NIC would get, before restore builds it.
 */
export async function adoptRouteTables(
  state: StateSection<DriverState>,
  inventory: Inventory | undefined,
  logger: Logger,
): Promise<void> {
  const secondaryMacs = new Set(inventory?.nics.filter((n) => !n.isPrimary).map((n) => n.macAddress));
  const untabled = Object.values(state.current.networks).filter(
    (n) => n.routeTable === undefined && secondaryMacs.has(n.macAddress),
  );
  if (untabled.length === 0) return;
  await state.update((draft) => {
    for (const { id } of untabled)
      draft.networks[id]!.routeTable = routeTableFor(draft, draft.networks[id]!.macAddress);
  });
  logger.info("networks on a secondary NIC now route their containers through it", {
    networks: untabled.map(
      (n) => `${shortId(n.id)} on ${n.interfaceName}: table ${state.current.networks[n.id]?.routeTable}`,
    ),
  });
}

/** `inner` with source-based routing added for networks that have a routing table of their own. */
export function withSourceRouting(inner: DataPath): DataPath {
  return {
    ...inner,
    async setupNetwork(host, network, state) {
      await inner.setupNetwork(host, network, state);
      if (network.routeTable === undefined) return;
      await host.setTableRoutes(
        network.routeTable,
        nicTableRoutes(network, inner.trafficPath(network).egress),
      );
      await host.ensureRule(HOST_ROUTES_RULE);
    },
    async teardownNetwork(host, network, state) {
      // Before the data path's teardown: bridge mode moves the bridge's routes back to the NIC.
      await teardownNicRouting(host, network, state);
      await inner.teardownNetwork(host, network, state);
    },
    async setupEndpoint(host, network, endpoint, state) {
      const links = await inner.setupEndpoint(host, network, endpoint, state);
      try {
        await routeEndpoint(host, network, endpoint, inner);
      } catch (error) {
        await unrouteEndpoint(host, network, endpoint, inner).catch(() => undefined);
        await inner.teardownEndpoint(host, network, endpoint, state).catch(() => undefined);
        throw error;
      }
      return links;
    },
    async repairEndpoint(host, network, endpoint, state) {
      await inner.repairEndpoint(host, network, endpoint, state);
      await routeEndpoint(host, network, endpoint, inner);
    },
    async teardownEndpoint(host, network, endpoint, state) {
      await keepGoing(`removing the routing of endpoint ${endpoint.address}`, [
        () => unrouteEndpoint(host, network, endpoint, inner),
        () => inner.teardownEndpoint(host, network, endpoint, state),
      ]);
    },
  };
}

/** The endpoint's rule, and in bridge mode its /32 route to the bridge; nothing on the primary NIC. */
async function routeEndpoint(
  host: HostNetwork,
  network: NetworkRecord,
  endpoint: EndpointRecord,
  inner: DataPath,
) {
  if (network.routeTable === undefined) return;
  if (network.mode === "bridge")
    await host.replaceHostRoute(endpoint.address, inner.trafficPath(network).egress);
  await host.ensureRule(sourceRule(network.routeTable, endpoint));
}

async function unrouteEndpoint(
  host: HostNetwork,
  network: NetworkRecord,
  endpoint: EndpointRecord,
  inner: DataPath,
) {
  if (network.routeTable === undefined) return;
  await host.deleteRule(sourceRule(network.routeTable, endpoint));
  if (network.mode === "bridge")
    await host.deleteHostRoute(endpoint.address, inner.trafficPath(network).egress);
}

/** Removes the NIC's table with its last network, and the shared rule with the VM's last such network. */
async function teardownNicRouting(host: HostNetwork, network: NetworkRecord, state: DriverState) {
  if (network.routeTable === undefined) return;
  const others = Object.values(state.networks).filter(
    (n) => n.id !== network.id && n.routeTable !== undefined,
  );
  if (!others.some((n) => n.routeTable === network.routeTable)) await host.flushTable(network.routeTable);
  if (others.length === 0) await host.deleteRule(HOST_ROUTES_RULE);
}
