/**
 * What differs between the two modes, behind one shape: how a network and an endpoint are wired on
 * the host, which gateway the container gets, and where its traffic crosses the host's firewall.
 */
import type { HostNetwork } from "../lib/host-net/host-network.js";
import type { DriverState, EndpointRecord, NetworkRecord } from "./driver-state.js";
import type { TrafficPath } from "./network-setup.js";

export type EndpointLinks = { hostEnd: string; containerEnd: string };

export type DataPath = {
  trafficPath(network: NetworkRecord): TrafficPath;
  /** Host changes of the network itself, beyond forwarding and the firewall rules; idempotent. */
  setupNetwork(host: HostNetwork, network: NetworkRecord, state: DriverState): Promise<void>;
  teardownNetwork(host: HostNetwork, network: NetworkRecord, state: DriverState): Promise<void>;
  /** Wires the endpoint; `containerEnd` is the interface Docker moves into the container. */
  setupEndpoint(
    host: HostNetwork,
    network: NetworkRecord,
    endpoint: EndpointRecord,
    state: DriverState,
  ): Promise<EndpointLinks>;
  /** Re-applies the host side of a live endpoint whose veth exists, after a plugin restart. */
  repairEndpoint(
    host: HostNetwork,
    network: NetworkRecord,
    endpoint: EndpointRecord,
    state: DriverState,
  ): Promise<void>;
  teardownEndpoint(
    host: HostNetwork,
    network: NetworkRecord,
    endpoint: EndpointRecord,
    state: DriverState,
  ): Promise<void>;
  /** The container's default gateway. */
  gateway(network: NetworkRecord): string;
};
