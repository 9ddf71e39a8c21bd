// Proves the e2e harness is a faithful stand-in for an Azure VNet (azure-platform.md §3) and that its
// private dockerd works, before any plugin test relies on either. Root only.
import { expect } from "chai";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARM_IP, armNicName, nicDocument, startArmInVnet, startAzureEndpoints } from "../helpers/azure-vm.js";
import { FAKE_ARM_API_VERSION, FAKE_MI_TOKEN } from "../helpers/fake-arm.js";
import { FAKE_COMPUTE, type FakeAzureNics } from "../helpers/fake-azure.js";
import { dockerdVersionUnderTest, startDockerd } from "../helpers/dockerd.js";
import type { Dockerd } from "../helpers/dockerd.js";
import { pidAlive, run, runOk } from "../helpers/run.js";
import {
  FABRIC_MAC,
  IMDS_IP,
  INET_HOST_IP,
  ONPREM_HOST_IP,
  WIRESERVER_IP,
  createVnet,
} from "../helpers/vnet.js";
import type { NicSpec, VmSpec, Vnet } from "../helpers/vnet.js";

const VM1 = {
  name: "vm1",
  mac: "00:0d:3a:00:00:01",
  primary: "10.1.0.4",
  secondaries: ["10.1.0.5", "10.1.0.6"],
  publicIp: "198.51.100.4",
};
const VM2 = {
  name: "vm2",
  mac: "00:0d:3a:00:00:02",
  primary: "10.1.0.10",
  secondaries: ["10.1.0.11"],
  publicIp: "198.51.100.10",
};
/** In the subnet but assigned to no NIC. */
const UNASSIGNED_IP = "10.1.0.99";

type IpAddrJson = {
  ifname: string;
  address: string;
  mtu: number;
  addr_info: { local: string; prefixlen: number }[];
};

