/**
 * IP address and prefix arithmetic for the pool, on top of `ip-address`. Everything is canonicalised
 * here once (`10.1.0.005` is refused, `fd00:0::1` becomes `fd00::1`) so the rest of the code can compare
 * strings.
 */
import { Address4, Address6 } from "ip-address";

export type IpFamily = 4 | 6;

/** A parsed host address. */
export type IpAddress = { family: IpFamily; text: string; value: bigint };

/** A parsed network prefix whose host bits are zero. */
export type IpPrefix = {
  family: IpFamily;
  /** Canonical `network/length`. */
  text: string;
  network: bigint;
  length: number;
  first: bigint;
  last: bigint;
};

/**
 * Parses a host address without a prefix length; undefined when it is not one.
 * @example parseIp("10.1.0.4") // { family: 4, text: "10.1.0.4", value: 167837700n }
 */
export function parseIp(text: string): IpAddress | undefined {
  if (typeof text !== "string" || text.includes("/") || text.includes("%")) return undefined;
  if (Address4.isValid(text)) {
    const address = new Address4(text);
    const canonical = address.correctForm();
    // ip-address accepts leading zeros ("010.1.0.4"); dockerd and iproute2 read those differently.
    if (canonical !== text) return undefined;
    return { family: 4, text: canonical, value: address.bigInt() };
  }
  if (Address6.isValid(text)) {
    const address = new Address6(text);
    if (address.is4()) return undefined;
    return { family: 6, text: address.correctForm(), value: address.bigInt() };
  }
  return undefined;
}

/**
 * Parses `network/length`. With `strict`, host bits must be zero; otherwise they are cleared.
 * @example parsePrefix("10.1.0.0/24")?.text // "10.1.0.0/24"
 */
export function parsePrefix(text: string, strict = true): IpPrefix | undefined {
  if (typeof text !== "string") return undefined;
  const [addressText, lengthText, extra] = text.split("/");
  if (addressText === undefined || lengthText === undefined || extra !== undefined) return undefined;
  if (!/^\d{1,3}$/.test(lengthText)) return undefined;
  const address = parseIp(addressText);
  if (!address) return undefined;
  const length = Number(lengthText);
  const bits = address.family === 4 ? 32 : 128;
  if (length > bits) return undefined;
  const hostMask = (1n << BigInt(bits - length)) - 1n;
  if (strict && (address.value & hostMask) !== 0n) return undefined;
  const network = address.value & ~hostMask & ((1n << BigInt(bits)) - 1n);
  return {
    family: address.family,
    text: `${formatIp(network, address.family)}/${length}`,
    network,
    length,
    first: network,
    last: network | hostMask,
  };
}

/** Formats a numeric address of the given family. */
export function formatIp(value: bigint, family: IpFamily): string {
  return family === 4 ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
}

/** True when `address` lies inside `prefix`. */
export function prefixContains(prefix: IpPrefix, address: IpAddress): boolean {
  return prefix.family === address.family && address.value >= prefix.first && address.value <= prefix.last;
}

/** True when `inner` lies entirely inside `outer`. */
export function prefixCovers(outer: IpPrefix, inner: IpPrefix): boolean {
  return outer.family === inner.family && inner.first >= outer.first && inner.last <= outer.last;
}

/** The first host address of a prefix: where Azure puts a subnet's gateway. */
export function firstHost(prefix: IpPrefix): IpAddress {
  const value = prefix.network + 1n;
  return { family: prefix.family, text: formatIp(value, prefix.family), value };
}

/** Sorts canonical address strings numerically. */
export function compareIps(a: IpAddress, b: IpAddress): number {
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}
