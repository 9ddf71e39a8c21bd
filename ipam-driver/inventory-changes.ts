/**
 * Reports what changed between two NIC inventories: addresses that became usable, addresses removed,
 * and removed addresses that a container still holds (they stay with it and are never handed out again).
 */
import type { Logger } from "../lib/logger.js";
import { nicLabel, type Inventory } from "./inventory.js";
import type { IpamState } from "./ipam-state.js";

export function logInventoryChange(
  logger: Logger,
  previous: Inventory | undefined,
  next: Inventory,
  state: IpamState,
): void {
  const before = secondariesByNic(previous);
  for (const nic of next.nics) {
    const now = new Set(nic.subnets.flatMap((s) => s.secondaries));
    const was = before.get(nic.macAddress) ?? new Set<string>();
    const added = [...now].filter((a) => !was.has(a));
    const removed = [...was].filter((a) => !now.has(a));
    if (added.length || removed.length || !previous) {
      logger.info("NIC addresses", {
        nic: nicLabel(nic),
        macAddress: nic.macAddress,
        subnets: nic.subnets.map((s) => s.prefix),
        secondaries: now.size,
        added,
        removed,
      });
    }
  }
  const goneButHeld = Object.values(state.reservations).filter((reservation) => {
    const nic = next.nics.find((n) => n.macAddress === reservation.macAddress);
    return !nic?.subnets.some((s) => s.secondaries.includes(reservation.address));
  });
  if (goneButHeld.length > 0) {
    logger.warn(
      "addresses removed from the NIC are still held by containers; they keep them until they stop",
      {
        addresses: goneButHeld.map((r) => ({
          address: r.address,
          endpointId: r.endpointId,
          reservedAt: r.reservedAt,
        })),
      },
    );
  }
}

function secondariesByNic(inventory: Inventory | undefined): Map<string, Set<string>> {
  return new Map(
    (inventory?.nics ?? []).map((nic) => [
      nic.macAddress,
      new Set(nic.subnets.flatMap((s) => s.secondaries)),
    ]),
  );
}
