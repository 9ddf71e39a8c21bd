/**
 * A network's host changes that do not depend on its containers: IPv4 forwarding, a filter chain that
 * lets (or, for --internal, stops) container traffic through FORWARD, and a nat chain that source-NATs
 * traffic leaving the VNet's ranges to the NIC's primary IP, except from containers with a public IP of
 * their own (Azure translates theirs). All rules live in chains the plugin owns; the built-in chains
 * only get one commented jump each.
 */
import type { HostNetwork } from "../lib/host-net/host-network.js";
import { keepGoing } from "../lib/keep-going.js";
import type { DriverState, NetworkRecord } from "./driver-state.js";
import type { Table } from "../lib/host-net/iptables.js";
import {
  CONTAINER_INTERFACES,
  forwardChainName,
  isolationChainName,
  natChainName,
  ruleComment,
} from "./names.js";
import { shortId } from "../lib/short-id.js";

/** Azure DNS and the wireserver: containers must reach it with their own address. */
export const AZURE_DNS = "168.63.129.16/32";
export const FORWARDING_SYSCTL = "net/ipv4/ip_forward";
/**
 * Docker's documented place for an administrator's own filter rules on container traffic: FORWARD
 * jumps to it first, and dockerd puts that jump back on top whenever it starts. Our FORWARD jumps go
 * right behind it, so the administrator's rules see azure-vnet containers as they see Docker's own.
 */
export const DOCKER_USER_CHAIN = "DOCKER-USER";
/** The Instance Metadata Service hands out the VM's managed-identity tokens to whoever asks. */
export const IMDS = "169.254.169.254/32";

/** Where a network's container traffic enters and leaves the host, for the FORWARD and NAT rules. */
export type TrafficPath = {
  /** The interface container traffic leaves the VM by. */
  egress: string;
  /** Matches packets coming from this network's containers. */
  fromContainers: string[];
  /** Matches packets going to them. */
  toContainers: string[];
};

/**
 * The nat chain's rules: keep the container's address inside the VNet's ranges, SNAT the rest, but not
 * from `ownPublicIp` addresses: Azure sends their traffic out under their own public IP.
 */
export function natRules(network: NetworkRecord, ownPublicIp: string[] = []): string[][] {
  return [
    ["-s", `${network.primary}/32`, "-j", "RETURN"],
    ...ownPublicIp.map((address) => ["-s", `${address}/32`, "-j", "RETURN"]),
    ...[network.subnet, AZURE_DNS, ...network.vnetRanges].map((range) => ["-d", range, "-j", "RETURN"]),
    ["-j", "SNAT", "--to-source", network.primary],
  ];
}

/**
 * The filter chain's rules, for traffic from and to the network's containers:
 * - the shields: no IMDS unless the network allows it; of 168.63.129.16 only Azure DNS (53) unless
 *   the network allows the wireserver;
 * - out through the network's way to the VNet, or to the containers of any azure network: accepted;
 * - replies, and connections to a port Docker publishes (DNATed): left to the host's own rules;
 * - anything else, i.e. from a container to another interface of the VM (Docker's bridge networks, a
 *   VPN): dropped, as Docker keeps its own networks apart. DOCKER-USER comes first and may allow it.
 */
export function forwardRules(network: NetworkRecord, path: TrafficPath): string[][] {
  const imds = network.imdsAccess ? [] : [["-d", IMDS, "-j", "DROP"]];
  const wireserver = network.wireserverAccess
    ? []
    : [
        ["-d", AZURE_DNS, "-p", "udp", "--dport", "53", "-j", "ACCEPT"],
        ["-d", AZURE_DNS, "-p", "tcp", "--dport", "53", "-j", "ACCEPT"],
        ["-d", AZURE_DNS, "-j", "DROP"],
      ];
  return [
    ...imds,
    ...wireserver,
    ["-o", path.egress, "-j", "ACCEPT"],
    ["-o", CONTAINER_INTERFACES, "-j", "ACCEPT"],
    ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "RETURN"],
    ["-j", "DROP"],
  ];
}

/**
 * An --internal network's isolation: only what goes from one of its containers to another passes;
 * whatever other interface the VM has (NICs, Docker's bridges, a VPN) is out of reach both ways. It
 * lives in the mangle table, which the host traverses before filter: dockerd inserts an ACCEPT for
 * every bridge network it creates at the top of filter FORWARD, ahead of any jump of ours.
 */
export function isolationRules(path: TrafficPath): string[][] {
  return [
    [...path.fromContainers, ...path.toContainers, "-j", "RETURN"],
    ["-j", "DROP"],
  ];
}

