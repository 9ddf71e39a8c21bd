/**
 * Private addresses for a NIC PUT, as Azure gives them: a Static ipConfiguration gets the address it
 * asks for if that is a free, unreserved address of the NIC's subnet; a Dynamic one keeps the address
 * it had, or gets the lowest free one of that subnet.
 */
import { subnetOf, type ArmContext, type ArmSubnet } from "./context.js";
import { ArmError } from "./errors.js";
import { formatIpv4, parseIpv4, type SubnetRange } from "./ipv4.js";
import type { RequestedIpConfig } from "./request-body.js";
import type { FakeArmIpConfig, FakeArmNic } from "./types.js";

/** Fills in `result`'s Static addresses; `taken` maps each address held elsewhere to its holder's id. */
export function assignStaticAddresses(
  ctx: ArmContext,
  current: FakeArmNic,
  requested: RequestedIpConfig[],
  result: FakeArmIpConfig[],
  taken: Map<bigint, string>,
): void {
  requested.forEach((config, index) => {
    if (config.allocation !== "Static") return;
    const configId = ctx.ids.ipConfig(current.name, config.name);
    const address = config.privateIp === undefined ? undefined : parseIpv4(config.privateIp);
    if (address === undefined) {
      throw new ArmError(
        400,
        "InvalidRequestFormat",
        `IP configuration ${configId} has allocation method Static but no valid privateIPAddress.`,
      );
    }
    const text = formatIpv4(address);
    checkUsable(subnetOf(ctx, current), address, text);
    const holder = taken.get(address);
    if (holder !== undefined) {
      throw new ArmError(
        400,
        "PrivateIPAddressInUse",
        `IP configuration ${configId} is using the same private IP address ${text} as IP configuration ${holder}.`,
      );
    }
    taken.set(address, configId);
    result[index]!.privateIp = text;
  });
}

/** Refuses a static address outside the subnet or in Azure's reserved part of it. */
function checkUsable(subnet: ArmSubnet, address: bigint, text: string): void {
  const { range, prefix } = subnet;
  if (address < range.network || address > range.broadcast) {
    throw new ArmError(
      400,
      "PrivateIPAddressNotInSubnet",
      `Private static IP address ${text} does not belong to the range of subnet prefix ${prefix}.`,
    );
  }
  if (address < range.firstUsable || address > range.lastUsable) {
    throw new ArmError(
      400,
      "PrivateIPAddressInReservedRange",
      `Private static IP address ${text} falls within reserved IP range of subnet prefix ${prefix}.`,
    );
  }
}

/** Fills in `result`'s Dynamic addresses, after the Static ones are in `taken`. */
export function assignDynamicAddresses(
  ctx: ArmContext,
  current: FakeArmNic,
  requested: RequestedIpConfig[],
  result: FakeArmIpConfig[],
  taken: Map<bigint, string>,
): void {
  const subnet = subnetOf(ctx, current);
  requested.forEach((config, index) => {
    if (config.allocation !== "Dynamic") return;
    const configId = ctx.ids.ipConfig(current.name, config.name);
    // Azure keeps a Dynamic configuration's address for as long as the configuration exists.
    const existing = current.ipConfigurations.find((c) => c.name.toLowerCase() === config.name.toLowerCase());
    const kept = existing ? parseIpv4(existing.privateIp) : undefined;
    const address = kept !== undefined && !taken.has(kept) ? kept : lowestFree(subnet.range, taken);
    if (address === undefined) {
      const { name, prefix } = subnet;
      throw new ArmError(
        400,
        "SubnetIsFull",
        `Subnet ${name} with address prefix ${prefix} does not have enough capacity for 1 IP addresses.`,
      );
    }
    taken.set(address, configId);
    result[index]!.privateIp = formatIpv4(address);
  });
}

function lowestFree(subnet: SubnetRange, taken: Map<bigint, string>): bigint | undefined {
  for (let candidate = subnet.firstUsable; candidate <= subnet.lastUsable; candidate++) {
    if (!taken.has(candidate)) return candidate;
  }
  return undefined;
}