describe("e2e harness: emulated Azure VNet", function () {
  this.timeout(180_000);
  let vnet: Vnet | undefined;
  let dockerd: Dockerd | undefined;

  const net = (): Vnet => {
    if (vnet === undefined) throw new Error("the VNet was not created (see the before hook's error)");
    return vnet;
  };
  const docker = (): Dockerd => {
    if (dockerd === undefined) throw new Error("dockerd was not started (see the before hook's error)");
    return dockerd;
  };

  before(async function () {
    if (typeof process.getuid !== "function" || process.getuid() !== 0) {
      throw new Error(
        "the e2e harness tests need root (network namespaces, iptables, dockerd): run mocha as root",
      );
    }
    vnet = await createVnet({ vms: [VM1, VM2], subnet: "10.1.0.0/24" });
  });

  after(async function () {
    // Both are idempotent; the last test already calls them, this covers a failure before it.
    await dockerd?.stop();
    await vnet?.teardown();
  });

  /** Adds `ip/32` to vm1's eth0 for the duration of `body`, as a container route would make it usable. */
  async function withVm1Address<T>(ip: string, body: () => Promise<T>): Promise<T> {
    await net().execOk("vm1", ["ip", "addr", "add", `${ip}/32`, "dev", "eth0"]);
    try {
      return await body();
    } finally {
      await net().exec("vm1", ["ip", "addr", "del", `${ip}/32`, "dev", "eth0"]);
    }
  }

  /** Packets vm2 received from `source` (an iptables counting rule in vm2, which is our namespace). */
  const vm2IcmpFrom = (source: string) => icmpReceived(net(), "vm2", source);

  const ping = (from: string, to: string, extra: string[] = []) =>
    net().exec(from, ["busybox", "ping", "-c", "2", "-W", "1", ...extra, to], { timeoutMs: 10_000 });

  describe("layout", function () {
    it("gives each VM an eth0 with its NIC's MAC, primary/prefix, MTU and a default route via the gateway", async function () {
      const addrs = JSON.parse(
        (await net().execOk("vm1", ["ip", "-j", "addr", "show", "dev", "eth0"])).stdout,
      ) as IpAddrJson[];
      expect(addrs[0]?.address).to.equal(VM1.mac);
      expect(addrs[0]?.mtu).to.equal(1500);
      expect(addrs[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).to.include("10.1.0.4/24");
      const routes = (await net().execOk("vm1", ["ip", "route", "show", "default"])).stdout;
      expect(routes).to.match(/^default via 10\.1\.0\.1 dev eth0/);
    });

    it("puts the gateway /32 and MAC 12:34:56:78:9a:bc on the fabric side, with proxy ARP and routes per assigned IP", async function () {
      const port = net().vm("vm1").fabricPort;
      const addrs = JSON.parse(
        (await net().execOk("fabric", ["ip", "-j", "addr", "show", "dev", port])).stdout,
      ) as IpAddrJson[];
      expect(addrs[0]?.address).to.equal(FABRIC_MAC);
      expect(addrs[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).to.deep.equal(["10.1.0.1/32"]);
      const proxyArp = await net().execOk("fabric", ["sysctl", "-n", `net.ipv4.conf.${port}.proxy_arp`]);
      expect(proxyArp.stdout.trim()).to.equal("1");
      const neigh = (await net().execOk("fabric", ["ip", "neigh", "show", "dev", port])).stdout;
      for (const ip of [VM1.primary, ...VM1.secondaries]) {
        expect(neigh).to.include(`${ip} lladdr ${VM1.mac} PERMANENT`);
        const route = (await net().execOk("fabric", ["ip", "route", "get", ip])).stdout;
        expect(route).to.include(`dev ${port}`);
      }
    });

    it("names every namespace with the run's random prefix", function () {
      expect(net().prefix).to.match(/^avn[0-9a-f]{6}$/);
      for (const host of net().hosts)
        expect(net().nsName(host).startsWith(`${net().prefix}-`)).to.equal(true);
      expect(net().nsPath("fabric")).to.equal(`/run/netns/${net().prefix}-fab`);
    });
  });

  describe("routing", function () {
    it("lets vm1 ping vm2 by primary IP", async function () {
      const result = await ping("vm1", VM2.primary);
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      expect(result.stdout).to.include("2 packets received");
    });

    it("routes vm1 to the on-premises host without NAT: it sees vm1's primary and secondary addresses", async function () {
      const listener = await net().startTcpRecorder("onprem", ONPREM_HOST_IP, 8080, "onprem");
      try {
        const viaNc = await net().exec("vm1", ["busybox", "nc", "-w", "3", ONPREM_HOST_IP, "8080"], {
          timeoutMs: 10_000,
        });
        expect(viaNc.stdout.trim(), viaNc.stderr).to.equal(`onprem ${VM1.primary}`);
        const fromSecondary = await withVm1Address("10.1.0.5", () =>
          net().tcpProbe("vm1", ONPREM_HOST_IP, 8080, { source: "10.1.0.5" }),
        );
        expect(fromSecondary).to.include({ connected: true, data: "onprem 10.1.0.5\n" });
        const seen = await listener.waitForConnections(2);
        expect(seen.map((c) => c.remoteAddress)).to.deep.equal([VM1.primary, "10.1.0.5"]);
      } finally {
        await listener.close();
      }
    });

    it("SNATs vm1's primary to its public address on the way to the internet", async function () {
      const listener = await net().startTcpRecorder("inet", INET_HOST_IP, 8080, "inet");
      try {
        const viaNc = await net().exec("vm1", ["busybox", "nc", "-w", "3", INET_HOST_IP, "8080"], {
          timeoutMs: 10_000,
        });
        expect(viaNc.stdout.trim(), viaNc.stderr).to.equal(`inet ${VM1.publicIp}`);
        const seen = await listener.waitForConnections(1);
        expect(seen[0]?.remoteAddress).to.equal(VM1.publicIp);
      } finally {
        await listener.close();
      }
    });

    it("drops internet-bound traffic from a secondary IP", async function () {
      const listener = await net().startTcpRecorder("inet", INET_HOST_IP, 8080, "inet");
      try {
        const probe = await withVm1Address("10.1.0.5", () =>
          net().tcpProbe("vm1", INET_HOST_IP, 8080, { source: "10.1.0.5", timeoutMs: 1_500 }),
        );
        expect(probe.connected).to.equal(false);
        expect(listener.connections).to.have.length(0);
      } finally {
        await listener.close();
      }
    });

    it("DNATs vm1's public address back to its primary for inbound internet traffic", async function () {
      const listener = await net().startTcpRecorder("vm1", VM1.primary, 8081, "vm1");
      try {
        const probe = await net().tcpProbe("inet", VM1.publicIp, 8081);
        expect(probe).to.include({ connected: true, data: `vm1 ${INET_HOST_IP}\n` });
      } finally {
        await listener.close();
      }
    });
  });

  describe("anti-spoofing", function () {
    it("drops a frame with a spoofed source MAC before it reaches vm2, and counts it", async function () {
      // A macvlan gives vm1 a second MAC on the same wire, the way a container bridge without MAC
      // translation would; its IP is one of vm1's own secondaries, so only the MAC is wrong.
      const before = await net().spoofDropCount("vm1");
      const receivedBefore = await vm2IcmpFrom("10.1.0.5");
      await net().execOk("vm1", [
        "ip",
        "link",
        "add",
        "mv0",
        "link",
        "eth0",
        "address",
        "02:00:5e:00:00:99",
        "type",
        "macvlan",
        "mode",
        "bridge",
      ]);
      try {
        await net().execOk("vm1", ["ip", "addr", "add", "10.1.0.5/32", "dev", "mv0"]);
        await net().execOk("vm1", ["ip", "link", "set", "mv0", "up"]);
        const spoofed = await ping("vm1", VM2.primary, ["-I", "mv0"]);
        expect(spoofed.code, spoofed.stdout).to.not.equal(0);
      } finally {
        await net().exec("vm1", ["ip", "link", "del", "mv0"]);
      }
      expect(await vm2IcmpFrom("10.1.0.5")).to.equal(receivedBefore);
      expect(await net().spoofDropCount("vm1")).to.be.at.least(before + 2);

      // Same source IP with the NIC's own MAC goes through: it was the MAC that was refused.
      const genuine = await withVm1Address("10.1.0.5", () => ping("vm1", VM2.primary, ["-I", "10.1.0.5"]));
      expect(genuine.code, genuine.stdout).to.equal(0);
      expect(await vm2IcmpFrom("10.1.0.5")).to.equal(receivedBefore + 2);
    });

    it("drops a packet whose source IP is not assigned to vm1's NIC, and counts it", async function () {
      const before = await net().spoofDropCount("vm1");
      const result = await withVm1Address(UNASSIGNED_IP, () =>
        ping("vm1", VM2.primary, ["-I", UNASSIGNED_IP]),
      );
      expect(result.code, result.stdout).to.not.equal(0);
      expect(await vm2IcmpFrom(UNASSIGNED_IP)).to.equal(0);
      expect(await net().spoofDropCount("vm1")).to.be.at.least(before + 2);
    });

    it("setSecondaries moves route, neighbour entry and whitelist together", async function () {
      const port = net().vm("vm1").fabricPort;
      await net().setSecondaries("vm1", [...VM1.secondaries, UNASSIGNED_IP]);
      try {
        expect(net().vm("vm1").secondaries).to.include(UNASSIGNED_IP);
        expect((await net().execOk("fabric", ["ip", "route", "get", UNASSIGNED_IP])).stdout).to.include(
          `dev ${port}`,
        );
        expect((await net().execOk("fabric", ["ip", "neigh", "show", UNASSIGNED_IP])).stdout).to.include(
          "PERMANENT",
        );
        const dropsBefore = await net().spoofDropCount("vm1");
        const allowed = await withVm1Address(UNASSIGNED_IP, () =>
          ping("vm1", VM2.primary, ["-I", UNASSIGNED_IP]),
        );
        expect(allowed.code, allowed.stdout).to.equal(0);
        expect(await net().spoofDropCount("vm1")).to.equal(dropsBefore);
      } finally {
        await net().setSecondaries("vm1", VM1.secondaries);
      }
      expect(net().vm("vm1").secondaries).to.deep.equal(VM1.secondaries);
      expect(
        (await net().execOk("fabric", ["ip", "route", "show", `${UNASSIGNED_IP}/32`])).stdout.trim(),
      ).to.equal("");
      expect((await net().execOk("fabric", ["ip", "neigh", "show", UNASSIGNED_IP])).stdout.trim()).to.equal(
        "",
      );
      const dropsBefore = await net().spoofDropCount("vm1");
      const refused = await withVm1Address(UNASSIGNED_IP, () =>
        ping("vm1", VM2.primary, ["-I", UNASSIGNED_IP]),
      );
      expect(refused.code).to.not.equal(0);
      expect(await net().spoofDropCount("vm1")).to.be.at.least(dropsBefore + 2);
    });

    it("refuses to give one IP to two NICs", async function () {
      let error: unknown;
      await net()
        .setSecondaries("vm2", ["10.1.0.5"])
        .catch((e: unknown) => (error = e));
      expect(String(error)).to.include("already assigned to vm1");
    });
  });

  describe("Azure service addresses", function () {
    it("lets only vm1's primary IP reach IMDS on port 80", async function () {
      const imds = await net().startTcpRecorder("fabric", IMDS_IP, 80, "imds");
      try {
        expect(await net().tcpProbe("vm1", IMDS_IP, 80)).to.include({
          connected: true,
          data: `imds ${VM1.primary}\n`,
        });
        const fromSecondary = await withVm1Address("10.1.0.5", () =>
          net().tcpProbe("vm1", IMDS_IP, 80, { source: "10.1.0.5", timeoutMs: 1_500 }),
        );
        expect(fromSecondary.connected).to.equal(false);
        expect(imds.connections.map((c) => c.remoteAddress)).to.deep.equal([VM1.primary]);
      } finally {
        await imds.close();
      }
    });

    it("lets any of vm1's addresses reach the wireserver with its own address", async function () {
      const wireserver = await net().startTcpRecorder("fabric", WIRESERVER_IP, 80, "wireserver");
      try {
        const fromSecondary = await withVm1Address("10.1.0.6", () =>
          net().tcpProbe("vm1", WIRESERVER_IP, 80, { source: "10.1.0.6" }),
        );
        expect(fromSecondary).to.include({ connected: true, data: "wireserver 10.1.0.6\n" });
      } finally {
        await wireserver.close();
      }
    });
  });

  describe("private dockerd in vm1", function () {
    let pluginsDir: string;

    before(async function () {
      dockerd = await startDockerd(net(), "vm1");
      pluginsDir = dockerd.pluginsDir;
    });

    it("runs inside vm1's network namespace", async function () {
      const own = await runOk("readlink", [`/proc/${docker().pid}/ns/net`]);
      const vm1 = await net().execOk("vm1", ["readlink", "/proc/self/ns/net"]);
      expect(own.stdout.trim()).to.equal(vm1.stdout.trim());
      // docker0 lives in vm1, not on the machine.
      expect((await net().execOk("vm1", ["ip", "-br", "link", "show", "docker0"])).stdout).to.include(
        "docker0",
      );
    });

    it("is the dockerd version under test (E2E_DOCKERD)", async function () {
      const version = (await docker().dockerOk(["version", "--format", "{{.Server.Version}}"])).stdout.trim();
      expect(version.startsWith(`${dockerdVersionUnderTest()}.`), version).to.equal(true);
    });

    it("imports busybox:local and runs a container", async function () {
      const d = docker();
      await d.importBusybox();
      const result = await d.docker(["run", "--rm", "busybox:local", "echo", "hi"]);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.equal("hi\n");
    });

    it("sees pluginsDir as /run/docker/plugins, in its own mount namespace only", async function () {
      const d = docker();
      await writeFile(join(pluginsDir, "azure-marker.spec"), "unix:///nowhere.sock\n");
      const inside = await runOk("nsenter", [
        `--target=${d.pid}`,
        "--mount",
        "--",
        "ls",
        "/run/docker/plugins",
      ]);
      expect(inside.stdout.split("\n")).to.include("azure-marker.spec");
      const outside = existsSync("/run/docker/plugins") ? readdirSync("/run/docker/plugins") : [];
      expect(outside).to.not.include("azure-marker.spec");
    });

    it("sends container traffic out as vm1 (MASQUERADE to the primary, then the public IP)", async function () {
      const listener = await net().startTcpRecorder("inet", INET_HOST_IP, 8080, "inet");
      try {
        const result = await docker().docker([
          "run",
          "--rm",
          "busybox:local",
          "nc",
          "-w",
          "3",
          INET_HOST_IP,
          "8080",
        ]);
        expect(result.stdout.trim(), result.stderr).to.equal(`inet ${VM1.publicIp}`);
      } finally {
        await listener.close();
      }
    });
  });

  describe("teardown", function () {
    it("removes every namespace of the run and the dockerd, and can be called again", async function () {
      const v = net();
      const d = dockerd;
      await v.teardown();
      const left = (await runOk("ip", ["netns", "list"])).stdout;
      expect(left).to.not.include(v.prefix);
      for (const host of v.hosts) expect(existsSync(v.nsPath(host))).to.equal(false);
      if (d !== undefined) {
        expect(pidAlive(d.pid)).to.equal(false);
        expect(existsSync(d.dir)).to.equal(false);
        expect(processesMentioning(d.dir)).to.deep.equal([]);
        await d.stop();
      }
      await v.teardown();
      expect((await run("ip", ["netns", "list"])).stdout).to.not.include(v.prefix);
    });
  });
});

/** Pids whose command line mentions `text`, e.g. a dockerd temp dir: containerd, shims. */
function processesMentioning(text: string): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, "utf8").includes(text) && pidAlive(Number(e));
      } catch {
        return false;
      }
    })
    .map(Number);
}

