/**
 * The address pool's rules, as pure functions over the IPAM records and the current NIC inventory:
 * which subnet a pool request gets, which secondary IP an address request gets, and why a request is
 * refused. No I/O, so unit tests drive it directly.
 */
import {
  ConflictError,
  InvalidParameterError,
  NotFoundError,
  PoolExhaustedError,
  UnavailableError,
} from "../lib/errors.js";
import { nicLabel, type Inventory, type Nic, type Subnet } from "./inventory.js";
import type { IpamState, PoolRecord, Reservation } from "./ipam-state.js";
import {
  parseIp,
  parsePrefix,
  prefixContains,
  prefixCovers,
  type IpAddress,
  type IpFamily,
  type IpPrefix,
} from "../lib/ip.js";
import { ANY_IPV4_POOL } from "../lib/ipam-wire.js";

/** Picks a NIC by local interface name or by MAC (`--ipam-opt interface=eth1` / `mac=...`). */
export type NicSelector = { interfaceName: string } | { macAddress: string };

/** A RequestPool after parsing at the edge. */
export type PoolRequest = {
  family: IpFamily;
  /** `--subnet`, or undefined for "the NIC's subnet". */
  pool: IpPrefix | undefined;
  /** `--ip-range`. */
  range: IpPrefix | undefined;
  nic: NicSelector | undefined;
};

export type PoolGrant = { poolId: string; pool: string; gateway: string };

/** A RequestAddress after parsing at the edge. */
export type AddressRequest = { poolId: string; address: IpAddress | undefined; isGateway: boolean };

/**
 * Creates a pool for a request. Every request gets a pool of its own, named with `tag` (unique per
 * call): two networks on one subnet never share a pool, so a ReleasePool that dockerd sends again (after
 * a transport error) can only ever remove the pool it names, never another network's.
 */
export function requestPool(
  state: IpamState,
  inventory: Inventory,
  request: PoolRequest,
  tag: string,
): PoolGrant {
  const { nic, subnet } = choosePoolSubnet(inventory, request);
  if (request.range && !prefixCovers(parsePrefix(subnet.prefix)!, request.range)) {
    throw new InvalidParameterError(
      `--ip-range ${request.range.text} is not inside subnet ${subnet.prefix} of ${nicLabel(nic)}`,
      {
        hint: `choose a range inside ${subnet.prefix}`,
      },
    );
  }
  const requested = request.pool?.text ?? "";
  const id = poolId(nic.macAddress, subnet.prefix, request.range?.text, requested, tag);
  if (Object.hasOwn(state.pools, id)) throw new Error(`pool tag ${tag} is in use; give each request its own`);
  const pool: PoolRecord = {
    id,
    macAddress: nic.macAddress,
    family: subnet.family,
    subnet: subnet.prefix,
    range: request.range?.text,
    requested,
    refCount: 1,
    lastAllocated: undefined,
  };
  state.pools[id] = pool;
  return { poolId: id, pool: answeredPool(pool), gateway: gatewayCidr(subnet) };
}

/** The pool named `id`; ids come from requests, so `__proto__` and the like are simply unknown. */
export function findPool(state: IpamState, id: string): PoolRecord | undefined {
  return Object.hasOwn(state.pools, id) ? state.pools[id] : undefined;
}

/**
 * Removes a pool and any address still reserved in it; an unknown or already removed pool is left
 * alone, so the call is safe to repeat. Pools of older releases were shared by networks with the same
 * request and counted; those lose one reference.
 */
export function releasePool(state: IpamState, id: string): Reservation[] {
  const pool = findPool(state, id);
  if (!pool) return [];
  pool.refCount -= 1;
  if (pool.refCount > 0) return [];
  delete state.pools[id];
  const orphans = Object.values(state.reservations).filter((reservation) => reservation.poolId === id);
  for (const orphan of orphans) delete state.reservations[orphan.address];
  return orphans;
}

