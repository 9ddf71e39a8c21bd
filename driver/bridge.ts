/**
 * Bridge mode, the original Azure plugin's design: containers sit on a Linux bridge that the NIC is
 * joined to. The NIC's IPv4 addresses and routes move to the bridge while the first bridge network on
 * that NIC exists and move back, exactly, when the last one goes. Azure accepts only the NIC's own MAC,
 * so ebtables rewrites container source MACs to the NIC's on the way out (ARP included) and rewrites
 * the destination MAC of frames and ARP replies for a container's address back to the container's MAC
 * on the way in. Traffic leaving the subnet is routed by the host (the container's gateway is the
 * host's primary IP on the bridge) so that it can be source-NATed like in transparent mode.
 */
import type { HostNetwork } from "../lib/host-net/host-network.js";
import { keepGoing } from "../lib/keep-going.js";
import type { DataPath, EndpointLinks } from "./data-path.js";
import type { DriverState, EndpointRecord, NetworkRecord } from "./driver-state.js";
import {
  bridgeInChain,
  bridgeName,
  bridgeOutChain,
  bridgeSpoofChain,
  containerVethName,
  hostVethName,
} from "./names.js";

export const bridgeDataPath: DataPath = {
  trafficPath(network) {
    const bridge = bridgeName(network.interfaceName);
    return { egress: bridge, fromContainers: ["-i", bridge], toContainers: ["-o", bridge] };
  },

  // Idempotent for every bridge network of the NIC, so a restart can re-verify it as it is.
  async setupNetwork(host, network, state) {
    const nic = network.interfaceName;
    try {
      await attachNicToBridge(host, network);
      await host.setBridgeChainRules(bridgeOutChain(nic), [
        [
          "-s",
          "!",
          network.macAddress,
          "-j",
          "snat",
          "--to-source",
          network.macAddress,
          "--snat-arp",
          "--snat-target",
          "ACCEPT",
        ],
      ]);
      await host.ensureBridgeJump("POSTROUTING", ["-o", nic], bridgeOutChain(nic));
      await setEndpointRules(host, nic, state, undefined);
      await host.ensureBridgeJump("PREROUTING", ["-i", nic], bridgeInChain(nic));
      await host.ensureBridgeJump("PREROUTING", [], bridgeSpoofChain(nic));
    } catch (error) {
      if (otherBridgeNetworks(state, network).length === 0)
        await teardownNicBridge(host, nic).catch(() => undefined);
      throw error;
    }
  },

  async teardownNetwork(host, network, state) {
    if (otherBridgeNetworks(state, network).length > 0) return;
    await teardownNicBridge(host, network.interfaceName);
  },

  async setupEndpoint(host, network, endpoint, state): Promise<EndpointLinks> {
    const hostEnd = hostVethName(network.id, endpoint.id);
    const containerEnd = containerVethName(network.id, endpoint.id);
    await host.deleteLink(hostEnd);
    await host.createVethPair(hostEnd, containerEnd, network.mtu, endpoint.macAddress);
    try {
      await bridgeBackToVeth(host, network, endpoint, state);
    } catch (error) {
      await host.deleteLink(hostEnd).catch(() => undefined);
      throw error;
    }
    return { hostEnd, containerEnd };
  },

  repairEndpoint: bridgeBackToVeth,

  async teardownEndpoint(host, network, endpoint, state) {
    await host.deleteLink(hostVethName(network.id, endpoint.id));
    await setEndpointRules(host, network.interfaceName, state, endpoint.id);
  },

  // Off-subnet traffic goes through the host, which source-NATs it; on-subnet traffic is bridged.
  gateway: (network) => network.primary,
};

/** Puts the host end on the bridge and makes the per-endpoint ebtables rules current; idempotent. */
async function bridgeBackToVeth(
  host: HostNetwork,
  network: NetworkRecord,
  endpoint: EndpointRecord,
  state: DriverState,
): Promise<void> {
  const hostEnd = hostVethName(network.id, endpoint.id);
  await host.setLinkMaster(hostEnd, bridgeName(network.interfaceName));
  await host.setLinkUp(hostEnd);
  await setEndpointRules(host, network.interfaceName, state, undefined);
}

function otherBridgeNetworks(state: DriverState, network: NetworkRecord): NetworkRecord[] {
  return Object.values(state.networks).filter(
    (n) => n.id !== network.id && n.mode === "bridge" && n.interfaceName === network.interfaceName,
  );
}

