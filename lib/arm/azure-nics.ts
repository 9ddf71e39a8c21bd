/**
 * This VM's NICs as Azure Resource Manager sees them, and every change the plugin makes to them: adding
 * and removing secondary IP configurations, associating an IP configuration with a public IP or a
 * load-balancer backend pool (an endpoint's "Azure links"), and creating or deleting the public IPs the
 * plugin owns. The VM finds itself through IMDS (subscription, resource group, VM id) and matches ARM's
 * NICs to local ones by MAC. A NIC is changed by GET, edit, PUT of the whole NIC, so changes to one NIC
 * run one at a time; additions of IP configurations run one at a time across the VM's NICs, since
 * Azure's limit of private addresses is per VM.
 */
import { randomBytes } from "node:crypto";
import type { NetworkInterface, NetworkInterfaceIPConfiguration } from "@azure/arm-network";
import { normalizeMac } from "../mac.js";
import { parseIp, parsePrefix, prefixContains } from "../ip.js";
import { httpGet } from "../http-get.js";
import { InvalidParameterError, PoolExhaustedError, UnavailableError } from "../errors.js";
import type { Logger } from "../logger.js";
import { SerialQueue } from "../serial-queue.js";
import { armFailure, createNetworkClient, type ArmClientOptions, type NetworkClient } from "./arm-client.js";

/** Names of the IP configurations and public IPs the plugin creates; only those it ever removes. */
export const OWNED_PREFIX = "azure-vnet-";
/** Tag on public IPs the plugin created, so an operator can tell them apart (with the VM's id). */
const OWNER_TAG = "created-by";
const COMPUTE_PATH = "/metadata/instance/compute?api-version=2021-02-01";
/** Tries of an edit whose PUT found the NIC changed by someone else since the GET. */
const EDIT_ATTEMPTS = 3;
/** Azure allows at most this many private IP addresses (IP configurations) on one VM, across its NICs. */
const MAX_PRIVATE_IPS_PER_VM = 256;

/** The ARM client's options, the cap on IP configurations per NIC, and the IMDS timeout. */
export type AzureNicsOptions = ArmClientOptions & {
  /**
   * Per NIC: Azure allows 256 IP configurations per NIC; a lower cap leaves room for other uses. The
   * VM's own limit, 256 private addresses across all its NICs, holds besides.
   */
  maxIpConfigurations: number;
  sourceTimeoutMs: number;
};

/** Where the VM lives, from IMDS compute metadata. */
export type VmLocation = { subscriptionId: string; resourceGroup: string; vmId: string; location: string };

/** A NIC of this VM as ARM names it. */
type ArmNicName = { resourceGroup: string; name: string };

/**
 * A change to the Azure links of an IP configuration: which public IP and backend pools to associate
 * or dissociate; `undefined` leaves that part as it is.
 */
export type AzureLinkChange = {
  /** A public IP resource id to associate. */
  publicIpId?: string;
  /**
   * A public IP resource id to dissociate, only if it is the one associated: an unlink retried after
   * the address went to another container must not take that container's public IP.
   */
  removePublicIpId?: string;
  addBackendPools?: string[];
  removeBackendPools?: string[];
};

/**
 * The NIC in Azure has no IP configuration with the address asked about: it was removed from the NIC.
 * Still 503 to whoever asked; an unlink catches it by type, since nothing is associated with an
 * address the NIC no longer holds.
 */
export class IpConfigurationMissingError extends UnavailableError {}

/**
 * This VM's NICs in Azure, for pool growth (IpamDriver) and Azure links (NetworkDriver). Finds the VM
 * on first use, not at construction, so a plugin without ARM features never talks to ARM.
 */
export class AzureNics {
  private located:
    | Promise<{ client: NetworkClient; vm: VmLocation; nics: Map<string, ArmNicName> }>
    | undefined;
  private readonly queues = new Map<string, SerialQueue>();
  /** Additions of IP configurations, one at a time across the VM's NICs. */
  private readonly additions = new SerialQueue();