// ---------------------------------------------------------------------------------------------------
// More than one NIC (issue 15): what the product must cope with, proven on the harness alone. vm1 has
// eth0 in subnet 1 and eth1 in subnet 2; a peer VM sits in each subnet. Without extra routing, vm1's
// replies from eth1's address follow the default route out of eth0, and the fabric drops them.

const SUBNET1 = "10.1.0.0/24";
const SUBNET2 = "10.1.1.0/24";
const GATEWAY1 = "10.1.0.1";
const GATEWAY2 = "10.1.1.1";
const TWO_SUBNET_VM1: VmSpec = {
  name: "vm1",
  mac: "00:0d:3a:00:01:01",
  primary: "10.1.0.4",
  secondaries: ["10.1.0.5"],
  publicIp: "198.51.100.4",
  extraNics: [
    {
      mac: "00:0d:3a:00:01:02",
      subnet: SUBNET2,
      primary: "10.1.1.4",
      secondaries: ["10.1.1.5", "10.1.1.6"],
      publicIp: "198.51.100.104",
    },
  ],
};
const ETH1 = TWO_SUBNET_VM1.extraNics![0]!;
/** The peer VM in subnet 1. */
const PEER1: VmSpec = {
  name: "peer1",
  mac: "00:0d:3a:00:01:10",
  primary: "10.1.0.10",
  publicIp: "198.51.100.10",
};
/** The peer VM in subnet 2: its only NIC, eth0, is there. */
const PEER2: VmSpec = {
  name: "peer2",
  mac: "00:0d:3a:00:01:20",
  subnet: SUBNET2,
  primary: "10.1.1.10",
  publicIp: "198.51.100.110",
};
/** The routing table the tests' manual policy routes use. */
const POLICY_TABLE = "100";

/** Packets `host` received from `source` (an iptables counting rule in `host`, one of our namespaces). */
async function icmpReceived(vnet: Vnet, host: string, source: string): Promise<number> {
  const rule = ["INPUT", "-s", `${source}/32`, "-p", "icmp", "-m", "comment", "--comment", "avn-test-count"];
  if ((await vnet.exec(host, ["iptables", "-w", "-C", ...rule])).code !== 0)
    await vnet.execOk(host, ["iptables", "-w", "-A", ...rule]);
  const listing = await vnet.execOk(host, ["iptables", "-w", "-L", "INPUT", "-n", "-v", "-x"]);
  const line = listing.stdout.split("\n").find((l) => l.includes(source) && l.includes("avn-test-count"));
  return Number(line?.trim().split(/\s+/)[0] ?? NaN);
}

