/**
 * The NetworkDriver API: one method per call. Each parses its request, makes the host changes through
 * the network's data path (undoing them if a later step fails), and records the result in the state
 * file before answering. Calls are serialised: host changes of two requests never interleave.
 */
import type { Inventory, Nic, Subnet } from "../ipam-driver/inventory.js";
import { normalizeMac } from "../lib/mac.js";
import { parseIp, parsePrefix, prefixContains } from "../lib/ip.js";
import { ConflictError, InvalidParameterError, NotFoundError, UnavailableError } from "../lib/errors.js";
import type { HostNetwork } from "../lib/host-net/host-network.js";
import { keepGoing } from "../lib/keep-going.js";
import type { Logger } from "../lib/logger.js";
import type { RequestBody } from "../lib/request-fields.js";
import { SerialQueue } from "../lib/serial-queue.js";
import { shortId } from "../lib/short-id.js";
import type { StateField, StateSection } from "../lib/state-section.js";
import type { AddressBook, PoolView } from "./address-book.js";
import { AzureLinker, type LinkEditor } from "./azure-links.js";
import { bridgeDataPath } from "./bridge.js";
import type { DataPath } from "./data-path.js";
import { restoreDataPath, type RestoreReport } from "./restore.js";
import { transparentDataPath } from "./transparent.js";
import type {
  DriverState,
  EndpointRecord,
  NetworkMode,
  NetworkRecord,
  PendingUnlink,
} from "./driver-state.js";
import { containerMac, hostVethName, vethNetworkPart } from "./names.js";
import { dockerId, parseCreateNetwork, parseEndpointLinks } from "./network-options.js";
import {
  deleteNetworkRules,
  enableForwarding,
  ensureNetworkRules,
  refreshNatRules,
} from "./network-setup.js";
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
type ChosenNic = { nic: Nic; subnet: Subnet; pool: PoolView | undefined };

export class NetworkDriver {
  private readonly queue = new SerialQueue();
  private readonly dataPaths: Record<NetworkMode, DataPath>;
  private readonly now: () => Date;
  /** Does the Azure side of endpoints in the background; see azure-links.ts. */
  readonly linker: AzureLinker | undefined;

  constructor(private readonly deps: NetworkDriverDeps) {
    this.dataPaths = { transparent: transparentDataPath, bridge: bridgeDataPath, ...deps.dataPaths };
    this.now = deps.now ?? (() => new Date());
    this.linker =
      deps.linkEditor &&
      new AzureLinker(deps.state, deps.linkEditor, deps.logger, (networkId, address) =>
        this.refreshOutboundNat(networkId, address),
      );
  }

  /** At start, before serving: re-verifies the host against the records (see restore.ts). */
  restore(): Promise<RestoreReport> {
    return this.queue.run(() =>
      restoreDataPath(
        this.deps.host,
        this.deps.state,
        this.deps.bootId,
        (mode) => this.dataPath(mode),
        this.deps.logger,
      ),
    );
  }

  getCapabilities(): CapabilitiesResponse {
    return { Scope: "local", ConnectivityScope: "local" };
  }

  createNetwork(body: RequestBody): Promise<Empty> {
    const request = parseCreateNetwork(body);
    return this.queue.run(async () => {
      const state = this.deps.state.current;
      const existing = state.networks[request.networkId];
      const chosen = existing ? undefined : this.chooseNic(request);
      const network = existing ?? this.newNetworkRecord(request, chosen!);
      const dataPath = this.dataPath(network.mode);
      checkNicModes(Object.values(state.networks), network);
      checkSharedNat(Object.values(state.networks), network);
      const clash = Object.values(state.networks).find(
        (n) => n.id !== network.id && vethNetworkPart(n.id) === vethNetworkPart(network.id),
      );
      if (clash) {
        throw new ConflictError(
          `network ${shortId(network.id)} shares its interface prefix with network ${shortId(clash.id)}`,
          {
            hint: "remove this network and create it again (it will get another id)",
          },
        );
      }
      try {
        await enableForwarding(this.deps.host);
        await dataPath.setupNetwork(this.deps.host, network, state);
        await ensureNetworkRules(this.deps.host, network, dataPath.trafficPath(network), state);
        await this.recordNetwork(network, chosen?.pool);
      } catch (error) {
        if (!existing) await this.undoNetwork(network);
        throw error;
      }
      this.deps.logger.info("network ready", {
        networkId: network.id,
        mode: network.mode,
        nic: network.interfaceName,
        subnet: network.subnet,
      });
      return {};
    });
  }

