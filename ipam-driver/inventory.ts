/**
 * The NIC inventory: what the pool sources report about this VM's network interfaces, in one shape
 * whatever the source. A source lists NICs with their subnets and addresses; `resolveInventory` checks
 * it, matches NICs to local interfaces by MAC and decides which NIC is the primary one.
 */
import { InvalidParameterError } from "../lib/errors.js";
import type { LocalInterface } from "../lib/host-net/host-network.js";
import { normalizeMac } from "../lib/mac.js";
import { compareIps, firstHost, parseIp, parsePrefix, prefixContains, type IpFamily } from "../lib/ip.js";

/** One subnet of a NIC, as a source reports it. */
export type SourceSubnet = {
  /** `network/length`. */
  prefix: string;
  /** The NIC's own address in this subnet (the primary IP configuration); never handed out. */
  primary?: string;
  /** Secondary IP configurations: the addresses containers get. */
  secondaries: string[];
};

/** One NIC as a source reports it. A source gives the MAC, the local name, or both. */
export type SourceNic = {
  macAddress?: string;
  interfaceName?: string;
  /** Set by sources that know which NIC is primary (wireserver). */
  isPrimary?: boolean;
  subnets: SourceSubnet[];
};

/** A local network interface, as the host reports it. */

/** A checked subnet of the inventory. */
export type Subnet = {
  family: IpFamily;
  prefix: string;
  gateway: string;
  primary: string | undefined;
  /** Sorted numerically, without the primary and the gateway. */
  secondaries: string[];
};

/** A checked NIC of the inventory. */
export type Nic = {
  /** Lower-case, colon separated: `00:0d:3a:f8:06:ec`. */
  macAddress: string;
  /** The local interface with that MAC, when there is one. */
  interfaceName: string | undefined;
  mtu: number | undefined;
  isPrimary: boolean;
  subnets: Subnet[];
};

export type Inventory = { nics: Nic[] };

/**
 * Checks a source's NIC list and joins it with the local interfaces. Throws InvalidParameterError
 * naming the first malformed value, so a broken document never replaces a good pool.
 */
export function resolveInventory(sourceNics: SourceNic[], locals: LocalInterface[]): Inventory {
  const nics = sourceNics.map((sourceNic, index) => resolveNic(sourceNic, index, locals));
  const macs = new Set<string>();
  for (const nic of nics) {
    if (macs.has(nic.macAddress)) throw invalid(`NIC ${nic.macAddress} is listed twice`);
    macs.add(nic.macAddress);
  }
  if (!nics.some((nic) => nic.isPrimary) && nics.length > 0) {
    // IMDS has no primary flag: the NIC carrying the default route is the one the VM's traffic uses.
    const primary = nics.find((nic) => locals.some((l) => l.name === nic.interfaceName && l.hasDefaultRoute));
    (primary ?? nics[0]!).isPrimary = true;
  }
  return { nics };
}

function resolveNic(sourceNic: SourceNic, index: number, locals: LocalInterface[]): Nic {
  let macAddress = sourceNic.macAddress === undefined ? undefined : normalizeMac(sourceNic.macAddress);
  if (sourceNic.macAddress !== undefined && !macAddress) {
    throw invalid(`NIC #${index + 1} has an invalid MAC address ${JSON.stringify(sourceNic.macAddress)}`);
  }
  const local = macAddress
    ? locals.find((l) => l.macAddress === macAddress)
    : locals.find((l) => l.name === sourceNic.interfaceName);
  if (!macAddress) {
    if (!sourceNic.interfaceName)
      throw invalid(`NIC #${index + 1} has neither a MAC address nor an interface name`);
    if (!local) throw invalid(`NIC #${index + 1}: no local interface is named ${sourceNic.interfaceName}`);
    macAddress = local.macAddress;
  }
  const name = local?.name ?? macAddress;
  const subnets = sourceNic.subnets.map((subnet) => resolveSubnet(subnet, name));
  return {
    macAddress,
    interfaceName: local?.name,
    mtu: local?.mtu,
    isPrimary: sourceNic.isPrimary === true,
    subnets,
  };
}

function resolveSubnet(sourceSubnet: SourceSubnet, nicName: string): Subnet {
  const prefix = parsePrefix(sourceSubnet.prefix, false);
  if (!prefix)
    throw invalid(`${nicName}: subnet ${JSON.stringify(sourceSubnet.prefix)} is not a valid prefix`);
  const gateway = firstHost(prefix);
  const parseMember = (text: string) => {
    const address = parseIp(text);
    if (!address || !prefixContains(prefix, address)) {
      throw invalid(`${nicName}: address ${JSON.stringify(text)} is not a valid address in ${prefix.text}`);
    }
    return address;
  };
  const primary = sourceSubnet.primary === undefined ? undefined : parseMember(sourceSubnet.primary);
  const secondaries = sourceSubnet.secondaries
    .map(parseMember)
    .filter((a) => a.text !== primary?.text && a.text !== gateway.text && a.value !== prefix.last)
    .sort(compareIps)
    .map((a) => a.text);
  return {
    family: prefix.family,
    prefix: prefix.text,
    gateway: gateway.text,
    primary: primary?.text,
    secondaries: [...new Set(secondaries)],
  };
}

function invalid(message: string): InvalidParameterError {
  return new InvalidParameterError(message);
}

/** A NIC's name for messages: the local interface name, else its MAC. */
export function nicLabel(nic: Nic): string {
  return nic.interfaceName ?? nic.macAddress;
}
