/**
 * Addresses the plugin itself just added to or removed from a NIC through Azure Resource Manager, laid
 * over what the pool source reports until the source shows the same. IMDS can lag ARM by a while; without
 * this, a grown pool would only be usable after the next read, and a withdrawn address could be handed
 * out again while Azure removes it.
 */
import { compareIps, parseIp } from "../lib/ip.js";
import type { Inventory } from "./inventory.js";

export type PendingAddress = {
  macAddress: string;
  subnet: string;
  address: string;
  change: "add" | "remove";
  /** After this time (ms since the epoch) the source is believed again. */
  expiresAt: number;
};

/**
 * Applies `pending` to a fresh copy of `inventory`. Returns the result and the changes still pending:
 * those the source does not show yet and that have not expired.
 */
export function withPendingAddresses(
  inventory: Inventory,
  pending: readonly PendingAddress[],
  now: number,
): { inventory: Inventory; pending: PendingAddress[] } {
  const result = structuredClone(inventory);
  const still: PendingAddress[] = [];
  for (const entry of pending) {
    const subnet = result.nics
      .find((nic) => nic.macAddress === entry.macAddress)
      ?.subnets.find((s) => s.prefix === entry.subnet);
    if (!subnet || now >= entry.expiresAt) continue;
    const listed = subnet.secondaries.includes(entry.address);
    if (entry.change === "add" && !listed) {
      subnet.secondaries = [...subnet.secondaries, entry.address]
        .map((text) => parseIp(text)!)
        .sort(compareIps)
        .map((ip) => ip.text);
      still.push(entry);
    } else if (entry.change === "remove" && listed) {
      subnet.secondaries = subnet.secondaries.filter((a) => a !== entry.address);
      still.push(entry);
    }
  }
  return { inventory: result, pending: still };
}
