/**
 * Links, routes and per-interface sysctls through iproute2 and /proc/sys. Creation is idempotent where
 * the kernel allows (`replace`), deletion tolerates absence, so every caller can safely run twice.
 */
import { readFile, writeFile } from "node:fs/promises";
import { UnavailableError } from "../errors.js";
import { checkInterfaceName } from "./names.js";
import { runTool } from "./run-tool.js";

/** Creates a veth pair with both ends at `mtu`; the host end stays here, the peer is for Docker to move. */
export async function createVethPair(hostEnd: string, peerEnd: string, mtu: number): Promise<void> {
  await runTool("ip", [
    "link",
    "add",
    checkInterfaceName(hostEnd),
    "mtu",
    String(mtu),
    "type",
    "veth",
    "peer",
    "name",
    checkInterfaceName(peerEnd),
    "mtu",
    String(mtu),
  ]);
}

export async function setLinkUp(name: string): Promise<void> {
  await runTool("ip", ["link", "set", "dev", checkInterfaceName(name), "up"]);
}

/** Deletes a link (a veth's peer goes with it); a missing link is not an error. */
export async function deleteLink(name: string): Promise<void> {
  if (!(await linkExists(name))) return;
  await runTool("ip", ["link", "del", "dev", checkInterfaceName(name)]);
}

export async function linkExists(name: string): Promise<boolean> {
  try {
    await runTool("ip", ["-j", "link", "show", "dev", checkInterfaceName(name)]);
    return true;
  } catch (error) {
    if (error instanceof UnavailableError && /does not exist/.test(error.message)) return false;
    throw error;
  }
}

/** Routes one address to a link, replacing any earlier route for it. */
export async function replaceHostRoute(address: string, device: string): Promise<void> {
  await runTool("ip", [
    "route",
    "replace",
    `${address}/32`,
    "dev",
    checkInterfaceName(device),
    "scope",
    "link",
  ]);
}

/** Removes the route for one address on a link, if it is there. */
export async function deleteHostRoute(address: string, device: string): Promise<void> {
  await runTool("ip", ["route", "del", `${address}/32`, "dev", checkInterfaceName(device)]).catch(
    (error: Error) => {
      if (!/No such process|Cannot find device/.test(error.message)) throw error;
    },
  );
}

/** Reads `net/ipv4/...` style keys from /proc/sys. */
export async function readSysctl(key: string): Promise<string> {
  return (await readFile(sysctlPath(key), "utf8")).trim();
}

export async function writeSysctl(key: string, value: string): Promise<void> {
  try {
    await writeFile(sysctlPath(key), value);
  } catch (error) {
    throw new UnavailableError(`cannot set ${key}=${value}: ${(error as Error).message}`, { cause: error });
  }
}

function sysctlPath(key: string): string {
  if (!/^net\/ipv[46]\/[a-z0-9_/.-]+$/.test(key) || key.includes(".."))
    throw new UnavailableError(`refusing sysctl ${key}`);
  return `/proc/sys/${key}`;
}