  deleteNetwork(body: RequestBody): Promise<Empty> {
    const networkId = dockerId(body, "NetworkID");
    return this.queue.run(async () => {
      const state = this.deps.state.current;
      const network = state.networks[networkId];
      if (!network) return {};
      const dataPath = this.dataPath(network.mode);
      // Endpoints Docker never removed (a crash in between) go with their network.
      for (const endpoint of Object.values(state.endpoints).filter((e) => e.networkId === networkId)) {
        await dataPath.teardownEndpoint(this.deps.host, network, endpoint, state);
      }
      await this.undoNetwork(network);
      const linked = await this.deps.state.update((draft) => {
        const removed = Object.values(draft.endpoints).filter((e) => e.networkId === networkId);
        for (const endpoint of removed) forgetEndpoint(draft, endpoint, network);
        delete draft.networks[networkId];
        return removed.filter((e) => e.azure);
      });
      // Other networks on the subnet stop exempting these addresses from outbound NAT.
      if (linked.some((e) => e.azure?.publicIpId)) await this.refreshSubnetNat(network);
      for (const endpoint of linked) void this.linker?.unlink(endpoint.id);
      return {};
    });
  }

  createEndpoint(body: RequestBody): Promise<CreateEndpointResponse> {
    const networkId = dockerId(body, "NetworkID");
    const endpointId = dockerId(body, "EndpointID");
    const address = interfaceAddress(body);
    const requestedMac = interfaceMac(body);
    return this.queue.run(async () => {
      const network = this.network(networkId);
      const links = parseEndpointLinks(body, network.azureLinks);
      if (links && !this.linker) {
        throw new InvalidParameterError("public IPs and load balancers are not available in this plugin", {
          hint: "run the plugin as a service with access to Azure Resource Manager",
        });
      }
      const prefix = parsePrefix(network.subnet)!;
      const ip = parseIp(address.address);
      if (!ip || !prefixContains(prefix, ip)) {
        throw new InvalidParameterError(
          `endpoint address ${address.address} is not in the network's subnet ${network.subnet}`,
          {
            hint: "create azure networks with --ipam-driver azure",
          },
        );
      }
      const existing = this.deps.state.current.endpoints[endpointId];
      if (existing && existing.address !== address.address) {
        throw new ConflictError(
          `endpoint ${shortId(endpointId)} already exists with address ${existing.address}`,
        );
      }
      this.checkAddressSource(network, endpointId, address.address);
      if (!existing) checkVethName(this.deps.state.current, network, endpointId);
      const macAddress = existing?.macAddress ?? requestedMac ?? containerMac(address.address);
      if (!existing) {
        const endpoint: EndpointRecord = {
          id: endpointId,
          networkId,
          address: address.address,
          prefixLength: address.prefixLength ?? prefix.length,
          macAddress,
          hostInterface: undefined,
          ...(links
            ? { azure: { ...links, state: "linking", attempts: 0, updatedAt: this.now().toISOString() } }
            : {}),
          createdAt: this.now().toISOString(),
        };
        await this.recordEndpoint(endpoint);
        // Azure can take minutes; the container starts meanwhile and the link follows.
        if (links) void this.linker?.link(endpointId);
      }
      // Only what Docker left empty may be filled in; echoing its own values back fails the endpoint.
      return requestedMac ? {} : { Interface: { MacAddress: macAddress } };
    });
  }

