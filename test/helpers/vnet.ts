// Emulates an Azure VNet with network namespaces for the root-only e2e tests: a routing "fabric" with
// one port per VM NIC, one namespace per VM (eth0, eth1, … one per NIC, in one or more subnets), an
// internet host behind per-NIC outbound SNAT and an on-premises host.
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

/**
 * One NIC of a VM, as given to {@link createVnet}: the VM's first NIC (eth0) through the fields of
 * {@link VmSpec} itself, any further one through {@link VmSpec.extraNics}.
 */
export type NicSpec = {
  /** The NIC's MAC, colon-separated; unique in the VNet. */
  mac: string;
  /**
   * The NIC's subnet, one of the VNet's ({@link VnetOptions.subnet} or {@link VnetOptions.extraSubnets});
   * default the VNet's first subnet. All addresses of the NIC are in it (Azure: "IPConfigurations on a
   * Nic cannot belong to different subnets").
   */
  subnet?: string;
  /** The NIC's primary IP configuration (its DHCP address): the only source the fabric SNATs to the internet. */
  primary: string;
  /** Secondary IPs the fabric routes to this NIC (the container pool). */
  secondaries?: string[];
  /**
   * Public address the fabric SNATs this NIC's primary to (and DNATs back); default
   * 198.51.100.<last octet of primary>. Unique in the VNet: give one explicitly when two NICs' primaries
   * end in the same octet (e.g. 10.1.0.4 and 10.1.1.4).
   */
  publicIp?: string;
};

/**
 * One VM, as given to {@link createVnet}. Its own NIC fields describe its primary NIC, `eth0`, which
 * carries the VM's only default route (via its subnet's gateway); `extraNics` become eth1, eth2, … with
 * their primary address and connected subnet route only, as on an Azure VM nobody configured further.
 */
export type VmSpec = NicSpec & {
  /** Lower-case letters and digits, at most 10 characters; names the namespace and the fabric ports. */
  name: string;
  /** The VM's further NICs in order: eth1, eth2, … (at most {@link MAX_NICS_PER_VM} NICs in all). */
  extraNics?: NicSpec[];
};

/** Most NICs one VM can have here (eth0..eth7); Azure's limit depends on the VM size, 8 is common. */
export const MAX_NICS_PER_VM = 8;

/** Options of {@link createVnet}. */
export type VnetOptions = {
  vms: VmSpec[];
  /** The VNet's first subnet, where NICs without a `subnet` go. Default "10.1.0.0/24". */
  subnet?: string;
  /** Gateway of the first subnet. Default: its first host address, as in Azure. */
  gateway?: string;
  /**
   * Further subnets of the VNet, e.g. ["10.1.1.0/24"]; each one's gateway is its first host address.
   * They may not overlap each other or the first subnet.
   */
  extraSubnets?: string[];
  /** MTU of every link; default 1500. */
  mtu?: number;
};

/** A subnet of the VNet. */
export type SubnetInfo = {
  /** Canonical "network/length". */
  prefix: string;
  prefixLength: number;
  /** The fabric's address on every NIC port of this subnet: the first host address unless overridden. */
  gateway: string;
};

/** One NIC as the fabric currently knows it. */
export type NicInfo = {
  vmName: string;
  /** Its name inside the VM: eth0, eth1, … */
  ifname: string;
  /** Its position on the VM (and in IMDS): 0 for eth0. */
  index: number;
  mac: string;
  /** Canonical prefix of the NIC's subnet. */
  subnet: string;
  /** The subnet's prefix length, used on the NIC inside the VM. */
  prefixLength: number;
  /** The NIC's subnet's gateway. */
  gateway: string;
  primary: string;
  secondaries: string[];
  publicIp: string;
  /** The NIC's veth end in the fabric namespace: `p-<vm>` for eth0, `p-<vm>-<index>` for the others. */
  fabricPort: string;
};

