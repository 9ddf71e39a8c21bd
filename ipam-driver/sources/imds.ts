/**
 * Pool source `imds` (the default): the Azure Instance Metadata Service network document. IMDS has no
 * primary flag; the first address of each NIC is its primary IP configuration, the rest are the pool.
 */
import { UnavailableError } from "../../lib/errors.js";
import type { SourceNic, SourceSubnet } from "../inventory.js";
import { parseIp, parsePrefix } from "../../lib/ip.js";
import { httpGet } from "../../lib/http-get.js";
import type { PoolSource } from "./source.js";

export const IMDS_NETWORK_PATH = "/metadata/instance/network?api-version=2021-02-01";

export function createImdsSource(baseUrl: string, timeoutMs: number): PoolSource {
  const url = new URL(IMDS_NETWORK_PATH, baseUrl).toString();
  return {
    name: "imds",
    location: url,
    async fetchNics() {
      const body = await httpGet(url, { headers: { Metadata: "true" }, timeoutMs });
      return parseImdsNetwork(body);
    },
  };
}

type ImdsAddress = { privateIpAddress?: unknown };
type ImdsFamily = { ipAddress?: unknown; subnet?: unknown };
type ImdsInterface = { macAddress?: unknown; ipv4?: ImdsFamily; ipv6?: ImdsFamily };

/**
 * Turns the IMDS network document into NICs. Throws UnavailableError for a malformed document.
 * @example parseImdsNetwork('{"interface":[{"macAddress":"000D3AF806EC","ipv4":{"ipAddress":[{"privateIpAddress":"10.1.0.4"}],"subnet":[{"address":"10.1.0.0","prefix":"24"}]},"ipv6":{"ipAddress":[]}}]}')
 */
export function parseImdsNetwork(body: string): SourceNic[] {
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch (error) {
    throw malformed(`not JSON (${(error as Error).message})`);
  }
  const interfaces = (document as { interface?: unknown } | null)?.interface;
  if (!Array.isArray(interfaces)) throw malformed(`no "interface" array`);
  return interfaces.map((entry: ImdsInterface, index) => {
    if (typeof entry?.macAddress !== "string") throw malformed(`interface #${index + 1} has no macAddress`);
    const subnets = [...familySubnets(entry.ipv4, 4, index), ...familySubnets(entry.ipv6, 6, index)];
    return { macAddress: entry.macAddress, subnets };
  });
}

function familySubnets(family: ImdsFamily | undefined, version: 4 | 6, index: number): SourceSubnet[] {
  if (family === undefined) return [];
  const addresses = stringList(family.ipAddress, index, version);
  if (addresses.length === 0) return [];
  const prefixes = version === 4 ? ipv4Prefixes(family.subnet, index) : ipv6Prefixes(addresses);
  // The NIC's first address is its primary configuration; each address belongs to the subnet holding it.
  const [primary, ...secondaries] = addresses;
  return prefixes.map((prefix) => {
    const parsed = parsePrefix(prefix)!;
    const inside = (text: string) => {
      const address = parseIp(text);
      return address !== undefined && address.value >= parsed.first && address.value <= parsed.last;
    };
    return {
      prefix,
      ...(primary !== undefined && inside(primary) ? { primary } : {}),
      secondaries: secondaries.filter(inside),
    };
  });
}

function stringList(value: unknown, index: number, version: 4 | 6): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value))
    throw malformed(`interface #${index + 1} ipv${version}.ipAddress is not an array`);
  return value
    .map((entry: ImdsAddress) => entry?.privateIpAddress)
    .filter((address): address is string => {
      if (typeof address !== "string")
        throw malformed(`interface #${index + 1} has an ipAddress without privateIpAddress`);
      if (address === "") return false;
      if (parseIp(address)?.family !== version) {
        throw malformed(
          `interface #${index + 1} has an invalid IPv${version} address ${JSON.stringify(address)}`,
        );
      }
      return true;
    });
}

function ipv4Prefixes(value: unknown, index: number): string[] {
  if (!Array.isArray(value) || value.length === 0)
    throw malformed(`interface #${index + 1} has no ipv4 subnet`);
  return value.map((subnet: { address?: unknown; prefix?: unknown }) => {
    const text = `${String(subnet?.address)}/${String(subnet?.prefix)}`;
    const prefix = parsePrefix(text, false);
    if (!prefix || prefix.family !== 4)
      throw malformed(`interface #${index + 1} has an invalid subnet ${text}`);
    return prefix.text;
  });
}

/** IMDS gives no IPv6 subnet; Azure IPv6 subnets are always /64. */
function ipv6Prefixes(addresses: string[]): string[] {
  const prefixes = addresses.map((address) => parsePrefix(`${address}/64`, false)?.text);
  return [...new Set(prefixes.filter((prefix): prefix is string => prefix !== undefined))];
}

function malformed(detail: string): UnavailableError {
  return new UnavailableError(`IMDS network document is malformed: ${detail}`);
}
