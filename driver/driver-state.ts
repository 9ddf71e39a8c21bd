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
  /**
   * Containers may reach the wireserver's agent ports (-o wireserver=allow), not only Azure DNS. Absent
   * in records of earlier releases, which read as false: the shield applies after an upgrade.
   */
  wireserverAccess?: boolean;
  /**
   * The routing table of the network's NIC, when that NIC is not the VM's primary one: its containers'
   * traffic follows this table, so that it leaves through their own NIC (see source-routing.ts).
   */
  routeTable?: number;
  /** Azure links every endpoint of the network gets unless its own options say otherwise. */
  azureLinks?: AzureLinkRequest;
  createdAt: string;
};

/** What an endpoint asks of Azure: a public IP (a new one, or an existing one named) and backend pools. */
export type AzureLinkRequest = {
  /** "create" for a public IP the plugin creates and deletes; else an existing one's name or id. */
  publicIp: string | undefined;
  backendPools: string[];
};

/** An endpoint's Azure links and how far they got. */
export type AzureLinks = AzureLinkRequest & {
  state: "linking" | "linked" | "failed" | "unlinking";
  /** Set once the public IP exists (or was found). */
  publicIpId?: string;
  publicIpAddress?: string;
  /** The plugin created the public IP, so it deletes it when the endpoint goes. */
  createdPublicIp?: boolean;
  error?: string;
  attempts: number;
  updatedAt: string;
};

/** Azure links of a removed endpoint, kept until they are undone in Azure. */
export type PendingUnlink = { endpointId: string; macAddress: string; address: string; links: AzureLinks };

export type EndpointRecord = {
  id: string;
  networkId: string;
  address: string;
  prefixLength: number;
  /** The container interface's MAC: Docker's if it gave one, else derived from the address. */
  macAddress: string;
  /** Set once Join created the veth. */
  hostInterface: string | undefined;
  /** Present when the endpoint asked for a public IP or a load-balancer backend pool. */
  azure?: AzureLinks;
  createdAt: string;
};

export type DriverState = {
  networks: Record<string, NetworkRecord>;
  endpoints: Record<string, EndpointRecord>;
  /** Keyed by endpoint id. */
  unlinks: Record<string, PendingUnlink>;
};

export function emptyDriverState(): DriverState {
  return { networks: {}, endpoints: {}, unlinks: {} };
}

/** Checks the driver section of a loaded state document; throws naming the first bad record. */
export function validateDriverState(value: unknown): DriverState {
  if (value === undefined) return emptyDriverState();
  if (!isObject(value) || !isObject(value.networks) || !isObject(value.endpoints)) {
    throw new Error(`"driver" must hold "networks" and "endpoints" objects`);
  }
  // Earlier releases saved ip_forward to put it back after the last network; it now stays on.
  delete value.savedSysctls;
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
  // State files written before Azure links existed have no "unlinks".
  if (value.unlinks === undefined) value.unlinks = {};
  if (!isObject(value.unlinks)) throw new Error(`"driver.unlinks" must be an object`);
  return value as DriverState;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