  constructor(
    private readonly options: AzureNicsOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * Adds up to `count` dynamic secondary IP configurations in `subnet` to the NIC with `macAddress` and
   * returns the addresses Azure gave them. Fails when the VM has Azure's most private addresses across
   * its NICs (the other NICs are read for their count), or the NIC is at the configured cap.
   */
  addSecondaries(macAddress: string, subnet: string, count: number): Promise<string[]> {
    const action = `add IP configurations to NIC ${macAddress}`;
    // One at a time across the VM: two NICs growing at once must not both take the VM's last room.
    return this.additions
      .run(() =>
        this.editNic(macAddress, action, async (nic) => {
          const configurations = nic.ipConfigurations ?? [];
          const room = Math.min(
            await this.roomOnVm(macAddress, nic, action),
            this.roomOnNic(nic.name ?? macAddress, configurations.length),
          );
          const prefix = parsePrefix(subnet)!;
          const sibling = configurations.find((c) => holds(c, (ip) => prefixContains(prefix, ip)));
          if (!sibling?.subnet?.id) {
            throw new UnavailableError(`NIC ${nic.name} has no IP configuration in ${subnet} in Azure`, {
              hint: "the NIC in Azure does not match what IMDS reports; try again in a minute",
            });
          }
          const names = Array.from(
            { length: Math.min(count, room) },
            () => OWNED_PREFIX + randomBytes(4).toString("hex"),
          );
          for (const name of names) {
            configurations.push({
              name,
              primary: false,
              privateIPAllocationMethod: "Dynamic",
              privateIPAddressVersion: "IPv4",
              subnet: { id: sibling.subnet.id },
            });
          }
          nic.ipConfigurations = configurations;
          return (updated) =>
            (updated.ipConfigurations ?? [])
              .filter((c) => names.includes(c.name ?? "") && c.privateIPAddress)
              .map((c) => c.privateIPAddress!);
        }),
      )
      .then((added) => added ?? []);
  }

  /** How many IP configurations the NIC may still get under --max-ip-configurations; throws at none. */
  private roomOnNic(name: string, configurations: number): number {
    const room = this.options.maxIpConfigurations - configurations;
    if (room <= 0) {
      throw new PoolExhaustedError(
        `NIC ${name} has ${configurations} IP configurations, the most allowed (${this.options.maxIpConfigurations})`,
        { hint: "attach another NIC to the VM, or remove containers that no longer run" },
      );
    }
    return room;
  }

  /**
   * How many private addresses the VM may still get across its NICs: `nic` as just read, the VM's other
   * NICs as ARM has them now. Throws when the VM has Azure's most. The NICs are those found at the
   * first use; Azure attaches and detaches NICs only while a VM is stopped, so they are still the VM's.
   */
  private async roomOnVm(macAddress: string, nic: NetworkInterface, action: string): Promise<number> {
    const { client, nics } = await this.locate(action);
    const others = [...nics].filter(([mac]) => mac !== macAddress).map(([, other]) => other);
    const counts = [
      { name: nic.name ?? macAddress, count: nic.ipConfigurations?.length ?? 0 },
      ...(await Promise.all(
        others.map(async (other) => {
          const read = await client.networkInterfaces.get(other.resourceGroup, other.name);
          return { name: other.name, count: read.ipConfigurations?.length ?? 0 };
        }),
      )),
    ];
    const total = counts.reduce((sum, { count }) => sum + count, 0);
    if (total >= MAX_PRIVATE_IPS_PER_VM) {
      const perNic = counts.map(({ name, count }) => `${name} ${count}`).join(", ");
      throw new PoolExhaustedError(
        `the VM has ${total} private IP addresses across its NICs (${perNic}), the most Azure allows (${MAX_PRIVATE_IPS_PER_VM})`,
        { hint: "remove containers that no longer run, or move some to another VM" },
      );
    }
    return MAX_PRIVATE_IPS_PER_VM - total;
  }

  /**
   * Removes secondary IP configurations the plugin created in `subnet`. `choose` gets the addresses that
   * could go (plugin-made, not linked to a public IP or load balancer) and returns those that may:
   * it withdraws them from the pool first, so none is handed out while the NIC changes.
   */
  removeSecondaries(
    macAddress: string,
    subnet: string,
    choose: (removable: string[]) => Promise<string[]>,
  ): Promise<string[]> {
    return this.editNic(
      macAddress,
      `remove IP configurations from NIC ${macAddress}`,
      async (nic) => {
        const prefix = parsePrefix(subnet)!;
        const removable = (nic.ipConfigurations ?? [])
          .filter(
            (c) =>
              c.name?.startsWith(OWNED_PREFIX) &&
              !c.primary &&
              !c.publicIPAddress &&
              !(c.loadBalancerBackendAddressPools ?? []).length &&
              holds(c, (ip) => prefixContains(prefix, ip)),
          )
          .map((c) => c.privateIPAddress!);
        const chosen = removable.length ? await choose(removable) : [];
        if (chosen.length === 0) return undefined;
        nic.ipConfigurations = (nic.ipConfigurations ?? []).filter(
          (c) => !chosen.includes(c.privateIPAddress ?? ""),
        );
        return () => chosen;
        // Not repeated: the chosen addresses are already out of the pool, and the caller puts them back.
      },
      false,
    ).then((removed) => removed ?? []);
  }

  /**
   * Associates the IP configuration holding `address` on the NIC with `macAddress` with a public IP and
   * backend pools, or dissociates it from them, as `change` says.
   */
  async linkIpConfiguration(macAddress: string, address: string, change: AzureLinkChange): Promise<void> {
    await this.editNic(macAddress, `change the IP configuration of ${address}`, (nic) => {
      const configuration = (nic.ipConfigurations ?? []).find((c) => c.privateIPAddress === address);
      if (!configuration) {
        throw new IpConfigurationMissingError(
          `NIC ${nic.name} has no IP configuration with ${address} in Azure`,
          {
            hint: "the address was removed from the NIC; remove the container",
          },
        );
      }
      if (change.publicIpId !== undefined) configuration.publicIPAddress = { id: change.publicIpId };
      if (
        change.removePublicIpId &&
        sameIds([change.removePublicIpId], configuration.publicIPAddress?.id ?? "")
      )
        configuration.publicIPAddress = undefined;
      const pools = (configuration.loadBalancerBackendAddressPools ?? []).filter(
        (pool) => !sameIds(change.removeBackendPools ?? [], pool.id),
      );
      for (const id of change.addBackendPools ?? []) {
        const present = pools.map((pool) => pool.id ?? "");
        if (!sameIds(present, id)) pools.push({ id });
      }
      configuration.loadBalancerBackendAddressPools = pools;
      return () => undefined;
    });
  }

  /** Creates a Standard static public IP in the VM's resource group and location; returns id and address. */
  async createPublicIp(name: string): Promise<{ id: string; address: string }> {
    const action = `create public IP ${name}`;
    const { client, vm } = await this.locate(action);
    try {
      const created = await client.publicIPAddresses.beginCreateOrUpdateAndWait(vm.resourceGroup, name, {
        location: vm.location,
        sku: { name: "Standard" },
        publicIPAllocationMethod: "Static",
        publicIPAddressVersion: "IPv4",
        tags: { [OWNER_TAG]: "azure-vnet", vm: vm.vmId },
      });
      return { id: created.id!, address: created.ipAddress ?? "" };
    } catch (error) {
      throw armFailure(action, error);
    }
  }

  /** The address of an existing public IP, given by resource id or by name in the VM's resource group. */
  async publicIp(reference: string): Promise<{ id: string; address: string }> {
    const action = `read public IP ${reference}`;
    const { client, vm } = await this.locate(action);
    const { resourceGroup, name } = reference.startsWith("/")
      ? resourceName(reference, "publicIPAddresses")
      : { resourceGroup: vm.resourceGroup, name: reference };
    try {
      const found = await client.publicIPAddresses.get(resourceGroup, name);
      return { id: found.id!, address: found.ipAddress ?? "" };
    } catch (error) {
      throw armFailure(action, error);
    }
  }

  async deletePublicIp(id: string): Promise<void> {
    const action = `delete public IP ${id}`;
    const { client } = await this.locate(action);
    const { resourceGroup, name } = resourceName(id, "publicIPAddresses");
    try {
      await client.publicIPAddresses.beginDeleteAndWait(resourceGroup, name);
    } catch (error) {
      throw armFailure(action, error);
    }
  }

  /**
   * GETs the NIC, lets `edit` change it, PUTs it with the GET's ETag and waits for the operation.
   * `edit` returns what to read from the NIC Azure answers with, or undefined when nothing needs to
   * change. If the NIC changed in Azure since the GET (someone else's change, which a plain PUT would
   * overwrite), a `repeatable` edit is made again on the NIC as it is now; any other fails.
   */
  private async editNic<T>(
    macAddress: string,
    action: string,
    edit: (
      nic: NetworkInterface,
    ) =>
      | Promise<((updated: NetworkInterface) => T) | undefined>
      | ((updated: NetworkInterface) => T)
      | undefined,
    repeatable = true,
  ): Promise<T | undefined> {
    const { client, nics } = await this.locate(action);
    const name = nics.get(macAddress);
    if (!name) {
      throw new UnavailableError(`cannot ${action}: no NIC of this VM in Azure has MAC ${macAddress}`, {
        hint: "check that the plugin runs on the VM that owns the NIC",
      });
    }
    const key = `${name.resourceGroup}/${name.name}`;
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = new SerialQueue()));
    return queue.run(async () => {
      const started = Date.now();
      for (let attempt = 1; ; attempt++) {
        try {
          const nic = await client.networkInterfaces.get(name.resourceGroup, name.name);
          const read = await edit(nic);
          if (!read) return undefined;
          const updated = await client.networkInterfaces.beginCreateOrUpdateAndWait(
            name.resourceGroup,
            name.name,
            nic,
            { requestOptions: { headers: nic.etag ? { "If-Match": nic.etag } : {} } },
          );
          this.logger.info("NIC changed in Azure", {
            nic: name.name,
            action,
            attempts: attempt,
            durationMs: Date.now() - started,
          });
          return read(updated);
        } catch (error) {
          const changedMeanwhile = (error as { statusCode?: number }).statusCode === 412;
          if (!(changedMeanwhile && repeatable && attempt < EDIT_ATTEMPTS)) throw armFailure(action, error);
        }
      }
    });
  }

  /** Finds the VM and its NICs once; a failure is not cached, so the next call tries again. */
  private locate(
    action: string,
  ): Promise<{ client: NetworkClient; vm: VmLocation; nics: Map<string, ArmNicName> }> {
    this.located ??= this.findVm().catch((error: unknown) => {
      this.located = undefined;
      throw armFailure(action, error);
    });
    return this.located;
  }

  private async findVm(): Promise<{
    client: NetworkClient;
    vm: VmLocation;
    nics: Map<string, ArmNicName>;
  }> {
    const vm = await readVmLocation(this.options.imdsUrl, this.options.sourceTimeoutMs);
    const client = await createNetworkClient(vm.subscriptionId, this.options);
    const nics = new Map<string, ArmNicName>();
    const collect = async (pages: AsyncIterable<NetworkInterface>) => {
      for await (const nic of pages) {
        const mac = normalizeMac(nic.macAddress ?? "");
        if (mac && nic.id && sameIds([vm.vmId], nic.virtualMachine?.id))
          nics.set(mac, resourceName(nic.id, "networkInterfaces"));
      }
    };
    await collect(client.networkInterfaces.list(vm.resourceGroup));
    // A VM's NICs may live in another resource group of the subscription.
    if (nics.size === 0) await collect(client.networkInterfaces.listAll());
    if (nics.size === 0) {
      throw new UnavailableError(`Azure lists no NICs attached to VM ${vm.vmId}`, {
        hint: "grant the VM's identity Microsoft.Network/networkInterfaces/read (the Reader role) on the NIC's resource group",
      });
    }
    this.logger.info("found the VM's NICs in Azure", {
      vm: vm.vmId,
      nics: [...nics].map(([mac, nic]) => `${nic.name} (${mac})`),
    });
    return { client, vm, nics };
  }
}

