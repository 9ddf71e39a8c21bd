/**
 * The IPAM driver against a real dockerd on an emulated Azure VM, before the azure network driver
 * exists: Docker's built-in macvlan driver with `--ipam-driver azure`. Containers get the NIC's
 * secondary IPs; and the fabric drops their frames because they carry the macvlan's own MAC, as Azure
 * does, which is why the project needs its own network driver. Root only.
 */
import { expect } from "chai";
import { startAzureTestbed, type AzureTestbed, type PluginProcess } from "../helpers/azure-vm.js";
import type { Dockerd } from "../helpers/dockerd.js";
import type { Vnet } from "../helpers/vnet.js";

const SECONDARIES = ["10.1.0.5", "10.1.0.6", "10.1.0.7"];

type NetworkInspect = { IPAM: { Config: { Subnet: string; Gateway: string }[] } }[];

describe("e2e: azure IPAM with Docker's macvlan driver on an emulated Azure VNet", function () {
  this.timeout(180_000);
  let testbed: AzureTestbed | undefined;
  let vnet: Vnet;
  let dockerd: Dockerd;
  let plugin: PluginProcess;

  before(async () => {
    testbed = await startAzureTestbed(
      [
        { name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: SECONDARIES },
        { name: "vm2", mac: "00:0d:3a:00:00:02", primary: "10.1.0.10" },
      ],
      "macvlan",
    );
    ({ vnet, dockerd, plugin } = testbed);
  });

  after(async () => {
    await testbed?.teardown();
  });

  const docker = (...args: string[]) => dockerd.docker(args);
  const dockerOk = async (...args: string[]) => (await dockerd.dockerOk(args)).stdout.trim();

  it("answers a network create without --subnet at once: no RequestPool loop on dockerd 20.10", async () => {
    // macvlan itself refuses the 0.0.0.0/0 answer (README: "Networks created without --subnet"); what
    // matters here is that dockerd asked once and returned, instead of looping forever.
    const res = await docker(
      "network",
      "create",
      "-d",
      "macvlan",
      "--ipam-driver",
      "azure",
      "-o",
      "parent=eth0",
      "mv-any",
    );
    expect(res.stderr).to.contain("ipv4 pool is empty");
    const poolRequests = plugin.logs().filter((l) => l.call === "IpamDriver.RequestPool");
    expect(poolRequests, "dockerd asked for the pool once").to.have.length(1);
    expect(poolRequests[0]).to.include({ Pool: "0.0.0.0/0", outcome: "ok" });
    expect(plugin.logs().filter((l) => l.call === "IpamDriver.ReleasePool")).to.have.length(1);
  });

  it("creates a network with --subnet, which docker network inspect shows", async () => {
    await dockerOk(
      "network",
      "create",
      "-d",
      "macvlan",
      "--ipam-driver",
      "azure",
      "--subnet",
      "10.1.0.0/24",
      "-o",
      "parent=eth0",
      "mv",
    );
    const inspect = JSON.parse(await dockerOk("network", "inspect", "mv")) as NetworkInspect;
    // dockerd 20.10 lists only what the user gave; the gateway the plugin chose shows on each endpoint.
    expect(inspect[0]!.IPAM.Config).to.deep.equal([{ Subnet: "10.1.0.0/24" }]);
  });

  it("gives a container one of the NIC's secondary IPs", async () => {
    const out = await dockerOk(
      "run",
      "--rm",
      "--network",
      "mv",
      "busybox:local",
      "ip",
      "-o",
      "-4",
      "addr",
      "show",
      "eth0",
    );
    const address = /inet (\S+)/.exec(out)?.[1];
    expect(SECONDARIES.map((a) => `${a}/24`)).to.include(address);
    expect((await plugin.status()).pool[0]!.inUse, "released when the container is gone").to.deep.equal([]);
  });

  it("gives a container the secondary IP asked for with --ip", async () => {
    await dockerOk(
      "run",
      "-d",
      "--name",
      "pinned",
      "--network",
      "mv",
      "--ip",
      "10.1.0.7",
      "busybox:local",
      "sleep",
      "600",
    );
    const ip = await dockerOk(
      "inspect",
      "-f",
      "{{.NetworkSettings.Networks.mv.IPAddress}} {{.NetworkSettings.Networks.mv.Gateway}}",
      "pinned",
    );
    expect(ip).to.equal("10.1.0.7 10.1.0.1");
    expect((await plugin.status()).pool[0]!.inUse).to.deep.equal(["10.1.0.7"]);
  });

  it("refuses --ip for an address that is not a secondary IP of the NIC, with the plugin's reason", async () => {
    const res = await docker("run", "--rm", "--network", "mv", "--ip", "10.1.0.99", "busybox:local", "true");
    expect(res.code).to.not.equal(0);
    expect(res.stderr).to.contain(
      "10.1.0.99 is not a secondary IP of eth0 — add it to the NIC as an IP configuration",
    );
  });

  it("the other VM cannot reach the macvlan container: the fabric drops frames with the container's own MAC", async () => {
    const dropsBefore = await vnet.spoofDropCount("vm1");
    const fromContainer = await docker("exec", "pinned", "ping", "-c", "2", "-W", "1", "10.1.0.10");
    expect(fromContainer.code, "container → vm2 fails").to.not.equal(0);
    expect(await vnet.spoofDropCount("vm1"), "the fabric dropped the container's frames").to.be.greaterThan(
      dropsBefore,
    );
    const fromVm2 = await vnet.exec("vm2", ["busybox", "ping", "-c", "2", "-W", "1", "10.1.0.7"]);
    expect(fromVm2.code, "vm2 → container fails").to.not.equal(0);
    const vmItself = await vnet.exec("vm1", ["busybox", "ping", "-c", "1", "-W", "2", "10.1.0.10"]);
    expect(vmItself.code, "while the VM itself reaches vm2").to.equal(0);
  });

  it("returns every address once the containers and the network are gone", async () => {
    await dockerOk("rm", "-f", "pinned");
    await dockerOk("network", "rm", "mv");
    const status = await plugin.status();
    expect(status.pool[0]).to.deep.include({ free: SECONDARIES, inUse: [], goneButHeld: [] });
  });
});
