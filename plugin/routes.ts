/**
 * The route table: which method answers each `POST /<Interface>.<Method>` that dockerd sends.
 */
import type { NetworkDriver } from "../driver/network-driver.js";
import type { IpamDriver } from "../ipam-driver/ipam-driver.js";
import type { RequestBody } from "../lib/request-fields.js";
import type { Undo } from "./server.js";

export type Handler = (body: RequestBody) => unknown;

export const IMPLEMENTS = ["NetworkDriver", "IpamDriver"];

export function routeTable(ipam: IpamDriver, network: NetworkDriver): Map<string, Handler> {
  const empty = () => ({});
  const routes: [string, Handler][] = [
    ["/Plugin.Activate", () => ({ Implements: IMPLEMENTS })],
    ["/IpamDriver.GetCapabilities", () => ipam.getCapabilities()],
    ["/IpamDriver.GetDefaultAddressSpaces", () => ipam.getDefaultAddressSpaces()],
    ["/IpamDriver.RequestPool", (body) => ipam.requestPool(body)],
    ["/IpamDriver.ReleasePool", (body) => ipam.releasePool(body)],
    ["/IpamDriver.RequestAddress", (body) => ipam.requestAddress(body)],
    ["/IpamDriver.ReleaseAddress", (body) => ipam.releaseAddress(body)],
    ["/NetworkDriver.GetCapabilities", () => network.getCapabilities()],
    ["/NetworkDriver.CreateNetwork", (body) => network.createNetwork(body)],
    ["/NetworkDriver.DeleteNetwork", (body) => network.deleteNetwork(body)],
    ["/NetworkDriver.CreateEndpoint", (body) => network.createEndpoint(body)],
    ["/NetworkDriver.EndpointOperInfo", (body) => network.endpointOperInfo(body)],
    ["/NetworkDriver.DeleteEndpoint", (body) => network.deleteEndpoint(body)],
    ["/NetworkDriver.Join", (body) => network.join(body)],
    ["/NetworkDriver.Leave", (body) => network.leave(body)],
    // The container has its own VNet address: there is nothing to publish or forward.
    ["/NetworkDriver.ProgramExternalConnectivity", empty],
    ["/NetworkDriver.RevokeExternalConnectivity", empty],
    // Swarm-only calls; a local-scope driver answers them as no-ops.
    ["/NetworkDriver.AllocateNetwork", () => ({ Options: {} })],
    ["/NetworkDriver.FreeNetwork", empty],
    ["/NetworkDriver.DiscoverNew", empty],
    ["/NetworkDriver.DiscoverDelete", empty],
  ];
  return new Map(routes);
}

/**
 * What to take back when dockerd gave up on a request before its answer: an address reserved for a
 * container start that dockerd already reported as failed would otherwise stay held until
 * reconciliation.
 */
export function undoTable(ipam: IpamDriver): Map<string, Undo> {
  return new Map<string, Undo>([
    [
      "/IpamDriver.RequestAddress",
      (body, answer) =>
        ipam.releaseAddress({
          PoolID: body.PoolID,
          Address: String((answer as RequestBody).Address).split("/")[0],
        }),
    ],
  ]);
}
