/**
 * The NetworkDriver API: one method per call, which parses the request and hands the work to
 * network.ts, endpoint.ts or join-leave.ts. The calls that change the host or the records run one at a
 * time in one queue, so the host changes of two requests never interleave.
 */
import type { Inventory } from "../ipam-driver/inventory.js";
import type { HostNetwork } from "../lib/host-net/host-network.js";
import type { Logger } from "../lib/logger.js";
import type { RequestBody } from "../lib/request-fields.js";
import { SerialQueue } from "../lib/serial-queue.js";
import type { StateField, StateSection } from "../lib/state-section.js";
import type { AddressBook } from "./address-book.js";
import { AzureLinker, type LinkEditor } from "./azure-links.js";
import { bridgeDataPath } from "./bridge.js";
import type { DriverContext } from "./context.js";
import type { DataPath } from "./data-path.js";
import type {
  DriverState,
  EndpointRecord,
  NetworkMode,
  NetworkRecord,
  PendingUnlink,
} from "./driver-state.js";
import { createEndpoint, deleteEndpoint, endpointOperInfo } from "./endpoint.js";
import { join, leave } from "./join-leave.js";
import { createNetwork, deleteNetwork } from "./network.js";
import { parseCreateEndpoint } from "./endpoint-options.js";
import { dockerId, parseCreateNetwork } from "./network-options.js";
import { refreshSubnetNatRules } from "./network-setup.js";
import { restoreDataPath, type RestoreReport } from "./restore.js";
import { adoptRouteTables, withSourceRouting } from "./source-routing.js";
import { transparentDataPath } from "./transparent.js";
import type {
  CapabilitiesResponse,
  CreateEndpointResponse,
  EndpointOperInfoResponse,
  JoinResponse,
} from "./types.js";

export type NetworkDriverDeps = {
  /** The network driver's own records. */
  state: StateSection<DriverState>;
  /** The kernel boot the recorded host changes were made in (see restore.ts). */
  bootId: StateField<string | undefined>;
  /** The IPAM driver's pools and reservations, as far as networks and endpoints need them. */
  addresses: AddressBook;
  host: HostNetwork;
  logger: Logger;
  /** The NIC inventory the IPAM driver keeps current. */
  inventory: () => Inventory | undefined;
  dataPaths?: Partial<Record<NetworkMode, DataPath>>;
  /** Links endpoints to public IPs and load balancers in Azure; without it, such options are refused. */
  linkEditor?: LinkEditor;
  now?: () => Date;
};

type Empty = Record<string, never>;

export class NetworkDriver {
  /** Serialises every call that changes the host or the records (the Azure linker has its own). */
  private readonly queue = new SerialQueue();
  private readonly context: DriverContext;
  /** Does the Azure side of endpoints in the background; see azure-links.ts. */
  readonly linker: AzureLinker | undefined;

  constructor(private readonly deps: NetworkDriverDeps) {
    const dataPaths = {
      transparent: withSourceRouting(transparentDataPath),
      bridge: withSourceRouting(bridgeDataPath),
      ...deps.dataPaths,
    };
    this.linker =
      deps.linkEditor &&
      new AzureLinker(deps.state, deps.linkEditor, deps.logger, (networkId, address) =>
        this.refreshOutboundNat(networkId, address),
      );
    this.context = {
      state: deps.state,
      addresses: deps.addresses,
      host: deps.host,
      logger: deps.logger,
      inventory: deps.inventory,
      dataPath: (mode) => dataPaths[mode],
      linker: this.linker,
      now: deps.now ?? (() => new Date()),
    };
  }

  /** At start, before serving: re-verifies the host against the records (see restore.ts). */
  restore(): Promise<RestoreReport> {
    const { host, state, logger, dataPath, inventory } = this.context;
    return this.queue.run(async () => {
      await adoptRouteTables(state, inventory(), logger);
      return restoreDataPath(host, state, this.deps.bootId, dataPath, logger);
    });
  }