/** The VM's subscription, resource group, id and region, from IMDS compute metadata. */
export async function readVmLocation(imdsUrl: string, timeoutMs: number): Promise<VmLocation> {
  const body = await httpGet(new URL(COMPUTE_PATH, imdsUrl).toString(), {
    headers: { Metadata: "true" },
    timeoutMs,
  });
  const compute = JSON.parse(body) as Record<string, unknown>;
  const field = (name: string) => {
    const value = compute[name];
    if (typeof value !== "string" || value === "")
      throw new UnavailableError(`IMDS compute metadata has no ${name}`, { hint: "is this an Azure VM?" });
    return value;
  };
  const subscriptionId = field("subscriptionId");
  const resourceGroup = field("resourceGroupName");
  const vmId =
    typeof compute.resourceId === "string" && compute.resourceId !== ""
      ? compute.resourceId
      : `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Compute/virtualMachines/${field("name")}`;
  return { subscriptionId, resourceGroup, vmId, location: field("location") };
}

/** Resource group and name from an ARM id `/subscriptions/s/resourceGroups/rg/providers/P/<type>/<name>`. */
export function resourceName(id: string, type: string): { resourceGroup: string; name: string } {
  const match = new RegExp(
    `/resourceGroups/([^/]+)/providers/Microsoft\\.Network/${type}/([^/]+)$`,
    "i",
  ).exec(id);
  if (!match) {
    throw new InvalidParameterError(`${JSON.stringify(id)} is not the id of a ${type} resource`, {
      hint: `give /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/${type}/<name>`,
    });
  }
  return { resourceGroup: match[1]!, name: match[2]! };
}

/** ARM ids compare without regard to case. */
function sameIds(ids: string[], id: string | undefined): boolean {
  return id !== undefined && ids.some((candidate) => candidate.toLowerCase() === id.toLowerCase());
}

function holds(
  configuration: NetworkInterfaceIPConfiguration,
  test: (ip: NonNullable<ReturnType<typeof parseIp>>) => boolean,
): boolean {
  const ip = parseIp(configuration.privateIPAddress ?? "");
  return ip !== undefined && test(ip);
}
