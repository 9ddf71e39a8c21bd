// Emulates an Azure VNet with network namespaces for the root-only e2e tests: a routing "fabric",
// one namespace per VM NIC, an internet host behind per-VM outbound SNAT and an on-premises host.
import { spawn } from "node:child_process";
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import {
  firstHost,
  formatIp,
  parseIp,
  parsePrefix,
  prefixContains,
  type IpAddress,
  type IpPrefix,
} from "../../lib/ip.js";
import { killPid, pollUntil, run, runOk } from "./run.js";
import type { RunResult } from "./run.js";

/** The MAC the Azure fabric answers every ARP request with (azure-platform.md §3). */
export const FABRIC_MAC = "12:34:56:78:9a:bc";
/** Instance Metadata Service address; lives on the fabric's `lo`. */
export const IMDS_IP = "169.254.169.254";
/** Wireserver / Azure DNS address; lives on the fabric's `lo`. */
export const WIRESERVER_IP = "168.63.129.16";
/** The fabric's address on the internet link, the internet host's default gateway. */
export const INET_GATEWAY_IP = "203.0.113.1";
/** The one host on the emulated internet. */
export const INET_HOST_IP = "203.0.113.10";
/** The emulated on-premises network, routed to and from the VNet without NAT. */
export const ONPREM_SUBNET = "192.168.50.0/24";
/** The fabric's address on the on-premises link. */
export const ONPREM_GATEWAY_IP = "192.168.50.1";
/** The one host on the on-premises network. */
export const ONPREM_HOST_IP = "192.168.50.10";

/** One VM with one NIC, as given to {@link createVnet}. */
export type VmSpec = {
  /** Lower-case letters and digits, at most 10 characters; names the namespace and the fabric port. */
  name: string;
  /** The NIC's MAC, colon-separated. */
  mac: string;
  /** The NIC's primary IP configuration: the only source allowed to IMDS and to the internet. */
  primary: string;
  /** Secondary IPs the fabric routes to this NIC (the container pool). */
  secondaries?: string[];
  /** Public address the fabric SNATs the primary to; default 198.51.100.<last octet of primary>. */
  publicIp?: string;
};

/** Options of {@link createVnet}. */
export type VnetOptions = {
  vms: VmSpec[];
  /** Default "10.1.0.0/24". */
  subnet?: string;
  /** Default: first host address of the subnet, as in Azure. */
  gateway?: string;
  /** MTU of every link; default 1500. */
  mtu?: number;
};

/** A VM as the fabric currently knows it. */
export type VmInfo = {
  name: string;
  mac: string;
  primary: string;
  secondaries: string[];
  publicIp: string;
  /** The subnet's prefix length, used on the VM's `eth0`. */
  prefixLength: number;
  gateway: string;
  /** The VM's veth end in the fabric namespace. */
  fabricPort: string;
};

/** Options of {@link Vnet.exec}. */
export type ExecOptions = { timeoutMs?: number; input?: string | Buffer };

/** One accepted connection, as seen by the listener of {@link Vnet.startTcpRecorder}. */
export type TcpConnection = { remoteAddress: string; remotePort: number; localAddress: string };

/** A TCP listener in a namespace that records who connected. */
export type TcpRecorder = {
  /** Every connection accepted so far, oldest first. */
  readonly connections: readonly TcpConnection[];
  /** Resolves once at least `count` connections were accepted; bounded by `timeoutMs` (default 10 s). */
  waitForConnections(count: number, timeoutMs?: number): Promise<readonly TcpConnection[]>;
  /** Stops the listener process. */
  close(): Promise<void>;
};

/** Outcome of {@link Vnet.tcpProbe}. */
export type TcpProbeResult = {
  connected: boolean;
  /** What the server sent before closing. */
  data: string;
  /** errno code (ECONNREFUSED, EHOSTUNREACH…) or "timeout"; undefined on a clean close. */
  error?: string;
};