  /**
   * Docker's macvlan/ipvlan model: the data is local (each VM hands out its own NIC's secondary IPs, so
   * a swarm manager never allocates addresses for these networks), the connectivity global (a swarm
   * network's containers on different VMs reach each other, through the VNet).
   */
  getCapabilities(): CapabilitiesResponse {
    return { Scope: "local", ConnectivityScope: "global" };
  }

  createNetwork(body: RequestBody): Promise<Empty> {
    const request = parseCreateNetwork(body);
    return this.queue.run(() => createNetwork(this.context, request).then(() => ({})));
  }

  deleteNetwork(body: RequestBody): Promise<Empty> {
    const networkId = dockerId(body, "NetworkID");
    return this.queue.run(() => deleteNetwork(this.context, networkId).then(() => ({})));
  }

  createEndpoint(body: RequestBody): Promise<CreateEndpointResponse> {
    const request = parseCreateEndpoint(body);
    return this.queue.run(() => createEndpoint(this.context, request));
  }

  endpointOperInfo(body: RequestBody): EndpointOperInfoResponse {
    const networkId = dockerId(body, "NetworkID");
    const endpointId = dockerId(body, "EndpointID");
    return endpointOperInfo(this.context, networkId, endpointId);
  }

  deleteEndpoint(body: RequestBody): Promise<Empty> {
    const networkId = dockerId(body, "NetworkID");
    const endpointId = dockerId(body, "EndpointID");
    return this.queue.run(() => deleteEndpoint(this.context, networkId, endpointId).then(() => ({})));
  }

  join(body: RequestBody): Promise<JoinResponse> {
    const networkId = dockerId(body, "NetworkID");
    const endpointId = dockerId(body, "EndpointID");
    return this.queue.run(() => join(this.context, networkId, endpointId));
  }

  leave(body: RequestBody): Promise<Empty> {
    const networkId = dockerId(body, "NetworkID");
    const endpointId = dockerId(body, "EndpointID");
    return this.queue.run(() => leave(this.context, networkId, endpointId).then(() => ({})));
  }

  /**
   * Removes an endpoint Docker no longer has (it ended while the plugin was away, or Docker's own
   * cleanup failed to reach the plugin); called by reconciliation, never by a request.
   */
  async removeStaleEndpoint(endpointId: string, reason: string): Promise<void> {
    const endpoint = this.deps.state.current.endpoints[endpointId];
    if (!endpoint) return;
    await this.deleteEndpoint({ NetworkID: endpoint.networkId, EndpointID: endpointId });
    this.deps.logger.warn("removed an endpoint Docker no longer has", {
      endpointId,
      address: endpoint.address,
      reason,
    });
  }

  /** Removes a network Docker no longer has, with its host changes; called by reconciliation. */
  async removeStaleNetwork(networkId: string, reason: string): Promise<void> {
    if (!this.deps.state.current.networks[networkId]) return;
    await this.deleteNetwork({ NetworkID: networkId });
    this.deps.logger.warn("removed a network Docker no longer has", { networkId, reason });
  }

  /** Networks, endpoints and Azure links being undone, for the operator's status view. */
  summary(): { networks: NetworkRecord[]; endpoints: EndpointRecord[]; unlinks: PendingUnlink[] } {
    const { networks, endpoints, unlinks } = this.deps.state.current;
    return {
      networks: Object.values(networks),
      endpoints: Object.values(endpoints),
      unlinks: Object.values(unlinks),
    };
  }

  /** A container's public IP came or went: its outbound traffic keeps or loses its own address. */
  private refreshOutboundNat(networkId: string, linking: string): Promise<void> {
    return this.queue.run(async () => {
      const driver = this.deps.state.current;
      const network = driver.networks[networkId];
      if (network) await refreshSubnetNatRules(this.deps.host, driver, network, linking);
    });
  }
}
