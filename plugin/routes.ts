/**
 * The route table: which method answers each `POST /<Interface>.<Method>` that dockerd sends.
 */
import type { NetworkDriver } from "../driver/network-driver.js";
import type { IpamDriver } from "../ipam-driver/ipam-driver.js";
import type { RequestBody } from "./request-fields.js";

export type Handler = (body: RequestBody) => unknown;

export const IMPLEMENTS = ["NetworkDriver", "IpamDriver"];

const NETWORK_DRIVER_CALLS = [
  "CreateNetwork",
  "DeleteNetwork",
  "AllocateNetwork",
  "FreeNetwork",
  "CreateEndpoint",
  "EndpointOperInfo",
  "DeleteEndpoint",
  "Join",
  "Leave",
  "ProgramExternalConnectivity",
  "RevokeExternalConnectivity",
  "DiscoverNew",
  "DiscoverDelete",
];

export function routeTable(ipam: IpamDriver, network: NetworkDriver): Map<string, Handler> {
  const routes: [string, Handler][] = [
    ["/Plugin.Activate", () => ({ Implements: IMPLEMENTS })],
    ["/IpamDriver.GetCapabilities", () => ipam.getCapabilities()],
    ["/IpamDriver.GetDefaultAddressSpaces", () => ipam.getDefaultAddressSpaces()],
    ["/IpamDriver.RequestPool", (body) => ipam.requestPool(body)],
    ["/IpamDriver.ReleasePool", (body) => ipam.releasePool(body)],
    ["/IpamDriver.RequestAddress", (body) => ipam.requestAddress(body)],
    ["/IpamDriver.ReleaseAddress", (body) => ipam.releaseAddress(body)],
    ["/NetworkDriver.GetCapabilities", () => network.getCapabilities()],
    ...NETWORK_DRIVER_CALLS.map((call): [string, Handler] => [
      `/NetworkDriver.${call}`,
      () => network.notYetImplemented(`NetworkDriver.${call}`),
    ]),
  ];
  return new Map(routes);
}
