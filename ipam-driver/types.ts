/**
 * IpamDriver wire types, named as in moby's `libnetwork/ipams/remote/api`.
 */

export type CapabilitiesResponse = { RequiresMACAddress: boolean; RequiresRequestReplay: boolean };
export type AddressSpacesResponse = { LocalDefaultAddressSpace: string; GlobalDefaultAddressSpace: string };
export type RequestPoolResponse = { PoolID: string; Pool: string; Data: Record<string, string> };
export type RequestAddressResponse = { Address: string; Data: Record<string, string> };
export type EmptyResponse = Record<string, never>;

/** Docker's option key that marks the gateway request and the Data key that carries a gateway. */
export const REQUEST_ADDRESS_TYPE = "RequestAddressType";
export const GATEWAY_LABEL = "com.docker.network.gateway";
