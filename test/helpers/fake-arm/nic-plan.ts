/**
 * Validating a NIC PUT as Azure does: the body's shape, its ipConfigurations (names, one primary), and
 * the resources they reference (subnet, public IPs, backend pools). Returns the NIC the PUT asks for;
 * nic-addresses.ts then gives each ipConfiguration its private address.
 */
import { subnetOf, type ArmContext } from "./context.js";
import { ArmError, invalidContent, invalidReference } from "./errors.js";
import { addressHolders, privateAddressesOnOtherNics, publicIpHolders } from "./in-play.js";
import { assignDynamicAddresses, assignStaticAddresses } from "./nic-addresses.js";
import { asObject, checkLocation, parseIpConfiguration, type RequestedIpConfig } from "./request-body.js";
import type { NicRecord } from "./store.js";
import type { FakeArmIpConfig, FakeArmNic } from "./types.js";

/** Azure allows at most this many IP configurations on one NIC. */
const MAX_IP_CONFIGURATIONS = 256;
/** Azure allows at most this many private IP addresses on one VM, across all its NICs. */
const MAX_PRIVATE_IPS_PER_VM = 256;

/** Validates a NIC PUT body as Azure does and returns the NIC it asks for. */
export function planNicUpdate(ctx: ArmContext, record: NicRecord, body: unknown): FakeArmNic {
  const current = record.nic;
  const requested = requestedConfigs(ctx, current, body);
  const taken = addressHolders(ctx, current.name.toLowerCase());
  const result = resolveReferences(ctx, current, requested);
  // Static addresses first (they are the caller's choice), then Dynamic ones fill the lowest gaps.
  assignStaticAddresses(ctx, current, requested, result, taken);
  assignDynamicAddresses(ctx, current, requested, result, taken);
  return {
    name: current.name,
    vmName: current.vmName,
    mac: current.mac,
    ...(current.subnet === undefined ? {} : { subnet: current.subnet }),
    ipConfigurations: result,
  };
}

/**
 * The body's ipConfigurations, refused unless there are 1..256 with distinct names and one primary,
 * and the VM stays within 256 private addresses across its NICs.
 */
function requestedConfigs(ctx: ArmContext, current: FakeArmNic, body: unknown): RequestedIpConfig[] {
  const id = ctx.ids.nic(current.name);
  const resource = asObject(body);
  if (!resource) throw invalidContent("the body is not a JSON object");
  checkLocation(resource.location, current.name, true, ctx.options);
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
  checkVmLimit(ctx, current, configs.length);
  const requested = configs.map((raw, index) => parseIpConfiguration(raw, index, id));
  checkNamesAndPrimary(id, requested);
  return requested;
}

/**
 * Refuses a PUT that would take the NIC's VM past 256 private addresses across its NICs. Azure's limit;
 * the error code and wording are the stand-in's (Azure's own are not documented).
 */
function checkVmLimit(ctx: ArmContext, current: FakeArmNic, count: number): void {
  const total = privateAddressesOnOtherNics(ctx, current) + count;
  if (total <= MAX_PRIVATE_IPS_PER_VM) return;
  throw new ArmError(
    400,
    "PrivateIPAddressesPerVirtualMachineExceedLimit",
    `Network interface ${ctx.ids.nic(current.name)} with ${count} IP configurations would give virtual machine ${ctx.ids.virtualMachine(current.vmName)} ${total} private IP addresses, which exceeds the limit of ${MAX_PRIVATE_IPS_PER_VM} private IP addresses per virtual machine.`,
  );
}

function checkNamesAndPrimary(id: string, requested: RequestedIpConfig[]): void {
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
}

/** The ipConfigurations with their references checked and made canonical; addresses still empty. */
function resolveReferences(
  ctx: ArmContext,
  current: FakeArmNic,
  requested: RequestedIpConfig[],
): FakeArmIpConfig[] {
  const publicHolders = publicIpHolders(ctx, current.name.toLowerCase());
  const claimedPublic = new Map<string, string>();
  const subnet = subnetOf(ctx, current);
  return requested.map((config) => {
    const configId = ctx.ids.ipConfig(current.name, config.name);
    if (!config.subnetId) {
      throw new ArmError(
        400,
        "InvalidRequestFormat",
        `IP configuration ${configId} must reference a subnet.`,
      );
    }
    if (config.subnetId.toLowerCase() !== subnet.id.toLowerCase()) {
      const known = [...ctx.subnets.values()].some(
        (s) => s.id.toLowerCase() === config.subnetId!.toLowerCase(),
      );
      if (!known) throw invalidReference(config.subnetId, configId);
      // Azure's message; its error code is not published, this one is the stand-in's.
      throw new ArmError(
        400,
        "IpConfigurationsOnNicInDifferentSubnets",
        `IPConfigurations on a Nic ${ctx.ids.nic(current.name)} cannot belong to different subnets. Subnets referenced: ${subnet.id}, ${config.subnetId}.`,
      );
    }
    const publicRef = config.publicIpId
      ? resolvePublicIp(ctx, config.publicIpId, configId, publicHolders, claimedPublic)
      : undefined;
    const poolRefs = config.backendPoolIds.map((ref) => {
      const canonical = ctx.store.pools.get(ref.toLowerCase());
      if (!canonical) throw invalidReference(ref, configId);
      return canonical;
    });
    return {
      name: config.name,
      privateIp: "",
      primary: config.primary === true,
      allocation: config.allocation,
      ...(publicRef ? { publicIpId: publicRef } : {}),
      backendPoolIds: poolRefs,
    };
  });
}

/**
 * The canonical id of the public IP `reference` names, refused when it does not exist, is busy, or is
 * (or is about to be) associated elsewhere. Records the claim in `claimed`.
 */
function resolvePublicIp(
  ctx: ArmContext,
  reference: string,
  configId: string,
  holders: Map<string, string>,
  claimed: Map<string, string>,
): string {
  const name = /\/publicIPAddresses\/([^/]+)$/i.exec(reference)?.[1];
  const record = name === undefined ? undefined : ctx.store.publicIps.get(name.toLowerCase());
  if (!record || reference.toLowerCase() !== ctx.ids.publicIp(record.name).toLowerCase()) {
    throw invalidReference(reference, configId);
  }
  const canonical = ctx.ids.publicIp(record.name);
  ctx.operations.refuseIfBusy(canonical);
  const holder = holders.get(canonical.toLowerCase()) ?? claimed.get(canonical.toLowerCase());
  if (holder !== undefined) {
    throw new ArmError(
      400,
      "PublicIPAddressInUse",
      `Resource ${configId} is referencing public IP address ${canonical} that is already allocated to resource ${holder}.`,
    );
  }
  claimed.set(canonical.toLowerCase(), configId);
  return canonical;
}
