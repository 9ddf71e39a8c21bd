/**
 * Network interfaces (kernel links: veth pairs, bridges, the NICs), their addresses and routes, and
 * per-interface sysctls, through iproute2 and /proc/sys. "Link" here is always the kernel's word for an
 * interface, never an Azure link. Creation is idempotent where the kernel allows (`replace`), deletion
 * tolerates absence, so every caller can safely run twice.
 */
import { readFile, writeFile } from "node:fs/promises";
import { InternalError, UnavailableError } from "../errors.js";
import { checkInterfaceName } from "./names.js";
import { OWN_ROUTE_PROTOCOL } from "./policy-routing.js";
import { ignoreMissing, isMissing, runTool } from "./run-tool.js";

/**
 * Creates a veth pair with both ends at `mtu`; the host end stays here, the peer is for Docker to move.
 * `peerMac` fixes the container's MAC, so the data path knows it before Docker configures anything.
 */
export async function createVethPair(
  hostEnd: string,
  peerEnd: string,
  mtu: number,
  peerMac?: string,
): Promise<void> {
  const peer = ["peer", "name", checkInterfaceName(peerEnd), "mtu", String(mtu)];
  if (peerMac !== undefined) peer.push("address", checkMac(peerMac));
  await runTool("ip", [
    "link",
    "add",
    checkInterfaceName(hostEnd),
    "mtu",
    String(mtu),
    "type",
    "veth",
    ...peer,
  ]);
}

/** Brings a kernel link up (idempotent). */
export async function setLinkUp(name: string): Promise<void> {
  await runTool("ip", ["link", "set", "dev", checkInterfaceName(name), "up"]);
}

/** Deletes a kernel link (deleting one end of a veth pair deletes both); a missing one is not an error. */
export async function deleteLink(name: string): Promise<void> {
  if (!(await linkExists(name))) return;
  await runTool("ip", ["link", "del", "dev", checkInterfaceName(name)]);
}

/** Whether the plugin's namespace has a kernel link of that name. */
export async function linkExists(name: string): Promise<boolean> {
  try {
    await runTool("ip", ["-j", "link", "show", "dev", checkInterfaceName(name)]);
    return true;
  } catch (error) {
    if (isMissing(error, "device")) return false;
    throw error;
  }
}

/**
 * Routes one address to a link, replacing any earlier route for it, tagged as ours so that restore
 * finds the ones no record explains and a bridge's teardown does not hand them to its NIC.
 */
export async function replaceHostRoute(address: string, device: string): Promise<void> {
  await runTool("ip", [
    "route",
    "replace",
    `${address}/32`,
    "dev",
    checkInterfaceName(device),
    "scope",
    "link",
    "proto",
    OWN_ROUTE_PROTOCOL,
  ]);
}

/** The addresses that replaceHostRoute routed to `device`. */
export async function listOwnHostRoutes(device: string): Promise<string[]> {
  const { stdout } = await runTool("ip", [
    "-j",
    "-4",
    "route",
    "show",
    "dev",
    checkInterfaceName(device),
    "proto",
    OWN_ROUTE_PROTOCOL,
  ]);
  return (JSON.parse(stdout || "[]") as Ipv4Route[]).map((route) => route.dst.replace(/\/32$/, ""));
}

/** Removes the route for one address on a link, if it is there. */
export async function deleteHostRoute(address: string, device: string): Promise<void> {
  await runTool("ip", ["route", "del", `${address}/32`, "dev", checkInterfaceName(device)]).catch(
    ignoreMissing("route", "device"),
  );
}

/** Reads `net/ipv4/...` style keys from /proc/sys. */
export async function readSysctl(key: string): Promise<string> {
  return (await readFile(sysctlPath(key), "utf8")).trim();
}

/** Writes a `net/ipv4/...` style key under /proc/sys; fails with the key and the kernel's reason. */
export async function writeSysctl(key: string, value: string): Promise<void> {
  const path = sysctlPath(key);
  try {
    await writeFile(path, value);
  } catch (error) {
    throw new UnavailableError(`cannot set ${key}=${value}: ${(error as Error).message}`, { cause: error });
  }
}

function sysctlPath(key: string): string {
  if (!/^net\/ipv[46]\/[a-z0-9_/.-]+$/.test(key) || key.includes(".."))
    throw new InternalError(`refusing sysctl ${key}`);
  return `/proc/sys/${key}`;
}

/** An IPv4 address as `ip -j addr` reports it, with what is needed to put it back exactly. */
export type Ipv4Address = {
  local: string;
  prefixlen: number;
  broadcast?: string;
  scope?: string;
  valid_life_time?: number;
  preferred_life_time?: number;
};

/** A route as `ip -j route show table all dev X` reports it (without `dev`). */
export type Ipv4Route = {
  dst: string;
  gateway?: string;
  protocol?: string;
  scope?: string;
  prefsrc?: string;
  metric?: number;
  table?: string;
  type?: string;
  flags?: string[];
};