/**
 * Runs `body` with the policy route a multi-NIC host needs for `source` (what the product will have to
 * set up): `ip rule add from <source> table 100; ip route add default via <gateway> dev <dev> table 100`.
 * Undone afterwards, and checked to be gone.
 */
async function withPolicyRoute<T>(
  vnet: Vnet,
  vm: string,
  route: { source: string; gateway: string; dev: string },
  body: () => Promise<T>,
): Promise<T> {
  const rule = ["from", route.source, "table", POLICY_TABLE];
  await vnet.execOk(vm, ["ip", "rule", "add", ...rule]);
  try {
    await vnet.execOk(vm, [
      "ip",
      "route",
      "add",
      "default",
      "via",
      route.gateway,
      "dev",
      route.dev,
      "table",
      POLICY_TABLE,
    ]);
    return await body();
  } finally {
    await vnet.exec(vm, ["ip", "route", "flush", "table", POLICY_TABLE]);
    await vnet.exec(vm, ["ip", "rule", "del", ...rule]);
    expect((await vnet.execOk(vm, ["ip", "rule", "show"])).stdout).to.not.include(`lookup ${POLICY_TABLE}`);
  }
}

/** Adds `ip/32` to `dev` in `vm` for the duration of `body`, as a container's address would be usable. */
async function withAddress<T>(
  vnet: Vnet,
  vm: string,
  ip: string,
  dev: string,
  body: () => Promise<T>,
): Promise<T> {
  await vnet.execOk(vm, ["ip", "addr", "add", `${ip}/32`, "dev", dev]);
  try {
    return await body();
  } finally {
    await vnet.exec(vm, ["ip", "addr", "del", `${ip}/32`, "dev", dev]);
  }
}

/** One `busybox ping` from `host` (from address or interface `source`); a lost one costs a second. */
function pingFrom(vnet: Vnet, host: string, to: string, options: { source?: string } = {}) {
  const source = options.source ? ["-I", options.source] : [];
  return vnet.exec(host, ["busybox", "ping", "-c", "1", "-W", "1", ...source, to], { timeoutMs: 10_000 });
}

/** A link's IPv4 addresses as "address/length" (the kernel adds an IPv6 link-local one to every NIC). */
function ipv4Of(link: IpAddrJson): string[] {
  return link.addr_info.filter((a) => !a.local.includes(":")).map((a) => `${a.local}/${a.prefixlen}`);
}

/** `ip -j addr show dev <dev>` in `host`. */
async function linkOf(vnet: Vnet, host: string, dev: string): Promise<IpAddrJson & { operstate: string }> {
  const parsed = JSON.parse(
    (await vnet.execOk(host, ["ip", "-j", "addr", "show", "dev", dev])).stdout,
  ) as (IpAddrJson & {
    operstate: string;
  })[];
  return parsed[0]!;
}

/** The body of an HTTP/1.0 exchange made with tcpProbe from `host`. */
async function httpGetFrom(
  vnet: Vnet,
  host: string,
  ip: string,
  path: string,
  headers = "",
): Promise<string> {
  const probe = await vnet.tcpProbe(host, ip, 80, { payload: `GET ${path} HTTP/1.0\r\n${headers}\r\n` });
  expect(probe.connected, probe.error).to.equal(true);
  const [head = "", body = ""] = probe.data.split("\r\n\r\n");
  expect(head).to.match(/^HTTP\/1\.[01] 200/);
  return body;
}

/** Leaves no namespace of the run, no link with one of the MACs in the machine's namespace. */
async function expectNothingLeft(vnet: Vnet, macs: string[]): Promise<void> {
  await vnet.teardown();
  expect((await runOk("ip", ["netns", "list"])).stdout).to.not.include(vnet.prefix);
  for (const host of vnet.hosts) expect(existsSync(vnet.nsPath(host))).to.equal(false);
  const links = (await runOk("ip", ["-o", "link", "show"])).stdout;
  for (const mac of macs) expect(links).to.not.include(mac);
  await vnet.teardown();
}

