/**
 * Views of the model that count unfinished operations as done: which ipConfiguration holds each
 * private address and each public IP, and how many private addresses a VM's other NICs hold, so a
 * change cannot take what another one is about to take.
 */
import type { ArmContext } from "./context.js";
import { parseIpv4 } from "./ipv4.js";
import type { FakeArmNic } from "./types.js";

/** Every NIC as it is or as an unfinished operation will leave it, except `exceptNic` (lower-case). */
function nicsInPlay(ctx: ArmContext, exceptNic?: string): FakeArmNic[] {
  const result: FakeArmNic[] = [];
  for (const [key, record] of ctx.store.nics) if (key !== exceptNic) result.push(record.nic);
  for (const nic of ctx.operations.pendingNics()) if (nic.name.toLowerCase() !== exceptNic) result.push(nic);
  return result;
}

/** Which ipConfiguration holds each private address, counting unfinished operations. */
export function addressHolders(ctx: ArmContext, exceptNic: string): Map<bigint, string> {
  const holders = new Map<bigint, string>();
  for (const nic of nicsInPlay(ctx, exceptNic)) {
    for (const config of nic.ipConfigurations) {
      const address = parseIpv4(config.privateIp);
      if (address !== undefined) holders.set(address, ctx.ids.ipConfig(nic.name, config.name));
    }
  }
  return holders;
}

/** Which ipConfiguration each public IP (lower-case id) is associated with, counting unfinished operations. */
export function publicIpHolders(ctx: ArmContext, exceptNic?: string): Map<string, string> {
  const holders = new Map<string, string>();
  for (const nic of nicsInPlay(ctx, exceptNic)) {
    for (const config of nic.ipConfigurations) {
      if (config.publicIpId)
        holders.set(config.publicIpId.toLowerCase(), ctx.ids.ipConfig(nic.name, config.name));
    }
  }
  return holders;
}

/**
 * How many ipConfigurations (private addresses) the other NICs of `nic`'s VM hold, each NIC as it is
 * or as an unfinished operation will leave it, whichever holds more.
 */
export function privateAddressesOnOtherNics(ctx: ArmContext, nic: FakeArmNic): number {
  const counts = new Map<string, number>();
  for (const other of nicsInPlay(ctx, nic.name.toLowerCase())) {
    if (other.vmName !== nic.vmName) continue;
    const key = other.name.toLowerCase();
    counts.set(key, Math.max(counts.get(key) ?? 0, other.ipConfigurations.length));
  }
  return [...counts.values()].reduce((sum, count) => sum + count, 0);
}
