/**
 * NetworkDriver wire types, named as in moby's `libnetwork/drivers/remote/api`.
 */

export type CapabilitiesResponse = { Scope: "local"; ConnectivityScope: "global" };

export type EndpointInterface = { Address?: string; AddressIPv6?: string; MacAddress?: string };

export type CreateEndpointResponse = { Interface?: EndpointInterface };

export type StaticRoute = { Destination: string; RouteType: 0 | 1; NextHop?: string };

export type JoinResponse = {
  InterfaceName: { SrcName: string; DstPrefix: string };
  Gateway: string;
  StaticRoutes: StaticRoute[];
  DisableGatewayService: boolean;
};

export type EndpointOperInfoResponse = { Value: Record<string, string> };

/** Docker's option keys in CreateNetwork's `Options`. */
export const GENERIC_OPTIONS = "com.docker.network.generic";
export const INTERNAL_OPTION = "com.docker.network.internal";
export const ENABLE_IPV6_OPTION = "com.docker.network.enable_ipv6";