// Node scripts run inside namespaces. They are plain CommonJS so `node -e` runs them as they are;
// arguments come from argv, never from string interpolation.
const RECORDER_SCRIPT = `
const net = require("node:net");
const [ip, port, reply] = process.argv.slice(1);
const server = net.createServer((socket) => {
  const c = { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, localAddress: socket.localAddress };
  process.stdout.write(JSON.stringify({ event: "connection", ...c }) + "\\n");
  socket.on("error", () => {});
  socket.resume();
  socket.end(reply + " " + c.remoteAddress + "\\n");
});
server.on("error", (e) => { process.stderr.write(String(e) + "\\n"); process.exit(1); });
server.listen(Number(port), ip, () => process.stdout.write(JSON.stringify({ event: "listening" }) + "\\n"));
`;

const PROBE_SCRIPT = `
const net = require("node:net");
const [host, port, source, timeoutMs, payload] = process.argv.slice(1);
const options = { host, port: Number(port) };
if (source) options.localAddress = source;
const chunks = [];
let connected = false;
let finished = false;
const done = (error) => {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify({ connected, data: Buffer.concat(chunks).toString(), error }) + "\\n");
  process.exit(0);
};
const socket = net.connect(options);
setTimeout(() => { socket.destroy(); done("timeout"); }, Number(timeoutMs));
socket.on("connect", () => { connected = true; socket.end(payload); });
socket.on("data", (c) => chunks.push(c));
socket.on("error", (e) => done(e.code || e.message));
socket.on("close", () => done(undefined));
`;

// Listens on ip:port in a namespace and pipes every connection to a unix socket, so a server in the
// test process (which lives in the host's namespace) can answer there; TLS passes through untouched.
const FORWARD_SCRIPT = `
const net = require("node:net");
const [ip, port, socketPath] = process.argv.slice(1);
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  client.pipe(upstream).pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});
server.on("error", (e) => { process.stderr.write(String(e) + "\\n"); process.exit(1); });
server.listen(Number(port), ip, () => process.stdout.write("listening\\n"));
`;

const FABRIC = "fabric";
const INET = "inet";
const ONPREM = "onprem";
const RESERVED_HOSTS = new Set([FABRIC, INET, ONPREM]);

/**
 * `ip` parsed; throws unless it is an IPv4 address in canonical form (the harness compares addresses
 * as strings, and iproute2 would read leading zeros differently).
 */
function requireIpv4(ip: string): IpAddress {
  const address = parseIp(ip);
  if (address?.family !== 4) throw new Error(`not an IPv4 address: ${JSON.stringify(ip)}`);
  return address;
}

/** An IPv4 subnet with a prefix length of 8..30 and no host bits set. */
function parseCidr(cidr: string): IpPrefix {
  const prefix = parsePrefix(cidr, false);
  if (prefix?.family !== 4 || prefix.length < 8 || prefix.length > 30) {
    throw new Error(`not an IPv4 subnet (prefix 8..30): ${JSON.stringify(cidr)}`);
  }
  if (parsePrefix(cidr) === undefined) throw new Error(`${cidr} has host bits set`);
  return prefix;
}

/** Whether `ip` is a host address of `subnet`: in it, and neither its network nor its broadcast address. */
function inSubnet(ip: string, subnet: IpPrefix): boolean {
  const address = requireIpv4(ip);
  return prefixContains(subnet, address) && address.value !== subnet.first && address.value !== subnet.last;
}

/** Where default public addresses come from: 198.51.100.<last octet of the VM's primary>. */
const DEFAULT_PUBLIC_NET = parsePrefix("198.51.100.0/24")!;

function defaultPublicIp(primary: string): string {
  return formatIp(DEFAULT_PUBLIC_NET.network + (requireIpv4(primary).value & 0xffn), 4);
}

/**
 * A running emulated VNet. Made by {@link createVnet}; always call {@link Vnet.teardown} (from `after`),
 * which also runs when setup failed halfway.
 */
export class Vnet {
  /** Prefix of every namespace of this run, e.g. "avn1a2b3c". */
  readonly prefix: string;
  readonly subnet: string;
  readonly gateway: string;
  readonly mtu: number;
  private readonly vmInfo = new Map<string, VmInfo>();
  /** Public IPs associated with secondary IPs (as ARM would), by private address. */
  private readonly publicIps = new Map<string, string>();
  private readonly createdNamespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly teardownHooks: (() => Promise<void>)[] = [];
  private fabricQueue: Promise<unknown> = Promise.resolve();
  private teardownRunning: Promise<void> | undefined;

