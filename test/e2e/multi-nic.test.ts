/**
 * Containers on every NIC of a VM, each leaving through its own NIC, on a real dockerd in the emulated
 * VNet, whose fabric (as Azure) drops a frame that leaves through a NIC that does not own its source
 * address. vm1 has eth0 in 10.1.0.0/24 and eth1 in 10.1.1.0/24 (and, in the variant, both in one
 * subnet); a peer VM sits in each subnet. In both modes, a container on eth1 is reached by the peers,
 * on-premises and the internet at its address, its internet traffic leaves under eth1's public address,
 * it and a container on eth0 reach each other, and removing the networks leaves vm1's host networking
 * exactly as it was. Root only.
 */
import { expect } from "chai";
import { startAzureTestbed, type AzureTestbed } from "../helpers/azure-vm.js";
import { expectSameHost, snapshotHost, type HostSnapshot } from "../helpers/host-snapshot.js";
import { INET_HOST_IP, ONPREM_HOST_IP, type VmSpec } from "../helpers/vnet.js";

const PORT = 7000;
const HTTP_GET = "GET / HTTP/1.0\r\n\r\n";

type Layout = {
  name: string;
  vm1: VmSpec;
  peers: VmSpec[];
  extraSubnets: string[];
  /** The azure network on eth1: its create options beyond -d/--ipam-driver. */
  eth1Network: string[];
  eth0Network: string[];
};

const TWO_SUBNETS: Layout = {
  name: "two subnets",
  vm1: {
    name: "vm1",
    mac: "00:0d:3a:00:03:01",
    primary: "10.1.0.4",
    secondaries: ["10.1.0.5", "10.1.0.6"],
    publicIp: "198.51.100.4",
    extraNics: [
      {
        mac: "00:0d:3a:00:03:02",
        subnet: "10.1.1.0/24",
        primary: "10.1.1.4",
        secondaries: ["10.1.1.5", "10.1.1.6"],
        publicIp: "198.51.100.104",
      },
    ],
  },
  peers: [
    { name: "peer1", mac: "00:0d:3a:00:03:10", primary: "10.1.0.10", publicIp: "198.51.100.10" },
    {
      name: "peer2",
      mac: "00:0d:3a:00:03:20",
      subnet: "10.1.1.0/24",
      primary: "10.1.1.10",
      publicIp: "198.51.100.110",
    },
  ],
  extraSubnets: ["10.1.1.0/24"],
  eth0Network: ["--subnet", "10.1.0.0/24"],
  eth1Network: ["--subnet", "10.1.1.0/24"],
};

const ONE_SUBNET: Layout = {
  name: "one subnet",
  vm1: {
    name: "vm1",
    mac: "00:0d:3a:00:04:01",
    primary: "10.1.0.4",
    secondaries: ["10.1.0.5", "10.1.0.6"],
    publicIp: "198.51.100.4",
    extraNics: [
      {
        mac: "00:0d:3a:00:04:02",
        primary: "10.1.0.20",
        secondaries: ["10.1.0.21", "10.1.0.22"],
        publicIp: "198.51.100.20",
      },
    ],
  },
  peers: [{ name: "peer1", mac: "00:0d:3a:00:04:10", primary: "10.1.0.10", publicIp: "198.51.100.10" }],
  extraSubnets: [],
  eth0Network: ["--subnet", "10.1.0.0/24", "--ipam-opt", "interface=eth0"],
  eth1Network: ["--subnet", "10.1.0.0/24", "--ipam-opt", "interface=eth1"],
};

