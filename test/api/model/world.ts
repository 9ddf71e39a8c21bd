/**
 * The fixed world of the model-based test: the two NICs of `twoNicPool()` (test/helpers/plugin-under-test.ts)
 * as the model sees them, and the small sets of ids, addresses, subnets and ranges that commands pick
 * from. Small sets make repeats, collisions and unknown ids common.
 */
import { Address4 } from "ip-address";
import { ETH0_MAC, ETH1_MAC } from "../../helpers/fake-host.js";

/** A NIC as the model knows it: every subnet here is a /24. */
export type ModelNic = {
  name: string;
  mac: string;
  subnet: string;
  gateway: string;
  primary: string;
  secondaries: string[];
  /** Carries the default route: the NIC of networks created without --subnet or --ipam-opt. */
  isPrimary: boolean;
};

/** twoNicPool(): eth0 10.1.0.0/24, primary .4, secondaries .5-.8; eth1 10.2.0.0/24, primary .4, secondaries .5-.6. */
export const NICS: ModelNic[] = [
  {
    name: "eth0",
    mac: ETH0_MAC,
    subnet: "10.1.0.0/24",
    gateway: "10.1.0.1",
    primary: "10.1.0.4",
    secondaries: ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"],
    isPrimary: true,
  },
  {
    name: "eth1",
    mac: ETH1_MAC,
    subnet: "10.2.0.0/24",
    gateway: "10.2.0.1",
    primary: "10.2.0.4",
    secondaries: ["10.2.0.5", "10.2.0.6"],
    isPrimary: false,
  },
];

export const PREFIX_LENGTH = 24;
/** What RequestPool answers for an IPv4 pool requested without --subnet (docs/ipam.md, "Networks created without --subnet"). */
export const ANY_POOL = "0.0.0.0/0";
export const AZURE_ADDRESS_SPACE = "azure-local";
/** Docker's own default IPAM's address space: a network built with it is not an azure network. */
export const DOCKER_DEFAULT_ADDRESS_SPACE = "LocalDefault";

/** `--subnet` values: both NIC subnets, one this VM does not have, an IPv6 one. */
export const SUBNETS = ["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24", "fd00::/64"];

/** `--ip-range` values with the subnet each lies in and the NIC secondaries inside it. */
export const RANGES: { text: string; subnet: string; members: string[] }[] = [
  { text: "10.1.0.4/30", subnet: "10.1.0.0/24", members: ["10.1.0.5", "10.1.0.6", "10.1.0.7"] },
  { text: "10.1.0.8/29", subnet: "10.1.0.0/24", members: ["10.1.0.8"] },
  { text: "10.2.0.4/30", subnet: "10.2.0.0/24", members: ["10.2.0.5", "10.2.0.6"] },
];

/** `--ipam-opt interface=` values; eth9 does not exist. */
export const INTERFACES = ["eth0", "eth1", "eth9"];

/** Addresses commands ask for: secondaries, primaries, gateways, one in a subnet but not on the NIC, one outside. */
export const ADDRESSES = [
  "10.1.0.5",
  "10.1.0.6",
  "10.1.0.7",
  "10.1.0.8",
  "10.1.0.4",
  "10.1.0.1",
  "10.1.0.9",
  "10.2.0.5",
  "10.2.0.6",
  "10.2.0.4",
  "10.2.0.1",
  "192.168.7.5",
];

/** Docker ids; their first five hex digits differ, as veth names require. */
export const NETWORK_IDS = ["1a2b3", "4c5d6", "7e8f9"].map((p) => p + "0".repeat(59));
export const ENDPOINT_IDS = ["a0a0a", "b1b1b", "c2c2c", "d3d3d"].map((p) => p + "e".repeat(59));

/** PoolIDs no RequestPool answered, including names every JavaScript object inherits. */
export const UNKNOWN_POOL_IDS = ["__proto__", "constructor", "toString", "hasOwnProperty", "no-such-pool"];

export function short(id: string): string {
  return id.slice(0, 5);
}

export function nicByName(name: string): ModelNic | undefined {
  return NICS.find((nic) => nic.name === name);
}

export function nicOfAddress(address: string): ModelNic | undefined {
  return NICS.find((nic) => inSubnet(address, nic.subnet));
}

/**
 * Whether an IPv4 address lies in one of the world's subnets. Straight from `ip-address`, not through
 * lib/ip.ts, so the model does not share the code it checks.
 */
export function inSubnet(address: string, subnet: string): boolean {
  return Address4.isValid(address) && new Address4(address).isInSubnet(new Address4(subnet));
}
