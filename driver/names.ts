/**
 * Every name the driver gives a kernel object, and the rules that read such names back: a fixed prefix
 * and part of Docker's id (or of the NIC's name), short enough for the kernel's 15-character interface
 * names and recognisable as ours by an operator and by cleanup (restore.ts, `azure-vnet doctor`).
 */
import { shortId } from "../lib/short-id.js";

/** The kernel's limit on interface names (IFNAMSIZ less the terminating NUL). */
const MAX_INTERFACE_NAME = 15;
const HOST_VETH_PREFIX = "az";
const CONTAINER_VETH_PREFIX = "ac";
/** How much of each id a veth name keeps: 2 + 5 + 8 characters, the kernel's 15. */
const NETWORK_PART = 5;
const ENDPOINT_PART = 8;
/** Ids are hex, or base 36 for swarm networks. */
const VETH_NAME = new RegExp(
  `^(${HOST_VETH_PREFIX}|${CONTAINER_VETH_PREFIX})[0-9a-z]{${NETWORK_PART + ENDPOINT_PART}}$`,
);
const BRIDGE_PREFIX = "azbr-";

/**
 * iptables wildcard matching the host side of every azure network's containers: the host veths of
 * transparent mode (`az` + hex) and the bridges of bridge mode (`azbr-`) share the prefix.
 */
export const CONTAINER_INTERFACES = `${HOST_VETH_PREFIX}+`;

/**
 * Policy routing for NICs other than the primary: each gets a routing table numbered from
 * FIRST_ROUTE_TABLE, its containers' addresses a rule at SOURCE_RULE_PRIORITY, and one rule at
 * HOST_ROUTES_RULE_PRIORITY, ahead of them, keeps the host's own /32 routes (its containers) first.
 * All below the main table's 32766, and above anything a distribution sets up by default.
 */
export const FIRST_ROUTE_TABLE = 30001;
export const HOST_ROUTES_RULE_PRIORITY = 30000;
export const SOURCE_RULE_PRIORITY = 30001;

/** Prefixes of the iptables chains of each network, for cleanup to find every chain of ours. */
export const FORWARD_CHAIN_PREFIX = "AZV-FWD-";
export const ISOLATION_CHAIN_PREFIX = "AZV-ISO-";
export const NAT_CHAIN_PREFIX = "AZV-NAT-";

/**
 * The part of a network id its veth names carry: two networks that share it would share veth names
 * and iptables wildcards, so the second is refused.
 */
export function vethNetworkPart(networkId: string): string {
  return networkId.slice(0, NETWORK_PART);
}

/** Host end of a container's veth: `az` + 5 hex of the network + 8 hex of the endpoint. */
export function hostVethName(networkId: string, endpointId: string): string {
  return `${HOST_VETH_PREFIX}${vethNetworkPart(networkId)}${endpointId.slice(0, ENDPOINT_PART)}`;
}

/** The container end, until Docker moves it into the container and renames it eth0. */
export function containerVethName(networkId: string, endpointId: string): string {
  return `${CONTAINER_VETH_PREFIX}${vethNetworkPart(networkId)}${endpointId.slice(0, ENDPOINT_PART)}`;
}

/** iptables wildcard matching every host veth of a network. */
export function hostVethPattern(networkId: string): string {
  return `${HOST_VETH_PREFIX}${vethNetworkPart(networkId)}+`;
}

/** Whether a link is a veth end of ours (of any network), for the removal of leftovers. */
export function isVethName(name: string): boolean {
  return VETH_NAME.test(name);
}

/** The Linux bridge bridge-mode networks put a NIC on. */
export function bridgeName(nic: string): string {
  return `${BRIDGE_PREFIX}${nic}`.slice(0, MAX_INTERFACE_NAME);
}

/**
 * The NIC a bridge of ours was made for, or undefined for any other link. Bridge names carry the NIC's
 * name cut at 15 characters; NIC names are short in practice.
 * @example bridgeNic("azbr-eth1") // "eth1"
 */
export function bridgeNic(link: string): string | undefined {
  return link.startsWith(BRIDGE_PREFIX) ? link.slice(BRIDGE_PREFIX.length) : undefined;
}

/** ebtables chain that gives frames leaving the NIC's bridge the NIC's MAC. */
export function bridgeOutChain(nic: string): string {
  return `AZV-BR-OUT-${nic}`;
}

/** ebtables chain that gives frames for a container's address the container's MAC. */
export function bridgeInChain(nic: string): string {
  return `AZV-BR-IN-${nic}`;
}

/** ebtables chain that drops what a container sends with another MAC or address than its own. */
export function bridgeSpoofChain(nic: string): string {
  return `AZV-BR-SPOOF-${nic}`;
}

export function natChainName(networkId: string): string {
  return networkChain(NAT_CHAIN_PREFIX, networkId);
}

/** The mangle chain that keeps an --internal network's traffic among its own containers. */
export function isolationChainName(networkId: string): string {
  return networkChain(ISOLATION_CHAIN_PREFIX, networkId);
}

export function forwardChainName(networkId: string): string {
  return networkChain(FORWARD_CHAIN_PREFIX, networkId);
}

function networkChain(prefix: string, networkId: string): string {
  return `${prefix}${shortId(networkId).toUpperCase()}`;
}

/** The comment on every rule we add outside our own chains. */
export function ruleComment(networkId: string): string {
  return `azure-vnet network ${shortId(networkId)}`;
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