/** Reserves an address (the one asked for, or the next free secondary IP) and returns it as `ip/len`. */
export function requestAddress(
  state: IpamState,
  inventory: Inventory,
  request: AddressRequest,
  now: Date,
): string {
  const pool = findPool(state, request.poolId);
  if (!pool) {
    throw new NotFoundError(`unknown pool ${request.poolId}`, {
      hint: "the plugin's state does not know this network; remove the network and create it again",
    });
  }
  const { nic, subnet } = poolSubnet(inventory, pool);
  const length = parsePrefix(subnet.prefix)!.length;
  if (request.isGateway) {
    if (request.address && request.address.text !== subnet.gateway) {
      throw new InvalidParameterError(`${request.address.text} cannot be the gateway of ${subnet.prefix}`, {
        hint: `Azure routes the subnet through ${subnet.gateway}; omit --gateway`,
      });
    }
    return `${subnet.gateway}/${length}`;
  }
  const address = request.address
    ? checkRequestedAddress(state, nic, subnet, request.address)
    : nextFreeAddress(state, pool, nic, subnet);
  state.reservations[address] = {
    address,
    poolId: pool.id,
    macAddress: nic.macAddress,
    reservedAt: now.toISOString(),
  };
  if (!request.address) pool.lastAllocated = address;
  return `${address}/${length}`;
}

/** Frees an address; unknown addresses, the gateway and addresses of other pools are left alone. */
export function releaseAddress(state: IpamState, id: string, address: IpAddress): Reservation | undefined {
  const reservation = findReservation(state, address.text);
  if (!reservation || reservation.poolId !== id) return undefined;
  delete state.reservations[address.text];
  return reservation;
}

/** Per NIC subnet: how many secondary IPs exist, which are in use, and which are held but gone from the NIC. */
export type SubnetUsage = {
  nic: string;
  macAddress: string;
  subnet: string;
  primary: string | undefined;
  gateway: string;
  secondaries: number;
  free: string[];
  inUse: string[];
  goneButHeld: string[];
};

export function usage(state: IpamState, inventory: Inventory): SubnetUsage[] {
  const reservations = Object.values(state.reservations);
  return inventory.nics.flatMap((nic) =>
    nic.subnets.map((subnet) => {
      const held = reservations
        .filter(
          (r) =>
            r.macAddress === nic.macAddress &&
            prefixContains(parsePrefix(subnet.prefix)!, parseIp(r.address)!),
        )
        .map((r) => r.address);
      return {
        nic: nicLabel(nic),
        macAddress: nic.macAddress,
        subnet: subnet.prefix,
        primary: subnet.primary,
        gateway: subnet.gateway,
        secondaries: subnet.secondaries.length,
        free: subnet.secondaries.filter((a) => !state.reservations[a]),
        inUse: subnet.secondaries.filter((a) => state.reservations[a]),
        goneButHeld: held.filter((a) => !subnet.secondaries.includes(a)),
      };
    }),
  );
}

function choosePoolSubnet(inventory: Inventory, request: PoolRequest): { nic: Nic; subnet: Subnet } {
  const nics = request.nic ? [selectNic(inventory, request.nic)] : inventory.nics;
  const version = `IPv${request.family}`;
  if (request.pool) {
    const wanted = request.pool.text;
    const matches = nics.flatMap((nic) =>
      nic.subnets.filter((s) => s.prefix === wanted).map((subnet) => ({ nic, subnet })),
    );
    if (matches.length > 1) {
      const names = matches.map((m) => nicLabel(m.nic));
      throw new InvalidParameterError(`--subnet ${wanted} is on ${names.length} NICs: ${names.join(", ")}`, {
        hint: `pick one with --ipam-opt interface=${matches[0]!.nic.interfaceName ?? "NAME"} (or mac=...)`,
      });
    }
    if (matches[0]) return matches[0];
    const known = nics.flatMap((nic) =>
      nic.subnets.filter((s) => s.family === request.family).map((s) => `${s.prefix} (${nicLabel(nic)})`),
    );
    throw new InvalidParameterError(
      `--subnet ${wanted} is not a subnet of ${request.nic ? nicLabel(nics[0]!) : "this VM's NICs"}`,
      {
        hint: known.length
          ? `use one of: ${known.join(", ")}, or omit --subnet`
          : `this VM has no ${version} subnets; check the NIC's IP configurations`,
      },
    );
  }
  if (request.family === 6) {
    // dockerd 20.10-26 check a pool they did not ask for against the host's nameservers and ask again,
    // forever, when it overlaps; the NIC's real /64 may. An explicit --subnet is never checked.
    const known = nics.flatMap((nic) =>
      nic.subnets.filter((s) => s.family === 6).map((s) => `${s.prefix} (${nicLabel(nic)})`),
    );
    throw new InvalidParameterError("an IPv6 pool needs --subnet", {
      hint: known.length
        ? `add --subnet with the NIC's IPv6 prefix: ${known.join(", ")}`
        : "this VM's NICs have no IPv6 addresses; add IPv6 IP configurations to the NIC, or drop --ipv6",
    });
  }
  const nic = request.nic ? nics[0]! : inventory.nics.find((n) => n.isPrimary);
  if (!nic)
    throw new UnavailableError("the pool source reported no NICs", {
      hint: "check the NIC's IP configurations in Azure",
    });
  const subnet = nic.subnets.find((s) => s.family === request.family);
  if (!subnet) {
    throw new InvalidParameterError(`${nicLabel(nic)} has no ${version} addresses`, {
      hint: "add IP configurations to the NIC",
    });
  }
  return { nic, subnet };
}

