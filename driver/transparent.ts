/**
 * Transparent (routed) mode. Each container gets a veth pair; the host routes the container's address
 * to its veth and answers the container's ARP requests (proxy ARP), so the container's frames are
 * routed by the host and leave the NIC with the NIC's own MAC, as Azure requires. The NIC, its
 * addresses and its routes are never touched.
 */
import type { HostNetwork } from "../plugin/host-net/host-network.js";
import type { EndpointRecord, NetworkRecord } from "./driver-state.js";
import { containerVethName, hostVethName, hostVethPattern } from "./names.js";
import type { TrafficPath } from "./network-setup.js";
import type { EndpointLinks } from "./data-path.js";

export function transparentTrafficPath(network: NetworkRecord): TrafficPath {
  const veths = hostVethPattern(network.id);
  return { egress: network.interfaceName, fromContainers: ["-i", veths], toContainers: ["-o", veths] };
}

/** Creates the container's veth pair and the host side of its path. On failure nothing is left behind. */
export async function setupTransparentEndpoint(
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
    await host.setLinkUp(hostEnd);
    // The container believes the whole subnet is on its link; the host answers its ARP requests for
    // every other address and routes the packets. proxy_delay 0: answer at once, not after ~0.8 s.
    await host.writeSysctl(`net/ipv4/conf/${hostEnd}/proxy_arp`, "1");
    await host.writeSysctl(`net/ipv4/neigh/${hostEnd}/proxy_delay`, "0");
    await host.replaceHostRoute(endpoint.address, hostEnd);
  } catch (error) {
    await host.deleteLink(hostEnd).catch(() => undefined);
    throw error;
  }
  return { hostEnd, containerEnd };
}

/** Removes the container's veth (and with it its route); safe when already gone. */
export async function teardownTransparentEndpoint(
  host: HostNetwork,
  network: NetworkRecord,
  endpoint: EndpointRecord,
): Promise<void> {
  await host.deleteLink(hostVethName(network.id, endpoint.id));
}
