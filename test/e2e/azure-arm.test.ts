/**
 * Azure Resource Manager end to end: a real dockerd in an emulated VNet whose ARM stand-in drives the
 * fabric and IMDS. Containers beyond the NIC's initial secondary IPs start because the plugin grew the
 * pool through ARM, and the other VM reaches them; a container with a public IP is reached from the
 * internet at that address; a container is put into a load-balancer backend pool; all of it is undone
 * when the containers go. Root only.
 */
import { expect } from "chai";
import { startAzureTestbed, type AzureTestbed } from "../helpers/azure-vm.js";
import type { Dockerd } from "../helpers/dockerd.js";
import type { FakeArm } from "../helpers/fake-arm.js";
import { FAKE_COMPUTE } from "../helpers/fake-azure.js";
import { pollUntil } from "../helpers/run.js";
import { INET_HOST_IP, type Vnet } from "../helpers/vnet.js";

const INITIAL = ["10.1.0.5", "10.1.0.6"];
const VM1 = { name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: INITIAL };
const VM2 = { name: "vm2", mac: "00:0d:3a:00:00:02", primary: "10.1.0.20" };
const HTTP_PORT = 8080;
const BACKEND_POOL = `/subscriptions/${FAKE_COMPUTE.subscriptionId}/resourceGroups/${FAKE_COMPUTE.resourceGroupName}/providers/Microsoft.Network/loadBalancers/lb1/backendAddressPools/pool1`;

