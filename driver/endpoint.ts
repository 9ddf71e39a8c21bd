/**
 * CreateEndpoint, DeleteEndpoint and EndpointOperInfo: an endpoint is a record (its address, MAC and
 * Azure links) until Join wires it; creating one checks where its address came from, and removing one
 * undoes whatever Join left and hands its Azure links to the linker to undo.
 */
import { ConflictError, InvalidParameterError } from "../lib/errors.js";
import { parseIp, parsePrefix, prefixContains } from "../lib/ip.js";
import { shortId } from "../lib/short-id.js";
import type { AddressBook } from "./address-book.js";
import type { DriverContext } from "./context.js";
import type { DriverState, EndpointRecord, NetworkRecord } from "./driver-state.js";
import { containerMac, hostVethName } from "./names.js";
import type { CreateEndpointRequest } from "./endpoint-options.js";
import { refreshSubnetNatRules } from "./network-setup.js";
import { forgetEndpoint, knownEndpoint, knownNetwork } from "./records.js";
import type { CreateEndpointResponse, EndpointOperInfoResponse } from "./types.js";

/** Records the endpoint, or answers as before when it exists with the same address. */
export async function createEndpoint(
  ctx: DriverContext,
  request: CreateEndpointRequest,
): Promise<CreateEndpointResponse> {
  const { networkId, endpointId, address } = request;
  const network = knownNetwork(ctx.state.current, networkId);
  const links = request.links(network.azureLinks);
  if (links && !ctx.linker) {
    throw new InvalidParameterError("public IPs and load balancers are not available in this plugin", {
      hint: "run the plugin as a service with access to Azure Resource Manager",
    });
  }
  const prefix = parsePrefix(network.subnet)!;
  const ip = parseIp(address);
  if (!ip || !prefixContains(prefix, ip)) {
    throw new InvalidParameterError(
      `endpoint address ${address} is not in the network's subnet ${network.subnet}`,
      {
        hint: "create azure networks with --ipam-driver azure",
      },
    );
  }
  const existing = ctx.state.current.endpoints[endpointId];
  if (existing && existing.address !== address) {
    throw new ConflictError(
      `endpoint ${shortId(endpointId)} already exists with address ${existing.address}`,
    );
  }
  checkAddressSource(ctx.addresses, network, endpointId, address);
  if (!existing) checkVethName(ctx.state.current, network, endpointId);
  const macAddress = existing?.macAddress ?? request.macAddress ?? containerMac(address);
  if (!existing) {
    const now = ctx.now().toISOString();
    await recordEndpoint(ctx, {
      id: endpointId,
      networkId,
      address,
      prefixLength: request.prefixLength ?? prefix.length,
      macAddress,
      hostInterface: undefined,
      ...(links ? { azure: { ...links, state: "linking", attempts: 0, updatedAt: now } } : {}),
      createdAt: now,
    });
    // Azure can take minutes; the container starts meanwhile and the link follows.
    if (links) void ctx.linker?.link(endpointId);
  }
  // Only what Docker left empty may be filled in; echoing its own values back fails the endpoint.
  return request.macAddress ? {} : { Interface: { MacAddress: macAddress } };
}

/** Removes the endpoint with whatever Join left on the host; an unknown endpoint is fine. */
export async function deleteEndpoint(
  ctx: DriverContext,
  networkId: string,
  endpointId: string,
): Promise<void> {
  const state = ctx.state.current;
  const endpoint = state.endpoints[endpointId];
  const network = state.networks[networkId];
  if (!endpoint) return;
  if (network) await ctx.dataPath(network.mode).teardownEndpoint(ctx.host, network, endpoint, state);
  await ctx.state.update((draft) => forgetEndpoint(draft, endpoint, network));
  if (endpoint.azure?.publicIpId && network)
    await refreshSubnetNatRules(ctx.host, ctx.state.current, network);
  if (endpoint.azure) void ctx.linker?.unlink(endpointId);
}

/** What `docker network inspect` shows of the endpoint, Azure links included. */
export function endpointOperInfo(
  ctx: DriverContext,
  networkId: string,
  endpointId: string,
): EndpointOperInfoResponse {
  const network = knownNetwork(ctx.state.current, networkId);
  const endpoint = knownEndpoint(ctx.state.current, endpointId);
  const azure = endpoint.azure;
  return {
    Value: {
      "azure.mode": network.mode,
      "azure.nic": network.interfaceName,
      "azure.address": endpoint.address,
      "azure.hostInterface": endpoint.hostInterface ?? "",
      ...(azure
        ? {
            "azure.link": azure.state + (azure.error ? `: ${azure.error}` : ""),
            "azure.publicIp": azure.publicIpAddress ?? "",
            "azure.lbBackendPools": azure.backendPools.join(","),
          }
        : {}),
    },
  };
}

/**
 * Records the owner in the IPAM driver's reservation, then the endpoint in ours: two writes, in this
 * order. A crash in between leaves a reservation naming an endpoint without a record, which is
 * harmless: a CreateEndpoint sent again with that id passes, and dockerd releases the address of the
 * endpoint it could not create (reconciliation does, if dockerd does not). The other order could leave
 * a recorded endpoint whose address the IPAM driver shows as held by no one, which a second endpoint
 * would then be given. If our write fails, the owner is taken back out unless it was there before.
 */
async function recordEndpoint(ctx: DriverContext, endpoint: EndpointRecord): Promise<void> {
  const owner = ctx.addresses.reservation(endpoint.address)?.endpointId;
  await ctx.addresses.recordEndpointOwner(endpoint.address, endpoint.id);
  try {
    await ctx.state.update((draft) => {
      draft.endpoints[endpoint.id] = endpoint;
    });
  } catch (error) {
    if (owner === undefined)
      await ctx.addresses.forgetEndpointOwner(endpoint.address, endpoint.id).catch(() => undefined);
    throw error;
  }
}

/**
 * An endpoint's address must be one the IPAM driver handed out on the network's NIC, and not one
 * another endpoint holds: anything else (Docker's default IPAM, the VM's own address, an address of
 * another NIC) would take over someone else's traffic or be dropped by Azure.
 */
function checkAddressSource(
  addresses: AddressBook,
  network: NetworkRecord,
  endpointId: string,
  address: string,
): void {
  const reservation = addresses.reservation(address);
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
 * Interface names keep part of the endpoint id; two endpoints of one network that share it would share
 * one veth, and the second Join would delete the first container's link.
 */
function checkVethName(driver: Readonly<DriverState>, network: NetworkRecord, endpointId: string): void {
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