  /** @internal use {@link createVnet}. */
  constructor(options: Required<Omit<VnetOptions, "vms">> & { vms: VmInfo[] }, prefix: string) {
    this.prefix = prefix;
    this.subnet = options.subnet;
    this.gateway = options.gateway;
    this.mtu = options.mtu;
    for (const vm of options.vms) this.vmInfo.set(vm.name, vm);
  }

  /** Names of all hosts: "fabric", "inet", "onprem" and the VM names. */
  get hosts(): string[] {
    return [FABRIC, INET, ONPREM, ...this.vmInfo.keys()];
  }

  /** The VMs, with the secondaries the fabric currently routes to them. */
  get vms(): VmInfo[] {
    return [...this.vmInfo.values()].map((vm) => ({ ...vm, secondaries: [...vm.secondaries] }));
  }

  /** One VM's current state; throws for an unknown name. */
  vm(name: string): VmInfo {
    const vm = this.vmInfo.get(name);
    if (vm === undefined)
      throw new Error(`no VM ${JSON.stringify(name)} in this VNet (have ${this.hosts.join(", ")})`);
    return { ...vm, secondaries: [...vm.secondaries] };
  }

  /** Network namespace name of `host` ("fabric", "inet", "onprem" or a VM name). */
  nsName(host: string): string {
    if (!RESERVED_HOSTS.has(host) && !this.vmInfo.has(host)) {
      throw new Error(`unknown host ${JSON.stringify(host)} (have ${this.hosts.join(", ")})`);
    }
    const suffix = host === FABRIC ? "fab" : host === ONPREM ? "onp" : host;
    return `${this.prefix}-${suffix}`;
  }

  /** Path of `host`'s namespace handle, for `nsenter --net=` or `setns`. */
  nsPath(host: string): string {
    return `/run/netns/${this.nsName(host)}`;
  }

  /**
   * Runs a short-lived command inside `host`'s namespace (`ip netns exec`, which also gives it a
   * matching /sys). A non-zero exit is returned, not thrown.
   */
  async exec(host: string, argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error("exec needs a command");
    return run("ip", ["netns", "exec", this.existingNs(host), file, ...args], options);
  }

  /** Like {@link exec} but throws on a non-zero exit. */
  async execOk(host: string, argv: readonly string[], options: ExecOptions = {}): Promise<RunResult> {
    const result = await this.exec(host, argv, options);
    if (result.code !== 0) {
      throw new Error(
        `[${host}] ${argv.join(" ")} ${result.timedOut ? "timed out" : `exited ${result.code}`}: ${(result.stderr || result.stdout).trim()}`,
      );
    }
    return result;
  }

  /**
   * Starts a long-lived process in `host`'s network namespace only (`nsenter --net`, so /sys and the
   * cgroup mounts stay the host's — dockerd needs that). {@link teardown} kills it by pid.
   * Output goes to the test's own stdout/stderr unless `options.stdio` says otherwise: a pipe nobody
   * reads would eventually block the child.
   */
  spawnIn(host: string, argv: readonly string[], options: SpawnOptions = {}): ChildProcess {
    if (argv.length === 0) throw new Error("spawnIn needs a command");
    const child = spawn("nsenter", [`--net=/run/netns/${this.existingNs(host)}`, "--", ...argv], {
      stdio: ["ignore", "inherit", "inherit"],
      ...options,
    });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    // An unhandled 'error' event (e.g. ENOENT) would crash mocha; the caller sees the exit instead.
    child.on("error", () => this.children.delete(child));
    return child;
  }

  /**
   * Registers cleanup (e.g. stopping a dockerd) that {@link teardown} runs, newest first, before it
   * kills the remaining processes and deletes the namespaces.
   */
  onTeardown(hook: () => Promise<void>): void {
    this.teardownHooks.push(hook);
  }