/**
 * The per-endpoint rules of a NIC's bridge: inbound, frames for a container's address (and ARP replies
 * to it) get the container's MAC back; from a container's port, only its own MAC and address pass.
 */
async function setEndpointRules(
  host: HostNetwork,
  nic: string,
  state: DriverState,
  leaving: string | undefined,
): Promise<void> {
  const networks = new Map(
    Object.values(state.networks)
      .filter((n) => n.mode === "bridge" && n.interfaceName === nic)
      .map((n) => [n.id, n]),
  );
  const endpoints = Object.values(state.endpoints).filter(
    (e) => networks.has(e.networkId) && e.id !== leaving,
  );
  const toContainer = (e: EndpointRecord) => [
    "-j",
    "dnat",
    "--to-destination",
    e.macAddress,
    "--dnat-target",
    "ACCEPT",
  ];
  await host.setBridgeChainRules(
    bridgeInChain(nic),
    endpoints.flatMap((e) => [
      ["-p", "IPv4", "--ip-dst", e.address, ...toContainer(e)],
      ["-p", "ARP", "--arp-ip-dst", e.address, ...toContainer(e)],
    ]),
  );
  await host.setBridgeChainRules(
    bridgeSpoofChain(nic),
    endpoints.flatMap((e) => {
      const port = ["-i", hostVethName(e.networkId, e.id)];
      return [
        [...port, "-s", "!", e.macAddress, "-j", "DROP"],
        [...port, "-p", "IPv4", "--ip-src", "!", e.address, "-j", "DROP"],
        [...port, "-p", "ARP", "--arp-ip-src", "!", e.address, "-j", "DROP"],
        [...port, "-p", "ARP", "--arp-mac-src", "!", e.macAddress, "-j", "DROP"],
      ];
    }),
  );
}

/**
 * Moves the NIC's IPv4 configuration to a new bridge and joins the NIC to it. The addresses are on
 * the bridge before the NIC is joined and the routes before the NIC's addresses go, so the host keeps
 * its connectivity; the bridge takes the NIC's MAC, so neighbours see no change.
 */
async function attachNicToBridge(host: HostNetwork, network: NetworkRecord): Promise<void> {
  const nic = network.interfaceName;
  const bridge = bridgeName(nic);
  if ((await host.linkMaster(nic)) === bridge) return;
  // A bridge without the NIC is a leftover of an interrupted attempt; its copies are not needed.
  await host.deleteLink(bridge);
  const addresses = await host.listIpv4Addresses(nic);
  const routes = await host.listManagedRoutes(nic);
  await host.createBridge(bridge, network.macAddress, network.mtu);
  for (const address of addresses) await host.addIpv4Address(bridge, address);
  await host.setLinkMaster(nic, bridge);
  for (const route of routes) await host.replaceRoute(route, bridge);
  for (const address of addresses) await host.deleteIpv4Address(nic, address);
}

/** Undoes everything bridge mode did to a NIC, from whatever state it is in; safe to repeat. */
export async function teardownNicBridge(host: HostNetwork, nic: string): Promise<void> {
  await keepGoing(`removing the bridge of ${nic}`, [
    () => host.deleteBridgeJump("PREROUTING", [], bridgeSpoofChain(nic)),
    () => host.deleteBridgeChain(bridgeSpoofChain(nic)),
    () => host.deleteBridgeJump("PREROUTING", ["-i", nic], bridgeInChain(nic)),
    () => host.deleteBridgeChain(bridgeInChain(nic)),
    () => host.deleteBridgeJump("POSTROUTING", ["-o", nic], bridgeOutChain(nic)),
    () => host.deleteBridgeChain(bridgeOutChain(nic)),
    () => detachNicFromBridge(host, nic),
  ]);
}

/** Gives the NIC back what is on its bridge, addresses first so the routes have somewhere to go. */
async function detachNicFromBridge(host: HostNetwork, nic: string): Promise<void> {
  const bridge = bridgeName(nic);
  if (!(await host.linkExists(bridge))) return;
  const addresses = await host.listIpv4Addresses(bridge);
  const routes = await host.listManagedRoutes(bridge);
  for (const address of addresses) await host.addIpv4Address(nic, address);
  if ((await host.linkMaster(nic)) === bridge) await host.setLinkMaster(nic, undefined);
  for (const route of routes) await host.replaceRoute(route, nic);
  await host.deleteLink(bridge);
}
