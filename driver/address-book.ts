/**
 * The port through which the network driver learns from the IPAM driver and tells it two facts. The
 * IPAM driver keeps these records in its own section of the state; the network driver never writes
 * there itself. Implemented by `IpamDriver` (structurally: the IPAM driver does not import this file)
 * and handed to the network driver by the wiring.
 */

/** A pool the IPAM driver granted, as far as the network driver needs it. */
export type PoolView = {
  readonly id: string;
  /** The NIC the pool's addresses are secondary IPs of. */
  readonly macAddress: string;
  /** The network built on the pool, once one is. */
  readonly networkId?: string | undefined;
};

/** The IPAM driver's record of an address it handed out. */
export type ReservationView = {
  readonly poolId: string;
  /** The NIC the address is a secondary IP of. */
  readonly macAddress: string;
  /** The endpoint that holds it, once the network driver recorded one. */
  readonly endpointId?: string | undefined;
};

export type AddressBook = {
  /**
   * Pools that network `networkId` may be built on: answered `answered` to dockerd on NIC subnet
   * `subnet`, and bound to no network yet or to this very one (a CreateNetwork sent again after a
   * crash between binding and recording the network).
   */
  candidatePools(networkId: string, answered: string, subnet: string): readonly PoolView[];
  /** Records that `networkId` is built on pool `poolId`, so later networks on the subnet are told apart. */
  bindPool(poolId: string, networkId: string): Promise<void>;
  /** Undoes `bindPool` when the network could not be recorded; a pool bound to another network stays. */
  unbindPool(poolId: string, networkId: string): Promise<void>;
  /** The reservation of `address`, if the IPAM driver handed it out. */
  reservation(address: string): ReservationView | undefined;
  /** Notes which endpoint holds an address, so conflicts can name it; unknown addresses are ignored. */
  recordEndpointOwner(address: string, endpointId: string): Promise<void>;
  /** Undoes `recordEndpointOwner` when the endpoint could not be recorded. */
  forgetEndpointOwner(address: string, endpointId: string): Promise<void>;
};
