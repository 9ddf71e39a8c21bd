/**
 * What the azure IPAM driver tells dockerd that the network driver later reads back from CreateNetwork's
 * `IPv4Data`: both drivers must agree on these values, and neither owns the other's wire format.
 */

/** The address spaces the IPAM driver serves; a network whose IPv4Data names another is not ours. */
export const LOCAL_ADDRESS_SPACE = "azure-local";
export const GLOBAL_ADDRESS_SPACE = "azure-global";

/** IPv4 answer to a RequestPool without `--subnet`; see docs/ipam.md, "Networks created without --subnet". */
export const ANY_IPV4_POOL = "0.0.0.0/0";
