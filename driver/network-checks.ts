/**
 * What a new network must not collide with among the networks already there: each check names the
 * other network and how to avoid it. Used by CreateNetwork before any host change.
 */
import { ConflictError, InvalidParameterError } from "../lib/errors.js";
import { shortId } from "../lib/short-id.js";
import type { NetworkRecord } from "./driver-state.js";
import { vethNetworkPart } from "./names.js";

/** One NIC serves one mode: bridge mode moves the NIC's addresses, which transparent mode relies on. */
export function checkNicModes(networks: NetworkRecord[], network: NetworkRecord): void {
  const other = networks.find(
    (n) => n.id !== network.id && n.interfaceName === network.interfaceName && n.mode !== network.mode,
  );
  if (other) {
    throw new ConflictError(
      `${network.interfaceName} already carries ${other.mode} network ${shortId(other.id)}`,
      {
        hint: `a NIC serves one mode at a time; use -o mode=${other.mode} or remove that network first`,
      },
    );
  }
  if (network.mode === "bridge" && network.internal) {
    throw new InvalidParameterError("--internal networks need transparent mode", {
      hint: "bridged containers reach the NIC at layer 2, past the host's firewall; drop -o mode=bridge",
    });
  }
}

/**
 * Networks on one NIC subnet share outbound NAT: each nat chain is entered for the whole subnet's
 * traffic, so the first network's `-o vnet-ranges` would decide for all of them.
 */
export function checkSharedNat(networks: NetworkRecord[], network: NetworkRecord): void {
  if (network.internal) return;
  const other = networks.find(
    (n) =>
      n.id !== network.id &&
      !n.internal &&
      n.macAddress === network.macAddress &&
      n.subnet === network.subnet &&
      n.vnetRanges.join(",") !== network.vnetRanges.join(","),
  );
  if (other) {
    throw new ConflictError(
      `network ${shortId(other.id)} on ${network.interfaceName} (${network.subnet}) has -o vnet-ranges=${other.vnetRanges.join(",")}`,
      {
        hint: "networks on one NIC subnet share outbound NAT; give this one the same -o vnet-ranges, or use another NIC",
      },
    );
  }
}

/** Veth names keep part of the network id; two networks that share it would share veths and rules. */
export function checkVethPrefix(networks: NetworkRecord[], network: NetworkRecord): void {
  const clash = networks.find(
    (n) => n.id !== network.id && vethNetworkPart(n.id) === vethNetworkPart(network.id),
  );
  if (clash) {
    throw new ConflictError(
      `network ${shortId(network.id)} shares its interface prefix with network ${shortId(clash.id)}`,
      {
        hint: "remove this network and create it again (it will get another id)",
      },
    );
  }
}