function selectNic(inventory: Inventory, selector: NicSelector): Nic {
  const nic =
    "interfaceName" in selector
      ? inventory.nics.find((n) => n.interfaceName === selector.interfaceName)
      : inventory.nics.find((n) => n.macAddress === selector.macAddress);
  if (nic) return nic;
  const wanted =
    "interfaceName" in selector ? `named ${selector.interfaceName}` : `with MAC ${selector.macAddress}`;
  const known = inventory.nics.map((n) =>
    n.interfaceName ? `${n.interfaceName} (${n.macAddress})` : n.macAddress,
  );
  throw new InvalidParameterError(`this VM has no Azure NIC ${wanted}`, {
    hint: `its NICs are: ${known.join(", ") || "none"}`,
  });
}

function poolSubnet(inventory: Inventory, pool: PoolRecord): { nic: Nic; subnet: Subnet } {
  const nic = inventory.nics.find((n) => n.macAddress === pool.macAddress);
  const subnet = nic?.subnets.find((s) => s.prefix === pool.subnet);
  if (!nic || !subnet) {
    throw new UnavailableError(`NIC ${pool.macAddress} no longer has subnet ${pool.subnet}`, {
      hint: "the NIC was detached or reconfigured; remove this network and create it again",
    });
  }
  return { nic, subnet };
}

function checkRequestedAddress(state: IpamState, nic: Nic, subnet: Subnet, address: IpAddress): string {
  const name = nicLabel(nic);
  if (!prefixContains(parsePrefix(subnet.prefix)!, address)) {
    throw new InvalidParameterError(`${address.text} is not in subnet ${subnet.prefix} of ${name}`, {
      hint: `choose one of ${name}'s secondary IPs`,
    });
  }
  if (address.text === subnet.primary) {
    throw new InvalidParameterError(`${address.text} is the primary IP of ${name}, the VM's own address`, {
      hint: `choose one of ${name}'s secondary IPs`,
    });
  }
  if (address.text === subnet.gateway) {
    throw new InvalidParameterError(`${address.text} is the gateway of ${subnet.prefix}`, {
      hint: `choose one of ${name}'s secondary IPs`,
    });
  }
  const holder = state.reservations[address.text];
  if (holder) {
    const by = holder.endpointId
      ? `endpoint ${holder.endpointId}`
      : `a container (reserved ${holder.reservedAt})`;
    throw new ConflictError(`${address.text} is already held by ${by}`, {
      hint: "choose another address or omit --ip",
    });
  }
  if (!subnet.secondaries.includes(address.text)) {
    throw new InvalidParameterError(`${address.text} is not a secondary IP of ${name}`, {
      hint: `add it to the NIC as an IP configuration, or choose one of: ${abbreviate(subnet.secondaries)}`,
    });
  }
  return address.text;
}