for (const layout of [TWO_SUBNETS, ONE_SUBNET]) {
  for (const mode of ["transparent", "bridge"] as const) {
    describe(`e2e: a VM with two NICs (${layout.name}), ${mode} mode`, function () {
      this.timeout(180_000);
      let testbed: AzureTestbed | undefined;
      let pristine: HostSnapshot;
      const bed = () => testbed!;
      const eth1 = layout.vm1.extraNics![0]!;
      const dockerOk = async (...args: string[]) => (await bed().dockerd.dockerOk(args)).stdout.trim();
      const addressOf = (container: string, network: string) =>
        dockerOk("inspect", "-f", `{{.NetworkSettings.Networks.${network}.IPAddress}}`, container);
      const fromContainer = async (container: string, host: string, ip: string) => {
        const recorder = await bed().vnet.startTcpRecorder(host, ip, PORT, host);
        try {
          return (
            await bed().dockerd.docker(["exec", container, "nc", "-w", "3", ip, String(PORT)])
          ).stdout.trim();
        } finally {
          await recorder.close();
        }
      };
      const reaches = async (host: string, address: string) =>
        (await bed().vnet.tcpProbe(host, address, PORT, { payload: HTTP_GET })).data.includes("HTTP/1.");
      let onEth0 = "";
      let onEth1 = "";

      before(async () => {
        testbed = await startAzureTestbed([layout.vm1, ...layout.peers], `nics-${mode}`, {
          extraSubnets: layout.extraSubnets,
        });
        pristine = await snapshotHost(testbed.vnet, "vm1");
        const network = (name: string, options: string[]) =>
          testbed!.dockerd.createAzureNetwork(name, "-o", `mode=${mode}`, ...options);
        await network("front", layout.eth0Network);
        await network("back", layout.eth1Network);
        for (const [name, net] of [
          ["c0", "front"],
          ["c1", "back"],
        ] as const) {
          await dockerOk(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            net,
            "busybox:local",
            "httpd",
            "-f",
            "-p",
            String(PORT),
            "-h",
            "/",
          );
        }
        onEth0 = await addressOf("c0", "front");
        onEth1 = await addressOf("c1", "back");
      });

      after(async () => {
        await testbed?.teardown();
      });

      it("gives the container on the eth1 network a secondary IP of eth1", () => {
        expect(eth1.secondaries).to.include(onEth1);
        expect(layout.vm1.secondaries).to.include(onEth0);
      });

      it("the peer VM in each subnet reaches it at its address", async () => {
        for (const peer of layout.peers) expect(await reaches(peer.name, onEth1), peer.name).to.equal(true);
      });

      it("the on-premises host reaches it at its address", async () => {
        expect(await reaches("onprem", onEth1)).to.equal(true);
      });

      it("the peers see its own address, and the internet sees eth1's public address", async () => {
        for (const peer of layout.peers)
          expect(await fromContainer("c1", peer.name, peer.primary), peer.name).to.equal(
            `${peer.name} ${onEth1}`,
          );
        expect(await fromContainer("c1", "onprem", ONPREM_HOST_IP)).to.equal(`onprem ${onEth1}`);
        expect(await fromContainer("c1", "inet", INET_HOST_IP)).to.equal(`inet ${eth1.publicIp}`);
        expect(await fromContainer("c0", "inet", INET_HOST_IP), "eth0's container").to.equal(
          `inet ${layout.vm1.publicIp}`,
        );
      });

      it("the containers on eth0 and on eth1 reach each other", async () => {
        const ping = (from: string, to: string) =>
          bed().dockerd.docker(["exec", from, "ping", "-c", "1", "-W", "2", to]);
        expect((await ping("c1", onEth0)).code, "eth1 → eth0").to.equal(0);
        expect((await ping("c0", onEth1)).code, "eth0 → eth1").to.equal(0);
      });

      it("the fabric dropped nothing of vm1's: every frame left through the NIC that owns its source", async () => {
        expect(await bed().vnet.spoofDropCount("vm1")).to.equal(0);
      });

      it("after a restart, the plugin puts back a routing rule that went missing", async () => {
        const rule = (await bed().vnet.execOk("vm1", ["ip", "rule", "show", "from", onEth1])).stdout.trim();
        const table = /lookup (\d+)/.exec(rule)?.[1];
        expect(table, rule).to.match(/^\d+$/);
        await bed().restartPlugin("SIGKILL", () =>
          bed().vnet.execOk("vm1", ["ip", "rule", "del", "from", onEth1, "lookup", table!]),
        );
        expect(
          (await bed().vnet.execOk("vm1", ["ip", "rule", "show", "from", onEth1])).stdout.trim(),
        ).to.equal(rule);
        for (const peer of layout.peers) expect(await reaches(peer.name, onEth1), peer.name).to.equal(true);
      });

      it("removing the networks leaves links, addresses, routes, rules, tables, neighbours, chains and sysctls as before", async () => {
        await dockerOk("rm", "-f", "c0", "c1");
        await dockerOk("network", "rm", "front", "back");
        expectSameHost(await snapshotHost(bed().vnet, "vm1"), pristine, "vm1");
      });
    });
  }
}
