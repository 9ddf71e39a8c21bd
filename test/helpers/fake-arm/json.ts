/**
 * The resources as ARM writes them in its answers (api-version 2026-01-01): network interfaces,
 * public IP addresses and load balancer backend pools.
 */
import { subnetOf, type ArmContext } from "./context.js";
import { newEtag, type NicRecord, type PublicIpRecord } from "./store.js";
import type { FakeArmIpConfig, FakeArmNic } from "./types.js";

export function nicJson(
  ctx: ArmContext,
  nic: FakeArmNic,
  record: NicRecord,
  provisioningState: string,
  etag = record.etag,
): unknown {
  return {
    name: nic.name,
    id: ctx.ids.nic(nic.name),
    etag,
    type: "Microsoft.Network/networkInterfaces",
    location: ctx.options.location,
    tags: {},
    properties: {
      provisioningState,
      resourceGuid: record.resourceGuid,
      ipConfigurations: nic.ipConfigurations.map((config) => ipConfigJson(ctx, nic, config, etag)),
      dnsSettings: { dnsServers: [], appliedDnsServers: [] },
      macAddress: nic.mac.replace(/:/g, "-").toUpperCase(),
      primary: ctx.store.isPrimaryNic(nic),
      enableAcceleratedNetworking: false,
      enableIPForwarding: false,
      hostedWorkloads: [],
      tapConfigurations: [],
      virtualMachine: { id: ctx.ids.virtualMachine(nic.vmName) },
      nicType: "Standard",
    },
  };
}

function ipConfigJson(ctx: ArmContext, nic: FakeArmNic, config: FakeArmIpConfig, etag: string): unknown {
  return {
    name: config.name,
    id: ctx.ids.ipConfig(nic.name, config.name),
    etag,
    type: "Microsoft.Network/networkInterfaces/ipConfigurations",
    properties: {
      provisioningState: "Succeeded",
      privateIPAddress: config.privateIp,
      privateIPAllocationMethod: config.allocation ?? "Dynamic",
      privateIPAddressVersion: "IPv4",
      subnet: { id: subnetOf(ctx, nic).id },
      primary: config.primary,
      ...(config.publicIpId ? { publicIPAddress: { id: config.publicIpId } } : {}),
      ...(config.backendPoolIds.length > 0
        ? { loadBalancerBackendAddressPools: config.backendPoolIds.map((poolRef) => ({ id: poolRef })) }
        : {}),
    },
  };
}

/** `showAddress` false: Azure shows the address only once the creation has succeeded. */
export function publicIpJson(
  ctx: ArmContext,
  record: PublicIpRecord,
  provisioningState: string,
  showAddress = true,
): unknown {
  const ipConfiguration = ctx.store.committedIpConfigurationOf(record.name);
  return {
    name: record.name,
    id: ctx.ids.publicIp(record.name),
    etag: record.etag,
    location: ctx.options.location,
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

/** A backend pool with its members from the committed NICs; pools have no state, so a fresh etag each time. */
export function backendPoolJson(ctx: ArmContext, id: string): unknown {
  return {
    name: id.slice(id.lastIndexOf("/") + 1),
    id,
    etag: newEtag(),
    type: "Microsoft.Network/loadBalancers/backendAddressPools",
    properties: {
      provisioningState: "Succeeded",
      backendIPConfigurations: ctx.store.poolMembers(id).map((member) => ({ id: member })),
    },
  };
}
