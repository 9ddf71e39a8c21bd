/**
 * A HostNetwork that changes nothing and records every call, for API tests of the drivers without
 * root. Its interfaces are eth0 (default route) and eth1; `failOn` makes a chosen call fail once.
 */
import type { LocalInterface } from "../../lib/host-net/host-network.js";
import type { HostNetwork } from "../../lib/host-net/host-network.js";
import { UnavailableError } from "../../lib/errors.js";
import type { PolicyRule, TableRoute } from "../../lib/host-net/policy-routing.js";

export const ETH0_MAC = "00:0d:3a:00:00:01";
export const ETH1_MAC = "00:0d:3a:00:00:02";

export type FakeHost = HostNetwork & {
  calls: { name: string; args: unknown[] }[];
  links: Set<string>;
  sysctls: Map<string, string>;
  /** The next call named `name` throws. */
  failOn(name: keyof HostNetwork): void;
  /** Links, sysctls, chains and jumps as the fake host holds them, for before/after comparisons. */
  snapshot(): string;
  /** The addresses routed to `device` by replaceHostRoute, sorted. */
  hostRoutes(device: string): string[];
  /** What readBootId answers; change it to simulate a reboot. */
  bootId: { current: string };
};

export function createFakeHost(): FakeHost {
  const calls: FakeHost["calls"] = [];
  const links = new Set<string>();
  const sysctls = new Map<string, string>([["net/ipv4/ip_forward", "0"]]);
  const failures = new Set<string>();
  const bootId = { current: "boot-1" };
  const chains = new Map<string, string>();
  const jumps = new Set<string>();
  const rules = new Map<string, PolicyRule>();
  const tables = new Map<number, TableRoute[]>();
  const masters = new Map<string, string>();
  /** "address dev device" of every /32 route of ours. */
  const hostRoutes = new Set<string>();
  const routesOf = (device: string) =>
    [...hostRoutes]
      .filter((route) => route.endsWith(` dev ${device}`))
      .map((route) => route.split(" ")[0]!)
      .sort();
  const ruleKey = (rule: PolicyRule) =>
    JSON.stringify([rule.priority, rule.table, rule.from, rule.suppressPrefixLength]);
  const record =
    <A extends unknown[], R>(name: keyof HostNetwork, effect: (...args: A) => R) =>
    (...args: A): Promise<Awaited<R>> => {
      calls.push({ name, args });
      if (failures.delete(name)) return Promise.reject(new UnavailableError(`injected failure of ${name}`));
      return Promise.resolve(effect(...args));
    };
  const interfaces: LocalInterface[] = [
    { name: "eth0", macAddress: ETH0_MAC, mtu: 1500, hasDefaultRoute: true },
    { name: "eth1", macAddress: ETH1_MAC, mtu: 1500, hasDefaultRoute: false },
  ];
  return {
    calls,
    links,
    sysctls,
    failOn: (name) => failures.add(name),
    snapshot: () =>
      JSON.stringify({
        links: [...links].sort(),
        sysctls: [...sysctls].sort(),
        chains: [...chains].sort(),
        jumps: [...jumps].sort(),
        rules: [...rules.keys()].sort(),
        tables: [...tables].sort(),
        hostRoutes: [...hostRoutes].sort(),
      }),
    bootId,
    listInterfaces: () => Promise.resolve(interfaces),
    // The peer end is Docker's to move into the container; only the host end stays visible here.
    createVethPair: record("createVethPair", (hostEnd: string) => {
      links.add(hostEnd);
    }),
    setLinkUp: record("setLinkUp", () => undefined),
    deleteLink: record("deleteLink", (name: string) => {
      links.delete(name);
      for (const [link, master] of masters) if (master === name) masters.delete(link);
      for (const route of hostRoutes) if (route.endsWith(` dev ${name}`)) hostRoutes.delete(route);
    }),
    linkExists: record("linkExists", (name: string) => links.has(name)),
    replaceHostRoute: record("replaceHostRoute", (address: string, device: string) => {
      for (const route of hostRoutes) if (route.startsWith(`${address} dev `)) hostRoutes.delete(route);
      hostRoutes.add(`${address} dev ${device}`);
    }),
    deleteHostRoute: record("deleteHostRoute", (address: string, device: string) => {
      hostRoutes.delete(`${address} dev ${device}`);
    }),
    listOwnHostRoutes: record("listOwnHostRoutes", routesOf),
    hostRoutes: routesOf,
    readSysctl: record("readSysctl", (key: string) => sysctls.get(key) ?? "0"),
    writeSysctl: record("writeSysctl", (key: string, value: string) => {
      sysctls.set(key, value);
    }),
    setChainRules: record("setChainRules", (table: string, chain: string, rules: string[][]) => {
      chains.set(`${table}/${chain}`, JSON.stringify(rules));
    }),
    ensureJump: record("ensureJump", (...args: unknown[]) => {
      // Where the jump goes (its last argument) is not part of which jump it is.
      jumps.add(JSON.stringify(args.slice(0, 5)));
    }),
    deleteJump: record("deleteJump", (...args: unknown[]) => {
      jumps.delete(JSON.stringify(args));
    }),
    deleteChain: record("deleteChain", (table: string, chain: string) => {
      chains.delete(`${table}/${chain}`);
    }),
    listChains: record("listChains", () => []),
    listChainRules: record("listChainRules", (table: string, chain: string) => {
      const rules = chains.get(`${table}/${chain}`);
      if (rules === undefined) return undefined;
      return (JSON.parse(rules) as string[][]).map((rule) => `-A ${chain} ${rule.join(" ")}`);
    }),
    iptablesVersion: record("iptablesVersion", () => "iptables v1.8.9 (nf_tables)"),
    deleteJumpsTo: record("deleteJumpsTo", () => undefined),
    listLinkNames: record("listLinkNames", () => [...links]),
    readBootId: record("readBootId", () => bootId.current),
    createBridge: record("createBridge", (name: string) => {
      links.add(name);
    }),
    setLinkMaster: record("setLinkMaster", (name: string, bridge: string | undefined) => {
      if (bridge === undefined) masters.delete(name);
      else masters.set(name, bridge);
    }),
    linkMaster: record("linkMaster", (name: string) => masters.get(name)),
    listIpv4Addresses: record("listIpv4Addresses", () => []),
    addIpv4Address: record("addIpv4Address", () => undefined),
    deleteIpv4Address: record("deleteIpv4Address", () => undefined),
    listManagedRoutes: record("listManagedRoutes", () => []),
    replaceRoute: record("replaceRoute", () => undefined),
    listOwnRules: record("listOwnRules", () => [...rules.values()]),
    ensureRule: record("ensureRule", (rule: PolicyRule) => {
      rules.set(ruleKey(rule), rule);
    }),
    deleteRule: record("deleteRule", (rule: PolicyRule) => {
      rules.delete(ruleKey(rule));
    }),
    setTableRoutes: record("setTableRoutes", (table: number, routes: TableRoute[]) => {
      tables.set(table, routes);
    }),
    flushTable: record("flushTable", (table: number) => {
      tables.delete(table);
    }),
    listTableRoutes: record("listTableRoutes", (table: number) => tables.get(table) ?? []),
    setBridgeChainRules: record("setBridgeChainRules", (chain: string, rules: string[][]) => {
      chains.set(`bridge/${chain}`, JSON.stringify(rules));
    }),
    ensureBridgeJump: record("ensureBridgeJump", (...args: unknown[]) => {
      jumps.add(JSON.stringify(args));
    }),
    deleteBridgeJump: record("deleteBridgeJump", (...args: unknown[]) => {
      jumps.delete(JSON.stringify(args));
    }),
    deleteBridgeChain: record("deleteBridgeChain", (chain: string) => {
      chains.delete(`bridge/${chain}`);
    }),
  };
}
