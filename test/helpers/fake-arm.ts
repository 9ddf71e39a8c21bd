/**
 * A stand-in for the part of Azure Resource Manager the plugin changes: network interfaces (list, GET,
 * PUT), public IP addresses (PUT, GET, DELETE, list), load balancer backend pools (GET) and the
 * asynchronous operations ARM answers changes with. It speaks the REST shapes @azure/arm-network 39.0.0
 * sends and expects (api-version 2026-01-01), over HTTPS with a test CA because the SDK refuses to send
 * a bearer token over plain HTTP. A NIC PUT is validated as Azure validates it and takes effect only
 * when its operation is polled to completion, so a client that does not wait cannot pass. ARM's faults
 * (403, 429, failed operations, ...) can be injected per request.
 */
import { randomUUID } from "node:crypto";
import type http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

/** The only bearer token the stand-in accepts; the IMDS stand-in hands out the same one. */
export const FAKE_MI_TOKEN = "fake-managed-identity-token";

/** The api-version the SDK sends; written into the operation URLs the stand-in hands out. */
export const FAKE_ARM_API_VERSION = "2026-01-01";

export type FakeArmIpConfig = {
  name: string;
  privateIp: string;
  primary: boolean;
  /** Azure keeps a Dynamic address for the configuration's lifetime; default Dynamic. */
  allocation?: "Static" | "Dynamic";
  /** Full resource id of an associated public IP address. */
  publicIpId?: string;
  /** Full resource ids of load balancer backend pools this configuration is a member of. */
  backendPoolIds: string[];
};

export type FakeArmNic = {
  name: string;
  vmName: string;
  /** Colon form, e.g. 00:0d:3a:1b:c7:21 (what the host sees); ARM shows it as 00-0D-3A-1B-C7-21. */
  mac: string;
  ipConfigurations: FakeArmIpConfig[];
};

export type FakeArmOptions = {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  /** The one subnet every ipConfiguration must be in. */
  subnet: { name: string; vnetName: string; prefix: string };
  nics: FakeArmNic[];
  loadBalancers?: { name: string; backendPools: string[] }[];
  /** First public address handed out; following ones count up. e.g. "198.51.100.200" */
  firstPublicIp: string;
  tls: { certPem: string; keyPem: string };
  listen: { host: string; port: number } | { socketPath: string };
  /** Base URL clients reach the stand-in at; required with `socketPath`, default https://127.0.0.1:<port>. */
  publicUrl?: string;
  /** InProgress answers before an operation reports its final status; default 1. */
  operationPolls?: number;
  /** Retry-After seconds sent with every LRO answer; default 1. */
  retryAfterSeconds?: number;
  /** Awaited when a NIC change takes effect (before the operation reports Succeeded), so a test can make the emulated network follow ARM. */
  onNicChange?: (nic: FakeArmNic) => Promise<void>;
  /** Awaited when a public IP's association changes (created/associated/dissociated/deleted). */
  onPublicIpChange?: (change: { publicIp: string; privateIp: string | undefined }) => Promise<void>;
};

export type FakeArmFault =
  | {
      kind: "status";
      status: 403 | 429 | 500 | 400 | 409 | 412;
      code: string;
      message: string;
      retryAfterSeconds?: number;
    }
  /** The PUT/DELETE is accepted, the async operation ends "Failed", nothing changes. */
  | { kind: "operation-failed"; code: string; message: string };

export type FakeArmPublicIp = {
  name: string;
  id: string;
  ipAddress: string;
  /** Id of the ipConfiguration the address is associated with, if any. */
  ipConfigurationId?: string;
  tags: Record<string, string>;
};

export type FakeArm = {
  url: string;
  /** Every request received, in order; `path` without the query. */
  requests: {
    method: string;
    path: string;
    authorization: string | undefined;
    ifMatch: string | undefined;
  }[];
  /**
   * The next `count` requests whose method matches and whose path contains `pathIncludes` get `fault`.
   * A "status" fault answers instead of ARM; an "operation-failed" fault goes to the next matching
   * PUT/DELETE that ARM accepts (an invalid one is still refused with its 400).
   */
  injectFault(match: { method: string; pathIncludes: string }, fault: FakeArmFault, count?: number): void;
  /** Deep copy of the NIC's committed state. */
  nic(name: string): FakeArmNic;
  /** Replaces (or adds) a NIC's committed state, without callbacks. */
  setNic(nic: FakeArmNic): void;
  publicIps(): FakeArmPublicIp[];
  /** ipConfiguration ids in the pool, from the committed NICs. */
  backendPoolMembers(lbName: string, poolName: string): string[];
  close(): Promise<void>;
};

/** Azure allows at most this many IP configurations on one NIC. */
const MAX_IP_CONFIGURATIONS = 256;

/** An error answer in ARM's shape, thrown by the handlers and sent by the request loop. */
class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

type OperationResult =
  | { status: "Succeeded" }
  | { status: "Failed"; error: { code: string; message: string } };

/** An accepted change that takes effect when a client polls it to the end. */
type Operation = {
  /** Lower-case id of the resource it changes; a second change of it meanwhile is refused. */
  resourceKey: string;
  pollsLeft: number;
  /** Set by an injected "operation-failed": the operation ends so and changes nothing. */
  failure: { code: string; message: string } | undefined;
  /** The NIC as the operation will leave it, so its addresses and associations count as taken. */
  pendingNic?: FakeArmNic;
  commit: () => Promise<void>;
  /** Started by the first poll that finds no InProgress answers left; every later poll repeats it. */
  result?: Promise<OperationResult>;
};

