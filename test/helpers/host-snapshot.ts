/**
 * A comparable picture of one namespace's networking — links, addresses, routes, permanent neighbour
 * entries, iptables and ebtables rules, and the sysctls the plugin may touch — so a test can assert
 * that teardown left the host exactly as it found it.
 */
import { pollUntil } from "./run.js";
import type { Vnet } from "./vnet.js";

export type HostSnapshot = Record<string, unknown>;

const SYSCTLS = ["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.all.proxy_arp"];
/** Read for every NIC of the VM (eth0, eth1, …). */
const NIC_SYSCTLS = ["proxy_arp", "forwarding", "rp_filter"];

type Link = {
  ifname: string;
  address?: string;
  mtu?: number;
  master?: string;
  flags?: string[];
  operstate?: string;
};
type Addr = { ifname: string; addr_info: { local: string; prefixlen: number; scope?: string }[] };
type Neighbour = { dst: string; dev: string; lladdr?: string; state?: string[] };

export async function snapshotHost(vnet: Vnet, host: string): Promise<HostSnapshot> {
  // A new link's IPv6 address is tentative (and has no local route) until duplicate detection ends.
  await pollUntil(
    "IPv6 duplicate address detection to finish",
    async () => {
      return (await vnet.execOk(host, ["ip", "-6", "addr", "show", "tentative"])).stdout.trim() === "";
    },
    { timeoutMs: 10_000 },
  );
  const json = async <T>(argv: string[]) => JSON.parse((await vnet.execOk(host, argv)).stdout || "[]") as T;
  const links = await json<Link[]>(["ip", "-j", "link", "show"]);
  const addresses = await json<Addr[]>(["ip", "-j", "addr", "show"]);
  const routes = await json<object[]>(["ip", "-j", "route", "show", "table", "all"]);
  const rules = await json<object[]>(["ip", "-j", "rule", "show"]);
  const neighbours = await json<Neighbour[]>(["ip", "-j", "neigh", "show"]);
  const iptables = (await vnet.execOk(host, ["iptables-save"])).stdout;
  const ebtables = (await vnet.execOk(host, ["ebtables-save"])).stdout;
  const nics = links.map((l) => l.ifname).filter((name) => /^eth\d+$/.test(name));
  const keys = [
    ...SYSCTLS,
    ...nics.flatMap((nic) => NIC_SYSCTLS.map((key) => `net.ipv4.conf.${nic}.${key}`)),
  ];
  const sysctls = await Promise.all(
    keys.map(async (key) => `${key}=${(await vnet.execOk(host, ["sysctl", "-n", key])).stdout.trim()}`),
  );
  return {
    links: links.map((l) => ({
      name: l.ifname,
      address: l.address,
      mtu: l.mtu,
      master: l.master,
      flags: l.flags,
    })),
    addresses: addresses.map((a) => ({
      name: a.ifname,
      addresses: a.addr_info.map((i) => `${i.local}/${i.prefixlen} ${i.scope ?? ""}`),
    })),
    routes,
    rules,
    // Learned entries come and go with traffic; the plugin only ever adds permanent ones.
    neighbours: neighbours.filter((n) => n.state?.includes("PERMANENT")),
    iptables: withoutEmptyTables(stripCounters(iptables)),
    ebtables: withoutEmptyTables(stripCounters(ebtables)),
    sysctls,
  };
}

/**
 * What differs between two snapshots, one line per part: the entries only `now` has (+) and only
 * `before` has (-). Empty when they are equal. chai's own diff of two large objects shows only "[ …(5) ]".
 */