describe("e2e harness: a VM with NICs in two subnets", function () {
  this.timeout(60_000);
  let vnet: Vnet | undefined;
  let dir: string | undefined;

  const net = (): Vnet => {
    if (vnet === undefined) throw new Error("the VNet was not created (see the before hook's error)");
    return vnet;
  };

  before(async function () {
    if (process.getuid?.() !== 0) throw new Error("the e2e harness tests need root: run mocha as root");
    vnet = await createVnet({
      vms: [TWO_SUBNET_VM1, PEER1, PEER2],
      subnet: SUBNET1,
      extraSubnets: [SUBNET2],
    });
    dir = await mkdtemp(join(tmpdir(), "avn-nics-"));
  });

  after(async function () {
    await vnet?.teardown();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  describe("layout", function () {
    it("describes the subnets, each with its first host as gateway, and vm1's NICs eth0 first", function () {
      expect(net().subnets).to.deep.equal([
        { prefix: SUBNET1, prefixLength: 24, gateway: GATEWAY1 },
        { prefix: SUBNET2, prefixLength: 24, gateway: GATEWAY2 },
      ]);
      const vm1 = net().vm("vm1");
      expect(
        vm1.nics.map((n) => [n.ifname, n.mac, n.subnet, n.gateway, n.primary, n.fabricPort]),
      ).to.deep.equal([
        ["eth0", TWO_SUBNET_VM1.mac, SUBNET1, GATEWAY1, "10.1.0.4", "p-vm1"],
        ["eth1", ETH1.mac, SUBNET2, GATEWAY2, "10.1.1.4", "p-vm1-1"],
      ]);
      // The top-level fields stay eth0's, as for a one-NIC VM.
      expect(vm1).to.deep.include({ mac: TWO_SUBNET_VM1.mac, primary: "10.1.0.4", fabricPort: "p-vm1" });
      expect(net().nic("vm1", "eth1")).to.deep.include({
        secondaries: ETH1.secondaries,
        publicIp: ETH1.publicIp,
      });
      expect(net().nicOwning("10.1.1.6")?.ifname).to.equal("eth1");
      expect(net().vm("peer2")).to.deep.include({ subnet: SUBNET2, gateway: GATEWAY2 });
    });

    it("gives vm1 an eth1 with its MAC and primary, up, with only its connected route: the one default route is eth0's", async function () {
      const eth1 = await linkOf(net(), "vm1", "eth1");
      expect(eth1.address).to.equal(ETH1.mac);
      expect(eth1.operstate).to.equal("UP");
      expect(ipv4Of(eth1)).to.deep.equal(["10.1.1.4/24"]);
      const defaults = (await net().execOk("vm1", ["ip", "route", "show", "default"])).stdout.trim();
      expect(defaults).to.equal(`default via ${GATEWAY1} dev eth0`);
      const onEth1 = (await net().execOk("vm1", ["ip", "route", "show", "dev", "eth1"])).stdout.trim();
      expect(onEth1).to.equal("10.1.1.0/24 proto kernel scope link src 10.1.1.4");
      const peer2 = (await net().execOk("peer2", ["ip", "route", "show", "default"])).stdout.trim();
      expect(peer2).to.equal(`default via ${GATEWAY2} dev eth0`);
    });

    it("gives eth1 its own fabric port with subnet 2's gateway, the fabric MAC, and a route and permanent neighbour per address", async function () {
      const port = net().nic("vm1", "eth1").fabricPort;
      const fabricEnd = await linkOf(net(), "fabric", port);
      expect(fabricEnd.address).to.equal(FABRIC_MAC);
      expect(fabricEnd.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).to.deep.equal([`${GATEWAY2}/32`]);
      const neigh = (await net().execOk("fabric", ["ip", "neigh", "show", "dev", port])).stdout;
      for (const ip of [ETH1.primary, ...ETH1.secondaries!]) {
        expect(neigh).to.include(`${ip} lladdr ${ETH1.mac} PERMANENT`);
        expect((await net().execOk("fabric", ["ip", "route", "get", ip])).stdout).to.include(`dev ${port}`);
      }
    });

    it("answers ARP for subnet 2's gateway on eth1 with the fabric MAC", async function () {
      await net().execOk("vm1", ["ip", "neigh", "flush", "dev", "eth1"]);
      const result = await pingFrom(net(), "vm1", GATEWAY2);
      expect(result.code, result.stdout).to.equal(0);
      const neigh = (await net().execOk("vm1", ["ip", "neigh", "show", GATEWAY2, "dev", "eth1"])).stdout;
      expect(neigh).to.include(`lladdr ${FABRIC_MAC}`);
    });
  });

  describe("routing per NIC", function () {
    it("lets the peer in subnet 2 reach vm1's eth1 primary, answered through eth1", async function () {
      const dropsBefore = await net().spoofDropCount("vm1");
      const listener = await net().startTcpRecorder("vm1", ETH1.primary, 8080, "vm1");
      try {
        const probe = await net().tcpProbe("peer2", ETH1.primary, 8080);
        expect(probe).to.include({ connected: true, data: `vm1 ${PEER2.primary}\n` });
      } finally {
        await listener.close();
      }
      expect(await net().spoofDropCount("vm1")).to.equal(dropsBefore);
    });

    it("lets vm1 reach the peer in each subnet through the NIC in that subnet, with that NIC's primary", async function () {
      for (const [peer, expected] of [
        [PEER1, TWO_SUBNET_VM1.primary],
        [PEER2, ETH1.primary],
      ] as const) {
        const listener = await net().startTcpRecorder(peer.name, peer.primary, 8080, peer.name);
        try {
          expect(await net().tcpProbe("vm1", peer.primary, 8080)).to.include({
            connected: true,
            data: `${peer.name} ${expected}\n`,
          });
        } finally {
          await listener.close();
        }
      }
    });

    it("drops what vm1 sends from eth1's address out of eth0 (the default route), and counts it on eth0", async function () {
      const eth0Before = await net().spoofDropCount("vm1", "eth0");
      const eth1Before = await net().spoofDropCount("vm1", "eth1");
      // The asymmetric-routing failure itself: peer1's SYN reaches eth1, the SYN-ACK leaves through eth0.
      const listener = await net().startTcpRecorder("vm1", ETH1.primary, 8081, "vm1");
      try {
        // Each of these loses its first packet at the fabric, so they wait out their timeouts together.
        const [ping, fromPeer, toInternet] = await Promise.all([
          pingFrom(net(), "vm1", PEER1.primary, { source: ETH1.primary }),
          net().tcpProbe("peer1", ETH1.primary, 8081, { timeoutMs: 1_200 }),
          net().tcpProbe("vm1", INET_HOST_IP, 8080, { source: ETH1.primary, timeoutMs: 1_200 }),
        ]);
        expect(ping.code, ping.stdout).to.not.equal(0);
        expect(fromPeer).to.include({ connected: false, error: "timeout" });
        // A timeout, not a refusal: nothing reached the internet host, which would have reset it.
        expect(toInternet).to.include({ connected: false, error: "timeout" });
      } finally {
        await listener.close();
      }
      expect(await icmpReceived(net(), "peer1", ETH1.primary)).to.equal(0);
      expect(await net().spoofDropCount("vm1", "eth0")).to.be.at.least(eth0Before + 3);
      expect(await net().spoofDropCount("vm1", "eth1")).to.equal(eth1Before);
    });

    it("drops what vm1 sends from eth0's address out of eth1, and a frame on eth1 with another MAC, counted on eth1", async function () {
      const before = await net().spoofDropCount("vm1", "eth1");
      await net().execOk("vm1", [
        "ip",
        "link",
        "add",
        "mv1",
        "link",
        "eth1",
        "address",
        "02:00:5e:00:01:99",
        "type",
        "macvlan",
        "mode",
        "bridge",
      ]);
      try {
        // mv1 is a second MAC on eth1's wire carrying one of eth1's own addresses: only the MAC is wrong.
        await net().execOk("vm1", ["ip", "addr", "add", "10.1.1.5/32", "dev", "mv1"]);
        await net().execOk("vm1", ["ip", "link", "set", "mv1", "up"]);
        const [wrongNic, wrongMac] = await Promise.all([
          // 10.1.1.0/24 is eth1's connected route: the kernel sends this with eth0's address out of eth1.
          pingFrom(net(), "vm1", PEER2.primary, { source: TWO_SUBNET_VM1.primary }),
          pingFrom(net(), "vm1", PEER2.primary, { source: "mv1" }),
        ]);
        expect(wrongNic.code, wrongNic.stdout).to.not.equal(0);
        expect(wrongMac.code, wrongMac.stdout).to.not.equal(0);
      } finally {
        await net().exec("vm1", ["ip", "link", "del", "mv1"]);
      }
      expect(await icmpReceived(net(), "peer2", TWO_SUBNET_VM1.primary)).to.equal(0);
      expect(await icmpReceived(net(), "peer2", "10.1.1.5")).to.equal(0);
      expect(await net().spoofDropCount("vm1", "eth1")).to.be.at.least(before + 2);
    });

    it("with a policy route for eth1's address, vm1 answers through eth1: the internet sees eth1's public IP, the peer in subnet 1 and on-premises get replies", async function () {
      const dropsBefore = await net().spoofDropCount("vm1");
      await withPolicyRoute(
        net(),
        "vm1",
        { source: ETH1.primary, gateway: GATEWAY2, dev: "eth1" },
        async () => {
          const inet = await net().startTcpRecorder("inet", INET_HOST_IP, 8080, "inet");
          try {
            const out = await net().tcpProbe("vm1", INET_HOST_IP, 8080, { source: ETH1.primary });
            expect(out).to.include({ connected: true, data: `inet ${ETH1.publicIp}\n` });
          } finally {
            await inet.close();
          }
          const listener = await net().startTcpRecorder("vm1", ETH1.primary, 8082, "vm1");
          try {
            expect(await net().tcpProbe("peer1", ETH1.primary, 8082)).to.include({
              connected: true,
              data: `vm1 ${PEER1.primary}\n`,
            });
            expect(await net().tcpProbe("onprem", ETH1.primary, 8082)).to.include({
              connected: true,
              data: `vm1 ${ONPREM_HOST_IP}\n`,
            });
            // Inbound at eth1's public address: DNAT to eth1's primary, the answer SNAT'd back.
            expect(await net().tcpProbe("inet", ETH1.publicIp!, 8082)).to.include({
              connected: true,
              data: `vm1 ${INET_HOST_IP}\n`,
            });
          } finally {
            await listener.close();
          }
          const ping = await pingFrom(net(), "vm1", PEER1.primary, { source: ETH1.primary });
          expect(ping.code, ping.stdout).to.equal(0);
        },
      );
      expect(await net().spoofDropCount("vm1")).to.equal(dropsBefore);
    });

    it("routes the on-premises host to every subnet without NAT", async function () {
      for (const peer of [PEER1, PEER2]) {
        const listener = await net().startTcpRecorder(peer.name, peer.primary, 8080, peer.name);
        try {
          expect(await net().tcpProbe("onprem", peer.primary, 8080)).to.include({
            connected: true,
            data: `${peer.name} ${ONPREM_HOST_IP}\n`,
          });
        } finally {
          await listener.close();
        }
      }
      const onprem = await net().startTcpRecorder("onprem", ONPREM_HOST_IP, 8080, "onprem");
      try {
        expect(await net().tcpProbe("peer2", ONPREM_HOST_IP, 8080)).to.include({
          connected: true,
          data: `onprem ${PEER2.primary}\n`,
        });
      } finally {
        await onprem.close();
      }
    });
  });

  describe("changing eth1", function () {
    it("setSecondaries on eth1 moves route, neighbour entry and eth1's whitelist, and leaves eth0 alone", async function () {
      const port = net().nic("vm1", "eth1").fabricPort;
      await net().setSecondaries("vm1", ["10.1.1.5", "10.1.1.7"], "eth1");
      try {
        expect(net().nic("vm1", "eth1").secondaries).to.deep.equal(["10.1.1.5", "10.1.1.7"]);
        expect(net().vm("vm1").secondaries).to.deep.equal(TWO_SUBNET_VM1.secondaries);
        expect((await net().execOk("fabric", ["ip", "route", "get", "10.1.1.7"])).stdout).to.include(
          `dev ${port}`,
        );
        expect((await net().execOk("fabric", ["ip", "neigh", "show", "10.1.1.6"])).stdout.trim()).to.equal(
          "",
        );
        const before = await net().spoofDropCount("vm1", "eth1");
        const ping = await withAddress(net(), "vm1", "10.1.1.7", "eth1", () =>
          pingFrom(net(), "vm1", PEER2.primary, { source: "10.1.1.7" }),
        );
        expect(ping.code, ping.stdout).to.equal(0);
        expect(await net().spoofDropCount("vm1", "eth1")).to.equal(before);
      } finally {
        await net().setSecondaries("vm1", ETH1.secondaries!, "eth1");
      }
      expect(net().nic("vm1", "eth1").secondaries).to.have.members(ETH1.secondaries!);
      expect((await net().execOk("fabric", ["ip", "route", "show", "10.1.1.7/32"])).stdout.trim()).to.equal(
        "",
      );
    });

    it("refuses secondaries outside the NIC's subnet, held by another NIC, or for a NIC the VM lacks", async function () {
      const refusal = (promise: Promise<unknown>) =>
        promise.then(
          () => "accepted",
          (e: unknown) => String(e),
        );
      expect(await refusal(net().setSecondaries("vm1", ["10.1.0.50"], "eth1"))).to.include(
        "10.1.0.50 is not a host address of 10.1.1.0/24",
      );
      expect(await refusal(net().setSecondaries("peer2", ["10.1.1.5"]))).to.include(
        "already assigned to vm1 eth1",
      );
      expect(await refusal(net().setSecondaries("vm1", [], "eth2"))).to.include("has no NIC");
      expect(net().nic("vm1", "eth1").secondaries).to.have.members(ETH1.secondaries!);
    });

    it("setPublicIp gives an eth1 secondary its own public address on the way out", async function () {
      await net().setPublicIp("10.1.1.5", "198.51.100.205");
      try {
        const seen = await withAddress(net(), "vm1", "10.1.1.5", "eth1", () =>
          withPolicyRoute(net(), "vm1", { source: "10.1.1.5", gateway: GATEWAY2, dev: "eth1" }, async () => {
            const inet = await net().startTcpRecorder("inet", INET_HOST_IP, 8080, "inet");
            try {
              return await net().tcpProbe("vm1", INET_HOST_IP, 8080, { source: "10.1.1.5" });
            } finally {
              await inet.close();
            }
          }),
        );
        expect(seen).to.include({ connected: true, data: "inet 198.51.100.205\n" });
      } finally {
        await net().setPublicIp("10.1.1.5", undefined);
      }
      expect(net().publicIpAssociations).to.deep.equal({});
    });
  });

  describe("what the plugin is told", function () {
    it("IMDS and the wireserver list both NICs, eth0 first, each with its MAC, subnet, primary and secondaries", async function () {
      await startAzureEndpoints(net(), "vm1", dir!);
      const imds = JSON.parse(
        await httpGetFrom(
          net(),
          "vm1",
          IMDS_IP,
          "/metadata/instance/network?api-version=2021-02-01",
          "Metadata: true\r\n",
        ),
      ) as {
        interface: {
          macAddress: string;
          ipv4: { ipAddress: { privateIpAddress: string }[]; subnet: unknown[] };
        }[];
      };
      expect(
        imds.interface.map((nic) => [
          nic.macAddress,
          nic.ipv4.subnet,
          nic.ipv4.ipAddress.map((a) => a.privateIpAddress),
        ]),
      ).to.deep.equal([
        ["000D3A000101", [{ address: "10.1.0.0", prefix: "24" }], ["10.1.0.4", "10.1.0.5"]],
        ["000D3A000102", [{ address: "10.1.1.0", prefix: "24" }], ["10.1.1.4", "10.1.1.5", "10.1.1.6"]],
      ]);
      const xml = await httpGetFrom(
        net(),
        "vm1",
        WIRESERVER_IP,
        "/machine/plugins?comp=nmagent&type=getinterfaceinfov1",
      );
      expect(xml).to.include(
        '<Interface MacAddress="000D3A000101" IsPrimary="true"><IPSubnet Prefix="10.1.0.0/24"><IPAddress Address="10.1.0.4" IsPrimary="true"/>',
      );
      expect(xml).to.include(
        '<Interface MacAddress="000D3A000102" IsPrimary="false"><IPSubnet Prefix="10.1.1.0/24"><IPAddress Address="10.1.1.4" IsPrimary="true"/><IPAddress Address="10.1.1.5" IsPrimary="false"/>',
      );
    });

    it("ARM has each NIC as its own resource in its subnet, and an ARM change to eth1 moves eth1's addresses in the fabric and IMDS", async function () {
      const nicsFile = join(dir!, "nics.json");
      const updateNics = () => writeFile(nicsFile, JSON.stringify(nicDocument(net(), "vm1")));
      const { arm, pluginArgs } = await startArmInVnet(net(), dir!, updateNics);
      const eth1Name = armNicName(net().nic("vm1", "eth1"));
      expect(eth1Name).to.equal("vm1-nic-eth1");
      expect(arm.nic("vm1-nic")).to.deep.include({ mac: TWO_SUBNET_VM1.mac });
      expect(arm.nic("vm1-nic").ipConfigurations.map((c) => c.privateIp)).to.deep.equal([
        "10.1.0.4",
        "10.1.0.5",
      ]);
      expect(arm.nic(eth1Name)).to.deep.include({ mac: ETH1.mac, subnet: "subnet2", vmName: "vm1" });
      expect(arm.nic(eth1Name).ipConfigurations.map((c) => c.privateIp)).to.deep.equal([
        "10.1.1.4",
        "10.1.1.5",
        "10.1.1.6",
      ]);
      expect(arm.nic("peer2-nic").subnet).to.equal("subnet2");

      const client = armClient(join(dir!, "arm.sock"), pluginArgs[pluginArgs.indexOf("--arm-ca-file") + 1]!);
      const path = `/subscriptions/${FAKE_COMPUTE.subscriptionId}/resourceGroups/${FAKE_COMPUTE.resourceGroupName}/providers/Microsoft.Network/networkInterfaces/${eth1Name}`;
      const nic = (await client.call("GET", path)).body as {
        properties: { ipConfigurations: { name: string; properties: { subnet: { id: string } } }[] };
      };
      const subnetId = nic.properties.ipConfigurations[0]!.properties.subnet.id;
      expect(subnetId).to.match(/\/virtualNetworks\/vnet\/subnets\/subnet2$/);
      const original = structuredClone(nic);
      nic.properties.ipConfigurations.push({ name: "extra", properties: { subnet: { id: subnetId } } });
      await client.putAndWait(path, nic);
      try {
        // .4-.6 are vm1's, .10 peer2's: ARM hands out .7, in subnet 2.
        expect(net().nic("vm1", "eth1").secondaries).to.include("10.1.1.7");
        expect(net().vm("vm1").secondaries).to.deep.equal(TWO_SUBNET_VM1.secondaries);
        const port = net().nic("vm1", "eth1").fabricPort;
        expect((await net().execOk("fabric", ["ip", "route", "get", "10.1.1.7"])).stdout).to.include(
          `dev ${port}`,
        );
        const written = JSON.parse(await readFile(nicsFile, "utf8")) as FakeAzureNics;
        expect(written.interfaces[1]?.subnets[0]?.secondaryAddresses).to.include("10.1.1.7");
      } finally {
        const current = (await client.call("GET", path)).body as { etag: string };
        await client.putAndWait(path, { ...original, etag: current.etag });
      }
      expect(net().nic("vm1", "eth1").secondaries).to.have.members(ETH1.secondaries!);
    });
  });

  describe("teardown", function () {
    it("leaves no namespace, no link and no stand-in process behind", async function () {
      await expectNothingLeft(net(), [TWO_SUBNET_VM1.mac, ETH1.mac, PEER1.mac, PEER2.mac]);
      expect(processesMentioning(dir!)).to.deep.equal([]);
    });
  });
});

/** A minimal client of the ARM stand-in, over its unix socket with the test CA (the SDK's calls, by hand). */
function armClient(socketPath: string, caFile: string) {
  const ca = readFileSync(caFile, "utf8");
  const call = (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: unknown }>(
      (resolve, reject) => {
        const separator = path.includes("?") ? "&" : "?";
        const request = https.request(
          {
            socketPath,
            host: ARM_IP,
            method,
            path: path.includes("api-version=")
              ? path
              : `${path}${separator}api-version=${FAKE_ARM_API_VERSION}`,
            ca,
            headers: { Authorization: `Bearer ${FAKE_MI_TOKEN}`, "Content-Type": "application/json" },
          },
          (response) => {
            const chunks: Buffer[] = [];
            response.on("data", (chunk: Buffer) => chunks.push(chunk));
            response.on("end", () => {
              const text = Buffer.concat(chunks).toString();
              resolve({
                status: response.statusCode ?? 0,
                headers: response.headers,
                body: text ? JSON.parse(text) : undefined,
              });
            });
          },
        );
        request.on("error", reject);
        request.end(body === undefined ? undefined : JSON.stringify(body));
      },
    );
  return {
    call,
    /** PUTs the NIC and polls its operation until it is no longer InProgress; throws unless it succeeded. */
    async putAndWait(path: string, body: unknown): Promise<void> {
      const put = await call("PUT", path, body);
      expect(put.status, JSON.stringify(put.body)).to.be.oneOf([200, 201]);
      const operation = new URL(String(put.headers["azure-asyncoperation"]));
      for (let poll = 0; poll < 10; poll++) {
        const status = (await call("GET", operation.pathname + operation.search)).body as { status: string };
        if (status.status === "Succeeded") return;
        if (status.status !== "InProgress")
          throw new Error(`the ARM operation ended ${JSON.stringify(status)}`);
      }
      throw new Error("the ARM operation did not finish");
    },
  };
}

describe("e2e harness: a VM with two NICs in one subnet", function () {
  this.timeout(60_000);
  const VM1: VmSpec = {
    name: "vm1",
    mac: "00:0d:3a:00:02:01",
    primary: "10.1.0.4",
    secondaries: ["10.1.0.5"],
    publicIp: "198.51.100.4",
    extraNics: [
      {
        mac: "00:0d:3a:00:02:02",
        primary: "10.1.0.20",
        secondaries: ["10.1.0.21"],
        publicIp: "198.51.100.20",
      },
    ],
  };
  const SECOND = VM1.extraNics![0]!;
  const PEER: VmSpec = {
    name: "peer1",
    mac: "00:0d:3a:00:02:10",
    primary: "10.1.0.10",
    publicIp: "198.51.100.10",
  };
  let vnet: Vnet | undefined;

  const net = (): Vnet => {
    if (vnet === undefined) throw new Error("the VNet was not created (see the before hook's error)");
    return vnet;
  };

  before(async function () {
    if (process.getuid?.() !== 0) throw new Error("the e2e harness tests need root: run mocha as root");
    vnet = await createVnet({ vms: [VM1, PEER] });
  });

  after(async function () {
    await vnet?.teardown();
  });

  it("puts eth1 in the same subnet: a second connected route, no second default route, the same gateway on its own fabric port", async function () {
    const eth1 = await linkOf(net(), "vm1", "eth1");
    expect(eth1.address).to.equal(SECOND.mac);
    expect(ipv4Of(eth1)).to.deep.equal(["10.1.0.20/24"]);
    const routes = (await net().execOk("vm1", ["ip", "route", "show"])).stdout.trim().split("\n");
    expect(routes.map((r) => r.trim())).to.deep.equal([
      `default via ${GATEWAY1} dev eth0`,
      "10.1.0.0/24 dev eth0 proto kernel scope link src 10.1.0.4",
      "10.1.0.0/24 dev eth1 proto kernel scope link src 10.1.0.20",
    ]);
    const port = net().nic("vm1", "eth1").fabricPort;
    expect(port).to.equal("p-vm1-1");
    const fabricEnd = await linkOf(net(), "fabric", port);
    expect(fabricEnd.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).to.deep.equal([`${GATEWAY1}/32`]);
    for (const ip of [SECOND.primary, ...SECOND.secondaries!])
      expect((await net().execOk("fabric", ["ip", "route", "get", ip])).stdout).to.include(`dev ${port}`);
  });

  it("drops the replies from eth1's address, which leave through eth0 (the first connected route), counting them on eth0", async function () {
    const eth0Before = await net().spoofDropCount("vm1", "eth0");
    const eth1Before = await net().spoofDropCount("vm1", "eth1");
    const ping = await pingFrom(net(), "peer1", SECOND.primary);
    expect(ping.code, ping.stdout).to.not.equal(0);
    expect(await net().spoofDropCount("vm1", "eth0")).to.be.at.least(eth0Before + 1);
    expect(await net().spoofDropCount("vm1", "eth1")).to.equal(eth1Before);
  });

  it("with a policy route via eth1, the peer gets replies from eth1's address and the internet sees eth1's public IP", async function () {
    const dropsBefore = await net().spoofDropCount("vm1");
    await withPolicyRoute(
      net(),
      "vm1",
      { source: SECOND.primary, gateway: GATEWAY1, dev: "eth1" },
      async () => {
        const ping = await pingFrom(net(), "peer1", SECOND.primary);
        expect(ping.code, ping.stdout).to.equal(0);
        const inet = await net().startTcpRecorder("inet", INET_HOST_IP, 8080, "inet");
        try {
          expect(await net().tcpProbe("vm1", INET_HOST_IP, 8080, { source: SECOND.primary })).to.include({
            connected: true,
            data: `inet ${SECOND.publicIp}\n`,
          });
        } finally {
          await inet.close();
        }
      },
    );
    expect(await net().spoofDropCount("vm1")).to.equal(dropsBefore);
  });

  it("keeps each address on one NIC: setSecondaries refuses eth0's secondary for eth1", async function () {
    const error = await net()
      .setSecondaries("vm1", ["10.1.0.5"], "eth1")
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(String(error)).to.include("10.1.0.5 is already assigned to vm1 eth0");
    await net().setSecondaries("vm1", [...SECOND.secondaries!, "10.1.0.22"], "eth1");
    try {
      const route = (await net().execOk("fabric", ["ip", "route", "get", "10.1.0.22"])).stdout;
      expect(route).to.include(`dev ${net().nic("vm1", "eth1").fabricPort}`);
    } finally {
      await net().setSecondaries("vm1", SECOND.secondaries!, "eth1");
    }
  });

  it("describes both NICs to the plugin, in the same subnet, eth0 first", function () {
    expect(nicDocument(net(), "vm1").interfaces).to.deep.equal([
      {
        macAddress: VM1.mac,
        primary: true,
        subnets: [{ prefix: SUBNET1, primaryAddress: "10.1.0.4", secondaryAddresses: ["10.1.0.5"] }],
      },
      {
        macAddress: SECOND.mac,
        primary: false,
        subnets: [{ prefix: SUBNET1, primaryAddress: "10.1.0.20", secondaryAddresses: ["10.1.0.21"] }],
      },
    ]);
  });

  it("teardown leaves no namespace and no link behind", async function () {
    await expectNothingLeft(net(), [VM1.mac, SECOND.mac, PEER.mac]);
  });
});

describe("e2e harness: VNet validation for several NICs and subnets", function () {
  const refusal = (options: Parameters<typeof createVnet>[0]) =>
    createVnet(options).then(
      async (vnet) => {
        await vnet.teardown();
        return "accepted";
      },
      (e: unknown) => String(e),
    );
  const eth1 = (spec: Partial<NicSpec>): VmSpec => ({
    ...PEER1,
    name: "vm1",
    extraNics: [{ ...ETH1, ...spec }],
  });

  it("refuses overlapping subnets, unknown subnets, addresses outside the NIC's subnet, reused MACs and public IPs", async function () {
    expect(await refusal({ vms: [PEER1], extraSubnets: ["10.1.0.128/25"] })).to.include(
      "overlaps 10.1.0.0/24",
    );
    expect(await refusal({ vms: [eth1({})] })).to.include("subnet 10.1.1.0/24 is not one of the VNet's");
    expect(await refusal({ vms: [eth1({ primary: "10.1.0.44" })], extraSubnets: [SUBNET2] })).to.include(
      "VM vm1 eth1: 10.1.0.44 is not a host address of 10.1.1.0/24",
    );
    expect(await refusal({ vms: [eth1({ mac: PEER1.mac })], extraSubnets: [SUBNET2] })).to.include(
      "is used twice",
    );
    expect(
      await refusal({ vms: [eth1({ publicIp: undefined, primary: "10.1.1.10" })], extraSubnets: [SUBNET2] }),
    ).to.include("public IP 198.51.100.10 is used twice");
  });
});
