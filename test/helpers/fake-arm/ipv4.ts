/**
 * The stand-in's IPv4 arithmetic, on `ip-address` (through lib/ip.ts where it fits): reading addresses
 * as ARM reads them, writing them back, and the part of the subnet Azure hands out.
 */
import { Address4 } from "ip-address";
import { formatIp, parsePrefix } from "../../../lib/ip.js";

/**
 * An IPv4 address as ARM reads one in a request, or undefined. Leading zeros are read as decimal
 * ("10.1.0.05" is 10.1.0.5), so unlike lib/ip.ts's parseIp this does not insist on the canonical form.
 */
export function parseIpv4(text: string): bigint | undefined {
  if (text.includes("/") || !Address4.isValid(text)) return undefined;
  return new Address4(text).bigInt();
}

export function requireIpv4(text: string, what: string): bigint {
  const value = parseIpv4(text);
  if (value === undefined) throw new Error(`${what} ${text} is not an IPv4 address`);
  return value;
}

export function formatIpv4(value: bigint): string {
  return formatIp(value, 4);
}

/** A subnet's bounds and the addresses in it Azure hands out. */
export type SubnetRange = { network: bigint; broadcast: bigint; firstUsable: bigint; lastUsable: bigint };

/** Azure reserves the network address, .1 (gateway), .2 and .3 (DNS) and the broadcast address. */
export function parseSubnet(prefix: string): SubnetRange {
  const parsed = parsePrefix(prefix, false);
  if (parsed?.family !== 4 || parsed.length > 29) {
    throw new Error(`subnet prefix ${prefix} is not an IPv4 prefix Azure allows (/29 or larger)`);
  }
  const { first: network, last: broadcast } = parsed;
  return { network, broadcast, firstUsable: network + 4n, lastUsable: broadcast - 1n };
}
