/**
 * Kernel object names derived from Docker's ids: a fixed prefix and part of the id, short enough for
 * the kernel's 15-character interface names and recognisable as ours by an operator and by cleanup.
 */

/** Host end of a container's veth: `az` + 5 hex of the network + 8 hex of the endpoint. */
export function hostVethName(networkId: string, endpointId: string): string {
  return `az${networkId.slice(0, 5)}${endpointId.slice(0, 8)}`;
}

/** The container end, until Docker moves it into the container and renames it eth0. */
export function containerVethName(networkId: string, endpointId: string): string {
  return `ac${networkId.slice(0, 5)}${endpointId.slice(0, 8)}`;
}

/** iptables wildcard matching every host veth of a network. */
export function hostVethPattern(networkId: string): string {
  return `az${networkId.slice(0, 5)}+`;
}

export function natChainName(networkId: string): string {
  return `AZV-NAT-${networkId.slice(0, 12).toUpperCase()}`;
}

/** The mangle chain that keeps an --internal network's traffic among its own containers. */
export function isolationChainName(networkId: string): string {
  return `AZV-ISO-${networkId.slice(0, 12).toUpperCase()}`;
}

export function forwardChainName(networkId: string): string {
  return `AZV-FWD-${networkId.slice(0, 12).toUpperCase()}`;
}

/** The comment on every rule we add outside our own chains. */
export function ruleComment(networkId: string): string {
  return `azure-vnet network ${networkId.slice(0, 12)}`;
}

/**
 * A container MAC derived from its IPv4 address (locally administered, as CNI plugins do): stable for
 * an address, unique within the subnet, and telling an operator which container a frame belongs to.
 * @example containerMac("10.1.0.5") // "0a:58:0a:01:00:05"
 */
export function containerMac(address: string): string {
  return ["0a", "58", ...address.split(".").map((octet) => Number(octet).toString(16).padStart(2, "0"))].join(
    ":",
  );
}