  /**
   * Changes which secondary IPs the fabric delivers to `vmName` and accepts from it, as an ARM PUT of
   * the NIC would: /32 routes, permanent neighbour entries and the anti-spoofing whitelist move together.
   */
  setSecondaries(vmName: string, secondaries: readonly string[]): Promise<void> {
    return this.serialize(async () => {
      const vm = this.vmInfo.get(vmName);
      if (vm === undefined) throw new Error(`no VM ${JSON.stringify(vmName)}`);
      const wanted = [...new Set(secondaries)];
      this.validateIps(vmName, wanted);
      const removed = vm.secondaries.filter((ip) => !wanted.includes(ip));
      const added = wanted.filter((ip) => !vm.secondaries.includes(ip));
      for (const ip of removed) {
        await this.fabricIptables(["-D", chainOf(vm), "-s", `${ip}/32`, "-j", "RETURN"]);
        await runOk("ip", ["-n", this.nsName(FABRIC), "route", "del", `${ip}/32`, "dev", vm.fabricPort]);
        await runOk("ip", ["-n", this.nsName(FABRIC), "neigh", "del", ip, "dev", vm.fabricPort]);
        vm.secondaries = vm.secondaries.filter((s) => s !== ip);
      }
      for (const ip of added) {
        await this.routeToVm(vm, ip);
        // Position 2: after the MAC check, before the chain's final DROP whose counter must survive.
        await this.fabricIptables(["-I", chainOf(vm), "2", "-s", `${ip}/32`, "-j", "RETURN"]);
        vm.secondaries.push(ip);
      }
    });
  }

  /**
   * Associates `publicIp` with the secondary `privateIp` (or removes the association when undefined), as
   * Azure does for an IP configuration with a public IP: the internet reaches the private address at
   * the public one, and its traffic leaves under the public one.
   */
  setPublicIp(privateIp: string, publicIp: string | undefined): Promise<void> {
    return this.serialize(async () => {
      const rules = (pub: string) => [
        ["nat", "PREROUTING", "-i", "inet", "-d", `${pub}/32`, "-j", "DNAT", "--to-destination", privateIp],
        ["nat", "POSTROUTING", "-o", "inet", "-s", `${privateIp}/32`, "-j", "SNAT", "--to-source", pub],
        ["filter", "AVN-OUT", "-s", `${privateIp}/32`, "-j", "RETURN"],
      ];
      const old = this.publicIps.get(privateIp);
      if (old === publicIp) return;
      if (old !== undefined) {
        for (const [table, chain, ...rule] of rules(old))
          await this.fabricIptables(["-t", table!, "-D", chain!, ...rule]);
        this.publicIps.delete(privateIp);
      }
      if (publicIp !== undefined) {
        requireIpv4(publicIp);
        for (const [table, chain, ...rule] of rules(publicIp))
          await this.fabricIptables(["-t", table!, "-I", chain!, "1", ...rule]);
        this.publicIps.set(privateIp, publicIp);
      }
    });
  }

  /** Public IPs by the private address they are associated with. */
  get publicIpAssociations(): Record<string, string> {
    return Object.fromEntries(this.publicIps);
  }

