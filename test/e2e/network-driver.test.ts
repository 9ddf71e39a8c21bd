/**
 * The product, end to end: `docker network create -d azure --ipam-driver azure` and `docker run` on a
 * real dockerd inside an emulated Azure VNet, in each data-path mode. Each item of the network-driver
 * issue is one assertion: addresses, one interface, reachability from the other VM and on-premises
 * without NAT, internet through the VM's public address, name resolution, --ip, exhaustion, and a host
 * left exactly as it was. Root only.
 */
import { expect } from "chai";
import { startAzureTestbed, type AzureTestbed, type PluginProcess } from "../helpers/azure-vm.js";
import type { Dockerd } from "../helpers/dockerd.js";
import {
  expectSameHost,
  forwardJumpOrder,
  snapshotHost,
  type HostSnapshot,
} from "../helpers/host-snapshot.js";
import { INET_HOST_IP, ONPREM_HOST_IP, type Vnet } from "../helpers/vnet.js";

const SECONDARIES = ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"];
const VM1 = {
  name: "vm1",
  mac: "00:0d:3a:00:00:01",
  primary: "10.1.0.4",
  secondaries: SECONDARIES,
  publicIp: "198.51.100.4",
};
const VM2 = { name: "vm2", mac: "00:0d:3a:00:00:02", primary: "10.1.0.10" };
const HTTP_PORT = 8080;

type NetworkInspect = { IPAM: { Config: { Subnet?: string; Gateway?: string }[] } }[];

