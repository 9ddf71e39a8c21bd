/**
 * The IpamDriver API: one method per call. Each parses and checks its request, runs the allocator on the
 * persisted records, and returns the wire answer. Changes are written to disk before the answer leaves.
 */
import { randomBytes } from "node:crypto";
import { InvalidParameterError, PoolExhaustedError, UnavailableError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import { booleanField, stringField, stringMapField, type RequestBody } from "../lib/request-fields.js";
import type { StateSection } from "../lib/state-section.js";
import * as allocator from "./allocator.js";
import type { Inventory } from "./inventory.js";
import { normalizeMac } from "../lib/mac.js";
import type { IpamState, PoolRecord, Reservation } from "./ipam-state.js";
import type { InventoryRefresher } from "./inventory-refresher.js";
import { parseIp, parsePrefix, type IpPrefix } from "../lib/ip.js";
import type { PendingAddress } from "./pending-addresses.js";
import { PoolGrowth, type GrowthHooks, type GrowthOptions, type NicEditor } from "./pool-growth.js";
import { GLOBAL_ADDRESS_SPACE, LOCAL_ADDRESS_SPACE } from "../lib/ipam-wire.js";
import {
  GATEWAY_LABEL,
  REQUEST_ADDRESS_TYPE,
  type AddressSpacesResponse,
  type CapabilitiesResponse,
  type EmptyResponse,
  type RequestAddressResponse,
  type RequestPoolResponse,
} from "./types.js";

/** `--ipam-opt` keys that pick the NIC; the second is the original Azure plugin's. */
const INTERFACE_OPTIONS = ["interface", "azure.interface.name"];
const MAC_OPTIONS = ["mac"];
/** How long addresses the plugin added or removed in Azure override what the pool source reports. */
const PENDING_MS = 10 * 60_000;

export type IpamDriverDeps = {
  /** The IPAM driver's own records: pools, reservations, the last NIC inventory. */
  state: StateSection<IpamState>;
  refresher: InventoryRefresher;
  logger: Logger;
  /** Pool growth through Azure, when configured. */
  growth?: { editor: NicEditor; options: GrowthOptions };
  now?: () => Date;
};

export class IpamDriver {
  private readonly now: () => Date;
  readonly growth: PoolGrowth | undefined;

  constructor(private readonly deps: IpamDriverDeps) {
    this.now = deps.now ?? (() => new Date());
    this.growth = deps.growth
      ? new PoolGrowth(deps.growth.editor, deps.growth.options, this.growthHooks(), deps.logger)
      : undefined;
  }

  getCapabilities(): CapabilitiesResponse {
    // Allocations are persisted, so dockerd need not replay them after its restart.
    return { RequiresMACAddress: false, RequiresRequestReplay: false };
  }

  getDefaultAddressSpaces(): AddressSpacesResponse {
    return { LocalDefaultAddressSpace: LOCAL_ADDRESS_SPACE, GlobalDefaultAddressSpace: GLOBAL_ADDRESS_SPACE };
  }

  async requestPool(body: RequestBody): Promise<RequestPoolResponse> {
    const request = parsePoolRequest(body);
    const inventory = this.inventory();
    const grant = await this.deps.state.update((draft) =>
      allocator.requestPool(draft, inventory, request, unusedPoolTag(draft)),
    );
    return { PoolID: grant.poolId, Pool: grant.pool, Data: { [GATEWAY_LABEL]: grant.gateway } };
  }

  async releasePool(body: RequestBody): Promise<EmptyResponse> {
    const poolId = stringField(body, "PoolID", true);
    const orphans = await this.deps.state.update((draft) => allocator.releasePool(draft, poolId));
    if (orphans.length > 0) {
      this.deps.logger.warn("released addresses still reserved in a removed pool", {
        poolId,
        addresses: orphans.map((o) => o.address),
      });
    }
    return {};
  }

  async requestAddress(body: RequestBody): Promise<RequestAddressResponse> {
    const request = parseAddressRequest(body);
    const allocate = () =>
      this.deps.state.update((draft) =>
        allocator.requestAddress(draft, this.inventory(), request, this.now()),
      );
    try {
      return { Address: await allocate(), Data: {} };
    } catch (error) {
      if (!(error instanceof PoolExhaustedError)) throw error;
      // The NIC may have gained IP configurations since the last periodic read.
      await this.deps.refresher.refreshNow();
      try {
        return { Address: await allocate(), Data: {} };
      } catch (stillExhausted) {
        const pool = allocator.findPool(this.deps.state.current, request.poolId);
        // Growth adds addresses anywhere in the subnet: no help for --ip or --ip-range.
        if (!this.growth || !pool || request.address || pool.range) throw stillExhausted;
        return { Address: await this.allocateWhileGrowing(pool, allocate, stillExhausted), Data: {} };
      }
    } finally {
      this.growth?.afterChange();
    }
  }

  async releaseAddress(body: RequestBody): Promise<EmptyResponse> {
    const poolId = stringField(body, "PoolID", true);
    const text = stringField(body, "Address", true);
    const address = parseIp(text);
    if (!address) throw new InvalidParameterError(`"Address" ${JSON.stringify(text)} is not an IP address`);
    await this.deps.state.update((draft) => allocator.releaseAddress(draft, poolId, address));
    this.growth?.afterChange();
    return {};
  }

  /** Every reservation, for reconciliation against Docker. */
  reservations(): Reservation[] {
    return Object.values(this.deps.state.current.reservations);
  }

  /** Releases an address Docker no longer uses; called by reconciliation, never by a request. */
  async releaseStale(address: string, reason: string): Promise<void> {
    const dropped = await this.deps.state.update((draft) => allocator.dropReservation(draft, address));
    if (dropped)
      this.deps.logger.warn("released an address Docker no longer uses", {
        address,
        reason,
        poolId: dropped.poolId,
      });
  }

  // The network driver's view of the records (its AddressBook, see driver/address-book.ts).

  /** Pools network `networkId` may be built on: unbound, or bound to it already. */
  candidatePools(networkId: string, answered: string, subnet: string): PoolRecord[] {
    return allocator.candidatePools(this.deps.state.current, networkId, answered, subnet);
  }

  /** Records that network `networkId` is built on pool `poolId`. */
  bindPool(poolId: string, networkId: string): Promise<void> {
    return this.deps.state.update((draft) => allocator.bindPool(draft, poolId, networkId));
  }

  /** Undoes `bindPool` for a network that could not be recorded. */
  unbindPool(poolId: string, networkId: string): Promise<void> {
    return this.deps.state.update((draft) => allocator.unbindPool(draft, poolId, networkId));
  }

  /** The reservation of `address`, if this driver handed it out. */
  reservation(address: string): Reservation | undefined {
    return allocator.findReservation(this.deps.state.current, address);
  }

  /** Notes which endpoint holds `address`, so conflicts can name it. */
  recordEndpointOwner(address: string, endpointId: string): Promise<void> {
    return this.deps.state.update((draft) => allocator.recordEndpointOwner(draft, address, endpointId));
  }

  /** Undoes `recordEndpointOwner` for an endpoint that could not be recorded. */
  forgetEndpointOwner(address: string, endpointId: string): Promise<void> {
    return this.deps.state.update((draft) => allocator.forgetEndpointOwner(draft, address, endpointId));
  }

  /** Addresses per NIC subnet, for the operator's status view. */
  usage(): allocator.SubnetUsage[] {
    const inventory = this.deps.refresher.current;
    return inventory ? allocator.usage(this.deps.state.current, inventory) : [];
  }

  /**
   * Waits for growth and allocates, again while other requests take the new addresses first, until
   * the wait limit; throws the growth's error, or `exhausted` when growth is off.
   */
  private async allocateWhileGrowing(
    pool: { macAddress: string; subnet: string },
    allocate: () => Promise<string>,
    exhausted: unknown,
  ): Promise<string> {
    const nic = this.deps.refresher.current?.nics.find((n) => n.macAddress === pool.macAddress);
    const deadline = Date.now() + this.growth!.waitMs;
    for (;;) {
      const grew = await this.growth!.growFor(
        pool.macAddress,
        pool.subnet,
        nic?.interfaceName ?? pool.macAddress,
        deadline,
      );
      if (!grew) throw exhausted;
      try {
        return await allocate();
      } catch (error) {
        if (!(error instanceof PoolExhaustedError)) throw error;
      }
    }
  }

  private growthHooks(): GrowthHooks {
    const { state, refresher } = this.deps;
    const pending = (macAddress: string, subnet: string, addresses: string[], change: "add" | "remove") =>
      addresses.map(
        (address): PendingAddress => ({
          macAddress,
          subnet,
          address,
          change,
          expiresAt: Date.now() + PENDING_MS,
        }),
      );
    const apply = (draft: IpamState, changes: PendingAddress[]) => {
      const inventory = refresher.applyPending(changes);
      if (inventory) draft.inventory = inventory;
    };
    return {
      subnets: () => {
        const used = new Set(Object.values(state.current.pools).map((p) => `${p.macAddress};${p.subnet}`));
        return this.usage()
          .filter((u) => used.has(`${u.macAddress};${u.subnet}`) && !u.subnet.includes(":"))
          .map((u) => ({ macAddress: u.macAddress, nic: u.nic, subnet: u.subnet, free: u.free }));
      },
      adopt: (macAddress, subnet, added) =>
        state.update((draft) => apply(draft, pending(macAddress, subnet, added, "add"))),
      withdraw: (macAddress, subnet, candidates, count) =>
        state.update((draft) => {
          const free =
            this.usage().find((u) => u.macAddress === macAddress && u.subnet === subnet)?.free ?? [];
          // The highest first: low addresses stay, so the pool stays compact.
          const taken = candidates.filter((a) => free.includes(a) && !draft.reservations[a]).slice(-count);
          apply(draft, pending(macAddress, subnet, taken, "remove"));
          return taken;
        }),
      restore: (macAddress, subnet, addresses) =>
        state.update((draft) => apply(draft, pending(macAddress, subnet, addresses, "add"))),
    };
  }

  private inventory(): Inventory {
    const inventory = this.deps.refresher.current;
    if (!inventory) {
      throw new UnavailableError("the VM's NIC configuration has not been read yet", {
        hint: "check that the pool source answers (see the plugin's log)",
      });
    }
    return inventory;
  }
}

/** A random tag that no pool id carries yet, which makes each RequestPool's pool id its own. */
function unusedPoolTag(ipam: IpamState): string {
  for (;;) {
    const tag = randomBytes(4).toString("hex");
    if (!Object.keys(ipam.pools).some((id) => id.endsWith(`;${tag}`))) return tag;
  }
}

function parsePoolRequest(body: RequestBody): allocator.PoolRequest {
  const addressSpace = stringField(body, "AddressSpace");
  if (addressSpace !== "" && addressSpace !== LOCAL_ADDRESS_SPACE) {
    throw new InvalidParameterError(
      `address space ${JSON.stringify(addressSpace)} is not served by this plugin`,
      {
        hint: `azure networks are local to this VM; use ${LOCAL_ADDRESS_SPACE} (the default)`,
      },
    );
  }
  const family = booleanField(body, "V6") ? 6 : 4;
  const pool = optionalPrefix(stringField(body, "Pool"), "--subnet", family);
  const range = optionalPrefix(stringField(body, "SubPool"), "--ip-range", family);
  if (range && !pool)
    throw new InvalidParameterError("--ip-range needs --subnet", {
      hint: "add --subnet with the NIC's subnet",
    });
  return { family, pool, range, nic: parseNicSelector(stringMapField(body, "Options")) };
}

function optionalPrefix(text: string, flag: string, family: 4 | 6): IpPrefix | undefined {
  if (text === "") return undefined;
  const prefix = parsePrefix(text);
  if (!prefix) {
    const loose = parsePrefix(text, false);
    throw new InvalidParameterError(`${flag} ${text} is not a network prefix`, {
      hint: loose ? `did you mean ${loose.text}?` : "write it as network/length, e.g. 10.1.0.0/24",
    });
  }
  if (prefix.family !== family) {
    throw new InvalidParameterError(`${flag} ${text} is not an IPv${family} prefix`, {
      hint: `give an IPv${family} prefix`,
    });
  }
  return prefix;
}

function parseNicSelector(options: Record<string, string>): allocator.NicSelector | undefined {
  let selector: allocator.NicSelector | undefined;
  for (const [key, value] of Object.entries(options)) {
    if (key.startsWith("com.docker.")) continue;
    if (INTERFACE_OPTIONS.includes(key)) selector = { interfaceName: value };
    else if (MAC_OPTIONS.includes(key)) {
      const macAddress = normalizeMac(value);
      if (!macAddress)
        throw new InvalidParameterError(`--ipam-opt mac=${value} is not a MAC address`, {
          hint: "e.g. mac=00:0d:3a:f8:06:ec",
        });
      selector = { macAddress };
    } else {
      throw new InvalidParameterError(`unknown --ipam-opt ${key}`, {
        hint: `supported: ${[...INTERFACE_OPTIONS, ...MAC_OPTIONS].map((k) => `${k}=...`).join(", ")}`,
      });
    }
  }
  return selector;
}

function parseAddressRequest(body: RequestBody): allocator.AddressRequest {
  const poolId = stringField(body, "PoolID", true);
  const text = stringField(body, "Address");
  const address = text === "" ? undefined : parseIp(text);
  if (text !== "" && !address)
    throw new InvalidParameterError(`${JSON.stringify(text)} is not an IP address`, {
      hint: "give a plain address without /length",
    });
  const options = stringMapField(body, "Options");
  return { poolId, address, isGateway: options[REQUEST_ADDRESS_TYPE] === GATEWAY_LABEL };
}