  endpointOperInfo(body: RequestBody): EndpointOperInfoResponse {
    const networkId = dockerId(body, "NetworkID");
    const endpointId = dockerId(body, "EndpointID");
    const network = this.network(networkId);
    const endpoint = this.endpoint(endpointId);
    return {
      Value: {
        "azure.mode": network.mode,
        "azure.nic": network.interfaceName,
        "azure.address": endpoint.address,
        "azure.hostInterface": endpoint.hostInterface ?? "",
        ...(endpoint.azure
          ? {
              "azure.link": endpoint.azure.state + (endpoint.azure.error ? `: ${endpoint.azure.error}` : ""),
              "azure.publicIp": endpoint.azure.publicIpAddress ?? "",
              "azure.lbBackendPools": endpoint.azure.backendPools.join(","),
            }
          : {}),
      },
    };
  }

  deleteEndpoint(body: RequestBody): Promise<Empty> {
    const networkId = dockerId(body, "NetworkID");
    const endpointId = dockerId(body, "EndpointID");
    return this.queue.run(async () => {
      const state = this.deps.state.current;
      const endpoint = state.endpoints[endpointId];
      const network = state.networks[networkId];
      if (!endpoint) return {};
      if (network)
        await this.dataPath(network.mode).teardownEndpoint(this.deps.host, network, endpoint, state);
      await this.deps.state.update((draft) => forgetEndpoint(draft, endpoint, network));
      if (endpoint.azure?.publicIpId && network) await this.refreshSubnetNat(network);
      if (endpoint.azure) void this.linker?.unlink(endpointId);
      return {};
    });
  }

  join(body: RequestBody): Promise<JoinResponse> {
    const networkId = dockerId(body, "NetworkID");
    const endpointId = dockerId(body, "EndpointID");
    return this.queue.run(async () => {
      const network = this.network(networkId);
      const endpoint = this.endpoint(endpointId);
      const dataPath = this.dataPath(network.mode);
      const state = this.deps.state.current;
      const { hostEnd, containerEnd } = await dataPath.setupEndpoint(
        this.deps.host,
        network,
        endpoint,
        state,
      );
      try {
        await this.deps.state.update((draft) => {
          draft.endpoints[endpointId]!.hostInterface = hostEnd;
        });
      } catch (error) {
        await dataPath.teardownEndpoint(this.deps.host, network, endpoint, state).catch(() => undefined);
        throw error;
      }
      return {
        InterfaceName: { SrcName: containerEnd, DstPrefix: "eth" },
        Gateway: dataPath.gateway(network),
        StaticRoutes: [],
        DisableGatewayService: false,
      };
    });
  }

