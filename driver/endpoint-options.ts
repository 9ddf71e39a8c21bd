/**
 * Parsing and checking CreateEndpoint once at the edge: the ids, the interface Docker describes (its
 * address from the IPAM driver, and a MAC if Docker chose one), and the Azure link options.
 */
import { InvalidParameterError } from "../lib/errors.js";
import { parseIp } from "../lib/ip.js";
import { normalizeMac } from "../lib/mac.js";
import type { RequestBody } from "../lib/request-fields.js";
import { parseEndpointLinks } from "./azure-link-options.js";
import type { AzureLinkRequest } from "./driver-state.js";
import { dockerId, objectField } from "./network-options.js";

/** A CreateEndpoint after parsing at the edge. */
export type CreateEndpointRequest = {
  networkId: string;
  endpointId: string;
  /** The address the IPAM driver handed out, and the prefix length Docker gave with it. */
  address: string;
  prefixLength: number | undefined;
  /** The container interface's MAC, when Docker chose it. */
  macAddress: string | undefined;
  /**
   * The Azure links the endpoint asks for over its network's `-o` defaults; parsed once the network is
   * found, so an unknown network is reported before a bad option.
   */
  links(defaults: AzureLinkRequest | undefined): AzureLinkRequest | undefined;
};

export function parseCreateEndpoint(body: RequestBody): CreateEndpointRequest {
  const networkId = dockerId(body, "NetworkID");
  const endpointId = dockerId(body, "EndpointID");
  const { address, prefixLength } = interfaceAddress(body);
  const macAddress = interfaceMac(body);
  return {
    networkId,
    endpointId,
    address,
    prefixLength,
    macAddress,
    links: (defaults) => parseEndpointLinks(objectField(body, "Options"), defaults),
  };
}

function interfaceMac(body: RequestBody): string | undefined {
  const iface = body.Interface as RequestBody | undefined;
  const text = typeof iface === "object" && iface !== null ? iface.MacAddress : undefined;
  if (text === undefined || text === "") return undefined;
  const mac = typeof text === "string" ? normalizeMac(text) : undefined;
  if (!mac)
    throw new InvalidParameterError(`"Interface.MacAddress" ${JSON.stringify(text)} is not a MAC address`);
  return mac;
}

function interfaceAddress(body: RequestBody): { address: string; prefixLength: number | undefined } {
  const iface = body.Interface;
  const text = typeof iface === "object" && iface !== null ? (iface as RequestBody).Address : undefined;
  if (typeof text !== "string" || text === "") {
    throw new InvalidParameterError("the endpoint has no IPv4 address", {
      hint: "create azure networks with --ipam-driver azure",
    });
  }
  const [address, length] = text.split("/");
  const prefixLength = length === undefined ? undefined : Number(length);
  if (!parseIp(address!) || (prefixLength !== undefined && !(prefixLength >= 0 && prefixLength <= 32))) {
    throw new InvalidParameterError(
      `"Interface.Address" ${JSON.stringify(text.slice(0, 60))} is not an address/length`,
    );
  }
  return { address: address!, prefixLength };
}
