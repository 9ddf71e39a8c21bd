/**
 * The one door to the kernel's networking. Everything the plugin reads from or changes in network
 * interfaces (kernel links), addresses, routes, sysctls and firewall rules goes through a HostNetwork,
 * so the rest of the code reads as intent and tests can substitute a recording fake.
 */
import * as ebtables from "./ebtables.js";
import * as iptables from "./iptables.js";
import * as interfaces from "./interfaces.js";
import * as policyRouting from "./policy-routing.js";
import { runTool } from "./run-tool.js";

/** A network interface of the plugin's namespace as the kernel reports it. */
export type LocalInterface = { name: string; macAddress: string; mtu: number; hasDefaultRoute: boolean };

/** Every kernel read and change the drivers, the IPAM refresher and the doctor make. */
export type HostNetwork = {
  /** The interfaces of the plugin's network namespace, with MAC, MTU and whether the default route uses them. */
  listInterfaces(): Promise<LocalInterface[]>;
  createVethPair: typeof interfaces.createVethPair;
  setLinkUp: typeof interfaces.setLinkUp;
  deleteLink: typeof interfaces.deleteLink;
  linkExists: typeof interfaces.linkExists;
  replaceHostRoute: typeof interfaces.replaceHostRoute;
  deleteHostRoute: typeof interfaces.deleteHostRoute;
  listOwnHostRoutes: typeof interfaces.listOwnHostRoutes;
  readSysctl: typeof interfaces.readSysctl;
  writeSysctl: typeof interfaces.writeSysctl;
  setChainRules: typeof iptables.setChainRules;
  ensureJump: typeof iptables.ensureJump;
  deleteJump: typeof iptables.deleteJump;
  deleteChain: typeof iptables.deleteChain;
  listChains: typeof iptables.listChains;
  /** Read-only, for the doctor: a chain's rules as `iptables -S` prints them. */
  listChainRules: typeof iptables.listChainRules;
  /** Read-only, for the doctor: which iptables (legacy or nft) this host's rules live in. */
  iptablesVersion: typeof iptables.iptablesVersion;
  deleteJumpsTo: typeof iptables.deleteJumpsTo;
  listLinkNames: typeof interfaces.listLinkNames;
  readBootId: typeof interfaces.readBootId;
  createBridge: typeof interfaces.createBridge;
  setLinkMaster: typeof interfaces.setLinkMaster;
  linkMaster: typeof interfaces.linkMaster;
  listIpv4Addresses: typeof interfaces.listIpv4Addresses;
  addIpv4Address: typeof interfaces.addIpv4Address;
  deleteIpv4Address: typeof interfaces.deleteIpv4Address;
  listManagedRoutes: typeof interfaces.listManagedRoutes;
  replaceRoute: typeof interfaces.replaceRoute;
  listOwnRules: typeof policyRouting.listOwnRules;
  ensureRule: typeof policyRouting.ensureRule;
  deleteRule: typeof policyRouting.deleteRule;
  setTableRoutes: typeof policyRouting.setTableRoutes;
  flushTable: typeof policyRouting.flushTable;
  listTableRoutes: typeof policyRouting.listTableRoutes;
  setBridgeChainRules: typeof ebtables.setBridgeChainRules;
  ensureBridgeJump: typeof ebtables.ensureBridgeJump;
  deleteBridgeJump: typeof ebtables.deleteBridgeJump;
  deleteBridgeChain: typeof ebtables.deleteBridgeChain;
};

type IpLinkJson = { ifname?: string; address?: string; mtu?: number; link_type?: string };
type IpRoute = { dev?: string };

async function listInterfaces(): Promise<LocalInterface[]> {
  const [ipLinks, routes] = await Promise.all([
    runTool("ip", ["-j", "link", "show"]),
    runTool("ip", ["-j", "-4", "route", "show", "default"]),
  ]);
  const defaultDevices = new Set((JSON.parse(routes.stdout || "[]") as IpRoute[]).map((route) => route.dev));
  return (JSON.parse(ipLinks.stdout || "[]") as IpLinkJson[])
    .filter((link) => link.link_type === "ether" && link.ifname && link.address)
    .map((link) => ({
      name: link.ifname!,
      macAddress: link.address!.toLowerCase(),
      mtu: link.mtu ?? 1500,
      hasDefaultRoute: defaultDevices.has(link.ifname),
    }));
}

/** The real host, through iproute2, /proc/sys and iptables. */
export function createHostNetwork(): HostNetwork {
  return { listInterfaces, ...interfaces, ...iptables, ...ebtables, ...policyRouting };
}