  /**
   * Serves `ip:port` inside the fabric from a unix socket of the test process (an Azure endpoint that
   * must share the test's memory, such as the ARM stand-in). Resolves once the fabric end listens.
   */
  async serveInFabric(ip: string, port: number, socketPath: string): Promise<void> {
    requireIpv4(ip);
    await runOk("ip", ["-n", this.nsName(FABRIC), "addr", "replace", `${ip}/32`, "dev", "lo"]);
    const child = this.spawnIn(
      FABRIC,
      [process.execPath, "-e", FORWARD_SCRIPT, ip, String(port), socketPath],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once("data", () => resolve());
      child.once("exit", (code) => reject(new Error(`forwarder for ${ip}:${port} exited with ${code}`)));
    });
  }

  /**
   * Packets the fabric dropped from `vmName` for a wrong source MAC or a source IP not assigned to
   * its NIC (sum of the DROP counters of that VM's anti-spoofing chain).
   */
  async spoofDropCount(vmName: string): Promise<number> {
    const vm = this.vm(vmName);
    const listing = await this.execOk(FABRIC, ["iptables", "-w", "-L", chainOf(vm), "-n", "-v", "-x"]);
    let total = 0;
    for (const line of listing.stdout.split("\n").slice(2)) {
      const [pkts, , target] = line.trim().split(/\s+/);
      if (target === "DROP") total += Number(pkts);
    }
    return total;
  }

  /**
   * Starts a TCP listener on `ip:port` inside `host` that records each peer's address and answers
   * `"<reply> <peer address>\n"`. Resolves once it is listening.
   */
  async startTcpRecorder(host: string, ip: string, port: number, reply = "ok"): Promise<TcpRecorder> {
    const child = this.spawnIn(host, [process.execPath, "-e", RECORDER_SCRIPT, ip, String(port), reply], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const connections: TcpConnection[] = [];
    let stderr = "";
    let listening = false;
    let exited = false;
    let buffered = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const event = JSON.parse(buffered.slice(0, newline)) as { event: string } & TcpConnection;
        buffered = buffered.slice(newline + 1);
        if (event.event === "listening") listening = true;
        else
          connections.push({
            remoteAddress: event.remoteAddress,
            remotePort: event.remotePort,
            localAddress: event.localAddress,
          });
      }
    });
    child.once("exit", () => (exited = true));
    const pid = child.pid;
    const close = async (): Promise<void> => {
      if (pid !== undefined) await killPid(pid, 2_000);
    };
    try {
      await pollUntil(
        `TCP recorder on ${host} ${ip}:${port}`,
        () => {
          if (exited) throw new Error(`listener exited: ${stderr.trim()}`);
          return Promise.resolve(listening);
        },
        { timeoutMs: 10_000, intervalMs: 20 },
      );
    } catch (error) {
      await close();
      throw error;
    }
    return {
      connections,
      waitForConnections: (count, timeoutMs = 10_000) =>
        pollUntil(
          `${count} connection(s) to ${host} ${ip}:${port}`,
          () => Promise.resolve(connections.length >= count && connections),
          {
            timeoutMs,
            intervalMs: 20,
          },
        ),
      close,
    };
  }

  /**
   * Opens a TCP connection from `host` (optionally from source address `source`), sends `payload`,
   * and reports whether it connected and what came back. Never throws for network failures.
   */
  async tcpProbe(
    host: string,
    ip: string,
    port: number,
    options: { source?: string; timeoutMs?: number; payload?: string } = {},
  ): Promise<TcpProbeResult> {
    const timeoutMs = options.timeoutMs ?? 3_000;
    const result = await this.execOk(
      host,
      [
        process.execPath,
        "-e",
        PROBE_SCRIPT,
        ip,
        String(port),
        options.source ?? "",
        String(timeoutMs),
        options.payload ?? "",
      ],
      { timeoutMs: timeoutMs + 10_000 },
    );
    return JSON.parse(result.stdout.trim()) as TcpProbeResult;
  }

  /**
   * Stops everything this VNet started and deletes its namespaces (which deletes their veths and
   * iptables rules). Keeps going past errors and reports them together; safe to call again.
   */
  teardown(): Promise<void> {
    this.teardownRunning ??= this.runTeardown().finally(() => (this.teardownRunning = undefined));
    return this.teardownRunning;
  }

  private async runTeardown(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    };
    for (const hook of this.teardownHooks.splice(0).reverse()) await attempt(hook);
    await Promise.all(
      [...this.children].map((child) =>
        attempt(async () => {
          if (child.pid !== undefined && !(await killPid(child.pid)))
            throw new Error(`pid ${child.pid} would not die`);
        }),
      ),
    );
    // Anything still inside our namespaces was started by us or by our children (containerd shims,
    // stray probes); only those pids are killed, never anything found by name.
    for (const ns of this.createdNamespaces) {
      await attempt(async () => {
        if (!existsSync(`/run/netns/${ns}`)) return;
        const pids = await runOk("ip", ["netns", "pids", ns]);
        const stuck: number[] = [];
        await Promise.all(
          pids.stdout
            .split(/\s+/)
            .filter((p) => /^\d+$/.test(p))
            .map(async (p) => {
              if (!(await killPid(Number(p)))) stuck.push(Number(p));
            }),
        );
        if (stuck.length > 0) throw new Error(`processes ${stuck.join(", ")} in ${ns} would not die`);
      });
    }
    for (const ns of [...this.createdNamespaces].reverse()) {
      await attempt(async () => {
        if (existsSync(`/run/netns/${ns}`)) await runOk("ip", ["netns", "delete", ns]);
      });
    }
    // Keep only what survived, so a second call retries exactly that.
    const left = this.createdNamespaces.filter((ns) => existsSync(`/run/netns/${ns}`));
    this.createdNamespaces.splice(0, this.createdNamespaces.length, ...left);
    if (errors.length > 0)
      throw new AggregateError(errors, `VNet ${this.prefix} teardown: ${errors.length} error(s)`);
  }

  /** @internal builds the namespaces; on failure the caller runs {@link teardown}. */
  async build(): Promise<void> {
    const fab = this.nsName(FABRIC);
    for (const host of this.hosts) {
      const ns = this.nsName(host);
      await runOk("ip", ["netns", "add", ns]);
      this.createdNamespaces.push(ns);
      await runOk("ip", ["-n", ns, "link", "set", "lo", "up"]);
    }
    // rp_filter off: a spoofed source must reach the anti-spoofing chain (and its counters) rather
    // than vanish in the routing code. No redirects: Azure never sends them, and a VM talking to its
    // own secondary through the fabric would get one. No IPv6: an IPv4 VNet carries none, and
    // link-local chatter would otherwise slip past the IPv4-only anti-spoofing rules.
    await this.execOk(FABRIC, [
      "sysctl",
      "-q",
      "-w",
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv4.conf.default.rp_filter=0",
      "net.ipv4.conf.all.send_redirects=0",
      "net.ipv4.conf.default.send_redirects=0",
      "net.ipv6.conf.all.disable_ipv6=1",
      "net.ipv6.conf.default.disable_ipv6=1",
    ]);
    await runOk("ip", ["-n", fab, "addr", "add", `${IMDS_IP}/32`, "dev", "lo"]);
    await runOk("ip", ["-n", fab, "addr", "add", `${WIRESERVER_IP}/32`, "dev", "lo"]);

    const prefixLength = parseCidr(this.subnet).length;
    for (const vm of this.vmInfo.values()) {
      const vmNs = this.nsName(vm.name);
      // Created inside the fabric with the peer sent straight to the VM: no link ever exists in the
      // host's namespace, even for a moment.
      // prettier-ignore
      await runOk("ip", [
        "-n", fab, "link", "add", vm.fabricPort, "address", FABRIC_MAC, "mtu", String(this.mtu),
        "type", "veth", "peer", "name", "eth0", "address", vm.mac, "mtu", String(this.mtu), "netns", vmNs,
      ]);
      await runOk("ip", ["-n", fab, "addr", "add", `${this.gateway}/32`, "dev", vm.fabricPort]);
      // proxy_delay=0: the fabric answers every ARP at once, otherwise each first packet waits ~0.8 s.
      await this.execOk(FABRIC, [
        "sysctl",
        "-q",
        "-w",
        `net.ipv4.conf.${vm.fabricPort}.proxy_arp=1`,
        `net.ipv4.neigh.${vm.fabricPort}.proxy_delay=0`,
      ]);
      await runOk("ip", ["-n", fab, "link", "set", vm.fabricPort, "up"]);
      for (const ip of [vm.primary, ...vm.secondaries]) await this.routeToVm(vm, ip);

      await runOk("ip", ["-n", vmNs, "addr", "add", `${vm.primary}/${prefixLength}`, "dev", "eth0"]);
      await runOk("ip", ["-n", vmNs, "link", "set", "eth0", "up"]);
      await runOk("ip", ["-n", vmNs, "route", "add", "default", "via", this.gateway, "dev", "eth0"]);
    }

    await this.buildSite(INET, "inet", `${INET_GATEWAY_IP}/24`, `${INET_HOST_IP}/24`, INET_GATEWAY_IP);
    await this.buildSite(
      ONPREM,
      "onprem",
      `${ONPREM_GATEWAY_IP}/24`,
      `${ONPREM_HOST_IP}/24`,
      ONPREM_GATEWAY_IP,
    );
    await this.execOk(FABRIC, ["iptables-restore", "-w"], { input: this.fabricRules() });
  }

  private async buildSite(
    host: string,
    port: string,
    fabricAddr: string,
    hostAddr: string,
    gw: string,
  ): Promise<void> {
    const fab = this.nsName(FABRIC);
    const ns = this.nsName(host);
    // prettier-ignore
    await runOk("ip", [
      "-n", fab, "link", "add", port, "mtu", String(this.mtu),
      "type", "veth", "peer", "name", "eth0", "mtu", String(this.mtu), "netns", ns,
    ]);
    await runOk("ip", ["-n", fab, "addr", "add", fabricAddr, "dev", port]);
    await runOk("ip", ["-n", fab, "link", "set", port, "up"]);
    await runOk("ip", ["-n", ns, "addr", "add", hostAddr, "dev", "eth0"]);
    await runOk("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    await runOk("ip", ["-n", ns, "route", "add", "default", "via", gw, "dev", "eth0"]);
  }

  /**
   * The fabric's whole rule set, loaded atomically. Per VM port one chain `AVN-AS-<vm>`, entered from
   * INPUT and FORWARD: wrong source MAC → DROP, assigned source IP → RETURN, anything else → DROP.
   * IMDS accepts only each VM's primary from that VM's port; the internet link only carries VM
   * primaries, SNAT'd to their public addresses (and DNAT'd back for inbound).
   */
  private fabricRules(): string {
    const vms = [...this.vmInfo.values()];
    const filter = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"];
    for (const vm of vms) filter.push(`:${chainOf(vm)} - [0:0]`);
    filter.push(":AVN-IMDS - [0:0]", ":AVN-OUT - [0:0]");
    for (const vm of vms) {
      filter.push(
        `-A INPUT -i ${vm.fabricPort} -j ${chainOf(vm)}`,
        `-A FORWARD -i ${vm.fabricPort} -j ${chainOf(vm)}`,
      );
    }
    filter.push(`-A INPUT -d ${IMDS_IP}/32 -j AVN-IMDS`, "-A FORWARD -o inet -j AVN-OUT");
    for (const vm of vms) {
      filter.push(
        `-A ${chainOf(vm)} -m mac ! --mac-source ${vm.mac} -m comment --comment "avn ${vm.name} spoofed mac" -j DROP`,
      );
      for (const ip of [vm.primary, ...vm.secondaries])
        filter.push(`-A ${chainOf(vm)} -s ${ip}/32 -j RETURN`);
      filter.push(`-A ${chainOf(vm)} -m comment --comment "avn ${vm.name} spoofed ip" -j DROP`);
      filter.push(`-A AVN-IMDS -i ${vm.fabricPort} -s ${vm.primary}/32 -j RETURN`);
      filter.push(`-A AVN-OUT -s ${vm.primary}/32 -j RETURN`);
    }
    filter.push("-A AVN-IMDS -p tcp -j REJECT --reject-with tcp-reset", "-A AVN-IMDS -j DROP");
    filter.push('-A AVN-OUT -m comment --comment "avn internet only from primary" -j DROP', "COMMIT");
    const nat = [
      "*nat",
      ":PREROUTING ACCEPT [0:0]",
      ":INPUT ACCEPT [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      ":POSTROUTING ACCEPT [0:0]",
    ];
    for (const vm of vms) {
      nat.push(`-A POSTROUTING -o inet -s ${vm.primary}/32 -j SNAT --to-source ${vm.publicIp}`);
      nat.push(`-A PREROUTING -i inet -d ${vm.publicIp}/32 -j DNAT --to-destination ${vm.primary}`);
    }
    nat.push("COMMIT");
    return [...filter, ...nat, ""].join("\n");
  }

  private async routeToVm(vm: VmInfo, ip: string): Promise<void> {
    const fab = this.nsName(FABRIC);
    await runOk("ip", ["-n", fab, "route", "replace", `${ip}/32`, "dev", vm.fabricPort]);
    // Permanent, so nothing a VM sends (gratuitous ARP, a spoofed sender) can repoint the fabric.
    await runOk("ip", [
      "-n",
      fab,
      "neigh",
      "replace",
      ip,
      "lladdr",
      vm.mac,
      "dev",
      vm.fabricPort,
      "nud",
      "permanent",
    ]);
  }

  private async fabricIptables(args: string[]): Promise<void> {
    await this.execOk(FABRIC, ["iptables", "-w", ...args]);
  }

  private validateIps(vmName: string, secondaries: readonly string[]): void {
    const subnet = parseCidr(this.subnet);
    for (const ip of secondaries) {
      if (!inSubnet(ip, subnet)) throw new Error(`${ip} is not a host address of ${this.subnet}`);
      if (ip === this.gateway) throw new Error(`${ip} is the subnet gateway`);
      for (const other of this.vmInfo.values()) {
        if (other.primary === ip) throw new Error(`${ip} is the primary IP of ${other.name}`);
        if (other.name !== vmName && other.secondaries.includes(ip)) {
          throw new Error(`${ip} is already assigned to ${other.name}`);
        }
      }
    }
  }

  /** Fabric changes are read-modify-write of the VM records, so they run one at a time. */
  private serialize<T>(step: () => Promise<T>): Promise<T> {
    const next = this.fabricQueue.then(step, step);
    this.fabricQueue = next.catch(() => undefined);
    return next;
  }

  private existingNs(host: string): string {
    const ns = this.nsName(host);
    // Refuse rather than let a command fall through to the host's own namespace.
    if (!existsSync(`/run/netns/${ns}`)) throw new Error(`namespace ${ns} does not exist (torn down?)`);
    return ns;
  }
}

