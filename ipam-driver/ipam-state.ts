/**
 * The IPAM driver's persistent records: the pools dockerd asked for and the addresses handed out. Plain
 * data, checked on load; the allocator changes it, the state file keeps it.
 */
import type { Inventory } from "./inventory.js";
import type { IpFamily } from "../lib/ip.js";

export type PoolRecord = {
  id: string;
  macAddress: string;
  family: IpFamily;
  /** The NIC subnet the pool serves. */
  subnet: string;
  /** `--ip-range`: automatic allocation stays inside it. */
  range: string | undefined;
  /** What dockerd asked for; "" means any, answered with 0.0.0.0/0 for IPv4 (see docs/ipam.md). */
  requested: string;
  refCount: number;
  /** Allocation continues after this address, so a released address is not reused at once. */
  lastAllocated: string | undefined;
  /** The network the network driver built on this pool (pools of older releases have none). */
  networkId?: string;
};

export type Reservation = {
  address: string;
  poolId: string;
  macAddress: string;
  reservedAt: string;
  /** Filled in by the network driver once it knows the endpoint. */
  endpointId?: string;
};

export type IpamState = {
  pools: Record<string, PoolRecord>;
  /** Keyed by address: one NIC address can be held only once, whatever the pool. */
  reservations: Record<string, Reservation>;
  /** The last NIC inventory read successfully, so a restart without IMDS still knows the pool. */
  inventory: Inventory | undefined;
};

export function emptyIpamState(): IpamState {
  return { pools: {}, reservations: {}, inventory: undefined };
}

/** Checks the IPAM section of a loaded state document; throws naming the first bad record. */
export function validateIpamState(value: unknown): IpamState {
  if (!isObject(value)) throw new Error(`"ipam" is not an object`);
  const { pools, reservations, inventory } = value;
  if (!isObject(pools)) throw new Error(`"ipam.pools" is not an object`);
  if (!isObject(reservations)) throw new Error(`"ipam.reservations" is not an object`);
  for (const [id, pool] of Object.entries(pools)) {
    if (
      !isObject(pool) ||
      pool.id !== id ||
      typeof pool.subnet !== "string" ||
      typeof pool.refCount !== "number"
    ) {
      throw new Error(`pool record ${JSON.stringify(id)} is malformed`);
    }
  }
  for (const [address, reservation] of Object.entries(reservations)) {
    if (!isObject(reservation) || reservation.address !== address || typeof reservation.poolId !== "string") {
      throw new Error(`reservation of ${JSON.stringify(address)} is malformed`);
    }
  }
  if (inventory !== undefined && (!isObject(inventory) || !Array.isArray(inventory.nics))) {
    throw new Error(`"ipam.inventory" is malformed`);
  }
  return value as IpamState;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
