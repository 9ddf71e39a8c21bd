/**
 * Transparent (routed) mode. Each container gets a veth pair; the host routes the container's address
 * to its veth and answers the container's ARP requests (proxy ARP), so the container's frames are
 * routed by the host and leave the NIC with the NIC's own MAC, as Azure requires. The NIC, its
 * addresses and its routes are never touched.
 */
import type { HostNetwork } from "../lib/host-net/host-network.js";
import type { DataPath, EndpointLinks } from "./data-path.js";
import type { EndpointRecord, NetworkRecord } from "./driver-state.js";
import { containerVethName, hostVethName, hostVethPattern } from "./names.js";

/** Creates the container's veth pair and the host side of its path. On failure nothing is left behind. */
async function setupEndpoint(
  host: HostNetwork,
  network: NetworkRecord,
  endpoint: EndpointRecord,
): Promise<EndpointLinks> {
  const hostEnd = hostVethName(network.id, endpoint.id);
  const containerEnd = containerVethName(network.id, endpoint.id);
  // A repeated Join (or one after a crash) starts from a clean slate.
  await host.deleteLink(hostEnd);
  await host.createVethPair(hostEnd, containerEnd, network.mtu, endpoint.macAddress);
  try {
    await configureHostEnd(host, hostEnd, endpoint);
  } catch (error) {
    await host.deleteLink(hostEnd).catch(() => undefined);
    throw error;
  }
  return { hostEnd, containerEnd };
}

/**
 * The host end's settings, all idempotent, so a restart can re-apply them to a live container.
 * - proxy_arp: the container believes the whole subnet is on its link; the host answers its ARP
 *   requests for every other address and routes the packets. proxy_delay 0 answers at once, not ~0.8 s later.
 * - rp_filter strict: a packet is accepted only with a source address routed back through this veth,
 *   i.e. the container's own; a container cannot send as another container, the VM or anyone else.
 */
async function configureHostEnd(host: HostNetwork, hostEnd: string, endpoint: EndpointRecord): Promise<void> {
  await host.setLinkUp(hostEnd);
  await host.writeSysctl(`net/ipv4/conf/${hostEnd}/proxy_arp`, "1");
  await host.writeSysctl(`net/ipv4/neigh/${hostEnd}/proxy_delay`, "0");
  await host.writeSysctl(`net/ipv4/conf/${hostEnd}/rp_filter`, "1");
  await host.replaceHostRoute(endpoint.address, hostEnd);
}

export const transparentDataPath: DataPath = {
  trafficPath(network) {
    const veths = hostVethPattern(network.id);
    return { egress: network.interfaceName, fromContainers: ["-i", veths], toContainers: ["-o", veths] };
  },
  setupNetwork: () => Promise.resolve(),
  teardownNetwork: () => Promise.resolve(),
  setupEndpoint,
  repairEndpoint: (host, network, endpoint) =>
    configureHostEnd(host, hostVethName(network.id, endpoint.id), endpoint),
  // Deleting the veth also deletes its route.
  teardownEndpoint: (host, network, endpoint) => host.deleteLink(hostVethName(network.id, endpoint.id)),
  // On-link for the container (its address has the subnet's length); the host answers its ARP.
  gateway: (network) => network.gateway,
};