const FOREVER = 4294967295;

/** Creates a bridge with the given MAC and MTU, up, forwarding at once (no STP listening delay). */
export async function createBridge(name: string, macAddress: string, mtu: number): Promise<void> {
  await runTool("ip", [
    "link",
    "add",
    "name",
    checkInterfaceName(name),
    "type",
    "bridge",
    "forward_delay",
    "0",
  ]);
  await runTool("ip", [
    "link",
    "set",
    "dev",
    name,
    "address",
    checkMac(macAddress),
    "mtu",
    String(mtu),
    "up",
  ]);
}

/** Makes `name` a port of `bridge`, or of no bridge when `bridge` is undefined. */
export async function setLinkMaster(name: string, bridge: string | undefined): Promise<void> {
  const target = bridge === undefined ? ["nomaster"] : ["master", checkInterfaceName(bridge)];
  await runTool("ip", ["link", "set", "dev", checkInterfaceName(name), ...target]);
}

/** The master of a link, if it is a bridge port. */
export async function linkMaster(name: string): Promise<string | undefined> {
  const { stdout } = await runTool("ip", ["-j", "link", "show", "dev", checkInterfaceName(name)]);
  return (JSON.parse(stdout) as { master?: string }[])[0]?.master;
}

/** The IPv4 addresses of a device, with what addIpv4Address needs to put each back exactly. */
export async function listIpv4Addresses(device: string): Promise<Ipv4Address[]> {
  const { stdout } = await runTool("ip", ["-j", "-4", "addr", "show", "dev", checkInterfaceName(device)]);
  return (JSON.parse(stdout || "[]") as { addr_info?: Ipv4Address[] }[]).flatMap(
    (link) => link.addr_info ?? [],
  );
}

/** Adds an address with its broadcast, scope and lifetimes; an address already there is fine. */
export async function addIpv4Address(device: string, address: Ipv4Address): Promise<void> {
  const args = [
    "addr",
    "replace",
    `${address.local}/${address.prefixlen}`,
    "dev",
    checkInterfaceName(device),
  ];
  if (address.broadcast) args.push("broadcast", address.broadcast);
  if (address.scope) args.push("scope", address.scope);
  if (address.valid_life_time !== undefined && address.valid_life_time !== FOREVER) {
    args.push(
      "valid_lft",
      String(address.valid_life_time),
      "preferred_lft",
      String(address.preferred_life_time ?? 0),
    );
  }
  await runTool("ip", args);
}

/** Removes an address from a device; an address or device already gone is fine. */
export async function deleteIpv4Address(device: string, address: Ipv4Address): Promise<void> {
  await runTool("ip", [
    "addr",
    "del",
    `${address.local}/${address.prefixlen}`,
    "dev",
    checkInterfaceName(device),
  ]).catch(ignoreMissing("address", "device"));
}

/**
 * The routes through a device that an administrator or DHCP made: not the kernel's own (connected
 * and local routes come back with the address), nor ours (they go with their bridge).
 */
export async function listManagedRoutes(device: string): Promise<Ipv4Route[]> {
  const { stdout } = await runTool("ip", [
    "-j",
    "-4",
    "route",
    "show",
    "table",
    "all",
    "dev",
    checkInterfaceName(device),
  ]);
  return (JSON.parse(stdout || "[]") as Ipv4Route[]).filter(
    (route) =>
      route.protocol !== "kernel" && route.protocol !== OWN_ROUTE_PROTOCOL && route.table !== "local",
  );
}

/** Adds (or moves) a route to `device`, keeping its gateway, protocol, metric, source, scope and table. */
export async function replaceRoute(route: Ipv4Route, device: string): Promise<void> {
  const args = ["route", "replace"];
  if (route.type && route.type !== "unicast") args.push(route.type);
  args.push(route.dst);
  if (route.gateway) args.push("via", route.gateway);
  args.push("dev", checkInterfaceName(device));
  if (route.protocol) args.push("proto", route.protocol);
  if (route.metric !== undefined) args.push("metric", String(route.metric));
  if (route.prefsrc) args.push("src", route.prefsrc);
  if (route.scope && route.scope !== "global") args.push("scope", route.scope);
  if (route.table && route.table !== "main") args.push("table", route.table);
  if (route.flags?.includes("onlink")) args.push("onlink");
  await runTool("ip", args);
}

function checkMac(mac: string): string {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac))
    throw new InternalError(`refusing MAC address ${JSON.stringify(mac)}`);
  return mac;
}

/** Names of all links in the plugin's namespace, for finding leftovers by their prefix. */
export async function listLinkNames(): Promise<string[]> {
  const { stdout } = await runTool("ip", ["-j", "link", "show"]);
  return (JSON.parse(stdout || "[]") as { ifname?: string }[]).flatMap((link) =>
    link.ifname ? [link.ifname] : [],
  );
}

/** The kernel's id of this boot: state from another boot describes links and rules that no longer exist. */
export async function readBootId(): Promise<string> {
  return (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim();
}