/** A VM as the fabric currently knows it. The top-level NIC fields are those of its eth0. */
export type VmInfo = {
  name: string;
  mac: string;
  primary: string;
  secondaries: string[];
  publicIp: string;
  /** eth0's subnet. */
  subnet: string;
  /** eth0's subnet's prefix length. */
  prefixLength: number;
  /** eth0's gateway, the VM's default route. */
  gateway: string;
  /** eth0's veth end in the fabric namespace. */
  fabricPort: string;
  /** Every NIC of the VM, eth0 first. */
  nics: NicInfo[];
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
  /** The first subnet (where NICs without a `subnet` are). */
  readonly subnet: string;
  /** The first subnet's gateway. */
  readonly gateway: string;
  readonly mtu: number;
  private readonly subnetInfo: SubnetInfo[];
  /** Each VM's NICs, eth0 first; the records setSecondaries edits. */
  private readonly vmNics = new Map<string, NicInfo[]>();
  /** Public IPs associated with secondary IPs (as ARM would), by private address. */
  private readonly publicIps = new Map<string, string>();
  private readonly createdNamespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly teardownHooks: (() => Promise<void>)[] = [];
  private fabricQueue: Promise<unknown> = Promise.resolve();
  private teardownRunning: Promise<void> | undefined;

  /** @internal use {@link createVnet}. */
  constructor(
    options: { subnets: SubnetInfo[]; mtu: number; vms: { name: string; nics: NicInfo[] }[] },
    prefix: string,
  ) {
    this.prefix = prefix;
    this.subnetInfo = options.subnets;
    this.subnet = options.subnets[0]!.prefix;
    this.gateway = options.subnets[0]!.gateway;
    this.mtu = options.mtu;
    for (const vm of options.vms) this.vmNics.set(vm.name, vm.nics);
  }

  /** Names of all hosts: "fabric", "inet", "onprem" and the VM names. */
  get hosts(): string[] {
    return [FABRIC, INET, ONPREM, ...this.vmNics.keys()];
  }

  /** The VNet's subnets, the first one first. */
  get subnets(): SubnetInfo[] {
    return this.subnetInfo.map((subnet) => ({ ...subnet }));
  }

  /** The VMs, with the secondaries the fabric currently routes to each NIC. */
  get vms(): VmInfo[] {
    return [...this.vmNics.entries()].map(([name, nics]) => vmView(name, nics));
  }

  /** One VM's current state; throws for an unknown name. */
  vm(name: string): VmInfo {
    return vmView(name, this.nicsOf(name));
  }

  /** One NIC's current state (`ifname` eth0, eth1, …); throws for an unknown VM or NIC. */
  nic(vmName: string, ifname = "eth0"): NicInfo {
    return copyNic(this.nicRecord(vmName, ifname));
  }

  /** The NIC an address is assigned to (as primary or secondary), if any. */
  nicOwning(ip: string): NicInfo | undefined {
    for (const nics of this.vmNics.values()) {
      const owner = nics.find((nic) => nic.primary === ip || nic.secondaries.includes(ip));
      if (owner) return copyNic(owner);
    }
    return undefined;
  }

  /** Network namespace name of `host` ("fabric", "inet", "onprem" or a VM name). */
  nsName(host: string): string {
    if (!RESERVED_HOSTS.has(host) && !this.vmNics.has(host)) {
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
   * Changes which secondary IPs the fabric delivers to `vmName`'s NIC `ifname` (default eth0) and accepts
   * from it, as an ARM PUT of that NIC would: /32 routes, permanent neighbour entries and the NIC's
   * anti-spoofing whitelist move together. The addresses must be host addresses of the NIC's subnet that
   * no other NIC holds.
   */
  setSecondaries(vmName: string, secondaries: readonly string[], ifname = "eth0"): Promise<void> {
    return this.serialize(async () => {
      const nic = this.nicRecord(vmName, ifname);
      const wanted = [...new Set(secondaries)];
      this.validateIps(nic, wanted);
      const removed = nic.secondaries.filter((ip) => !wanted.includes(ip));
      const added = wanted.filter((ip) => !nic.secondaries.includes(ip));
      for (const ip of removed) {
        await this.fabricIptables(["-D", chainOf(nic), "-s", `${ip}/32`, "-j", "RETURN"]);
        await runOk("ip", ["-n", this.nsName(FABRIC), "route", "del", `${ip}/32`, "dev", nic.fabricPort]);
        await runOk("ip", ["-n", this.nsName(FABRIC), "neigh", "del", ip, "dev", nic.fabricPort]);
        nic.secondaries = nic.secondaries.filter((s) => s !== ip);
      }
      for (const ip of added) {
        await this.routeToNic(nic, ip);
        // Position 2: after the MAC check, before the chain's final DROP whose counter must survive.
        await this.fabricIptables(["-I", chainOf(nic), "2", "-s", `${ip}/32`, "-j", "RETURN"]);
        nic.secondaries.push(ip);
      }
    });
  }

  /**
   * Associates `publicIp` with the secondary `privateIp` (or removes the association when undefined), as
   * Azure does for an IP configuration with a public IP: the internet reaches the private address at
   * the public one, and its traffic leaves under the public one. Works for an address of any NIC (the
   * address says which); to associate, `privateIp` must be assigned to a NIC.
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
        if (this.nicOwning(privateIp) === undefined)
          throw new Error(`${privateIp} is assigned to no NIC of this VNet`);
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
   * Packets the fabric dropped from `vmName` for a wrong source MAC or a source IP not assigned to the
   * NIC whose port they arrived on (sum of the DROP counters of the NICs' anti-spoofing chains): of its
   * NIC `ifname` only, or of all its NICs when `ifname` is undefined. A packet from eth1's address sent
   * out through eth0 counts on eth0.
   */
  async spoofDropCount(vmName: string, ifname?: string): Promise<number> {
    const nics = ifname === undefined ? this.nicsOf(vmName) : [this.nicRecord(vmName, ifname)];
    let total = 0;
    for (const nic of nics) {
      const listing = await this.execOk(FABRIC, ["iptables", "-w", "-L", chainOf(nic), "-n", "-v", "-x"]);
      for (const line of listing.stdout.split("\n").slice(2)) {
        const [pkts, , target] = line.trim().split(/\s+/);
        if (target === "DROP") total += Number(pkts);
      }
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

    for (const [vmName, nics] of this.vmNics) {
      for (const nic of nics) await this.buildNic(this.nsName(vmName), nic);
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
    await this.waitForLinksUp();
  }

  /**
   * Waits until every veth of the VNet is operationally up. Until the kernel's link watch has run (up
   * to a second after the carrier came) a new veth still has the no-op queue that drops every packet,
   * so a test's first packet on a NIC made last could vanish.
   */
  private async waitForLinksUp(): Promise<void> {
    const namespaces = this.hosts.map((host) => this.nsName(host));
    await pollUntil(
      "every link of the VNet to come up",
      async () => {
        for (const ns of namespaces) {
          const links = JSON.parse((await runOk("ip", ["-n", ns, "-j", "link", "show"])).stdout) as {
            ifname: string;
            operstate: string;
          }[];
          const down = links.find((link) => link.ifname !== "lo" && link.operstate !== "UP");
          if (down) throw new Error(`${ns} ${down.ifname} is ${down.operstate}`);
        }
        return true;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  }

  /**
   * One NIC: a veth from a fabric port (the gateway /32, the fabric's MAC, proxy ARP, a route and a
   * permanent neighbour per assigned address) to the VM's `ethN` (its MAC and primary/prefix, up). Only
   * eth0 gets the default route; another NIC has just its connected subnet route.
   */
  private async buildNic(vmNs: string, nic: NicInfo): Promise<void> {
    const fab = this.nsName(FABRIC);
    const port = nic.fabricPort;
    // Created inside the fabric with the peer sent straight to the VM: no link ever exists in the
    // host's namespace, even for a moment.
    // prettier-ignore
    await runOk("ip", [
      "-n", fab, "link", "add", port, "address", FABRIC_MAC, "mtu", String(this.mtu),
      "type", "veth", "peer", "name", nic.ifname, "address", nic.mac, "mtu", String(this.mtu), "netns", vmNs,
    ]);
    await runOk("ip", ["-n", fab, "addr", "add", `${nic.gateway}/32`, "dev", port]);
    // proxy_delay=0: the fabric answers every ARP at once, otherwise each first packet waits ~0.8 s.
    await this.execOk(FABRIC, [
      "sysctl",
      "-q",
      "-w",
      `net.ipv4.conf.${port}.proxy_arp=1`,
      `net.ipv4.neigh.${port}.proxy_delay=0`,
    ]);
    await runOk("ip", ["-n", fab, "link", "set", port, "up"]);
    for (const ip of [nic.primary, ...nic.secondaries]) await this.routeToNic(nic, ip);

    await runOk("ip", ["-n", vmNs, "addr", "add", `${nic.primary}/${nic.prefixLength}`, "dev", nic.ifname]);
    await runOk("ip", ["-n", vmNs, "link", "set", nic.ifname, "up"]);
    if (nic.index === 0) {
      await runOk("ip", ["-n", vmNs, "route", "add", "default", "via", nic.gateway, "dev", nic.ifname]);
    }
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
   * The fabric's whole rule set, loaded atomically. Per NIC port one chain (`AVN-AS-<vm>` for eth0,
   * `AVN-AS-<vm>-<index>` for the others), entered from INPUT and FORWARD for packets arriving on that
   * port: source MAC not the NIC's → DROP, source IP assigned to that NIC → RETURN, anything else →
   * DROP. So a packet must leave the VM through the NIC that owns its source address. IMDS accepts only
   * each VM's eth0 primary from its eth0 port; the internet link only carries NIC primaries, SNAT'd to
   * their public addresses (and DNAT'd back for inbound).
   */
  private fabricRules(): string {
    const nics = [...this.vmNics.values()].flat();
    const filter = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"];
    for (const nic of nics) filter.push(`:${chainOf(nic)} - [0:0]`);
    filter.push(":AVN-IMDS - [0:0]", ":AVN-OUT - [0:0]");
    for (const nic of nics) {
      filter.push(
        `-A INPUT -i ${nic.fabricPort} -j ${chainOf(nic)}`,
        `-A FORWARD -i ${nic.fabricPort} -j ${chainOf(nic)}`,
      );
    }
    filter.push(`-A INPUT -d ${IMDS_IP}/32 -j AVN-IMDS`, "-A FORWARD -o inet -j AVN-OUT");
    for (const nic of nics) {
      const label = `avn ${nic.vmName} ${nic.ifname}`;
      filter.push(
        `-A ${chainOf(nic)} -m mac ! --mac-source ${nic.mac} -m comment --comment "${label} spoofed mac" -j DROP`,
      );
      for (const ip of [nic.primary, ...nic.secondaries])
        filter.push(`-A ${chainOf(nic)} -s ${ip}/32 -j RETURN`);
      filter.push(`-A ${chainOf(nic)} -m comment --comment "${label} spoofed ip" -j DROP`);
      if (nic.index === 0) filter.push(`-A AVN-IMDS -i ${nic.fabricPort} -s ${nic.primary}/32 -j RETURN`);
      filter.push(`-A AVN-OUT -s ${nic.primary}/32 -j RETURN`);
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
    for (const nic of nics) {
      nat.push(`-A POSTROUTING -o inet -s ${nic.primary}/32 -j SNAT --to-source ${nic.publicIp}`);
      nat.push(`-A PREROUTING -i inet -d ${nic.publicIp}/32 -j DNAT --to-destination ${nic.primary}`);
    }
    nat.push("COMMIT");
    return [...filter, ...nat, ""].join("\n");
  }

  private async routeToNic(nic: NicInfo, ip: string): Promise<void> {
    const fab = this.nsName(FABRIC);
    await runOk("ip", ["-n", fab, "route", "replace", `${ip}/32`, "dev", nic.fabricPort]);
    // Permanent, so nothing a VM sends (gratuitous ARP, a spoofed sender) can repoint the fabric.
    await runOk("ip", [
      "-n",
      fab,
      "neigh",
      "replace",
      ip,
      "lladdr",
      nic.mac,
      "dev",
      nic.fabricPort,
      "nud",
      "permanent",
    ]);
  }

  private async fabricIptables(args: string[]): Promise<void> {
    await this.execOk(FABRIC, ["iptables", "-w", ...args]);
  }

  /** Refuses secondaries for `nic` outside its subnet, on a gateway, or held by another NIC. */
  private validateIps(nic: NicInfo, secondaries: readonly string[]): void {
    const subnet = parseCidr(nic.subnet);
    for (const ip of secondaries) {
      if (!inSubnet(ip, subnet)) {
        throw new Error(
          `${ip} is not a host address of ${nic.subnet} (the subnet of ${nic.vmName} ${nic.ifname})`,
        );
      }
      if (ip === nic.gateway) throw new Error(`${ip} is the subnet gateway`);
      for (const other of [...this.vmNics.values()].flat()) {
        const name = `${other.vmName} ${other.ifname}`;
        if (other.primary === ip) throw new Error(`${ip} is the primary IP of ${name}`);
        if (other !== nic && other.secondaries.includes(ip)) {
          throw new Error(`${ip} is already assigned to ${name}`);
        }
      }
    }
  }

  private nicsOf(vmName: string): NicInfo[] {
    const nics = this.vmNics.get(vmName);
    if (nics === undefined)
      throw new Error(`no VM ${JSON.stringify(vmName)} in this VNet (have ${this.hosts.join(", ")})`);
    return nics;
  }

  /** The live record of a NIC, for changes. */
  private nicRecord(vmName: string, ifname: string): NicInfo {
    const nics = this.nicsOf(vmName);
    const nic = nics.find((n) => n.ifname === ifname);
    if (nic === undefined) {
      throw new Error(
        `VM ${vmName} has no NIC ${JSON.stringify(ifname)} (has ${nics.map((n) => n.ifname).join(", ")})`,
      );
    }
    return nic;
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

/** The anti-spoofing chain of a NIC's fabric port (iptables allows 28 characters; this is at most 19). */
function chainOf(nic: NicInfo): string {
  return nic.index === 0 ? `AVN-AS-${nic.vmName}` : `AVN-AS-${nic.vmName}-${nic.index}`;
}

function copyNic(nic: NicInfo): NicInfo {
  return { ...nic, secondaries: [...nic.secondaries] };
}

/** A VM's public view: its NICs copied, eth0's fields also at the top. */
function vmView(name: string, nics: readonly NicInfo[]): VmInfo {
  const copies = nics.map(copyNic);
  const eth0 = copies[0]!;
  return {
    name,
    mac: eth0.mac,
    primary: eth0.primary,
    secondaries: [...eth0.secondaries],
    publicIp: eth0.publicIp,
    subnet: eth0.subnet,
    prefixLength: eth0.prefixLength,
    gateway: eth0.gateway,
    fabricPort: eth0.fabricPort,
    nics: copies,
  };
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
  const mtu = options.mtu ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 9000) throw new Error(`mtu ${mtu} out of range 576..9000`);
  if (options.vms.length === 0) throw new Error("a VNet needs at least one VM");
  const subnets = planSubnets(options);
  const taken: Taken = {
    ips: new Set(subnets.map((s) => s.info.gateway)),
    macs: new Set(),
    publicIps: new Set(),
  };
  const vms = options.vms.map((spec) => ({ name: spec.name, nics: planVm(spec, subnets, taken) }));
  const vnet = new Vnet(
    { subnets: subnets.map((s) => s.info), mtu, vms },
    `avn${randomBytes(3).toString("hex")}`,
  );
  try {
    await vnet.build();
  } catch (error) {
    await vnet.teardown().catch(() => undefined);
    throw error;
  }
  return vnet;
}

type PlannedSubnet = { info: SubnetInfo; parsed: IpPrefix };
/** What NICs already hold while a VNet is planned: addresses (and gateways), MACs, public addresses. */
type Taken = { ips: Set<string>; macs: Set<string>; publicIps: Set<string> };

/** The first subnet (with its gateway) and the extra ones, refused when they overlap. */
function planSubnets(options: VnetOptions): PlannedSubnet[] {
  const first = parseCidr(options.subnet ?? "10.1.0.0/24");
  const gateway = options.gateway ?? firstHost(first).text;
  if (!inSubnet(gateway, first)) throw new Error(`gateway ${gateway} is not in ${first.text}`);
  const subnets: PlannedSubnet[] = [
    { info: { prefix: first.text, prefixLength: first.length, gateway }, parsed: first },
  ];
  for (const cidr of options.extraSubnets ?? []) {
    const parsed = parseCidr(cidr);
    const overlapping = subnets.find((s) => parsed.first <= s.parsed.last && s.parsed.first <= parsed.last);
    if (overlapping) throw new Error(`subnet ${parsed.text} overlaps ${overlapping.info.prefix}`);
    const info = { prefix: parsed.text, prefixLength: parsed.length, gateway: firstHost(parsed).text };
    subnets.push({ info, parsed });
  }
  return subnets;
}

/** A VM's NICs, eth0 first, validated against the subnets and what other NICs hold. */
function planVm(spec: VmSpec, subnets: PlannedSubnet[], taken: Taken): NicInfo[] {
  if (!/^[a-z][a-z0-9]{0,9}$/.test(spec.name) || RESERVED_HOSTS.has(spec.name)) {
    throw new Error(
      `VM name ${JSON.stringify(spec.name)} must be 1-10 of [a-z0-9], start with a letter, and not be fabric/inet/onprem`,
    );
  }
  const specs: NicSpec[] = [spec, ...(spec.extraNics ?? [])];
  if (specs.length > MAX_NICS_PER_VM)
    throw new Error(`VM ${spec.name}: ${specs.length} NICs, at most ${MAX_NICS_PER_VM}`);
  return specs.map((nicSpec, index) => planNic(spec.name, index, nicSpec, subnets, taken));
}

function planNic(
  vmName: string,
  index: number,
  spec: NicSpec,
  subnets: PlannedSubnet[],
  taken: Taken,
): NicInfo {
  const ifname = `eth${index}`;
  // eth0's errors keep the single-NIC wording ("VM vm1: …").
  const where = index === 0 ? `VM ${vmName}` : `VM ${vmName} ${ifname}`;
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(spec.mac)) throw new Error(`${where}: bad MAC ${spec.mac}`);
  const mac = spec.mac.toLowerCase();
  if (taken.macs.has(mac)) throw new Error(`${where}: MAC ${mac} is used twice`);
  taken.macs.add(mac);
  const subnet = subnetNamed(spec.subnet, subnets, where);
  const secondaries = spec.secondaries ?? [];
  for (const ip of [spec.primary, ...secondaries]) {
    if (!inSubnet(ip, subnet.parsed))
      throw new Error(`${where}: ${ip} is not a host address of ${subnet.info.prefix}`);
    if (taken.ips.has(ip)) throw new Error(`${where}: ${ip} is used twice`);
    taken.ips.add(ip);
  }
  const publicIp = spec.publicIp ?? defaultPublicIp(spec.primary);
  requireIpv4(publicIp);
  if (taken.publicIps.has(publicIp)) {
    throw new Error(`${where}: public IP ${publicIp} is used twice (give the NIC its own publicIp)`);
  }
  taken.publicIps.add(publicIp);
  return {
    vmName,
    ifname,
    index,
    mac,
    subnet: subnet.info.prefix,
    prefixLength: subnet.info.prefixLength,
    gateway: subnet.info.gateway,
    primary: spec.primary,
    secondaries: [...secondaries],
    publicIp,
    fabricPort: index === 0 ? `p-${vmName}` : `p-${vmName}-${index}`,
  };
}

/** The subnet `cidr` names (the first one when undefined); refused unless it is one of the VNet's. */
function subnetNamed(cidr: string | undefined, subnets: PlannedSubnet[], where: string): PlannedSubnet {
  if (cidr === undefined) return subnets[0]!;
  const text = parsePrefix(cidr)?.text;
  const subnet = subnets.find((s) => s.info.prefix === text);
  if (subnet === undefined) {
    throw new Error(
      `${where}: subnet ${cidr} is not one of the VNet's (${subnets.map((s) => s.info.prefix).join(", ")})`,
    );
  }
  return subnet;
}
