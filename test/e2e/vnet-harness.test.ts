// Proves the e2e harness is a faithful stand-in for an Azure VNet (azure-platform.md §3) and that its
// private dockerd works, before any plugin test relies on either. Root only.
import { expect } from "chai";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
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
import type { Vnet } from "../helpers/vnet.js";

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
  async function vm2IcmpFrom(source: string): Promise<number> {
    const rule = [
      "INPUT",
      "-s",
      `${source}/32`,
      "-p",
      "icmp",
      "-m",
      "comment",
      "--comment",
      "avn-test-count",
    ];
    const check = await net().exec("vm2", ["iptables", "-w", "-C", ...rule]);
    if (check.code !== 0) await net().execOk("vm2", ["iptables", "-w", "-A", ...rule]);
    const listing = await net().execOk("vm2", ["iptables", "-w", "-L", "INPUT", "-n", "-v", "-x"]);
    const line = listing.stdout.split("\n").find((l) => l.includes(source) && l.includes("avn-test-count"));
    return Number(line?.trim().split(/\s+/)[0] ?? NaN);
  }

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
