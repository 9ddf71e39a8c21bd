/**
 * Azure Resource Manager through the plugin, without root: the real service on a unix socket, the IMDS
 * stand-in (pool, compute metadata, managed-identity token) and the ARM stand-in over HTTPS with a test
 * CA, both on 127.0.0.1. What ARM commits is what IMDS then reports. Covers pool growth (shared, capped,
 * given back), ARM's refusals (403, 429, failed operations) leaving the pool as it was, public IP
 * and load-balancer links made and undone outside the request path, and, on a VM with two NICs in
 * different subnets, all of it on the NIC that holds the address, within Azure's 256 private addresses
 * per VM.
 */
import { expect } from "chai";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetworkManagementClient } from "@azure/arm-network";
import type { PluginConfig } from "../../plugin/config.js";
import {
  startFakeArm,
  FAKE_MI_TOKEN,
  type FakeArm,
  type FakeArmNic,
  type FakeArmOptions,
} from "../helpers/fake-arm.js";
import { startFakeAzure, FAKE_COMPUTE, type FakeAzure, type FakeAzureNics } from "../helpers/fake-azure.js";
import {
  cli,
  ETH0_MAC,
  ETH1_MAC,
  startPlugin,
  twoNicPool,
  type PluginUnderTest,
} from "../helpers/plugin-under-test.js";
import { pollUntil as pollUntilWithin } from "../helpers/run.js";
import { createTestCa, type TestCa } from "../helpers/test-ca.js";