  leave(body: RequestBody): Promise<Empty> {
    const networkId = dockerId(body, "NetworkID");
    const endpointId = dockerId(body, "EndpointID");
    return this.queue.run(async () => {
      const state = this.deps.state.current;
      const network = state.networks[networkId];
      const endpoint = state.endpoints[endpointId];
      if (!network || !endpoint) return {};
      await this.dataPath(network.mode).teardownEndpoint(this.deps.host, network, endpoint, state);
      await this.deps.state.update((draft) => {
        draft.endpoints[endpointId]!.hostInterface = undefined;
      });
      return {};
    });
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

  /** A container's public IP came or went: its outbound traffic keeps or loses its own address. */
  private refreshOutboundNat(networkId: string, linking: string): Promise<void> {
    return this.queue.run(async () => {
      const network = this.deps.state.current.networks[networkId];
      if (network) await this.refreshSubnetNat(network, linking);
    });
  }

  /** Rewrites the nat chain of every network on the NIC subnet of `changed` (which may be gone). */
  private async refreshSubnetNat(changed: NetworkRecord, linking?: string): Promise<void> {
    const driver = this.deps.state.current;
    for (const network of Object.values(driver.networks)) {
      if (network.subnet === changed.subnet && network.macAddress === changed.macAddress)
        await refreshNatRules(this.deps.host, network, driver, linking);
    }
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

  private newNetworkRecord(
    request: ReturnType<typeof parseCreateNetwork>,
    { nic, subnet }: ChosenNic,
  ): NetworkRecord {
    return {
      id: request.networkId,
      mode: request.mode,
      interfaceName: nic.interfaceName!,
      macAddress: nic.macAddress,
      subnet: subnet.prefix,
      gateway: subnet.gateway,
      primary: subnet.primary!,
      mtu: request.mtu ?? nic.mtu ?? 1500,
      vnetRanges: request.vnetRanges,
      internal: request.internal,
      imdsAccess: request.imdsAccess,
      ...(request.azureLinks ? { azureLinks: request.azureLinks } : {}),
      createdAt: this.now().toISOString(),
    };
  }

  /**
   * The NIC a new network is built on, decided once: the one whose subnet has the network's gateway,
   * or, when two NICs share that subnet, the one the IPAM driver gave the network's pool.
   */
  private chooseNic(request: ReturnType<typeof parseCreateNetwork>): ChosenNic {
    const inventory = this.deps.inventory();
    if (!inventory)
      throw new UnavailableError("the VM's NIC configuration has not been read yet", {
        hint: "check the plugin's log",
      });
    const gateway = request.gateway.text;
    const onGateway = inventory.nics.flatMap((nic) =>
      nic.subnets.filter((s) => s.family === 4 && s.gateway === gateway).map((subnet) => ({ nic, subnet })),
    );
    if (onGateway.length === 0) {
      throw new InvalidParameterError(`gateway ${gateway} is not the gateway of a subnet of this VM's NICs`, {
        hint: "create azure networks with --ipam-driver azure",
      });
    }
    const pools = this.deps.addresses.candidatePools(
      request.networkId,
      request.pool,
      onGateway[0]!.subnet.prefix,
    );
    const withPool = onGateway.filter(({ nic }) => pools.some((p) => p.macAddress === nic.macAddress));
    const chosen = onGateway.length === 1 ? onGateway[0]! : withPool.length === 1 ? withPool[0]! : undefined;
    if (!chosen) {
      const names = onGateway.map(({ nic }) => nic.interfaceName ?? nic.macAddress).join(", ");
      throw new ConflictError(
        `subnet ${onGateway[0]!.subnet.prefix} is on NICs ${names}, and the network's pool does not say which one it is for`,
        {
          hint: "create it with --ipam-driver azure --ipam-opt interface=NAME, one network at a time",
        },
      );
    }
    const { nic, subnet } = chosen;
    if (!nic.interfaceName) {
      throw new UnavailableError(
        `NIC ${nic.macAddress} of subnet ${subnet.prefix} is not an interface of this host`,
        {
          hint: "run the plugin in the VM's network namespace (host network for the managed plugin)",
        },
      );
    }
    if (!subnet.primary) {
      throw new UnavailableError(`the pool source gives no primary IP for ${nic.interfaceName}`, {
        hint: "check the pool source",
      });
    }
    return { nic, subnet, pool: pools.find((p) => p.macAddress === nic.macAddress) };
  }

  /**
   * An endpoint's address must be one the IPAM driver handed out on the network's NIC, and not one
   * another endpoint holds: anything else (Docker's default IPAM, the VM's own address, an address of
   * another NIC) would take over someone else's traffic or be dropped by Azure.
   */
  private checkAddressSource(network: NetworkRecord, endpointId: string, address: string): void {
    const reservation = this.deps.addresses.reservation(address);
    if (!reservation) {
      throw new InvalidParameterError(
        `endpoint address ${address} was not handed out by the azure IPAM driver`,
        {
          hint: "create azure networks with --ipam-driver azure, so that every address is a free secondary IP of the NIC",
        },
      );
    }
    if (reservation.macAddress !== network.macAddress) {
      throw new ConflictError(
        `endpoint address ${address} is a secondary IP of NIC ${reservation.macAddress}, but network ${shortId(network.id)} is on ${network.interfaceName}`,
        { hint: `create the network with --ipam-opt interface=${network.interfaceName}` },
      );
    }
    if (reservation.endpointId !== undefined && reservation.endpointId !== endpointId) {
      throw new ConflictError(
        `endpoint address ${address} is held by endpoint ${shortId(reservation.endpointId)}`,
        { hint: "remove that container first, or let the IPAM driver choose an address" },
      );
    }
  }

  /**
   * Binds the pool in the IPAM driver's records, then records the network in ours: two writes, in this
   * order. A crash in between leaves a pool bound to a network without a record, which is harmless: the
   * pool was granted for that network alone, a CreateNetwork sent again still finds it (candidatePools
   * accepts a pool bound to the same network), and dockerd's ReleasePool removes it. The other order
   * could leave a recorded network whose pool still looks free, and a later network on a subnet that two
   * NICs share would see two candidate pools and be refused. If our write fails, the binding is undone.
   */
  private async recordNetwork(network: NetworkRecord, pool: PoolView | undefined): Promise<void> {
    const binding = pool && pool.networkId === undefined ? pool.id : undefined;
    if (binding) await this.deps.addresses.bindPool(binding, network.id);
    try {
      await this.deps.state.update((draft) => {
        draft.networks[network.id] = network;
      });
    } catch (error) {
      if (binding) await this.deps.addresses.unbindPool(binding, network.id).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Records the owner in the IPAM driver's reservation, then the endpoint in ours: two writes, in this
   * order. A crash in between leaves a reservation naming an endpoint without a record, which is
   * harmless: a CreateEndpoint sent again with that id passes, and dockerd releases the address of the
   * endpoint it could not create (reconciliation does, if dockerd does not). The other order could leave
   * a recorded endpoint whose address the IPAM driver shows as held by no one, which a second endpoint
   * would then be given. If our write fails, the owner is taken back out unless it was there before.
   */
  private async recordEndpoint(endpoint: EndpointRecord): Promise<void> {
    const { addresses } = this.deps;
    const owner = addresses.reservation(endpoint.address)?.endpointId;
    await addresses.recordEndpointOwner(endpoint.address, endpoint.id);
    try {
      await this.deps.state.update((draft) => {
        draft.endpoints[endpoint.id] = endpoint;
      });
    } catch (error) {
      if (owner === undefined)
        await addresses.forgetEndpointOwner(endpoint.address, endpoint.id).catch(() => undefined);
      throw error;
    }
  }

  private async undoNetwork(network: NetworkRecord): Promise<void> {
    const state = this.deps.state.current;
    const dataPath = this.dataPath(network.mode);
    await keepGoing(`removing network ${shortId(network.id)}`, [
      () => deleteNetworkRules(this.deps.host, network, dataPath.trafficPath(network)),
      () => dataPath.teardownNetwork(this.deps.host, network, state),
    ]);
  }

  private dataPath(mode: NetworkMode): DataPath {
    return this.dataPaths[mode];
  }

  private network(id: string): NetworkRecord {
    const network = this.deps.state.current.networks[id];
    if (!network) {
      throw new NotFoundError(`network ${shortId(id)} is not known to the azure plugin`, {
        hint: "its record was lost; remove the network and create it again",
      });
    }
    return network;
  }

  private endpoint(id: string): EndpointRecord {
    const endpoint = this.deps.state.current.endpoints[id];
    if (!endpoint)
      throw new NotFoundError(`endpoint ${shortId(id)} is not known to the azure plugin`, {
        hint: "restart the container",
      });
    return endpoint;
  }
}

/** Drops an endpoint's record; its Azure links stay recorded until the linker has undone them. */
function forgetEndpoint(
  driver: DriverState,
  removed: EndpointRecord,
  network: NetworkRecord | undefined,
): void {
  // The linker may have recorded progress since the caller read the record.
  const endpoint = driver.endpoints[removed.id] ?? removed;
  delete driver.endpoints[endpoint.id];
  if (endpoint.azure && network) {
    driver.unlinks[endpoint.id] = {
      endpointId: endpoint.id,
      macAddress: network.macAddress,
      address: endpoint.address,
      links: { ...endpoint.azure, state: "unlinking", attempts: 0 },
    };
  }
}

/**
 * Interface names keep part of the endpoint id; two endpoints of one network that share it would share
 * one veth, and the second Join would delete the first container's link.
 */
function checkVethName(driver: DriverState, network: NetworkRecord, endpointId: string): void {
  const name = hostVethName(network.id, endpointId);
  const twin = Object.values(driver.endpoints).find(
    (e) => e.id !== endpointId && e.networkId === network.id && hostVethName(network.id, e.id) === name,
  );
  if (twin) {
    throw new ConflictError(
      `endpoint ${shortId(endpointId)} would get interface ${name}, which endpoint ${shortId(twin.id)} has`,
      { hint: "start the container again: it gets a new endpoint id" },
    );
  }
}

/**
 * Networks on one NIC subnet share outbound NAT: each nat chain is entered for the whole subnet's
 * traffic, so the first network's `-o vnet-ranges` would decide for all of them.
 */
function checkSharedNat(networks: NetworkRecord[], network: NetworkRecord): void {
  if (network.internal) return;
  const other = networks.find(
    (n) =>
      n.id !== network.id &&
      !n.internal &&
      n.macAddress === network.macAddress &&
      n.subnet === network.subnet &&
      n.vnetRanges.join(",") !== network.vnetRanges.join(","),
  );
  if (other) {
    throw new ConflictError(
      `network ${shortId(other.id)} on ${network.interfaceName} (${network.subnet}) has -o vnet-ranges=${other.vnetRanges.join(",")}`,
      {
        hint: "networks on one NIC subnet share outbound NAT; give this one the same -o vnet-ranges, or use another NIC",
      },
    );
  }
}

/** One NIC serves one mode: bridge mode moves the NIC's addresses, which transparent mode relies on. */
function checkNicModes(networks: NetworkRecord[], network: NetworkRecord): void {
  const other = networks.find(
    (n) => n.id !== network.id && n.interfaceName === network.interfaceName && n.mode !== network.mode,
  );
  if (other) {
    throw new ConflictError(
      `${network.interfaceName} already carries ${other.mode} network ${shortId(other.id)}`,
      {
        hint: `a NIC serves one mode at a time; use -o mode=${other.mode} or remove that network first`,
      },
    );
  }
  if (network.mode === "bridge" && network.internal) {
    throw new InvalidParameterError("--internal networks need transparent mode", {
      hint: "bridged containers reach the NIC at layer 2, past the host's firewall; drop -o mode=bridge",
    });
  }
}

function interfaceMac(body: RequestBody): string | undefined {
  const iface = body.Interface as RequestBody | undefined;
  const text = typeof iface === "object" && iface !== null ? iface.MacAddress : undefined;
  if (text === undefined || text === "") return undefined;
  const mac = typeof text === "string" ? normalizeMac(text) : undefined;
  if (!mac)
    throw new InvalidParameterError(`"Interface.MacAddress" ${JSON.stringify(text)} is not a MAC address`);
  return mac;
}

function interfaceAddress(body: RequestBody): { address: string; prefixLength: number | undefined } {
  const iface = body.Interface;
  const text = typeof iface === "object" && iface !== null ? (iface as RequestBody).Address : undefined;
  if (typeof text !== "string" || text === "") {
    throw new InvalidParameterError("the endpoint has no IPv4 address", {
      hint: "create azure networks with --ipam-driver azure",
    });
  }
  const [address, length] = text.split("/");
  const prefixLength = length === undefined ? undefined : Number(length);
  if (!parseIp(address!) || (prefixLength !== undefined && !(prefixLength >= 0 && prefixLength <= 32))) {
    throw new InvalidParameterError(
      `"Interface.Address" ${JSON.stringify(text.slice(0, 60))} is not an address/length`,
    );
  }
  return { address: address!, prefixLength };
}