function chainOf(vm: VmInfo): string {
  return `AVN-AS-${vm.name}`;
}

/**
 * Builds a fresh emulated VNet with randomly named namespaces (`avn<6 hex>-fab`, `-inet`, `-onp`,
 * `-<vm>`). Used in a suite's `before`; pair it with `vnet.teardown()` in `after`. If building fails,
 * everything built so far is removed before the error is thrown.
 */
export async function createVnet(options: VnetOptions): Promise<Vnet> {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new Error("createVnet needs root (network namespaces, iptables): run the e2e tests as root");
  }
  const subnet = options.subnet ?? "10.1.0.0/24";
  const parsed = parseCidr(subnet);
  const gateway = options.gateway ?? firstHost(parsed).text;
  const mtu = options.mtu ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 9000) throw new Error(`mtu ${mtu} out of range 576..9000`);
  if (!inSubnet(gateway, parsed)) throw new Error(`gateway ${gateway} is not in ${subnet}`);
  if (options.vms.length === 0) throw new Error("a VNet needs at least one VM");
  const seen = new Set<string>([gateway]);
  const vms: VmInfo[] = options.vms.map((spec) => {
    if (!/^[a-z][a-z0-9]{0,9}$/.test(spec.name) || RESERVED_HOSTS.has(spec.name)) {
      throw new Error(
        `VM name ${JSON.stringify(spec.name)} must be 1-10 of [a-z0-9], start with a letter, and not be fabric/inet/onprem`,
      );
    }
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(spec.mac))
      throw new Error(`VM ${spec.name}: bad MAC ${spec.mac}`);
    const secondaries = spec.secondaries ?? [];
    for (const ip of [spec.primary, ...secondaries]) {
      if (!inSubnet(ip, parsed)) throw new Error(`VM ${spec.name}: ${ip} is not a host address of ${subnet}`);
      if (seen.has(ip)) throw new Error(`VM ${spec.name}: ${ip} is used twice`);
      seen.add(ip);
    }
    const publicIp = spec.publicIp ?? defaultPublicIp(spec.primary);
    requireIpv4(publicIp);
    return {
      name: spec.name,
      mac: spec.mac.toLowerCase(),
      primary: spec.primary,
      secondaries: [...secondaries],
      publicIp,
      prefixLength: parsed.length,
      gateway,
      fabricPort: `p-${spec.name}`,
    };
  });
  const vnet = new Vnet({ subnet, gateway, mtu, vms }, `avn${randomBytes(3).toString("hex")}`);
  try {
    await vnet.build();
  } catch (error) {
    await vnet.teardown().catch(() => undefined);
    throw error;
  }
  return vnet;
}
