/**
 * Reading and changing the driver's records beyond plain property access: lookups that fail with the
 * message the user sees when a record is missing, and the removal of an endpoint, which must keep its
 * Azure links recorded until they are undone.
 */
import { NotFoundError } from "../lib/errors.js";
import { shortId } from "../lib/short-id.js";
import type { DriverState, EndpointRecord, NetworkRecord } from "./driver-state.js";

/** The record of network `id`, for calls that cannot go on without it. */
export function knownNetwork(state: Readonly<DriverState>, id: string): NetworkRecord {
  const network = state.networks[id];
  if (!network) {
    throw new NotFoundError(`network ${shortId(id)} is not known to the azure plugin`, {
      hint: "its record was lost; remove the network and create it again",
    });
  }
  return network;
}

/** The record of endpoint `id`, for calls that cannot go on without it. */
export function knownEndpoint(state: Readonly<DriverState>, id: string): EndpointRecord {
  const endpoint = state.endpoints[id];
  if (!endpoint)
    throw new NotFoundError(`endpoint ${shortId(id)} is not known to the azure plugin`, {
      hint: "restart the container",
    });
  return endpoint;
}

/** Drops an endpoint's record; its Azure links stay recorded until the linker has undone them. */
export function forgetEndpoint(
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