for (const mode of ["transparent", "bridge"] as const) {
  describe(`e2e: the azure network driver in ${mode} mode on an emulated Azure VNet`, function () {
    this.timeout(180_000);
    let testbed: AzureTestbed | undefined;
    let vnet: Vnet;
    let dockerd: Dockerd;
    let plugin: PluginProcess;
    let pristine: HostSnapshot;
    let spoofDropsAtStart: number;
    const vmReachesVm2 = async () =>
      (await vnet.exec("vm1", ["busybox", "ping", "-c", "1", "-W", "2", VM2.primary])).code === 0;

    const docker = (...args: string[]) => dockerd.docker(args);
    const dockerOk = async (...args: string[]) => (await dockerd.dockerOk(args)).stdout.trim();
    const createNetwork = (name: string, ...args: string[]) =>
      dockerd.createAzureNetwork(name, "-o", `mode=${mode}`, ...args);
    const ipOf = (container: string) =>
      dockerOk("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container);

    before(async () => {
      testbed = await startAzureTestbed([VM1, VM2], mode);
      ({ vnet, dockerd, plugin } = testbed);
      pristine = await snapshotHost(vnet, "vm1");
      spoofDropsAtStart = await vnet.spoofDropCount("vm1");
    });

    after(async () => {
      await testbed?.teardown();
    });

    it("a. creates a network without --subnet (0.0.0.0/0, Azure gateway) and with --subnet", async () => {
      await createNetwork("az-any");
      const any = JSON.parse(await dockerOk("network", "inspect", "az-any")) as NetworkInspect;
      expect(any[0]!.IPAM.Config).to.deep.equal([{ Subnet: "0.0.0.0/0", Gateway: "10.1.0.1" }]);
      const out = await dockerOk(
        "run",
        "--rm",
        "--network",
        "az-any",
        "busybox:local",
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
      );
      expect(out).to.match(/inet 10\.1\.0\.[5-8]\/24 /);
      await dockerOk("network", "rm", "az-any");

      await createNetwork("vnet", "--subnet", "10.1.0.0/24");
      const inspect = JSON.parse(await dockerOk("network", "inspect", "vnet")) as NetworkInspect;
      expect(inspect[0]!.IPAM.Config[0]!.Subnet).to.equal("10.1.0.0/24");
      expect(await vmReachesVm2(), "the VM itself keeps its connectivity").to.equal(true);
    });

    it("b. gives a container a secondary IP, exactly one interface besides lo, a default route and the NIC's MTU", async () => {
      const out = await dockerOk(
        "run",
        "--rm",
        "--network",
        "vnet",
        "busybox:local",
        "sh",
        "-c",
        "ip -o link; echo ---; ip -o -4 addr; echo ---; ip route",
      );
      const [links, addrs, routes] = out.split("---\n");
      const names = links!
        .trim()
        .split("\n")
        .map((line) => line.split(":")[1]!.trim().split("@")[0]);
      expect(names).to.deep.equal(["lo", "eth0"]);
      expect(links).to.match(/eth0@\S+: .* mtu 1500 /);
      const address = /eth0\s+inet (\S+)/.exec(addrs!)?.[1];
      expect(SECONDARIES.map((a) => `${a}/24`)).to.include(address);
      // Transparent: the subnet gateway, on-link through proxy ARP. Bridge: the host on the bridge, which SNATs.
      const gateway = mode === "transparent" ? "10.1.0.1" : VM1.primary;
      expect(routes).to.match(new RegExp(`^default via ${gateway.replace(/\./g, "\\.")} dev eth0`, "m"));
    });

    it("c. the other VM reaches the container by its address, and each sees the other's own address", async () => {
      await dockerOk(
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "vnet",
        "--ip",
        "10.1.0.5",
        "busybox:local",
        "httpd",
        "-f",
        "-vv",
        "-p",
        String(HTTP_PORT),
        "-h",
        "/",
      );
      const probe = await vnet.tcpProbe("vm2", "10.1.0.5", HTTP_PORT, { payload: "GET / HTTP/1.0\r\n\r\n" });
      expect(probe.connected, probe.error).to.equal(true);
      expect(probe.data).to.match(/^HTTP\/1\.[01] /);
      const logs = await docker("logs", "c1");
      expect(logs.stdout + logs.stderr, "the container saw vm2's own address").to.contain("10.1.0.10");

      const recorder = await vnet.startTcpRecorder("vm2", VM2.primary, 9090);
      try {
        await dockerOk("exec", "c1", "sh", "-c", `echo hi | nc ${VM2.primary} 9090`);
        const [connection] = await recorder.waitForConnections(1);
        expect(connection!.remoteAddress, "vm2 saw the container's own address").to.equal("10.1.0.5");
      } finally {
        await recorder.close();
      }
    });

    it("d. an on-premises host reaches the container and is reached by it, without NAT", async () => {
      const probe = await vnet.tcpProbe("onprem", "10.1.0.5", HTTP_PORT, {
        payload: "GET / HTTP/1.0\r\n\r\n",
      });
      expect(probe.connected, probe.error).to.equal(true);
      const recorder = await vnet.startTcpRecorder("onprem", ONPREM_HOST_IP, 9091);
      try {
        await dockerOk("exec", "c1", "sh", "-c", `echo hi | nc ${ONPREM_HOST_IP} 9091`);
        const [connection] = await recorder.waitForConnections(1);
        expect(connection!.remoteAddress).to.equal("10.1.0.5");
      } finally {
        await recorder.close();
      }
    });

    it("an administrator's DROP in DOCKER-USER stops the other VM reaching the container, until removed", async () => {
      const order = await forwardJumpOrder(vnet, "vm1");
      expect(order.ours, order.rules).to.equal(2);
      expect(order.ordered, `our FORWARD jumps come after DOCKER-USER's:\n${order.rules}`).to.equal(true);
      const reachable = async () =>
        (
          await vnet.tcpProbe("vm2", "10.1.0.5", HTTP_PORT, {
            payload: "GET / HTTP/1.0\r\n\r\n",
            timeoutMs: 2_000,
          })
        ).connected;
      const drop = ["DOCKER-USER", "-d", "10.1.0.5/32", "-j", "DROP"];
      await vnet.execOk("vm1", ["iptables", "-w", "-I", ...drop]);
      try {
        expect(await reachable(), "blocked by DOCKER-USER").to.equal(false);
      } finally {
        await vnet.execOk("vm1", ["iptables", "-w", "-D", ...drop]);
      }
      expect(await reachable(), "reachable again").to.equal(true);
    });

    it("e. an internet host sees the container's traffic arrive from the VM's public address", async () => {
      const recorder = await vnet.startTcpRecorder("inet", INET_HOST_IP, 9092);
      try {
        await dockerOk("exec", "c1", "sh", "-c", `echo hi | nc ${INET_HOST_IP} 9092`);
        const [connection] = await recorder.waitForConnections(1);
        expect(connection!.remoteAddress).to.equal(VM1.publicIp);
      } finally {
        await recorder.close();
      }
    });

    it("f. two containers on the VM reach each other, by name through Docker's embedded DNS", async () => {
      const out = await dockerOk(
        "run",
        "--rm",
        "--network",
        "vnet",
        "busybox:local",
        "sh",
        "-c",
        "nslookup c1 127.0.0.11 && ping -c 1 -W 2 c1",
      );
      expect(out).to.contain("10.1.0.5");
      expect(out).to.match(/1 packets received/);
    });

    it("g. --ip gives that address; containers beyond the pool one after another work; one too many at once fails clearly", async () => {
      expect(await ipOf("c1")).to.equal("10.1.0.5");
      for (let i = 0; i < SECONDARIES.length + 2; i++) {
        await dockerOk("run", "--rm", "--network", "vnet", "busybox:local", "true");
      }
      for (const name of ["c2", "c3", "c4"])
        await dockerOk("run", "-d", "--name", name, "--network", "vnet", "busybox:local", "sleep", "600");
      const held = await Promise.all(["c1", "c2", "c3", "c4"].map(ipOf));
      expect([...held].sort()).to.deep.equal(SECONDARIES);
      const extra = await docker("run", "--rm", "--network", "vnet", "busybox:local", "true");
      expect(extra.code).to.not.equal(0);
      expect(extra.stderr).to.contain(
        "no free address on eth0 (10.1.0.0/24): 4 of 4 secondary IPs in use — add IP configurations to the NIC, or remove containers that no longer run",
      );
      await dockerOk("rm", "-f", "c1", "c2", "c3", "c4");
    });

    it("-o mtu= overrides the NIC's MTU on the container's interface", async () => {
      await createNetwork("small-mtu", "--subnet", "10.1.0.0/24", "-o", "mtu=1400");
      try {
        const out = await dockerOk(
          "run",
          "--rm",
          "--network",
          "small-mtu",
          "busybox:local",
          "ip",
          "-o",
          "link",
          "show",
          "eth0",
        );
        expect(out).to.match(/ mtu 1400 /);
      } finally {
        await dockerOk("network", "rm", "small-mtu");
      }
    });

    if (mode === "transparent") {
      it("--internal networks have no path out of the VM, but their containers reach each other", async () => {
        await createNetwork("sealed", "--internal");
        try {
          await dockerOk(
            "run",
            "-d",
            "--name",
            "sealed1",
            "--network",
            "sealed",
            "busybox:local",
            "sleep",
            "600",
          );
          const peer = await dockerOk(
            "run",
            "--rm",
            "--network",
            "sealed",
            "busybox:local",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "sealed1",
          );
          expect(peer).to.match(/1 packets received/);
          const toVm2 = await docker("exec", "sealed1", "ping", "-c", "1", "-W", "2", VM2.primary);
          expect(toVm2.code, "no path to the VNet").to.not.equal(0);
          const toInternet = await docker(
            "exec",
            "sealed1",
            "sh",
            "-c",
            `echo hi | nc -w 2 ${INET_HOST_IP} 9093`,
          );
          expect(toInternet.code, "no path to the internet").to.not.equal(0);
          // Internal means its own containers only: not a Docker bridge network either, in either
          // direction. (A network of its own, so that docker0 stays as the host snapshot found it.)
          await dockerOk("network", "create", "-d", "bridge", "plain");
          await dockerOk(
            "run",
            "-d",
            "--name",
            "bridged1",
            "--network",
            "plain",
            "busybox:local",
            "sleep",
            "600",
          );
          const bridged = await ipOf("bridged1");
          const toBridge = await docker("exec", "sealed1", "ping", "-c", "1", "-W", "2", bridged);
          expect(toBridge.code, `no path to the bridge network's ${bridged}`).to.not.equal(0);
          const sealed = await ipOf("sealed1");
          const fromBridge = await docker("exec", "bridged1", "ping", "-c", "1", "-W", "2", sealed);
          expect(fromBridge.code, "no path in from the bridge network").to.not.equal(0);
        } finally {
          await docker("rm", "-f", "sealed1", "bridged1");
          await docker("network", "rm", "plain");
          await dockerOk("network", "rm", "sealed");
        }
      });
    }

    it("no container frame was ever dropped by the fabric's MAC/IP anti-spoofing", async () => {
      expect(await vnet.spoofDropCount("vm1")).to.equal(spoofDropsAtStart);
    });

    it("h. after the containers and the network are gone, the host is exactly as before", async () => {
      await dockerOk("network", "rm", "vnet");
      expectSameHost(await snapshotHost(vnet, "vm1"), pristine, "vm1");
      expect(await vmReachesVm2(), "the VM itself keeps its connectivity").to.equal(true);
      const status = await plugin.status();
      expect(status.pool[0]).to.deep.include({ free: SECONDARIES, inUse: [] });
    });
  });
}