export function snapshotDifference(before: HostSnapshot, now: HostSnapshot): string {
  const entries = (value: unknown) => (Array.isArray(value) ? value : [value]).map((e) => JSON.stringify(e));
  const lines: string[] = [];
  for (const part of new Set([...Object.keys(before), ...Object.keys(now)])) {
    const was = entries(before[part]);
    const is = entries(now[part]);
    const added = is.filter((e) => !was.includes(e));
    const removed = was.filter((e) => !is.includes(e));
    if (added.length + removed.length === 0 && was.join() !== is.join()) lines.push(`${part}: reordered`);
    else if (added.length + removed.length > 0)
      lines.push(`${part}: ${[...added.map((e) => `+ ${e}`), ...removed.map((e) => `- ${e}`)].join("; ")}`);
  }
  return lines.join("\n");
}

/** Docker's own veths (libnetwork names them `veth` and 7 hex digits); the plugin's are `az`/`ac`. */
const DOCKER_VETH = /^veth[0-9a-f]{7}$/;

/**
 * `snapshot` without the swarm plumbing that dockerd keeps for a node's life and builds in the
 * background (so a snapshot may catch it half made): `bridge` (docker_gwbridge), Docker's veths, and
 * every address, route and rule that names one of them.
 */
export function withoutDockerPlumbing(snapshot: HostSnapshot, bridge: string): HostSnapshot {
  const links = (snapshot["links"] ?? []) as { name: string }[];
  const addresses = (snapshot["addresses"] ?? []) as { name: string }[];
  const names = new Set([
    bridge,
    ...[...links, ...addresses].map((l) => l.name).filter((n) => DOCKER_VETH.test(n)),
  ]);
  const mentionsOne = (entry: unknown) => {
    const text = typeof entry === "string" ? entry : JSON.stringify(entry);
    return [...names].some((name) => text.includes(name));
  };
  return Object.fromEntries(
    Object.entries(snapshot).map(([part, value]) => [
      part,
      Array.isArray(value) ? value.filter((entry) => !mentionsOne(entry)) : value,
    ]),
  );
}

/** Asserts that `now` is `before`, naming what differs. */
export function expectSameHost(now: HostSnapshot, before: HostSnapshot | undefined, what: string): void {
  if (before === undefined) throw new Error(`${what}: no snapshot taken before`);
  const difference = snapshotDifference(before, now);
  if (difference !== "") throw new Error(`${what} differs from its snapshot:\n${difference}`);
}

function stripCounters(save: string): string[] {
  return save
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.replace(/\[\d+:\d+\]/g, "").replace(/ -c \d+ \d+/g, ""));
}

/**
 * ebtables-nft and iptables-nft create a table on first use and have no command to delete it (the
 * plugin's --internal isolation is the first user of `mangle` on most hosts); a table holding only
 * built-in chains with ACCEPT policies and no rules filters nothing, so it counts as absent.
 */
function withoutEmptyTables(lines: string[]): string[] {
  const tables: string[][] = [];
  for (const line of lines) {
    if (line.startsWith("*")) tables.push([line]);
    else tables.at(-1)?.push(line);
  }
  const isEmpty = (table: string[]) =>
    table
      .slice(1)
      .every(
        (line) =>
          line === "COMMIT" ||
          /^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING|BROUTING) ACCEPT\s*$/.test(line),
      );
  return tables.filter((table) => !isEmpty(table)).flat();
}

/**
 * Where azure-vnet's jumps sit in `host`'s FORWARD chain relative to Docker's DOCKER-USER jump:
 * `ordered` when DOCKER-USER exists and every jump to an AZV-FWD- chain comes after it.
 */
export async function forwardJumpOrder(
  vnet: Vnet,
  host: string,
): Promise<{ ordered: boolean; ours: number; rules: string }> {
  const rules = (await vnet.execOk(host, ["iptables", "-w", "-S", "FORWARD"])).stdout;
  const lines = rules.split("\n");
  const dockerUser = lines.findIndex((rule) => rule.endsWith("-j DOCKER-USER"));
  const ours = lines.flatMap((rule, index) => (rule.includes("-j AZV-FWD-") ? [index] : []));
  return { ordered: dockerUser >= 0 && ours.every((index) => index > dockerUser), ours: ours.length, rules };
}