type NicRecord = { nic: FakeArmNic; etag: string; resourceGuid: string };
type PublicIpRecord = {
  name: string;
  ipAddress: string;
  tags: Record<string, string>;
  etag: string;
  resourceGuid: string;
};
type QueuedFault = { method: string; pathIncludes: string; fault: FakeArmFault; remaining: number };

export async function startFakeArm(options: FakeArmOptions): Promise<FakeArm> {
  const sub = options.subscriptionId;
  const rg = options.resourceGroup;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const subnet = parseSubnet(options.subnet.prefix);
  const rgPrefix = `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Network`;
  const subnetId = `${rgPrefix}/virtualNetworks/${options.subnet.vnetName}/subnets/${options.subnet.name}`;
  const nicId = (name: string) => `${rgPrefix}/networkInterfaces/${name}`;
  const ipConfigId = (nic: string, config: string) => `${nicId(nic)}/ipConfigurations/${config}`;
  const publicIpId = (name: string) => `${rgPrefix}/publicIPAddresses/${name}`;
  const poolId = (lb: string, pool: string) => `${rgPrefix}/loadBalancers/${lb}/backendAddressPools/${pool}`;

  const nics = new Map<string, NicRecord>();
  for (const nic of options.nics) nics.set(nic.name.toLowerCase(), newNicRecord(nic));
  const publicIps = new Map<string, PublicIpRecord>();
  /** Canonical pool ids by lower-case id: ARM ids are case-insensitive. */
  const pools = new Map<string, string>();
  for (const lb of options.loadBalancers ?? []) {
    for (const pool of lb.backendPools) pools.set(poolId(lb.name, pool).toLowerCase(), poolId(lb.name, pool));
  }
  const operations = new Map<string, Operation>();
  /** Resources with an unfinished operation, by lower-case id. */
  const busy = new Map<string, string>();
  const faults: QueuedFault[] = [];
  const requests: FakeArm["requests"] = [];
  const firstPublicIp = requireIpv4(options.firstPublicIp, "firstPublicIp");
  /** Public addresses are never reused, like Azure's (which are random anyway). */
  let publicIpsHandedOut = 0;

  let publicUrl = options.publicUrl?.replace(/\/+$/, "");
  const operationUrl = (id: string) =>
    `${publicUrl}/subscriptions/${sub}/providers/Microsoft.Network/locations/${options.location}/operations/${id}?api-version=${FAKE_ARM_API_VERSION}`;
  const operationResultUrl = (id: string) =>
    `${publicUrl}/subscriptions/${sub}/providers/Microsoft.Network/locations/${options.location}/operationResults/${id}?api-version=${FAKE_ARM_API_VERSION}`;

  function newNicRecord(nic: FakeArmNic): NicRecord {
    return { nic: structuredClone(nic), etag: newEtag(), resourceGuid: randomUUID() };
  }

  function takeFault(method: string, path: string, kind: FakeArmFault["kind"]): FakeArmFault | undefined {
    const queued = faults.find(
      (f) => f.remaining > 0 && f.fault.kind === kind && f.method === method && path.includes(f.pathIncludes),
    );
    if (!queued) return undefined;
    queued.remaining--;
    return queued.fault;
  }

  // ---- views of the model -------------------------------------------------------------------------

  /** Every NIC as it is or as an unfinished operation will leave it, except `exceptNic`. */
  function nicsInPlay(exceptNic?: string): FakeArmNic[] {
    const result: FakeArmNic[] = [];
    for (const [key, record] of nics) if (key !== exceptNic) result.push(record.nic);
    for (const op of operations.values()) {
      if (op.pendingNic && !op.result && op.pendingNic.name.toLowerCase() !== exceptNic)
        result.push(op.pendingNic);
    }
    return result;
  }

  /** Which ipConfiguration holds each private address, counting unfinished operations. */
  function addressHolders(exceptNic: string): Map<number, string> {
    const holders = new Map<number, string>();
    for (const nic of nicsInPlay(exceptNic)) {
      for (const config of nic.ipConfigurations) {
        const address = parseIpv4(config.privateIp);
        if (address !== undefined) holders.set(address, ipConfigId(nic.name, config.name));
      }
    }
    return holders;
  }

  /** Which ipConfiguration each public IP (lower-case id) is associated with, counting unfinished operations. */
  function publicIpHolders(exceptNic?: string): Map<string, string> {
    const holders = new Map<string, string>();
    for (const nic of nicsInPlay(exceptNic)) {
      for (const config of nic.ipConfigurations) {
        if (config.publicIpId)
          holders.set(config.publicIpId.toLowerCase(), ipConfigId(nic.name, config.name));
      }
    }
    return holders;
  }

  /** Committed associations only: public address -> private address. */
  function committedAssociations(): Map<string, string> {
    const byId = new Map<string, string>();
    for (const { nic } of nics.values()) {
      for (const config of nic.ipConfigurations) {
        if (config.publicIpId) byId.set(config.publicIpId.toLowerCase(), config.privateIp);
      }
    }
    const result = new Map<string, string>();
    for (const record of publicIps.values()) {
      const privateIp = byId.get(publicIpId(record.name).toLowerCase());
      if (privateIp) result.set(record.ipAddress, privateIp);
    }
    return result;
  }

  function committedIpConfigurationOf(publicIpName: string): string | undefined {
    const id = publicIpId(publicIpName).toLowerCase();
    for (const { nic } of nics.values()) {
      const config = nic.ipConfigurations.find((c) => c.publicIpId?.toLowerCase() === id);
      if (config) return ipConfigId(nic.name, config.name);
    }
    return undefined;
  }

  /** A VM's first NIC is its primary one (Azure's flag; the model has no better source). */
  function isPrimaryNic(nic: FakeArmNic): boolean {
    for (const { nic: other } of nics.values())
      if (other.vmName === nic.vmName) return other.name === nic.name;
    return true;
  }

  // ---- JSON as ARM writes it ----------------------------------------------------------------------

  function nicJson(
    nic: FakeArmNic,
    record: NicRecord,
    provisioningState: string,
    etag = record.etag,
  ): unknown {
    const id = nicId(nic.name);
    return {
      name: nic.name,
      id,
      etag,
      type: "Microsoft.Network/networkInterfaces",
      location: options.location,
      tags: {},
      properties: {
        provisioningState,
        resourceGuid: record.resourceGuid,
        ipConfigurations: nic.ipConfigurations.map((config) => ({
          name: config.name,
          id: ipConfigId(nic.name, config.name),
          etag,
          type: "Microsoft.Network/networkInterfaces/ipConfigurations",
          properties: {
            provisioningState: "Succeeded",
            privateIPAddress: config.privateIp,
            privateIPAllocationMethod: config.allocation ?? "Dynamic",
            privateIPAddressVersion: "IPv4",
            subnet: { id: subnetId },
            primary: config.primary,
            ...(config.publicIpId ? { publicIPAddress: { id: config.publicIpId } } : {}),
            ...(config.backendPoolIds.length > 0
              ? { loadBalancerBackendAddressPools: config.backendPoolIds.map((poolRef) => ({ id: poolRef })) }
              : {}),
          },
        })),
        dnsSettings: { dnsServers: [], appliedDnsServers: [] },
        macAddress: nic.mac.replace(/:/g, "-").toUpperCase(),
        primary: isPrimaryNic(nic),
        enableAcceleratedNetworking: false,
        enableIPForwarding: false,
        hostedWorkloads: [],
        tapConfigurations: [],
        virtualMachine: {
          id: `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachines/${nic.vmName}`,
        },
        nicType: "Standard",
      },
    };
  }

  function publicIpJson(record: PublicIpRecord, provisioningState: string, showAddress = true): unknown {
    const ipConfiguration = committedIpConfigurationOf(record.name);
    return {
      name: record.name,
      id: publicIpId(record.name),
      etag: record.etag,
      location: options.location,
      tags: record.tags,
      type: "Microsoft.Network/publicIPAddresses",
      sku: { name: "Standard", tier: "Regional" },
      properties: {
        provisioningState,
        resourceGuid: record.resourceGuid,
        ...(showAddress ? { ipAddress: record.ipAddress } : {}),
        publicIPAddressVersion: "IPv4",
        publicIPAllocationMethod: "Static",
        idleTimeoutInMinutes: 4,
        ipTags: [],
        ...(ipConfiguration ? { ipConfiguration: { id: ipConfiguration } } : {}),
      },
    };
  }

  // ---- lookups that answer 404 as ARM does --------------------------------------------------------

  function checkScope(subscription: string, resourceGroup?: string): void {
    if (subscription.toLowerCase() !== sub.toLowerCase()) {
      throw new ArmError(
        404,
        "SubscriptionNotFound",
        `The subscription '${subscription}' could not be found.`,
      );
    }
    if (resourceGroup !== undefined && resourceGroup.toLowerCase() !== rg.toLowerCase()) {
      throw new ArmError(
        404,
        "ResourceGroupNotFound",
        `Resource group '${resourceGroup}' could not be found.`,
      );
    }
  }

  function resourceNotFound(type: string, name: string): ArmError {
    return new ArmError(
      404,
      "ResourceNotFound",
      `The Resource 'Microsoft.Network/${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
    );
  }

  function nicRecord(name: string): NicRecord {
    const record = nics.get(name.toLowerCase());
    if (!record) throw resourceNotFound("networkInterfaces", name);
    return record;
  }

  function refuseIfBusy(resourceId: string): void {
    const operationId = busy.get(resourceId.toLowerCase());
    if (operationId === undefined) return;
    throw new ArmError(
      429,
      "AnotherOperationInProgress",
      `Another operation on this or dependent resource is in progress. To retrieve status of the operation use uri: ${operationUrl(operationId)}.`,
      { "Retry-After": retryAfter },
    );
  }

  // ---- operations ---------------------------------------------------------------------------------

  function startOperation(
    resourceId: string,
    failure: FakeArmFault | undefined,
    commit: () => Promise<void>,
    pendingNic?: FakeArmNic,
  ): string {
    const id = randomUUID();
    operations.set(id, {
      resourceKey: resourceId.toLowerCase(),
      pollsLeft: options.operationPolls ?? 1,
      failure: failure ? { code: failure.code, message: failure.message } : undefined,
      commit,
      ...(pendingNic ? { pendingNic } : {}),
    });
    busy.set(resourceId.toLowerCase(), id);
    return id;
  }

  async function finishOperation(op: Operation): Promise<OperationResult> {
    try {
      if (op.failure) return { status: "Failed", error: op.failure };
      await op.commit();
      return { status: "Succeeded" };
    } catch (error) {
      // A failing callback means the test's network could not follow; say so through ARM's channel.
      const message = error instanceof Error ? error.message : String(error);
      return {
        status: "Failed",
        error: { code: "InternalServerError", message: `stand-in callback failed: ${message}` },
      };
    } finally {
      busy.delete(op.resourceKey);
    }
  }

  /** One poll: InProgress while polls are left, then the final result (and the commit, once). */
  async function pollOperation(id: string, style: "async-operation" | "location"): Promise<Answer> {
    const op = operations.get(id);
    if (!op) throw new ArmError(404, "NotFound", `Operation ${id} was not found.`);
    const headers = { "Retry-After": retryAfter };
    if (!op.result && op.pollsLeft > 0) {
      op.pollsLeft--;
      return style === "location"
        ? { status: 202, headers: { ...headers, Location: operationResultUrl(id) } }
        : { status: 200, body: { status: "InProgress" }, headers };
    }
    op.result ??= finishOperation(op);
    const result = await op.result;
    if (style === "async-operation") return { status: 200, body: result, headers };
    if (result.status === "Failed") throw new ArmError(400, result.error.code, result.error.message, headers);
    return { status: 204, headers };
  }

  function acceptedHeaders(id: string, withLocation: boolean): Record<string, string> {
    return {
      "Azure-AsyncOperation": operationUrl(id),
      ...(withLocation ? { Location: operationResultUrl(id) } : {}),
      "Retry-After": retryAfter,
    };
  }

  // ---- network interfaces -------------------------------------------------------------------------

  /** Validates a NIC PUT body as Azure does and returns the NIC it asks for. */
  function planNicUpdate(record: NicRecord, body: unknown): FakeArmNic {
    const current = record.nic;
    const id = nicId(current.name);
    const resource = asObject(body);
    if (!resource) throw invalidContent("the body is not a JSON object");
    checkLocation(resource.location, current.name, true);
    const configs = asObject(resource.properties)?.ipConfigurations;
    if (!Array.isArray(configs) || configs.length === 0) {
      throw new ArmError(
        400,
        "InvalidRequestFormat",
        `Network interface ${id} must have at least one IP configuration.`,
      );
    }
    if (configs.length > MAX_IP_CONFIGURATIONS) {
      throw new ArmError(
        400,
        "NetworkInterfaceIpConfigurationsExceedLimit",
        `Network interface ${id} has ${configs.length} IP configurations, which exceeds the limit of ${MAX_IP_CONFIGURATIONS} IP configurations per network interface.`,
      );
    }

    const requested = configs.map((raw, index) => parseIpConfiguration(raw, index, id));
    const seen = new Set<string>();
    for (const config of requested) {
      if (seen.has(config.name.toLowerCase())) {
        throw new ArmError(
          400,
          "InvalidRequestFormat",
          `Resource ${id} has two child resources with the same name (${config.name}).`,
        );
      }
      seen.add(config.name.toLowerCase());
    }
    // A lone configuration is the primary one even when the body does not say so.
    if (requested.length === 1 && requested[0]!.primary === undefined) requested[0]!.primary = true;
    const primaries = requested.filter((c) => c.primary === true).length;
    if (primaries !== 1) {
      throw new ArmError(
        400,
        "InvalidRequestFormat",
        `Network interface ${id} must have exactly one primary IP configuration; the request marks ${primaries}.`,
      );
    }

    const taken = addressHolders(current.name.toLowerCase());
    const publicHolders = publicIpHolders(current.name.toLowerCase());
    const claimedPublic = new Map<string, string>();
    const result: FakeArmIpConfig[] = [];
    for (const config of requested) {
      const configId = ipConfigId(current.name, config.name);
      if (!config.subnetId) {
        throw new ArmError(
          400,
          "InvalidRequestFormat",
          `IP configuration ${configId} must reference a subnet.`,
        );
      }
      if (config.subnetId.toLowerCase() !== subnetId.toLowerCase())
        throw invalidReference(config.subnetId, configId);

      let publicRef: string | undefined;
      if (config.publicIpId) {
        const name = /\/publicIPAddresses\/([^/]+)$/i.exec(config.publicIpId)?.[1];
        const publicRecord = name === undefined ? undefined : publicIps.get(name.toLowerCase());
        if (
          !publicRecord ||
          config.publicIpId.toLowerCase() !== publicIpId(publicRecord.name).toLowerCase()
        ) {
          throw invalidReference(config.publicIpId, configId);
        }
        publicRef = publicIpId(publicRecord.name);
        refuseIfBusy(publicRef);
        const holder =
          publicHolders.get(publicRef.toLowerCase()) ?? claimedPublic.get(publicRef.toLowerCase());
        if (holder !== undefined) {
          throw new ArmError(
            400,
            "PublicIPAddressInUse",
            `Resource ${configId} is referencing public IP address ${publicRef} that is already allocated to resource ${holder}.`,
          );
        }
        claimedPublic.set(publicRef.toLowerCase(), configId);
      }

      const poolRefs = config.backendPoolIds.map((ref) => {
        const canonical = pools.get(ref.toLowerCase());
        if (!canonical) throw invalidReference(ref, configId);
        return canonical;
      });

      result.push({
        name: config.name,
        privateIp: "",
        primary: config.primary === true,
        allocation: config.allocation,
        ...(publicRef ? { publicIpId: publicRef } : {}),
        backendPoolIds: poolRefs,
      });
    }

    // Static addresses first (they are the caller's choice), then Dynamic ones fill the lowest gaps.
    requested.forEach((config, index) => {
      if (config.allocation !== "Static") return;
      const configId = ipConfigId(current.name, config.name);
      const address = config.privateIp === undefined ? undefined : parseIpv4(config.privateIp);
      if (address === undefined) {
        throw new ArmError(
          400,
          "InvalidRequestFormat",
          `IP configuration ${configId} has allocation method Static but no valid privateIPAddress.`,
        );
      }
      const text = formatIpv4(address);
      if (address < subnet.network || address > subnet.broadcast) {
        throw new ArmError(
          400,
          "PrivateIPAddressNotInSubnet",
          `Private static IP address ${text} does not belong to the range of subnet prefix ${options.subnet.prefix}.`,
        );
      }
      if (address < subnet.firstUsable || address > subnet.lastUsable) {
        throw new ArmError(
          400,
          "PrivateIPAddressInReservedRange",
          `Private static IP address ${text} falls within reserved IP range of subnet prefix ${options.subnet.prefix}.`,
        );
      }
      const holder = taken.get(address);
      if (holder !== undefined) {
        throw new ArmError(
          400,
          "PrivateIPAddressInUse",
          `IP configuration ${configId} is using the same private IP address ${text} as IP configuration ${holder}.`,
        );
      }
      taken.set(address, configId);
      result[index]!.privateIp = text;
    });
    requested.forEach((config, index) => {
      if (config.allocation !== "Dynamic") return;
      const configId = ipConfigId(current.name, config.name);
      // Azure keeps a Dynamic configuration's address for as long as the configuration exists.
      const existing = current.ipConfigurations.find(
        (c) => c.name.toLowerCase() === config.name.toLowerCase(),
      );
      const kept = existing ? parseIpv4(existing.privateIp) : undefined;
      let address = kept !== undefined && !taken.has(kept) ? kept : undefined;
      for (
        let candidate = subnet.firstUsable;
        address === undefined && candidate <= subnet.lastUsable;
        candidate++
      ) {
        if (!taken.has(candidate)) address = candidate;
      }
      if (address === undefined) {
        throw new ArmError(
          400,
          "SubnetIsFull",
          `Subnet ${options.subnet.name} with address prefix ${options.subnet.prefix} does not have enough capacity for 1 IP addresses.`,
        );
      }
      taken.set(address, configId);
      result[index]!.privateIp = formatIpv4(address);
    });
    return { name: current.name, vmName: current.vmName, mac: current.mac, ipConfigurations: result };
  }

  function checkLocation(location: unknown, name: string, exists: boolean): void {
    if (typeof location !== "string" || location === "") {
      throw new ArmError(400, "LocationRequired", "The location property is required for this definition.");
    }
    const normalize = (text: string) => text.replace(/\s+/g, "").toLowerCase();
    if (normalize(location) === normalize(options.location)) return;
    if (!exists) {
      // Azure would create it there; the stand-in has one region, and a cross-region reference fails anyway.
      throw new ArmError(
        400,
        "LocationNotAvailableForResourceType",
        `The stand-in models only location '${options.location}'; cannot create '${name}' in '${location}'.`,
      );
    }
    throw new ArmError(
      400,
      "InvalidResourceLocation",
      `The resource '${name}' already exists in location '${options.location}' in resource group '${rg}'. A resource with the same name cannot be created in location '${location}'. Please select a new resource name.`,
    );
  }

  async function commitNic(next: FakeArmNic, etag: string): Promise<void> {
    const before = committedAssociations();
    const record = nicRecord(next.name);
    nics.set(next.name.toLowerCase(), {
      nic: structuredClone(next),
      etag,
      resourceGuid: record.resourceGuid,
    });
    await options.onNicChange?.(structuredClone(next));
    const after = committedAssociations();
    for (const [publicIp, privateIp] of after) {
      if (before.get(publicIp) !== privateIp) await options.onPublicIpChange?.({ publicIp, privateIp });
    }
    for (const publicIp of before.keys()) {
      if (!after.has(publicIp)) await options.onPublicIpChange?.({ publicIp, privateIp: undefined });
    }
  }

  function putNic(name: string, body: unknown, ifMatch: string | undefined, path: string): Answer {
    const record = nics.get(name.toLowerCase());
    if (!record) {
      throw new ArmError(
        501,
        "NotImplementedInStandIn",
        `Creating network interface ${name} is not modelled.`,
      );
    }
    if (ifMatch !== undefined && ifMatch !== "*" && ifMatch !== record.etag) {
      throw new ArmError(
        412,
        "PreconditionFailed",
        `Precondition failed: If-Match ${ifMatch} does not match ${record.etag}.`,
      );
    }
    refuseIfBusy(nicId(record.nic.name));
    const next = planNicUpdate(record, body);
    const failure = takeFault("PUT", path, "operation-failed");
    const etag = newEtag();
    const id = startOperation(nicId(record.nic.name), failure, () => commitNic(next, etag), next);
    return {
      status: 200,
      body: nicJson(next, record, "Updating", etag),
      headers: acceptedHeaders(id, false),
    };
  }

  // ---- public IP addresses ------------------------------------------------------------------------

  function putPublicIp(name: string, body: unknown, path: string): Answer {
    const id = publicIpId(name);
    refuseIfBusy(id);
    const resource = asObject(body);
    if (!resource) throw invalidContent("the body is not a JSON object");
    const existing = publicIps.get(name.toLowerCase());
    checkLocation(resource.location, name, existing !== undefined);
    const sku = asObject(resource.sku)?.name;
    if (sku !== "Standard") {
      throw new ArmError(
        400,
        "InvalidRequestFormat",
        `Public IP address ${id} must have sku Standard (got ${JSON.stringify(sku ?? "Basic")}); Basic SKU public IP addresses were retired.`,
      );
    }
    const properties = asObject(resource.properties) ?? {};
    if (properties.publicIPAllocationMethod !== "Static") {
      throw new ArmError(
        400,
        "StandardSkuPublicIPAddressesMustBeStatic",
        `Standard sku publicIp ${id} must have AllocationMethod set to Static.`,
      );
    }
    if (properties.publicIPAddressVersion !== undefined && properties.publicIPAddressVersion !== "IPv4") {
      throw new ArmError(400, "InvalidRequestFormat", `The stand-in models IPv4 public IP addresses only.`);
    }
    const tags = parseTags(resource.tags);
    const failure = takeFault("PUT", path, "operation-failed");
    if (existing) {
      const updated = { ...existing, tags, etag: newEtag() };
      const op = startOperation(id, failure, () => {
        publicIps.set(name.toLowerCase(), updated);
        return Promise.resolve();
      });
      return { status: 200, body: publicIpJson(updated, "Updating"), headers: acceptedHeaders(op, false) };
    }
    const created: PublicIpRecord = {
      name,
      ipAddress: formatIpv4(firstPublicIp + publicIpsHandedOut++),
      tags,
      etag: newEtag(),
      resourceGuid: randomUUID(),
    };
    const op = startOperation(id, failure, async () => {
      publicIps.set(name.toLowerCase(), created);
      await options.onPublicIpChange?.({ publicIp: created.ipAddress, privateIp: undefined });
    });
    // Azure shows the address only once the creation has succeeded.
    return {
      status: 201,
      body: publicIpJson(created, "Updating", false),
      headers: acceptedHeaders(op, false),
    };
  }

  function deletePublicIp(name: string, path: string): Answer {
    refuseIfBusy(publicIpId(name)); // also while its creation is still running
    const record = publicIps.get(name.toLowerCase());
    if (!record) return { status: 204 }; // Azure: deleting what is not there succeeds at once
    const id = publicIpId(record.name);
    const holder = publicIpHolders().get(id.toLowerCase());
    if (holder !== undefined) {
      throw new ArmError(
        400,
        "PublicIPAddressCannotBeDeleted",
        `Public IP address ${id} can not be deleted since it is still allocated to resource ${holder}. In order to delete the public IP, disassociate/detach the Public IP address from the resource.  To learn how to do this, see aka.ms/deletepublicip.`,
      );
    }
    const failure = takeFault("DELETE", path, "operation-failed");
    const op = startOperation(id, failure, async () => {
      publicIps.delete(name.toLowerCase());
      await options.onPublicIpChange?.({ publicIp: record.ipAddress, privateIp: undefined });
    });
    return { status: 202, headers: acceptedHeaders(op, true) };
  }

  function invalidReference(reference: string, by: string): ArmError {
    return new ArmError(
      400,
      "InvalidResourceReference",
      `Resource ${reference} referenced by resource ${by} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
    );
  }

  // ---- routing ------------------------------------------------------------------------------------

  const NET = "providers/Microsoft\\.Network";
  const routes: {
    method: string;
    pattern: RegExp;
    /** `path` is the request's, for matching injected faults. */
    run: (
      groups: string[],
      body: unknown,
      req: http.IncomingMessage,
      path: string,
    ) => Answer | Promise<Answer>;
  }[] = [
    {
      method: "GET",
      pattern: new RegExp(`^/subscriptions/([^/]+)/${NET}/networkInterfaces$`, "i"),
      run: ([subscription = ""]) => {
        checkScope(subscription);
        return {
          status: 200,
          body: { value: [...nics.values()].map((r) => nicJson(r.nic, r, nicState(r))) },
        };
      },
    },
    {
      method: "GET",
      pattern: new RegExp(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/${NET}/networkInterfaces$`, "i"),
      run: ([subscription = "", group = ""]) => {
        checkScope(subscription, group);
        return {
          status: 200,
          body: { value: [...nics.values()].map((r) => nicJson(r.nic, r, nicState(r))) },
        };
      },
    },
    {
      method: "GET",
      pattern: new RegExp(
        `^/subscriptions/([^/]+)/resourceGroups/([^/]+)/${NET}/networkInterfaces/([^/]+)$`,
        "i",
      ),
      run: ([subscription = "", group = "", name = ""]) => {
        checkScope(subscription, group);
        const record = nicRecord(name);
        return { status: 200, body: nicJson(record.nic, record, nicState(record)) };
      },
    },
    {
      method: "PUT",
      pattern: new RegExp(
        `^/subscriptions/([^/]+)/resourceGroups/([^/]+)/${NET}/networkInterfaces/([^/]+)$`,
        "i",
      ),
      run: ([subscription = "", group = "", name = ""], body, req, path) => {
        checkScope(subscription, group);
        return putNic(name, body, req.headers["if-match"], path);
      },
    },
    {
      method: "GET",
      pattern: new RegExp(`^/subscriptions/([^/]+)/${NET}/locations/([^/]+)/operations/([^/]+)$`, "i"),
      run: ([subscription = "", , id = ""]) => {
        checkScope(subscription);
        return pollOperation(id, "async-operation");
      },
    },
    {
      method: "GET",
      pattern: new RegExp(`^/subscriptions/([^/]+)/${NET}/locations/([^/]+)/operationResults/([^/]+)$`, "i"),
      run: ([subscription = "", , id = ""]) => {
        checkScope(subscription);
        return pollOperation(id, "location");
      },
    },
    {
      method: "GET",
      pattern: new RegExp(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/${NET}/publicIPAddresses$`, "i"),
      run: ([subscription = "", group = ""]) => {
        checkScope(subscription, group);
        return {
          status: 200,
          body: { value: [...publicIps.values()].map((r) => publicIpJson(r, "Succeeded")) },
        };
      },
    },
    {
      method: "GET",
      pattern: new RegExp(
        `^/subscriptions/([^/]+)/resourceGroups/([^/]+)/${NET}/publicIPAddresses/([^/]+)$`,
        "i",
      ),
      run: ([subscription = "", group = "", name = ""]) => {
        checkScope(subscription, group);
        const record = publicIps.get(name.toLowerCase());
        if (!record) throw resourceNotFound("publicIPAddresses", name);
        const state = busy.has(publicIpId(record.name).toLowerCase()) ? "Updating" : "Succeeded";
        return { status: 200, body: publicIpJson(record, state) };
      },
    },
    {
      method: "PUT",
      pattern: new RegExp(
        `^/subscriptions/([^/]+)/resourceGroups/([^/]+)/${NET}/publicIPAddresses/([^/]+)$`,
        "i",
      ),
      run: ([subscription = "", group = "", name = ""], body, _req, path) => {
        checkScope(subscription, group);
        return putPublicIp(name, body, path);
      },
    },
    {
      method: "DELETE",
      pattern: new RegExp(
        `^/subscriptions/([^/]+)/resourceGroups/([^/]+)/${NET}/publicIPAddresses/([^/]+)$`,
        "i",
      ),
      run: ([subscription = "", group = "", name = ""], _body, _req, path) => {
        checkScope(subscription, group);
        return deletePublicIp(name, path);
      },
    },
    {
      method: "GET",
      pattern: new RegExp(
        `^/subscriptions/([^/]+)/resourceGroups/([^/]+)/${NET}/loadBalancers/([^/]+)/backendAddressPools/([^/]+)$`,
        "i",
      ),
      run: ([subscription = "", group = "", lb = "", pool = ""]) => {
        checkScope(subscription, group);
        const loadBalancer = (options.loadBalancers ?? []).find(
          (l) => l.name.toLowerCase() === lb.toLowerCase(),
        );
        if (!loadBalancer) throw resourceNotFound("loadBalancers", lb);
        const id = pools.get(poolId(lb, pool).toLowerCase());
        if (!id) throw new ArmError(404, "NotFound", `Resource ${poolId(lb, pool)} not found.`);
        return {
          status: 200,
          body: {
            name: id.slice(id.lastIndexOf("/") + 1),
            id,
            etag: `W/"${randomUUID()}"`,
            type: "Microsoft.Network/loadBalancers/backendAddressPools",
            properties: {
              provisioningState: "Succeeded",
              backendIPConfigurations: poolMembers(id).map((member) => ({ id: member })),
            },
          },
        };
      },
    },
  ];

  function nicState(record: NicRecord): string {
    return busy.has(nicId(record.nic.name).toLowerCase()) ? "Updating" : "Succeeded";
  }

  function poolMembers(canonicalPoolId: string): string[] {
    const key = canonicalPoolId.toLowerCase();
    const members: string[] = [];
    for (const { nic } of nics.values()) {
      for (const config of nic.ipConfigurations) {
        if (config.backendPoolIds.some((ref) => ref.toLowerCase() === key)) {
          members.push(ipConfigId(nic.name, config.name));
        }
      }
    }
    return members;
  }

  async function answer(req: http.IncomingMessage, method: string, url: URL): Promise<Answer> {
    const authorization = req.headers.authorization;
    if (authorization === undefined) {
      throw new ArmError(
        401,
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is missing.",
        {
          "WWW-Authenticate":
            'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The authentication failed because of missing \'Authorization\' header."',
        },
      );
    }
    if (authorization !== `Bearer ${FAKE_MI_TOKEN}`) {
      throw new ArmError(401, "AuthenticationFailed", "Authentication failed. The access token is invalid.", {
        "WWW-Authenticate":
          'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="The access token is invalid."',
      });
    }
    const fault = takeFault(method, url.pathname, "status");
    if (fault?.kind === "status") {
      const seconds = fault.retryAfterSeconds ?? (fault.status === 429 ? Number(retryAfter) : undefined);
      throw new ArmError(
        fault.status,
        fault.code,
        fault.message,
        seconds === undefined ? {} : { "Retry-After": String(seconds) },
      );
    }
    if (!url.searchParams.get("api-version")) {
      throw new ArmError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
      );
    }
    // The stand-in models one api-version's shapes: an SDK that moved to another must fail here, not
    // pass against shapes Azure no longer answers with.
    if (url.searchParams.get("api-version") !== FAKE_ARM_API_VERSION) {
      throw new ArmError(
        400,
        "InvalidApiVersionParameter",
        `The ARM stand-in models api-version ${FAKE_ARM_API_VERSION} only, not ${url.searchParams.get("api-version")}.`,
      );
    }
    const path = url.pathname.replace(/\/+$/, "");
    for (const route of routes) {
      const match = route.pattern.exec(path);
      if (!match || route.method !== method) continue;
      const body = method === "PUT" ? await readJson(req) : undefined;
      return route.run(match.slice(1).map(decodeURIComponent), body, req, url.pathname);
    }
    throw new ArmError(
      501,
      "NotImplementedInStandIn",
      `The ARM stand-in does not model ${method} ${url.pathname}.`,
    );
  }

  const server = https.createServer({ cert: options.tls.certPem, key: options.tls.keyPem }, (req, res) => {
    const url = new URL(req.url ?? "/", "https://fake-arm");
    const method = (req.method ?? "GET").toUpperCase();
    requests.push({
      method,
      path: url.pathname,
      authorization: req.headers.authorization,
      ifMatch: req.headers["if-match"],
    });
    const send = ({ status, body, headers }: Answer) => {
      const common = { "x-ms-request-id": randomUUID(), ...headers };
      if (body === undefined) {
        res.writeHead(status, common);
        res.end();
        return;
      }
      res.writeHead(status, { ...common, "Content-Type": "application/json; charset=utf-8" });
      res.end(JSON.stringify(body));
    };
    answer(req, method, url).then(send, (error: unknown) => {
      if (error instanceof ArmError) {
        send({
          status: error.status,
          body: { error: { code: error.code, message: error.message } },
          headers: error.headers,
        });
      } else {
        const message = error instanceof Error ? error.message : String(error);
        send({
          status: 500,
          body: { error: { code: "InternalServerError", message: `stand-in bug: ${message}` } },
        });
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if ("socketPath" in options.listen) server.listen(options.listen.socketPath, () => resolve());
    else server.listen(options.listen.port, options.listen.host, () => resolve());
  });
  if (publicUrl === undefined) {
    if ("socketPath" in options.listen) {
      server.close();
      throw new Error("startFakeArm: publicUrl is required when listening on a unix socket");
    }
    publicUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  return {
    url: publicUrl,
    requests,
    injectFault(match, fault, count = 1) {
      const method = match.method.toUpperCase();
      if (fault.kind === "operation-failed" && method !== "PUT" && method !== "DELETE") {
        throw new Error("an operation-failed fault applies to PUT or DELETE only");
      }
      faults.push({ method, pathIncludes: match.pathIncludes, fault, remaining: count });
    },
    nic(name) {
      return structuredClone(nicRecord(name).nic);
    },
    setNic(nic) {
      const existing = nics.get(nic.name.toLowerCase());
      nics.set(nic.name.toLowerCase(), {
        nic: structuredClone(nic),
        etag: newEtag(),
        resourceGuid: existing?.resourceGuid ?? randomUUID(),
      });
    },
    publicIps() {
      return [...publicIps.values()].map((record) => {
        const ipConfigurationId = committedIpConfigurationOf(record.name);
        return {
          name: record.name,
          id: publicIpId(record.name),
          ipAddress: record.ipAddress,
          ...(ipConfigurationId ? { ipConfigurationId } : {}),
          tags: { ...record.tags },
        };
      });
    },
    backendPoolMembers(lbName, poolName) {
      const id = pools.get(poolId(lbName, poolName).toLowerCase());
      if (!id) throw new Error(`no backend pool ${poolName} in load balancer ${lbName}`);
      return poolMembers(id);
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** An ipConfiguration as a PUT body states it, before validation. */
type RequestedIpConfig = {
  name: string;
  allocation: "Static" | "Dynamic";
  privateIp: string | undefined;
  primary: boolean | undefined;
  subnetId: string | undefined;
  publicIpId: string | undefined;
  backendPoolIds: string[];
};

function parseIpConfiguration(raw: unknown, index: number, nicId: string): RequestedIpConfig {
  const config = asObject(raw);
  const name = config?.name;
  if (!config || typeof name !== "string" || name === "") {
    throw new ArmError(400, "InvalidRequestFormat", `IP configuration ${index} of ${nicId} has no name.`);
  }
  const properties = asObject(config.properties) ?? {};
  const method = properties.privateIPAllocationMethod ?? "Dynamic";
  if (method !== "Static" && method !== "Dynamic") {
    throw new ArmError(
      400,
      "InvalidRequestFormat",
      `privateIPAllocationMethod ${JSON.stringify(method)} is invalid.`,
    );
  }
  const version = properties.privateIPAddressVersion;
  if (version !== undefined && version !== "IPv4") {
    throw new ArmError(
      400,
      "InvalidRequestFormat",
      `The stand-in models IPv4 IP configurations only (got ${JSON.stringify(version)}).`,
    );
  }
  const pools = properties.loadBalancerBackendAddressPools;
  if (pools !== undefined && !Array.isArray(pools))
    throw invalidContent("loadBalancerBackendAddressPools is not an array");
  const idOf = (reference: unknown): string | undefined => {
    const id = asObject(reference)?.id;
    return typeof id === "string" ? id : undefined;
  };
  return {
    name,
    allocation: method,
    privateIp: typeof properties.privateIPAddress === "string" ? properties.privateIPAddress : undefined,
    primary: typeof properties.primary === "boolean" ? properties.primary : undefined,
    subnetId: idOf(properties.subnet),
    publicIpId: idOf(properties.publicIPAddress),
    backendPoolIds: (pools ?? []).map((pool) => {
      const id = idOf(pool);
      if (id === undefined) throw invalidContent("a loadBalancerBackendAddressPools entry has no id");
      return id;
    }),
  };
}

function parseTags(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  const tags = asObject(raw);
  if (!tags || Object.values(tags).some((value) => typeof value !== "string"))
    throw invalidContent("tags must map names to strings");
  return tags as Record<string, string>;
}

function invalidContent(detail: string): ArmError {
  return new ArmError(
    400,
    "InvalidRequestContent",
    `The request content was invalid and could not be deserialized: ${detail}.`,
  );
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw invalidContent(error instanceof Error ? error.message : "not JSON");
  }
}

function newEtag(): string {
  return `W/"${randomUUID()}"`;
}

function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,3}$/.test(part) || Number(part) > 255))
    return undefined;
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

function requireIpv4(text: string, what: string): number {
  const value = parseIpv4(text);
  if (value === undefined) throw new Error(`${what} ${text} is not an IPv4 address`);
  return value;
}

function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** Azure reserves the network address, .1 (gateway), .2 and .3 (DNS) and the broadcast address. */
function parseSubnet(prefix: string): {
  network: number;
  broadcast: number;
  firstUsable: number;
  lastUsable: number;
} {
  const [base = "", bitsText = ""] = prefix.split("/");
  const address = parseIpv4(base);
  const bits = Number(bitsText);
  if (address === undefined || !Number.isInteger(bits) || bits < 0 || bits > 29) {
    throw new Error(`subnet prefix ${prefix} is not an IPv4 prefix Azure allows (/29 or larger)`);
  }
  const size = 2 ** (32 - bits);
  const network = address - (address % size);
  return { network, broadcast: network + size - 1, firstUsable: network + 4, lastUsable: network + size - 2 };
}
