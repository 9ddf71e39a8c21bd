/**
 * The one door to the kernel's networking. Everything the plugin reads from or changes in links,
 * addresses, routes and firewall rules goes through a HostNetwork, so the rest of the code reads as
 * intent and tests can substitute a fake.
 */
import type { LocalInterface } from "../../ipam-driver/inventory.js";
import { runTool } from "./run-tool.js";

export type HostNetwork = {
  /** The interfaces of the plugin's network namespace, with MAC, MTU and whether the default route uses them. */
  listInterfaces(): Promise<LocalInterface[]>;
};

type IpLink = { ifname?: string; address?: string; mtu?: number; link_type?: string };
type IpRoute = { dev?: string };

/** The real host, through iproute2's JSON output. */
export function createHostNetwork(): HostNetwork {
  return {
    async listInterfaces() {
      const [links, routes] = await Promise.all([
        runTool("ip", ["-j", "link", "show"]),
        runTool("ip", ["-j", "-4", "route", "show", "default"]),
      ]);
      const defaultDevices = new Set(
        (JSON.parse(routes.stdout || "[]") as IpRoute[]).map((route) => route.dev),
      );
      return (JSON.parse(links.stdout || "[]") as IpLink[])
        .filter((link) => link.link_type === "ether" && link.ifname && link.address)
        .map((link) => ({
          name: link.ifname!,
          macAddress: link.address!.toLowerCase(),
          mtu: link.mtu ?? 1500,
          hasDefaultRoute: defaultDevices.has(link.ifname),
        }));
    },
  };
}
