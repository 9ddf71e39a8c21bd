/**
 * The network driver's persistent records: networks with the configuration their host changes were
 * made from, endpoints with their address and host interface, and the host settings to restore when
 * the last network goes.
 */

export type NetworkMode = "transparent" | "bridge";

export type NetworkRecord = {
  id: string;
  mode: NetworkMode;
  /** The NIC the network lives on. */
  interfaceName: string;
  macAddress: string;
  subnet: string;
  gateway: string;
  /** The NIC's primary IP: where outbound traffic is source-NATed to. */
  primary: string;
  mtu: number;
  /** Destinations reached with the container's own address (no SNAT), besides the NIC subnet and Azure DNS. */
  vnetRanges: string[];
  internal: boolean;
  /** Containers may reach the Instance Metadata Service (-o imds=allow). */
  imdsAccess: boolean;
  createdAt: string;
};

export type EndpointRecord = {
  id: string;
  networkId: string;
  address: string;
  prefixLength: number;
  /** The container interface's MAC: Docker's if it gave one, else derived from the address. */
  macAddress: string;
  /** Set once Join created the veth. */
  hostInterface: string | undefined;
  createdAt: string;
};

export type DriverState = {
  networks: Record<string, NetworkRecord>;
  endpoints: Record<string, EndpointRecord>;
  /** Host sysctls as they were before the first network changed them; restored after the last one. */
  savedSysctls: Record<string, string>;
};

export function emptyDriverState(): DriverState {
  return { networks: {}, endpoints: {}, savedSysctls: {} };
}

/** Checks the driver section of a loaded state document; throws naming the first bad record. */
export function validateDriverState(value: unknown): DriverState {
  if (value === undefined) return emptyDriverState();
  if (
    !isObject(value) ||
    !isObject(value.networks) ||
    !isObject(value.endpoints) ||
    !isObject(value.savedSysctls)
  ) {
    throw new Error(`"driver" must hold "networks", "endpoints" and "savedSysctls" objects`);
  }
  for (const [id, network] of Object.entries(value.networks)) {
    if (!isObject(network) || network.id !== id || typeof network.interfaceName !== "string") {
      throw new Error(`network record ${JSON.stringify(id)} is malformed`);
    }
  }
  for (const [id, endpoint] of Object.entries(value.endpoints)) {
    if (
      !isObject(endpoint) ||
      endpoint.id !== id ||
      typeof endpoint.networkId !== "string" ||
      typeof endpoint.address !== "string"
    ) {
      throw new Error(`endpoint record ${JSON.stringify(id)} is malformed`);
    }
  }
  return value as DriverState;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