describe("e2e: Azure Resource Manager: pool growth, public IPs, load-balancer pools", function () {
  this.timeout(180_000);
  let testbed: AzureTestbed | undefined;
  let vnet: Vnet;
  let dockerd: Dockerd;
  let arm: FakeArm;

  const dockerOk = async (...args: string[]) => (await dockerd.dockerOk(args)).stdout.trim();
  const ipOf = (container: string) =>
    dockerOk("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container);
  const runHttpd = (name: string, network: string) =>
    dockerOk(
      "run",
      "-d",
      "--name",
      name,
      "--network",
      network,
      "busybox:local",
      "httpd",
      "-f",
      "-p",
      String(HTTP_PORT),
      "-h",
      "/",
    );
  const createNetwork = (name: string, ...options: string[]) => dockerd.createAzureNetwork(name, ...options);
  const endpointLinks = async (address: string) => {
    const status = await testbed!.plugin.status();
    return status.endpoints.find((e) => e.address === address)?.azure;
  };
  const linkedAt = (address: string) =>
    pollUntil(
      `the container at ${address} to be linked in Azure`,
      async () => {
        const links = await endpointLinks(address);
        if (links?.state === "failed") throw new Error(`linking failed: ${links.error}`);
        return links?.state === "linked" ? links : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  const unlinked = () =>
    pollUntil(
      "the Azure links to be undone",
      async () => ((await testbed!.plugin.status()).unlinks.length === 0 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  const ipConfigurationOf = (address: string) =>
    arm.nic("vm1-nic").ipConfigurations.find((c) => c.privateIp === address);

  before(async () => {
    testbed = await startAzureTestbed([VM1, VM2], "arm", {
      arm: { loadBalancers: [{ name: "lb1", backendPools: ["pool1"] }] },
      pluginArgs: ["--pool-min-free", "1", "--pool-grow-step", "2", "--pool-grow-wait", "25"],
    });
    ({ vnet, dockerd } = testbed);
    arm = testbed.arm!;
    await createNetwork("vnet");
  });

  after(async () => {
    await testbed?.teardown();
  });

  it("starts containers beyond the NIC's initial pool because the pool grew, and the other VM reaches them", async () => {
    const names = ["g1", "g2", "g3", "g4"];
    for (const name of names) await runHttpd(name, "vnet");
    const addresses = await Promise.all(names.map(ipOf));
    expect(new Set(addresses).size, addresses.join(" ")).to.equal(4);
    const grown = addresses.filter((a) => !INITIAL.includes(a));
    expect(grown.length, "containers on addresses the NIC did not have").to.be.at.least(2);
    for (const address of addresses) expect(ipConfigurationOf(address), address).to.not.equal(undefined);
    expect(vnet.vm("vm1").secondaries, "the fabric routes the new addresses to vm1").to.include.members(
      grown,
    );
    for (const address of grown) {
      const probe = await vnet.tcpProbe("vm2", address, HTTP_PORT, { payload: "GET / HTTP/1.0\r\n\r\n" });
      expect(probe.connected, `${address}: ${probe.error}`).to.equal(true);
      expect(probe.data).to.match(/^HTTP\/1\.[01] /);
    }
    const status = await testbed!.plugin.status();
    expect(status.growth[0]!.added).to.be.at.least(2);
    await dockerOk("rm", "-f", ...names);
  });

  it("gives a container its own public IP that the internet reaches, and deletes it when the container goes", async () => {
    await createNetwork("public", "-o", "public-ip=true");
    await runHttpd("p1", "public");
    const address = await ipOf("p1");
    const links = await linkedAt(address);
    const publicIp = links.publicIpAddress!;
    expect(publicIp).to.match(/^198\.51\.100\.\d+$/);
    expect(ipConfigurationOf(address)!.publicIpId).to.match(/\/publicIPAddresses\/azure-vnet-[0-9a-f]{12}$/);
    const probe = await vnet.tcpProbe("inet", publicIp, HTTP_PORT, { payload: "GET / HTTP/1.0\r\n\r\n" });
    expect(probe.connected, probe.error).to.equal(true);
    expect(probe.data).to.match(/^HTTP\/1\.[01] /);
    const imds = await vnet.execOk("vm1", [
      "busybox",
      "wget",
      "-qO-",
      "--header",
      "Metadata: true",
      "http://169.254.169.254/metadata/instance/network?api-version=2021-02-01",
    ]);
    expect(imds.stdout, "IMDS reports the association").to.contain(`"publicIpAddress":"${publicIp}"`);
    const recorder = await vnet.startTcpRecorder("inet", INET_HOST_IP, 9093);
    try {
      await dockerOk("exec", "p1", "sh", "-c", `echo hi | nc ${INET_HOST_IP} 9093`);
      const [connection] = await recorder.waitForConnections(1);
      const nat = await vnet.exec("vm1", ["iptables", "-t", "nat", "-S"]);
      expect(connection!.remoteAddress, `its traffic leaves under its own public IP\n${nat.stdout}`).to.equal(
        publicIp,
      );
    } finally {
      await recorder.close();
    }

    await dockerOk("rm", "-f", "p1");
    await unlinked();
    expect(arm.publicIps(), "the plugin deleted the public IP it created").to.deep.equal([]);
    expect(ipConfigurationOf(address)?.publicIpId).to.equal(undefined);
    const after = await vnet.tcpProbe("inet", publicIp, HTTP_PORT, { timeoutMs: 1_000 });
    expect(after.connected).to.equal(false);
    await dockerOk("network", "rm", "public");
  });

  it("puts a container into a load-balancer backend pool, and takes it out when it goes", async () => {
    await createNetwork("balanced", "-o", `lb-backend-pool=${BACKEND_POOL}`);
    await runHttpd("b1", "balanced");
    const address = await ipOf("b1");
    await linkedAt(address);
    const members = arm.backendPoolMembers("lb1", "pool1");
    expect(members).to.have.length(1);
    expect(members[0]!.toLowerCase()).to.contain(
      `/ipconfigurations/${ipConfigurationOf(address)!.name}`.toLowerCase(),
    );
    await dockerOk("rm", "-f", "b1");
    await unlinked();
    expect(arm.backendPoolMembers("lb1", "pool1")).to.deep.equal([]);
    await dockerOk("network", "rm", "balanced");
  });

  it("docker network connect --driver-opt links one container: the options reach the plugin through dockerd", async () => {
    await dockerOk("create", "--name", "d1", "busybox:local", "sleep", "600");
    await dockerOk("network", "connect", "--driver-opt", `lb-backend-pool=${BACKEND_POOL}`, "vnet", "d1");
    await dockerOk("start", "d1");
    const address = await dockerOk(
      "inspect",
      "-f",
      '{{with index .NetworkSettings.Networks "vnet"}}{{.IPAddress}}{{end}}',
      "d1",
    );
    await linkedAt(address);
    expect(arm.backendPoolMembers("lb1", "pool1")).to.have.length(1);
    await dockerOk("rm", "-f", "d1");
    await unlinked();
    expect(arm.backendPoolMembers("lb1", "pool1")).to.deep.equal([]);
  });
});