type Jump = { table: Table; from: string; to: string; match: string[]; after?: string };

/** The jumps from built-in chains into the network's own chains. */
function networkJumps(network: NetworkRecord, path: TrafficPath): Jump[] {
  const forward = forwardChainName(network.id);
  const jumps: Jump[] = [
    { table: "filter", from: "FORWARD", to: forward, match: path.fromContainers, after: DOCKER_USER_CHAIN },
    { table: "filter", from: "FORWARD", to: forward, match: path.toContainers, after: DOCKER_USER_CHAIN },
  ];
  if (network.internal) {
    const isolation = isolationChainName(network.id);
    jumps.push(
      { table: "mangle", from: "FORWARD", to: isolation, match: path.fromContainers },
      { table: "mangle", from: "FORWARD", to: isolation, match: path.toContainers },
    );
  } else {
    jumps.push({
      table: "nat",
      from: "POSTROUTING",
      to: natChainName(network.id),
      match: ["-s", network.subnet, "-o", path.egress],
    });
  }
  return jumps;
}

/**
 * Addresses in the network's NIC subnet whose IP configuration has a public IP in Azure. Every network
 * on that subnet lists them all: each one's nat chain sees the whole subnet's traffic.
 */
export function ownPublicIpAddresses(driver: DriverState, network: NetworkRecord): string[] {
  const sameSubnet = (id: string) =>
    driver.networks[id]?.subnet === network.subnet && driver.networks[id]?.macAddress === network.macAddress;
  return Object.values(driver.endpoints)
    .filter((e) => sameSubnet(e.networkId) && e.azure?.state === "linked" && e.azure.publicIpId)
    .map((e) => e.address);
}

/** Makes the network's chains and jumps exactly what they should be; safe to repeat. */
export async function ensureNetworkRules(
  host: HostNetwork,
  network: NetworkRecord,
  path: TrafficPath,
  driver: DriverState,
): Promise<void> {
  await host.setChainRules("filter", forwardChainName(network.id), forwardRules(network, path));
  if (network.internal)
    await host.setChainRules("mangle", isolationChainName(network.id), isolationRules(path));
  await refreshNatRules(host, network, driver);
  for (const jump of networkJumps(network, path)) {
    await host.ensureJump(jump.table, jump.from, jump.to, jump.match, ruleComment(network.id), jump.after);
  }
}

/**
 * Rewrites the network's nat chain, as when a container's public IP came or went; `linking` adds an
 * address whose public IP is in place but not yet recorded as linked.
 */
export async function refreshNatRules(
  host: HostNetwork,
  network: NetworkRecord,
  driver: DriverState,
  linking?: string,
): Promise<void> {
  if (network.internal) return;
  const own = ownPublicIpAddresses(driver, network);
  if (linking && !own.includes(linking)) own.push(linking);
  await host.setChainRules("nat", natChainName(network.id), natRules(network, own));
}

/**
 * Rewrites the nat chain of every network on the NIC subnet of `changed` (which may be gone): they all
 * list the subnet's addresses that have a public IP of their own.
 */
export async function refreshSubnetNatRules(
  host: HostNetwork,
  driver: DriverState,
  changed: NetworkRecord,
  linking?: string,
): Promise<void> {
  for (const network of Object.values(driver.networks)) {
    if (network.subnet === changed.subnet && network.macAddress === changed.macAddress)
      await refreshNatRules(host, network, driver, linking);
  }
}

/** Removes the network's jumps and chains; absent ones are fine, and one failure does not stop the rest. */
export async function deleteNetworkRules(
  host: HostNetwork,
  network: NetworkRecord,
  path: TrafficPath,
): Promise<void> {
  await keepGoing(`removing the rules of network ${shortId(network.id)}`, [
    ...networkJumps(network, path).map(
      (jump) => () => host.deleteJump(jump.table, jump.from, jump.to, jump.match, ruleComment(network.id)),
    ),
    () => host.deleteChain("nat", natChainName(network.id)),
    () => host.deleteChain("filter", forwardChainName(network.id)),
    () => (network.internal ? host.deleteChain("mangle", isolationChainName(network.id)) : Promise.resolve()),
  ]);
}

/**
 * Turns on IPv4 forwarding, and leaves it on: dockerd turns it on for its own networks too, and a
 * plugin that put back an earlier 0 (one read at boot, before dockerd started) would cut them off.
 */
export async function enableForwarding(host: HostNetwork): Promise<void> {
  await host.writeSysctl(FORWARDING_SYSCTL, "1");
}