function nextFreeAddress(state: IpamState, pool: PoolRecord, nic: Nic, subnet: Subnet): string {
  const range = pool.range ? parsePrefix(pool.range)! : undefined;
  const candidates = range
    ? subnet.secondaries.filter((a) => prefixContains(range, parseIp(a)!))
    : subnet.secondaries;
  const start = pool.lastAllocated
    ? candidates.findIndex((a) => parseIp(a)!.value > parseIp(pool.lastAllocated!)!.value)
    : 0;
  for (let i = 0; i < candidates.length; i++) {
    const candidate = candidates[(Math.max(start, 0) + i) % candidates.length]!;
    if (!state.reservations[candidate]) return candidate;
  }
  const where = range
    ? `${nicLabel(nic)} in --ip-range ${range.text}`
    : `${nicLabel(nic)} (${subnet.prefix})`;
  throw new PoolExhaustedError(
    `no free address on ${where}: ${candidates.length} of ${candidates.length} secondary IPs in use`,
    {
      hint: "add IP configurations to the NIC, or remove containers that no longer run",
    },
  );
}

function poolId(
  macAddress: string,
  subnet: string,
  range: string | undefined,
  requested: string,
  tag: string,
): string {
  return ["azure", macAddress, subnet, range ?? "*", requested ? "subnet" : "any", tag].join(";");
}

function answeredPool(pool: PoolRecord): string {
  return pool.requested === "" && pool.family === 4 ? ANY_IPV4_POOL : pool.subnet;
}

function gatewayCidr(subnet: Subnet): string {
  return `${subnet.gateway}/${parsePrefix(subnet.prefix)!.length}`;
}

function abbreviate(addresses: string[]): string {
  if (addresses.length === 0) return "none (the NIC has no secondary IPs)";
  return addresses.length > 8
    ? `${addresses.slice(0, 8).join(", ")} … (${addresses.length} in all)`
    : addresses.join(", ");
}

/** Notes which endpoint holds an address, so conflicts can name it; unknown addresses are ignored. */
export function recordEndpointOwner(state: IpamState, address: string, endpointId: string): void {
  const reservation = findReservation(state, address);
  if (reservation) reservation.endpointId = endpointId;
}

/** Undoes `recordEndpointOwner`, unless another endpoint was recorded since. */
export function forgetEndpointOwner(state: IpamState, address: string, endpointId: string): void {
  const reservation = findReservation(state, address);
  if (reservation?.endpointId === endpointId) delete reservation.endpointId;
}

/** The reservation of `address`, if the IPAM driver handed it out. */
export function findReservation(state: IpamState, address: string): Reservation | undefined {
  return Object.hasOwn(state.reservations, address) ? state.reservations[address] : undefined;
}

/**
 * Pools whose answer to dockerd was `answered` on NIC subnet `subnet` and that no other network is built
 * on: the candidates for network `networkId`, which dockerd is creating with that pool. A pool already
 * bound to `networkId` itself stays a candidate, so a CreateNetwork sent again finds it.
 */
export function candidatePools(
  state: IpamState,
  networkId: string,
  answered: string,
  subnet: string,
): PoolRecord[] {
  return Object.values(state.pools).filter(
    (pool) =>
      (pool.networkId === undefined || pool.networkId === networkId) &&
      pool.subnet === subnet &&
      answeredPool(pool) === answered,
  );
}

/** Records that `networkId` is built on pool `id`, so later networks on the subnet are told apart. */
export function bindPool(state: IpamState, id: string, networkId: string): void {
  const pool = findPool(state, id);
  if (pool) pool.networkId = networkId;
}

/** Undoes `bindPool`, unless the pool was bound to another network since. */
export function unbindPool(state: IpamState, id: string, networkId: string): void {
  const pool = findPool(state, id);
  if (pool?.networkId === networkId) delete pool.networkId;
}

/** Drops a reservation whatever its pool: for addresses Docker no longer uses (reconciliation). */
export function dropReservation(state: IpamState, address: string): Reservation | undefined {
  const reservation = findReservation(state, address);
  if (reservation) delete state.reservations[address];
  return reservation;
}