const NET = "adf4fa8e1772" + "0".repeat(52);
const EP = "e1e2e3e4e5e6" + "2".repeat(52);
const EP2 = "f1f2f3f4f5f6" + "3".repeat(52);
const { subscriptionId, resourceGroupName } = FAKE_COMPUTE;
const POOL_ID = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroupName}/providers/Microsoft.Network/loadBalancers/lb1/backendAddressPools/pool1`;
const pollUntil = <T>(what: string, check: () => Promise<T | undefined | false>) =>
  pollUntilWithin(what, check, { timeoutMs: 20_000, intervalMs: 50 });
const NIC_PUT = { method: "PUT", pathIncludes: "/networkInterfaces/eth0-nic" };

type Status = {
  pool: { nic: string; free: string[]; inUse: string[] }[];
  growth: {
    nic: string;
    subnet: string;
    state: string;
    added: number;
    removed: number;
    lastError?: string;
    retryAt?: string;
  }[];
  endpoints: { id: string; azure?: { state: string; publicIpAddress?: string; error?: string } }[];
  unlinks: { endpointId: string; links: { error?: string } }[];
};

describe("Azure Resource Manager through the plugin", function () {
  this.timeout(30_000);
  let dir: string;
  let ca: TestCa;
  let nics: FakeAzureNics;
  let azure: FakeAzure;
  let arm: FakeArm;
  let plugin: PluginUnderTest | undefined;

  const eth0Secondaries = () => nics.interfaces[1]!.subnets[0]!.secondaryAddresses!;
  const initialNic = (): FakeArmNic => ({
    name: "eth0-nic",
    vmName: FAKE_COMPUTE.name,
    mac: ETH0_MAC,
    ipConfigurations: ["10.1.0.4", ...eth0Secondaries()].map((privateIp, index) => ({
      name: `ipconfig${index + 1}`,
      privateIp,
      primary: index === 0,
      backendPoolIds: [],
    })),
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-arm-"));
    ca = await createTestCa(dir, { ips: ["127.0.0.1"] });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    nics = twoNicPool(2);
    azure = await startFakeAzure({ nics: () => nics });
    arm = await startArm();
  });
  afterEach(async () => {
    await plugin?.stop();
    plugin = undefined;
    await arm.close();
    await azure.close();
  });

  /** The ARM stand-in for this VM; what it commits to a NIC is what IMDS reports next. */
  const startArm = (options: Partial<Pick<FakeArmOptions, "operationPolls" | "subnets" | "nics">> = {}) =>
    startFakeArm({
      subscriptionId,
      resourceGroup: resourceGroupName,
      location: FAKE_COMPUTE.location,
      subnet: { name: "default", vnetName: "vnet", prefix: "10.1.0.0/24" },
      nics: [initialNic()],
      loadBalancers: [{ name: "lb1", backendPools: ["pool1"] }],
      firstPublicIp: "198.51.100.200",
      tls: { certPem: ca.certPem, keyPem: ca.keyPem },
      listen: { host: "127.0.0.1", port: 0 },
      retryAfterSeconds: 1,
      onNicChange: (nic) => {
        const imds = nics.interfaces.find((i) => i.macAddress === nic.mac)!;
        imds.subnets[0]!.secondaryAddresses = nic.ipConfigurations
          .filter((c) => !c.primary)
          .map((c) => c.privateIp);
        return Promise.resolve();
      },
      ...options,
    });

  const start = async (config: Partial<PluginConfig> = {}) => {
    plugin = await startPlugin({
      config: {
        poolSource: "imds",
        imdsUrl: azure.url,
        sourceTimeoutMs: 1000,
        armEndpoint: arm.url,
        armCaFile: ca.caFile,
        ...config,
      },
    });
    return plugin;
  };
  const growing = (config: Partial<PluginConfig> = {}) =>
    start({ poolMinFree: 1, poolGrowStep: 2, poolGrowWaitMs: 15_000, ...config });
  const post = (path: string, body: unknown) => plugin!.api().post(path).send(JSON.stringify(body));
  const status = async () => (await plugin!.api().get("/status").expect(200)).body as Status;
  const eth0 = async () => (await status()).pool.find((p) => p.nic === "eth0")!;
  const requestPool = async () =>
    (await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" }).expect(200)).body.PoolID as string;
  const requestAddress = (poolId: string) => post("/IpamDriver.RequestAddress", { PoolID: poolId });
  /** Flags that point the command line at the plugin under test (and at no Docker). */
  const cliTarget = () => ["--socket", plugin!.socketPath, "--docker-socket", join(plugin!.dir, "none.sock")];
  const nicPuts = () => arm.requests.filter((r) => r.method === "PUT" && r.path.endsWith("/eth0-nic"));
  const ipConfigurationCount = () => arm.nic("eth0-nic").ipConfigurations.length;

  describe("pool growth", () => {
    it("grows the NIC through ARM with the managed identity when a request finds no free address; parallel requests share one growth", async () => {
      await growing({ metricsAddress: "127.0.0.1:0" });
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200, { Address: "10.1.0.5/24", Data: {} });
      const [a, b] = await Promise.all([requestAddress(poolId), requestAddress(poolId)]);
      expect([a.status, b.status], JSON.stringify([a.body, b.body])).to.deep.equal([200, 200]);
      const addresses = [a.body.Address as string, b.body.Address as string];
      expect(new Set(addresses).size).to.equal(2);
      expect(nicPuts(), "one growth for both requests").to.have.length(1);
      expect(ipConfigurationCount()).to.equal(5);
      const grown = arm.nic("eth0-nic").ipConfigurations.slice(3);
      expect(grown.map((c) => c.name)).to.satisfy((names: string[]) =>
        names.every((n) => n.startsWith("azure-vnet-")),
      );
      for (const address of addresses) {
        expect(["10.1.0.6", ...grown.map((c) => c.privateIp)]).to.include(address.split("/")[0]);
      }
      // Only the IMDS stand-in hands out this token. (@azure/identity caches tokens and the IMDS address
      // process-wide, so which test's stand-in answered is not asserted.)
      expect(arm.requests.every((r) => r.authorization === `Bearer ${FAKE_MI_TOKEN}`)).to.equal(true);
      const growth = (await status()).growth[0]!;
      expect(growth).to.include({ state: "idle", added: 2 });
      const metrics = await (await fetch(plugin!.service.metricsUrl!)).text();
      expect(metrics).to.contain(
        'azure_vnet_pool_growth_addresses{nic="eth0",subnet="10.1.0.0/24",change="added"} 2',
      );
      expect(metrics).to.contain('azure_vnet_pool_growth_failing{nic="eth0",subnet="10.1.0.0/24"} 0');
    });

    it("grows ahead of need once free addresses fall below --pool-min-free", async () => {
      await growing({ poolMinFree: 2 });
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200);
      await pollUntil("the pool to grow in the background", async () =>
        (await eth0()).free.length >= 2 ? true : undefined,
      );
      expect(ipConfigurationCount()).to.equal(5);
    });

    it("never takes the NIC past --max-ip-configurations, and then says so", async () => {
      await growing({ maxIpConfigurations: 4 });
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      expect(ipConfigurationCount()).to.equal(4);
      const refused = await requestAddress(poolId).expect(503);
      expect(refused.body.Err).to.contain("NIC eth0-nic has 4 IP configurations, the most allowed (4)");
    });

    it("a 403 names the permission the identity lacks, and the pool stays as it was", async () => {
      await growing({ metricsAddress: "127.0.0.1:0" });
      arm.injectFault(NIC_PUT, {
        kind: "status",
        status: 403,
        code: "LinkedAuthorizationFailed",
        message:
          "The client 'mi' with object id 'x' has permission to perform action 'Microsoft.Network/networkInterfaces/write' on scope '/subscriptions/s'; however, it does not have permission to perform action 'Microsoft.Network/virtualNetworks/subnets/join/action' on the linked scope(s) '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default' or the linked scope(s) are invalid.",
      });
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      const refused = await requestAddress(poolId).expect(503);
      expect(refused.body.Err).to.contain("Azure refused (LinkedAuthorizationFailed)");
      expect(refused.body.Err).to.contain(
        "the VM's identity lacks Microsoft.Network/virtualNetworks/subnets/join/action",
      );
      expect(refused.body.Err).to.contain("grant the VM's managed identity");
      expect(ipConfigurationCount()).to.equal(3);
      expect((await eth0()).free).to.deep.equal([]);
      const operatorView = cliTarget();
      const table = await cli(["status", ...operatorView]);
      expect(table.stdout).to.match(/GROWTH +SUBNET +STATE/);
      expect(table.stdout).to.match(
        /eth0 +10\.1\.0\.0\/24 +waiting after a failure +0 +0 +cannot add IP configurations/,
      );
      expect(await (await fetch(plugin!.service.metricsUrl!)).text()).to.contain(
        'azure_vnet_pool_growth_failing{nic="eth0",subnet="10.1.0.0/24"} 1',
      );
      const doctor = await cli(["doctor", ...operatorView]);
      expect(doctor.stdout).to.contain(
        "WARN  azure: pool growth of eth0 (10.1.0.0/24) failed: cannot add IP configurations",
      );
      // Once the permission is granted, the next container start grows the pool.
      await requestAddress(poolId).expect(200);
      expect(ipConfigurationCount()).to.equal(5);
    });

    it("never overwrites a change someone else made to the NIC meanwhile: If-Match, then the edit again", async () => {
      await growing();
      const precondition = {
        kind: "status",
        status: 412,
        code: "PreconditionFailed",
        message: "Precondition failed: the NIC changed.",
      } as const;
      arm.injectFault(NIC_PUT, precondition, 1);
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      expect(nicPuts().map((r) => r.ifMatch)).to.satisfy((tags: (string | undefined)[]) =>
        tags.every((tag) => typeof tag === "string" && tag.length > 0),
      );
      expect(nicPuts(), "GET, PUT refused, GET again, PUT").to.have.length(2);
      expect(ipConfigurationCount()).to.equal(5);

      arm.injectFault(NIC_PUT, precondition, 3);
      await requestAddress(poolId).expect(200);
      const refused = await requestAddress(poolId).expect(503);
      expect(refused.body.Err).to.contain("the NIC kept changing in Azure while the plugin changed it");
      expect(ipConfigurationCount()).to.equal(5);
    });

    it("a failed operation leaves the NIC and the pool as they were", async () => {
      await growing();
      arm.injectFault(NIC_PUT, { kind: "operation-failed", code: "InternalServerError", message: "boom" });
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      const refused = await requestAddress(poolId).expect(503);
      expect(refused.body.Err).to.contain("the Azure operation failed");
      expect(refused.body.Err).to.contain("the NIC is unchanged");
      expect(ipConfigurationCount()).to.equal(3);
      expect((await eth0()).free).to.deep.equal([]);
    });

    it("429 is retried after Retry-After, and when throttling lasts, growth waits as long as ARM says", async () => {
      await growing();
      arm.injectFault(
        NIC_PUT,
        { kind: "status", status: 429, code: "TooManyRequests", message: "slow down", retryAfterSeconds: 1 },
        1,
      );
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      expect(nicPuts().length, "the throttled PUT was retried").to.equal(2);
      expect(ipConfigurationCount()).to.equal(5);

      arm.injectFault(
        NIC_PUT,
        { kind: "status", status: 429, code: "TooManyRequests", message: "slow down", retryAfterSeconds: 60 },
        10,
      );
      await requestAddress(poolId).expect(200);
      const refused = await requestAddress(poolId).expect(503);
      expect(refused.body.Err).to.contain(
        "Azure Resource Manager is throttling this VM's requests (retry after 60 s)",
      );
      const growth = (await status()).growth[0]!;
      expect(growth.state).to.equal("waiting after a failure");
      expect(Date.parse(growth.retryAt!) - Date.now()).to.be.greaterThan(50_000);
    });

    it("gives back the addresses it added once they sit idle above --pool-max-free", async () => {
      await growing({ poolMaxFree: 3, poolShrinkAfterMs: 200 });
      const poolId = await requestPool();
      const taken: string[] = [];
      for (let i = 0; i < 5; i++)
        taken.push((await requestAddress(poolId).expect(200)).body.Address as string);
      const grownTo = ipConfigurationCount();
      expect(grownTo).to.be.greaterThan(5);
      for (const address of taken)
        await post("/IpamDriver.ReleaseAddress", { PoolID: poolId, Address: address.split("/")[0] }).expect(
          200,
        );
      await pollUntil("idle addresses to be given back", async () =>
        (await eth0()).free.length <= 3 && ipConfigurationCount() < grownTo ? true : undefined,
      );
      const left = arm.nic("eth0-nic").ipConfigurations;
      expect(left.map((c) => c.name)).to.include.members(["ipconfig1", "ipconfig2", "ipconfig3"]);
      expect((await eth0()).free).to.have.length(3);
      expect((await status()).growth[0]!.removed).to.be.greaterThan(0);
    });

    it("says which NIC Azure does not know, and when Azure lists no NIC of this VM at all", async () => {
      await growing();
      const eth1Pool = (await post("/IpamDriver.RequestPool", { Pool: "10.2.0.0/24" }).expect(200)).body
        .PoolID as string;
      await requestAddress(eth1Pool).expect(200);
      await requestAddress(eth1Pool).expect(200);
      const unknown = await requestAddress(eth1Pool).expect(503);
      expect(unknown.body.Err).to.contain(
        "cannot add IP configurations to NIC 00:0d:3a:00:00:02: no NIC of this VM in Azure has MAC 00:0d:3a:00:00:02",
      );

      await plugin!.stop();
      arm.setNic({ ...initialNic(), vmName: "another-vm" });
      await growing();
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      const none = await requestAddress(poolId).expect(503);
      expect(none.body.Err).to.contain(
        "Azure lists no NICs attached to VM /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
      );
    });

    it("refuses to guess a subnet when Azure's NIC has no IP configuration in the pool's subnet", async () => {
      nics.interfaces[1]!.subnets[0] = {
        prefix: "10.1.0.128/25",
        primaryAddress: "10.1.0.132",
        secondaryAddresses: ["10.1.0.133"],
      };
      await growing();
      const poolId = (await post("/IpamDriver.RequestPool", { Pool: "10.1.0.128/25" }).expect(200)).body
        .PoolID as string;
      await requestAddress(poolId).expect(200);
      const refused = await requestAddress(poolId).expect(503);
      expect(refused.body.Err).to.contain("NIC eth0-nic has no IP configuration in 10.1.0.128/25 in Azure");
      expect(ipConfigurationCount()).to.equal(3);
    });

    it("an address taken for a request dockerd gave up on while growth ran is given back", async () => {
      await arm.close();
      arm = await startArm({ operationPolls: 3 });
      await growing();
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      // dockerd's client times out and closes the connection while growth still runs.
      await new Promise<void>((resolve) => {
        const request = http.request({
          socketPath: plugin!.socketPath,
          path: "/IpamDriver.RequestAddress",
          method: "POST",
        });
        request.on("error", () => resolve());
        request.end(JSON.stringify({ PoolID: poolId }));
        setTimeout(() => {
          request.destroy();
          resolve();
        }, 300);
      });
      const line = await pollUntil("the abandoned request's log line", () =>
        Promise.resolve(
          plugin!.logs
            .map((l) => JSON.parse(l) as Record<string, unknown>)
            .find((l) => l.outcome === "abandoned"),
        ),
      );
      expect(line).to.include({ call: "IpamDriver.RequestAddress", status: 499 });
      expect((await eth0()).free, "what it took is free again").to.include(
        (line.Address as string).split("/")[0],
      );
      expect((await eth0()).inUse).to.have.length(2);
    });

    it("is off by default: an empty pool fails at once and ARM is never asked", async () => {
      await start();
      const poolId = await requestPool();
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(200);
      await requestAddress(poolId).expect(503);
      expect(arm.requests).to.deep.equal([]);
    });
  });

  describe("public IPs and load-balancer backend pools", () => {
    const createNetwork = (generic: Record<string, string>, internal = false) =>
      post("/NetworkDriver.CreateNetwork", {
        NetworkID: NET,
        Options: { "com.docker.network.generic": generic, "com.docker.network.internal": internal },
        IPv4Data: [{ AddressSpace: "azure-local", Pool: "10.1.0.0/24", Gateway: "10.1.0.1/24" }],
        IPv6Data: [],
      });
    /** What dockerd does before CreateEndpoint: RequestAddress reserves the address in the IPAM driver. */
    const reserve = async (address: string) => {
      const pool = await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" }).expect(200);
      await post("/IpamDriver.RequestAddress", { PoolID: pool.body.PoolID, Address: address }).expect(200);
    };
    const createEndpoint = (endpointId: string, address: string, options: Record<string, string> = {}) =>
      post("/NetworkDriver.CreateEndpoint", {
        NetworkID: NET,
        EndpointID: endpointId,
        Interface: { Address: `${address}/24`, AddressIPv6: "", MacAddress: "" },
        Options: { "com.docker.network.endpoint.exposedports": [], ...options },
      });
    const links = async (endpointId: string) =>
      (await status()).endpoints.find((e) => e.id === endpointId)?.azure;
    const linked = (endpointId: string) =>
      pollUntil(`endpoint ${endpointId.slice(0, 12)} to be linked in Azure`, async () => {
        const azureLinks = await links(endpointId);
        return azureLinks?.state === "linked" ? azureLinks : undefined;
      });
    /** The rules the plugin last wrote into the network's nat chain. */
    const lastNatRules = () =>
      plugin!.host.calls.filter((c) => c.name === "setChainRules" && c.args[0] === "nat").at(-1)!
        .args[2] as string[][];
    const failedLink = (endpointId: string) =>
      pollUntil(`endpoint ${endpointId.slice(0, 12)} to show its failed link`, async () => {
        const azureLinks = await links(endpointId);
        return azureLinks?.state === "failed" ? azureLinks : undefined;
      });
    const stateOnDisk = async () =>
      JSON.parse(await readFile(plugin!.stateFile, "utf8")) as {
        driver: { unlinks: Record<string, unknown> };
      };
    const unlinked = () =>
      pollUntil("the Azure links to be undone", async () =>
        Object.keys((await stateOnDisk()).driver.unlinks).length === 0 ? true : undefined,
      );

    beforeEach(async () => {
      await start();
    });

    it("-o public-ip=true: each container gets a new public IP on its IP configuration, deleted when it goes", async () => {
      await plugin!.restart({ metricsAddress: "127.0.0.1:0" });
      await createNetwork({ "public-ip": "true" }).expect(200);
      await reserve("10.1.0.5");
      await createEndpoint(EP, "10.1.0.5").expect(200);
      const azureLinks = await linked(EP);
      expect(azureLinks.publicIpAddress).to.equal("198.51.100.200");
      const [publicIp] = arm.publicIps();
      expect(publicIp).to.deep.include({
        name: `azure-vnet-${EP.slice(0, 12)}`,
        ipAddress: "198.51.100.200",
      });
      expect(publicIp!.tags).to.deep.equal({
        "created-by": "azure-vnet",
        vm: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroupName}/providers/Microsoft.Compute/virtualMachines/vm1`,
      });
      expect(publicIp!.ipConfigurationId).to.match(
        /\/networkInterfaces\/eth0-nic\/ipConfigurations\/ipconfig2$/,
      );
      const info = await post("/NetworkDriver.EndpointOperInfo", { NetworkID: NET, EndpointID: EP }).expect(
        200,
      );
      expect(info.body.Value).to.deep.include({ "azure.link": "linked", "azure.publicIp": "198.51.100.200" });
      expect(await (await fetch(plugin!.service.metricsUrl!)).text()).to.contain(
        'azure_vnet_azure_links{state="linked"} 1',
      );
      const exempt = ["-s", "10.1.0.5/32", "-j", "RETURN"];
      expect(lastNatRules(), "its internet traffic leaves under its public IP, not SNATed").to.deep.include(
        exempt,
      );

      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200, {});
      await unlinked();
      expect(arm.publicIps()).to.deep.equal([]);
      expect(arm.nic("eth0-nic").ipConfigurations[1]!.publicIpId).to.equal(undefined);
      expect(lastNatRules()).to.not.deep.include(exempt);
      expect(await (await fetch(plugin!.service.metricsUrl!)).text()).to.contain(
        'azure_vnet_azure_links{state="linked"} 0',
      );
    });

    it("--driver-opt public-ip=<name> links an existing public IP and leaves it in place afterwards", async () => {
      const agent = new https.Agent({ ca: await readFile(ca.caFile, "utf8") });
      const operator = new NetworkManagementClient(
        {
          getToken: () =>
            Promise.resolve({ token: FAKE_MI_TOKEN, expiresOnTimestamp: Date.now() + 3600_000 }),
        },
        subscriptionId,
        {
          endpoint: arm.url,
          additionalPolicies: [
            {
              position: "perCall",
              policy: {
                name: "test-ca",
                sendRequest: (request, next) => next(Object.assign(request, { agent })),
              },
            },
          ],
        },
      );
      await operator.publicIPAddresses.beginCreateOrUpdateAndWait(resourceGroupName, "shared-ip", {
        location: FAKE_COMPUTE.location,
        sku: { name: "Standard" },
        publicIPAllocationMethod: "Static",
      });
      agent.destroy();
      await createNetwork({}).expect(200);
      await reserve("10.1.0.5");
      await createEndpoint(EP, "10.1.0.5", { "public-ip": "shared-ip" }).expect(200);
      expect((await linked(EP)).publicIpAddress).to.equal("198.51.100.200");
      expect(arm.publicIps()[0]!.ipConfigurationId).to.match(/\/ipconfig2$/);
      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200, {});
      await unlinked();
      expect(arm.publicIps(), "not the plugin's to delete").to.have.length(1);
      expect(arm.publicIps()[0]!.ipConfigurationId).to.equal(undefined);

      await reserve("10.1.0.6");
      await createEndpoint(EP2, "10.1.0.6", { "public-ip": "missing-ip" }).expect(200);
      const failed = await failedLink(EP2);
      expect(failed.error).to.contain("cannot read public IP missing-ip");
    });

    it("--driver-opt lb-backend-pool puts the IP configuration into the backend pool and takes it out", async () => {
      await createNetwork({}).expect(200);
      await reserve("10.1.0.6");
      await createEndpoint(EP, "10.1.0.6", { "lb-backend-pool": POOL_ID }).expect(200);
      await linked(EP);
      expect(arm.backendPoolMembers("lb1", "pool1")).to.have.length(1);
      expect(arm.backendPoolMembers("lb1", "pool1")[0]).to.match(/\/ipConfigurations\/ipconfig3$/);
      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200, {});
      await unlinked();
      expect(arm.backendPoolMembers("lb1", "pool1")).to.deep.equal([]);
    });

    it("a backend pool Azure does not have: the link fails with ARM's reason", async () => {
      await createNetwork({}).expect(200);
      await reserve("10.1.0.5");
      await createEndpoint(EP, "10.1.0.5", { "lb-backend-pool": POOL_ID.replace("pool1", "pool2") }).expect(
        200,
      );
      const failed = await failedLink(EP);
      expect(failed.error).to.contain(
        "cannot change the IP configuration of 10.1.0.5: Azure rejected the change (InvalidResourceReference)",
      );
      expect(arm.nic("eth0-nic").ipConfigurations[1]!.backendPoolIds).to.deep.equal([]);
    });

    it("an address Azure's NIC does not hold cannot be linked, and needs no unlinking", async () => {
      // IMDS still shows an address that is gone from the NIC in Azure.
      const eth0Subnet = nics.interfaces[1]!.subnets[0]!;
      eth0Subnet.secondaryAddresses = [...(eth0Subnet.secondaryAddresses ?? []), "10.1.0.7"];
      await plugin!.restart();
      await createNetwork({}).expect(200);
      await reserve("10.1.0.7");
      await createEndpoint(EP, "10.1.0.7", { "lb-backend-pool": POOL_ID }).expect(200);
      const failed = await failedLink(EP);
      expect(failed.error).to.contain("NIC eth0-nic has no IP configuration with 10.1.0.7 in Azure");
      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200, {});
      await unlinked();
    });

    it("a link that Azure refuses is retried and shown as failed meanwhile; the container is not held up", async () => {
      arm.injectFault(NIC_PUT, { kind: "operation-failed", code: "InternalServerError", message: "boom" });
      await createNetwork({ "lb-backend-pool": POOL_ID }).expect(200);
      await reserve("10.1.0.5");
      await createEndpoint(EP, "10.1.0.5").expect(200);
      const failed = await failedLink(EP);
      expect(failed.error).to.contain("the Azure operation failed");
      const info = await post("/NetworkDriver.EndpointOperInfo", { NetworkID: NET, EndpointID: EP }).expect(
        200,
      );
      expect(info.body.Value["azure.link"]).to.match(/^failed: /);
      const operatorView = cliTarget();
      expect((await cli(["status", ...operatorView])).stdout).to.match(
        /10\.1\.0\.5 .* failed \+1 lb pool: cannot change the IP configuration of 10\.1\.0\.5/,
      );
      expect((await cli(["doctor", ...operatorView])).stdout).to.contain(
        "WARN  azure: endpoint e1e2e3e4e5e6 (10.1.0.5) is not linked in Azure yet",
      );
    });

    it("links and unlinks that a restart interrupted are finished after it", async () => {
      await createNetwork({ "public-ip": "true" }).expect(200);
      arm.injectFault(NIC_PUT, { kind: "operation-failed", code: "InternalServerError", message: "boom" });
      await reserve("10.1.0.5");
      await createEndpoint(EP, "10.1.0.5").expect(200);
      await failedLink(EP);
      await plugin!.restart();
      expect((await linked(EP)).publicIpAddress).to.equal("198.51.100.200");

      arm.injectFault(NIC_PUT, { kind: "operation-failed", code: "InternalServerError", message: "boom" });
      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200, {});
      await pollUntil("the unlink to fail once", async () => (await status()).unlinks[0]?.links.error);
      expect(arm.publicIps(), "not deleted while still associated").to.have.length(1);
      await plugin!.restart();
      await unlinked();
      expect(arm.publicIps()).to.deep.equal([]);
    });

    it("a container removed while Azure links it is unlinked after, and keeps no NAT exemption", async () => {
      await plugin!.stop();
      await arm.close();
      arm = await startArm({ operationPolls: 2 });
      await start();
      await createNetwork({ "public-ip": "true" }).expect(200);
      await reserve("10.1.0.5");
      await createEndpoint(EP, "10.1.0.5").expect(200);
      await pollUntil("Azure to be working on the link", () =>
        Promise.resolve(
          arm.requests.some((r) => r.method === "PUT" && r.path.endsWith("/eth0-nic")) || undefined,
        ),
      );
      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200, {});
      await unlinked();
      expect(arm.publicIps()).to.deep.equal([]);
      expect(arm.nic("eth0-nic").ipConfigurations[1]!.publicIpId).to.equal(undefined);
      expect(lastNatRules()).to.not.deep.include(["-s", "10.1.0.5/32", "-j", "RETURN"]);
    });

    it("an unlink retried after the address went to another container leaves that container's links", async () => {
      await createNetwork({ "public-ip": "true", "lb-backend-pool": POOL_ID }).expect(200);
      await reserve("10.1.0.5");
      await createEndpoint(EP, "10.1.0.5").expect(200);
      const first = await linked(EP);
      // The unlink fails once and is retried 5 s later, when 10.1.0.5 serves the next container.
      arm.injectFault(NIC_PUT, { kind: "operation-failed", code: "InternalServerError", message: "boom" }, 1);
      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: NET, EndpointID: EP }).expect(200, {});
      const pools = (await stateOnDisk()) as unknown as {
        ipam: { reservations: Record<string, { poolId: string }> };
      };
      await post("/IpamDriver.ReleaseAddress", {
        PoolID: pools.ipam.reservations["10.1.0.5"]!.poolId,
        Address: "10.1.0.5",
      }).expect(200);
      await reserve("10.1.0.5");
      await createEndpoint(EP2, "10.1.0.5").expect(200);
      const second = await linked(EP2);
      expect(second.publicIpAddress).to.not.equal(first.publicIpAddress);
      await unlinked();
      const secondIp = arm.publicIps().find((ip) => ip.ipAddress === second.publicIpAddress)!;
      expect(arm.publicIps(), "only the first container's public IP was deleted").to.deep.equal([secondIp]);
      const configuration = arm.nic("eth0-nic").ipConfigurations.find((c) => c.privateIp === "10.1.0.5")!;
      expect(configuration.publicIpId, "the new container keeps its public IP").to.equal(secondIp.id);
      expect(configuration.backendPoolIds, "and its backend pool").to.deep.equal([POOL_ID]);
      expect((await links(EP2))?.state).to.equal("linked");
    });

    const refusals: [string, () => ReturnType<typeof post>, string][] = [
      [
        "an unknown --driver-opt",
        () => createEndpoint(EP, "10.1.0.5", { colour: "blue" }),
        "unknown --driver-opt colour",
      ],
      [
        "a public-ip that is neither true, false nor a resource",
        () => createEndpoint(EP, "10.1.0.5", { "public-ip": "two please" }),
        "--driver-opt public-ip=two please is not true, false, or a public IP",
      ],
      [
        "a backend pool that is not a backend pool id",
        () => createEndpoint(EP, "10.1.0.5", { "lb-backend-pool": "pool1" }),
        '--driver-opt lb-backend-pool: "pool1" is not a backend pool id',
      ],
    ];
    for (const [what, call, message] of refusals) {
      it(`refuses ${what} before anything is recorded`, async () => {
        await createNetwork({}).expect(200);
        const res = await call().expect(400);
        expect(res.body.Err).to.contain(message);
        expect((await status()).endpoints).to.deep.equal([]);
      });
    }

    it("refuses a network-wide existing public IP and public IPs on --internal networks", async () => {
      const shared = await createNetwork({ "public-ip": "mine" }).expect(400);
      expect(shared.body.Err).to.contain("-o public-ip=mine: one public IP cannot serve a whole network");
      const internal = await createNetwork({ "public-ip": "true" }, true).expect(400);
      expect(internal.body.Err).to.contain("--internal networks cannot have public IPs or load balancers");
    });
  });

  describe("a VM with two NICs in different subnets", () => {
    const ETH1_NET = "b0b1b2b3b4b5" + "4".repeat(52);
    const eth1Imds = () => nics.interfaces.find((i) => i.macAddress === ETH1_MAC)!.subnets[0]!;
    /** eth1's NIC in Azure: in subnet "second" (10.2.0.0/24), with what IMDS shows of it. */
    const eth1Nic = (): FakeArmNic => ({
      name: "eth1-nic",
      vmName: FAKE_COMPUTE.name,
      mac: ETH1_MAC,
      subnet: "second",
      ipConfigurations: [eth1Imds().primaryAddress!, ...eth1Imds().secondaryAddresses!].map(
        (privateIp, index) => ({
          name: `ipconfig${index + 1}`,
          privateIp,
          primary: index === 0,
          backendPoolIds: [],
        }),
      ),
    });
    const startTwoNicArm = async () => {
      await arm.close();
      arm = await startArm({
        subnets: [{ name: "second", vnetName: "vnet", prefix: "10.2.0.0/24" }],
        nics: [initialNic(), eth1Nic()],
      });
    };
    const putsTo = (nic: string) =>
      arm.requests.filter((r) => r.method === "PUT" && r.path.endsWith(`/${nic}`));
    const eth1 = async () => (await status()).pool.find((p) => p.nic === "eth1")!;
    const eth1Pool = async () =>
      (await post("/IpamDriver.RequestPool", { Pool: "10.2.0.0/24" }).expect(200)).body.PoolID as string;

    it("grows the NIC that holds the subnet: eth1's subnet gets IP configurations on eth1's NIC, eth0's NIC is only read", async () => {
      await startTwoNicArm();
      const eth0Before = arm.nic("eth0-nic");
      await growing();
      const poolId = await eth1Pool();
      const taken: string[] = [];
      for (let i = 0; i < 3; i++)
        taken.push((await requestAddress(poolId).expect(200)).body.Address as string);
      expect(taken.slice(0, 2)).to.deep.equal(["10.2.0.5/24", "10.2.0.6/24"]);
      const eth1Configurations = arm.nic("eth1-nic").ipConfigurations;
      expect(eth1Configurations).to.have.length(5);
      const grown = eth1Configurations.slice(3);
      expect(grown.map((c) => c.name)).to.satisfy((names: string[]) =>
        names.every((n) => n.startsWith("azure-vnet-")),
      );
      expect(grown.map((c) => c.privateIp)).to.deep.equal(["10.2.0.7", "10.2.0.8"]);
      expect(grown.map((c) => c.privateIp)).to.include(taken[2]!.split("/")[0]);
      expect(putsTo("eth1-nic")).to.have.length(1);
      expect(putsTo("eth0-nic"), "eth0's NIC is never changed").to.deep.equal([]);
      expect(arm.nic("eth0-nic")).to.deep.equal(eth0Before);
      expect(
        arm.requests.some((r) => r.method === "GET" && r.path.endsWith("/eth0-nic")),
        "eth0's NIC is read for the VM's count of private addresses",
      ).to.equal(true);
      expect(eth1Imds().secondaryAddresses, "IMDS shows the new addresses on eth1").to.include.members([
        "10.2.0.7",
        "10.2.0.8",
      ]);
      expect((await status()).growth).to.deep.equal([
        { nic: "eth1", subnet: "10.2.0.0/24", state: "idle", added: 2, removed: 0 },
      ]);
    });

    it("gives back idle addresses only on the NIC that holds them", async () => {
      await startTwoNicArm();
      await growing({ poolMaxFree: 3, poolShrinkAfterMs: 200 });
      // eth0 grows too, and keeps what it added: it has no more than 3 free.
      const eth0Pool = await requestPool();
      for (let i = 0; i < 3; i++) await requestAddress(eth0Pool).expect(200);
      const onEth1: string[] = [];
      const eth1PoolId = await eth1Pool();
      for (let i = 0; i < 5; i++)
        onEth1.push(((await requestAddress(eth1PoolId).expect(200)).body.Address as string).split("/")[0]!);
      await pollUntil("growth to settle", async () =>
        (await status()).growth.every((g) => g.state === "idle") ? true : undefined,
      );
      const eth0Before = arm.nic("eth0-nic");
      expect(eth0Before.ipConfigurations.filter((c) => c.name.startsWith("azure-vnet-"))).to.not.deep.equal(
        [],
      );
      const eth0Puts = putsTo("eth0-nic").length;
      const grownTo = arm.nic("eth1-nic").ipConfigurations.length;
      expect(grownTo).to.be.greaterThan(6);
      for (const address of onEth1)
        await post("/IpamDriver.ReleaseAddress", { PoolID: eth1PoolId, Address: address }).expect(200);
      await pollUntil("eth1's idle addresses to be given back", async () =>
        (await eth1()).free.length <= 3 && arm.nic("eth1-nic").ipConfigurations.length < grownTo
          ? true
          : undefined,
      );
      const left = arm.nic("eth1-nic").ipConfigurations;
      expect(left.map((c) => c.name)).to.include.members(["ipconfig1", "ipconfig2", "ipconfig3"]);
      expect((await eth1()).free).to.have.length(3);
      expect(putsTo("eth0-nic"), "no change of eth0's NIC").to.have.length(eth0Puts);
      expect(arm.nic("eth0-nic")).to.deep.equal(eth0Before);
      const growth = (await status()).growth;
      expect(growth.find((g) => g.nic === "eth1")!.removed).to.be.greaterThan(0);
      expect(growth.find((g) => g.nic === "eth0")!.removed).to.equal(0);
    });

    it("links a public IP and a backend pool on eth1's IP configuration for a container on eth1's subnet, and undoes them there", async () => {
      await startTwoNicArm();
      await start();
      const eth0Before = arm.nic("eth0-nic");
      await post("/NetworkDriver.CreateNetwork", {
        NetworkID: ETH1_NET,
        Options: { "com.docker.network.generic": { "public-ip": "true", "lb-backend-pool": POOL_ID } },
        IPv4Data: [{ AddressSpace: "azure-local", Pool: "10.2.0.0/24", Gateway: "10.2.0.1/24" }],
        IPv6Data: [],
      }).expect(200);
      await post("/IpamDriver.RequestAddress", { PoolID: await eth1Pool(), Address: "10.2.0.6" }).expect(200);
      await post("/NetworkDriver.CreateEndpoint", {
        NetworkID: ETH1_NET,
        EndpointID: EP,
        Interface: { Address: "10.2.0.6/24", AddressIPv6: "", MacAddress: "" },
        Options: { "com.docker.network.endpoint.exposedports": [] },
      }).expect(200);
      const linked = await pollUntil("the endpoint on eth1 to be linked in Azure", async () => {
        const links = (await status()).endpoints.find((e) => e.id === EP)?.azure;
        if (links?.state === "failed") throw new Error(`linking failed: ${links.error}`);
        return links?.state === "linked" ? links : undefined;
      });
      expect(linked.publicIpAddress).to.equal("198.51.100.200");
      const [publicIp] = arm.publicIps();
      expect(publicIp!.ipConfigurationId).to.match(
        /\/networkInterfaces\/eth1-nic\/ipConfigurations\/ipconfig3$/,
      );
      expect(arm.backendPoolMembers("lb1", "pool1")).to.have.length(1);
      expect(arm.backendPoolMembers("lb1", "pool1")[0]).to.match(
        /\/networkInterfaces\/eth1-nic\/ipConfigurations\/ipconfig3$/,
      );
      const configuration = arm.nic("eth1-nic").ipConfigurations[2]!;
      expect(configuration).to.deep.include({ privateIp: "10.2.0.6", publicIpId: publicIp!.id });
      expect(configuration.backendPoolIds).to.deep.equal([POOL_ID]);
      expect(putsTo("eth0-nic")).to.deep.equal([]);
      expect(arm.nic("eth0-nic")).to.deep.equal(eth0Before);

      await post("/NetworkDriver.DeleteEndpoint", { NetworkID: ETH1_NET, EndpointID: EP }).expect(200, {});
      await pollUntil("the Azure links to be undone", async () =>
        (await status()).unlinks.length === 0 ? true : undefined,
      );
      expect(arm.publicIps()).to.deep.equal([]);
      expect(arm.backendPoolMembers("lb1", "pool1")).to.deep.equal([]);
      expect(arm.nic("eth1-nic").ipConfigurations[2]).to.deep.include({ privateIp: "10.2.0.6" });
      expect(arm.nic("eth1-nic").ipConfigurations[2]!.publicIpId).to.equal(undefined);
      expect(putsTo("eth0-nic")).to.deep.equal([]);
      expect(arm.nic("eth0-nic")).to.deep.equal(eth0Before);
    });

    it("counts the IP configurations of every NIC of the VM: growth stops at Azure's 256 private addresses per VM, and says so", async () => {
      // eth0 holds 251 (10.1.0.4-254), eth1 3: growth may add 2 more in all, though a step is 4.
      nics.interfaces[1]!.subnets[0]!.secondaryAddresses = Array.from(
        { length: 250 },
        (_, i) => `10.1.0.${5 + i}`,
      );
      await startTwoNicArm();
      expect(arm.nic("eth0-nic").ipConfigurations).to.have.length(251);
      await growing({ poolGrowStep: 4 });
      const poolId = await eth1Pool();
      for (let i = 0; i < 4; i++) await requestAddress(poolId).expect(200);
      expect(arm.nic("eth1-nic").ipConfigurations, "2 added, not 4").to.have.length(5);
      const refused = await requestAddress(poolId).expect(503);
      const full =
        "the VM has 256 private IP addresses across its NICs (eth1-nic 5, eth0-nic 251), the most Azure allows (256)";
      expect(refused.body.Err).to.equal(
        `${full} — remove containers that no longer run, or move some to another VM`,
      );
      expect(arm.nic("eth1-nic").ipConfigurations).to.have.length(5);
      expect(arm.nic("eth0-nic").ipConfigurations).to.have.length(251);
      expect(putsTo("eth1-nic"), "no PUT that Azure would refuse").to.have.length(1);
      expect(putsTo("eth0-nic")).to.deep.equal([]);
      const growth = (await status()).growth[0]!;
      expect(growth).to.include({ state: "waiting after a failure", added: 2 });
      expect(growth.lastError).to.contain(full);

      // Within the VM's room, --max-ip-configurations still caps each NIC.
      await plugin!.stop();
      nics.interfaces[1]!.subnets[0]!.secondaryAddresses = ["10.1.0.5", "10.1.0.6"];
      eth1Imds().secondaryAddresses = ["10.2.0.5", "10.2.0.6"];
      await startTwoNicArm();
      await growing({ maxIpConfigurations: 4 });
      const again = await eth1Pool();
      for (let i = 0; i < 3; i++) await requestAddress(again).expect(200);
      const capped = await requestAddress(again).expect(503);
      expect(capped.body.Err).to.contain("NIC eth1-nic has 4 IP configurations, the most allowed (4)");
    });

    it("two NICs growing at once do not both take the VM's last room: the second waits, counts again and says the VM is full", async () => {
      // Azure has more than IMDS shows yet: eth0's NIC 200 (10.1.0.4-203), eth1's 54 (10.2.0.4-57).
      const holding = (
        name: string,
        mac: string,
        network: string,
        count: number,
        subnet?: string,
      ): FakeArmNic => ({
        name,
        vmName: FAKE_COMPUTE.name,
        mac,
        ...(subnet ? { subnet } : {}),
        ipConfigurations: Array.from({ length: count }, (_, i) => ({
          name: `ipconfig${i + 1}`,
          privateIp: `${network}.${4 + i}`,
          primary: i === 0,
          backendPoolIds: [],
        })),
      });
      await arm.close();
      arm = await startArm({
        operationPolls: 3,
        subnets: [{ name: "second", vnetName: "vnet", prefix: "10.2.0.0/24" }],
        nics: [
          holding("eth0-nic", ETH0_MAC, "10.1.0", 200),
          holding("eth1-nic", ETH1_MAC, "10.2.0", 54, "second"),
        ],
      });
      await growing();
      const eth0Pool = await requestPool();
      const eth1PoolId = await eth1Pool();
      await requestAddress(eth0Pool).expect(200);
      await requestAddress(eth0Pool).expect(200); // eth0's pool is empty: its growth starts
      await requestAddress(eth1PoolId).expect(200);
      await requestAddress(eth1PoolId).expect(200); // and eth1's, while eth0's runs
      const settled = await pollUntil("both growths to end", async () => {
        const growth = (await status()).growth;
        return growth.length === 2 && growth.every((g) => g.state !== "growing") ? growth : undefined;
      });
      const full =
        "the VM has 256 private IP addresses across its NICs (eth1-nic 54, eth0-nic 202), the most Azure allows (256)";
      expect(settled.find((g) => g.nic === "eth0")).to.include({ added: 2 });
      expect(settled.find((g) => g.nic === "eth1")).to.include({
        added: 0,
        lastError: `${full} — remove containers that no longer run, or move some to another VM`,
      });
      expect(arm.nic("eth0-nic").ipConfigurations).to.have.length(202);
      expect(arm.nic("eth1-nic").ipConfigurations).to.have.length(54);
      expect(putsTo("eth1-nic"), "no PUT that Azure would refuse").to.deep.equal([]);
      expect((await requestAddress(eth1PoolId).expect(503)).body.Err).to.contain(full);
    });
  });
});
