/**
 * The ARM stand-in driven by the real @azure/arm-network client over HTTPS with a test CA: NIC reads
 * and updates as long-running operations, validation answers, injected faults (failed operation, 403,
 * 429), public IP lifecycle and backend pool membership. Proves that what passes against the stand-in
 * is what the SDK really sends and accepts.
 */
import { expect } from "chai";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  NetworkManagementClient,
  type NetworkInterface,
  type NetworkInterfaceIPConfiguration,
} from "@azure/arm-network";
import {
  FAKE_ARM_API_VERSION,
  FAKE_MI_TOKEN,
  startFakeArm,
  type FakeArm,
  type FakeArmNic,
  type FakeArmOptions,
} from "../helpers/fake-arm.js";
import { createTestCa } from "../helpers/test-ca.js";

const SUB = "00000000-0000-0000-0000-000000000000";
const RG = "rg";
const LOCATION = "westeurope";
const NET = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Network`;
const SUBNET_ID = `${NET}/virtualNetworks/vnet1/subnets/default`;
const NIC = "vm1-nic0";
const NIC_ID = `${NET}/networkInterfaces/${NIC}`;
const POOL_ID = `${NET}/loadBalancers/lb1/backendAddressPools/pool1`;

/** vm1's NIC with the primary .4 and a Static secondary .5; vm2's NIC holds .6, so vm1's next free is .7. */
function nics(): FakeArmNic[] {
  return [
    {
      name: NIC,
      vmName: "vm1",
      mac: "00:0d:3a:1b:c7:21",
      ipConfigurations: [
        { name: "ipconfig1", privateIp: "10.1.0.4", primary: true, backendPoolIds: [] },
        {
          name: "ipconfig2",
          privateIp: "10.1.0.5",
          primary: false,
          allocation: "Static",
          backendPoolIds: [],
        },
      ],
    },
    {
      name: "vm2-nic0",
      vmName: "vm2",
      mac: "00:0d:3a:00:00:02",
      ipConfigurations: [{ name: "ipconfig1", privateIp: "10.1.0.6", primary: true, backendPoolIds: [] }],
    },
  ];
}

/** What a RestError from the SDK carries; asserted by shape so the test needs no transitive import. */
type RestErrorLike = Error & { statusCode?: number; code?: string };

async function rejection(promise: Promise<unknown>): Promise<RestErrorLike> {
  try {
    await promise;
  } catch (error) {
    return error as RestErrorLike;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

describe("ARM stand-in driven by @azure/arm-network", function () {
  this.timeout(20_000);

  let dir: string;
  let caPem: string;
  let tls: FakeArmOptions["tls"];
  let fake: FakeArm;
  let agent: https.Agent;
  let nicChanges: FakeArmNic[];
  let publicIpChanges: { publicIp: string; privateIp: string | undefined }[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "fake-arm-"));
    const ca = await createTestCa(dir, { ips: ["127.0.0.1"] });
    caPem = await readFile(ca.caFile, "utf8");
    tls = { certPem: ca.certPem, keyPem: ca.keyPem };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (extra: Partial<FakeArmOptions> = {}) =>
    startFakeArm({
      subscriptionId: SUB,
      resourceGroup: RG,
      location: LOCATION,
      subnet: { name: "default", vnetName: "vnet1", prefix: "10.1.0.0/24" },
      nics: nics(),
      loadBalancers: [{ name: "lb1", backendPools: ["pool1"] }],
      firstPublicIp: "198.51.100.200",
      tls,
      listen: { host: "127.0.0.1", port: 0 },
      operationPolls: 1,
      retryAfterSeconds: 1,
      onNicChange: (nic) => {
        nicChanges.push(nic);
        return Promise.resolve();
      },
      onPublicIpChange: (change) => {
        publicIpChanges.push(change);
        return Promise.resolve();
      },
      ...extra,
    });

  beforeEach(async () => {
    nicChanges = [];
    publicIpChanges = [];
    agent = new https.Agent({ ca: caPem });
    fake = await start();
  });
  afterEach(async () => {
    await fake.close();
    agent.destroy();
  });

  /** The SDK client as the plugin builds it: endpoint, ARM scope, and the test CA through a per-call policy. */
  const client = (endpoint = fake.url, token = FAKE_MI_TOKEN) =>
    new NetworkManagementClient(
      { getToken: () => Promise.resolve({ token, expiresOnTimestamp: Date.now() + 3600_000 }) },
      SUB,
      {
        endpoint,
        credentials: { scopes: ["https://management.azure.com/.default"] },
        additionalPolicies: [
          {
            position: "perCall",
            policy: {
              name: "test-ca",
              sendRequest: (request, next) => {
                request.agent = agent;
                return next(request);
              },
            },
          },
        ],
      },
    );

  const count = (method: string, pathIncludes: string) =>
    fake.requests.filter((r) => r.method === method && r.path.includes(pathIncludes)).length;

  const withConfig = (nic: NetworkInterface, config: NetworkInterfaceIPConfiguration): NetworkInterface => ({
    ...nic,
    ipConfigurations: [...(nic.ipConfigurations ?? []), config],
  });

  const editConfig = (
    nic: NetworkInterface,
    name: string,
    edit: (config: NetworkInterfaceIPConfiguration) => NetworkInterfaceIPConfiguration,
  ): NetworkInterface => ({
    ...nic,
    ipConfigurations: (nic.ipConfigurations ?? []).map((c) => (c.name === name ? edit(c) : c)),
  });

  it("lists and reads NICs in ARM's shapes, with the managed-identity token", async () => {
    const arm = client();
    const listed: string[] = [];
    for await (const nic of arm.networkInterfaces.list(RG)) listed.push(nic.name!);
    const all: string[] = [];
    for await (const nic of arm.networkInterfaces.listAll()) all.push(nic.name!);
    expect(listed).to.deep.equal([NIC, "vm2-nic0"]);
    expect(all).to.deep.equal([NIC, "vm2-nic0"]);

    const nic = await arm.networkInterfaces.get(RG, NIC);
    expect(nic.id).to.equal(NIC_ID);
    expect(nic.macAddress).to.equal("00-0D-3A-1B-C7-21");
    expect(nic.primary).to.equal(true);
    expect(nic.provisioningState).to.equal("Succeeded");
    expect(nic.etag).to.match(/^W\/"[0-9a-f-]{36}"$/);
    expect(nic.virtualMachine?.id).to.equal(
      `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachines/vm1`,
    );
    const [primary, secondary] = nic.ipConfigurations!;
    expect(primary).to.deep.include({
      name: "ipconfig1",
      id: `${NIC_ID}/ipConfigurations/ipconfig1`,
      primary: true,
    });
    expect(primary!.privateIPAddress).to.equal("10.1.0.4");
    expect(primary!.subnet?.id).to.equal(SUBNET_ID);
    expect(secondary).to.deep.include({ privateIPAddress: "10.1.0.5", privateIPAllocationMethod: "Static" });
    expect(fake.requests.every((r) => r.authorization === `Bearer ${FAKE_MI_TOKEN}`)).to.equal(true);
    expect(fake.requests.length).to.equal(3);
  });

  it("answers 404 ResourceNotFound for an unknown NIC", async () => {
    const error = await rejection(client().networkInterfaces.get(RG, "nope"));
    expect(error.statusCode).to.equal(404);
    expect(error.code).to.equal("ResourceNotFound");
  });

  it("adds a Dynamic secondary at the lowest free address, committed only when the operation completes", async () => {
    const arm = client();
    const before = await arm.networkInterfaces.get(RG, NIC);
    const poller = await arm.networkInterfaces.beginCreateOrUpdate(
      RG,
      NIC,
      withConfig(before, {
        name: "ipconfig3",
        privateIPAllocationMethod: "Dynamic",
        subnet: { id: SUBNET_ID },
      }),
    );
    // begin… sent the PUT and has not polled yet: the operation is in progress, nothing has changed.
    expect(count("PUT", `/networkInterfaces/${NIC}`)).to.equal(1);
    expect(count("GET", "/operations/")).to.equal(0);
    expect(fake.nic(NIC).ipConfigurations).to.have.length(2);
    expect((await arm.networkInterfaces.get(RG, NIC)).provisioningState).to.equal("Updating");
    expect(nicChanges).to.have.length(0);

    const after = await poller.pollUntilDone();
    const added = after.ipConfigurations!.find((c) => c.name === "ipconfig3")!;
    expect(added.privateIPAddress).to.equal("10.1.0.7"); // .4-.6 are held by vm1 and vm2
    expect(after.provisioningState).to.equal("Succeeded");
    expect(after.etag).to.not.equal(before.etag);
    expect(fake.nic(NIC).ipConfigurations.map((c) => c.privateIp)).to.deep.equal([
      "10.1.0.4",
      "10.1.0.5",
      "10.1.0.7",
    ]);
    expect(nicChanges.map((n) => n.ipConfigurations.length)).to.deep.equal([3]);
    // One InProgress, one Succeeded, then the final GET of the NIC. (The SDK sends its first two polls
    // back to back; Retry-After only spaces the third and later ones.)
    expect(count("GET", "/operations/")).to.equal(2);
    expect(count("PUT", NIC)).to.equal(1);
    expect(fake.requests.at(-1)).to.deep.include({ method: "GET", path: NIC_ID });
  });

  it("keeps a Dynamic configuration's address and frees removed ones", async () => {
    const arm = client();
    const nic = await arm.networkInterfaces.get(RG, NIC);
    const added = await arm.networkInterfaces.beginCreateOrUpdateAndWait(
      RG,
      NIC,
      withConfig(nic, { name: "ipconfig3", privateIPAllocationMethod: "Dynamic", subnet: { id: SUBNET_ID } }),
    );
    // Drop ipconfig2 (.5); ipconfig3 keeps .7 although .5 is now the lowest free address.
    const removed = await arm.networkInterfaces.beginCreateOrUpdateAndWait(RG, NIC, {
      ...added,
      ipConfigurations: added.ipConfigurations!.filter((c) => c.name !== "ipconfig2"),
    });
    expect(removed.ipConfigurations!.map((c) => [c.name, c.privateIPAddress])).to.deep.equal([
      ["ipconfig1", "10.1.0.4"],
      ["ipconfig3", "10.1.0.7"],
    ]);
    const next = await arm.networkInterfaces.beginCreateOrUpdateAndWait(
      RG,
      NIC,
      withConfig(removed, { name: "ipconfig4", subnet: { id: SUBNET_ID } }),
    );
    expect(next.ipConfigurations!.find((c) => c.name === "ipconfig4")!.privateIPAddress).to.equal("10.1.0.5");
  });

  it("an operation that ends Failed makes the SDK throw and leaves the NIC unchanged", async () => {
    const arm = client();
    const before = await arm.networkInterfaces.get(RG, NIC);
    fake.injectFault(
      { method: "PUT", pathIncludes: `/networkInterfaces/${NIC}` },
      { kind: "operation-failed", code: "InternalServerError", message: "An error occurred." },
    );
    const error = await rejection(
      arm.networkInterfaces.beginCreateOrUpdateAndWait(
        RG,
        NIC,
        withConfig(before, { name: "ipconfig3", subnet: { id: SUBNET_ID } }),
      ),
    );
    expect(error.message).to.equal(
      "The long-running operation has failed. InternalServerError. An error occurred.",
    );
    expect(fake.nic(NIC).ipConfigurations).to.have.length(2);
    expect((await arm.networkInterfaces.get(RG, NIC)).etag).to.equal(before.etag);
    expect(nicChanges).to.have.length(0);
  });

  it("a 403 LinkedAuthorizationFailed reaches the caller as a RestError, not retried", async () => {
    const arm = client();
    const nic = await arm.networkInterfaces.get(RG, NIC);
    const message = `The client 'mi' with object id 'x' has permission to perform action 'Microsoft.Network/networkInterfaces/write' on scope '${NIC_ID}'; however, it does not have permission to perform action 'Microsoft.Network/virtualNetworks/subnets/join/action' on the linked scope(s) '${SUBNET_ID}' or the linked scope(s) are invalid.`;
    fake.injectFault(
      { method: "PUT", pathIncludes: NIC },
      { kind: "status", status: 403, code: "LinkedAuthorizationFailed", message },
    );
    const error = await rejection(
      arm.networkInterfaces.beginCreateOrUpdateAndWait(
        RG,
        NIC,
        withConfig(nic, { name: "x", subnet: { id: SUBNET_ID } }),
      ),
    );
    expect(error.name).to.equal("RestError");
    expect(error.statusCode).to.equal(403);
    expect(error.code).to.equal("LinkedAuthorizationFailed");
    expect(error.message).to.include("subnets/join/action");
    expect(count("PUT", NIC)).to.equal(1);
  });

  it("a 429 with Retry-After is waited out and retried by the SDK", async () => {
    fake.injectFault(
      { method: "GET", pathIncludes: NIC },
      {
        kind: "status",
        status: 429,
        code: "TooManyRequests",
        message: "Too many requests.",
        retryAfterSeconds: 1,
      },
    );
    const nic = await client().networkInterfaces.get(RG, NIC);
    expect(nic.name).to.equal(NIC);
    expect(count("GET", NIC)).to.equal(2);
  });

  it("the SDK retries a 429 three times, then gives up with the 429", async () => {
    fake.injectFault(
      { method: "GET", pathIncludes: NIC },
      {
        kind: "status",
        status: 429,
        code: "TooManyRequests",
        message: "Too many requests.",
        retryAfterSeconds: 0,
      },
      10,
    );
    const error = await rejection(client().networkInterfaces.get(RG, NIC));
    expect(error.statusCode).to.equal(429);
    expect(error.code).to.equal("TooManyRequests");
    expect(count("GET", NIC)).to.equal(4);
  });

  it("refuses invalid NIC updates with Azure's codes and changes nothing", async () => {
    const arm = client();
    const nic = await arm.networkInterfaces.get(RG, NIC);
    const refuse = async (body: NetworkInterface) => {
      const error = await rejection(arm.networkInterfaces.beginCreateOrUpdateAndWait(RG, NIC, body));
      expect(error.statusCode, error.message).to.equal(400);
      return error.code;
    };
    const secondary = (props: NetworkInterfaceIPConfiguration) =>
      withConfig(nic, { name: "ipconfig3", subnet: { id: SUBNET_ID }, ...props });

    expect(
      await refuse(secondary({ privateIPAllocationMethod: "Static", privateIPAddress: "10.1.0.6" })),
    ).to.equal("PrivateIPAddressInUse");
    expect(
      await refuse(secondary({ privateIPAllocationMethod: "Static", privateIPAddress: "10.2.0.9" })),
    ).to.equal("PrivateIPAddressNotInSubnet");
    expect(
      await refuse(secondary({ privateIPAllocationMethod: "Static", privateIPAddress: "10.1.0.3" })),
    ).to.equal("PrivateIPAddressInReservedRange");
    expect(await refuse(secondary({ primary: true }))).to.equal("InvalidRequestFormat");
    expect(await refuse(withConfig(nic, { name: "IPCONFIG2", subnet: { id: SUBNET_ID } }))).to.equal(
      "InvalidRequestFormat",
    );
    expect(
      await refuse(secondary({ subnet: { id: `${NET}/virtualNetworks/vnet1/subnets/other` } })),
    ).to.equal("InvalidResourceReference");
    expect(await refuse(secondary({ publicIPAddress: { id: `${NET}/publicIPAddresses/missing` } }))).to.equal(
      "InvalidResourceReference",
    );
    expect(await refuse(secondary({ loadBalancerBackendAddressPools: [{ id: `${POOL_ID}x` }] }))).to.equal(
      "InvalidResourceReference",
    );
    const tooMany = Array.from({ length: 255 }, (_, i) => ({ name: `extra${i}`, subnet: { id: SUBNET_ID } }));
    expect(await refuse({ ...nic, ipConfigurations: [...nic.ipConfigurations!, ...tooMany] })).to.equal(
      "NetworkInterfaceIpConfigurationsExceedLimit",
    );
    expect(await refuse({ ...nic, location: "eastus" })).to.equal("InvalidResourceLocation");

    expect(count("GET", "/operations/")).to.equal(0);
    expect(fake.nic(NIC)).to.deep.equal(nics()[0]);
  });

  it("a VM's second NIC in another subnet: addresses from its own subnet, and 256 private addresses per VM across its NICs", async () => {
    const SECOND_ID = `${NET}/virtualNetworks/vnet1/subnets/second`;
    const secondNic: FakeArmNic = {
      name: "vm1-nic1",
      vmName: "vm1",
      mac: "00:0d:3a:1b:c7:22",
      subnet: "second",
      ipConfigurations: [{ name: "ipconfig1", privateIp: "10.2.0.4", primary: true, backendPoolIds: [] }],
    };
    await fake.close();
    fake = await start({
      subnets: [{ name: "second", vnetName: "vnet1", prefix: "10.2.0.0/23" }],
      nics: [...nics(), secondNic],
    });
    const arm = client();
    const nic1 = await arm.networkInterfaces.get(RG, "vm1-nic1");
    expect(nic1.primary, "vm1's first NIC is its primary").to.equal(false);
    expect(nic1.ipConfigurations![0]!.subnet?.id).to.equal(SECOND_ID);
    expect((await arm.networkInterfaces.get(RG, NIC)).ipConfigurations![0]!.subnet?.id).to.equal(SUBNET_ID);

    const grown = await arm.networkInterfaces.beginCreateOrUpdateAndWait(
      RG,
      "vm1-nic1",
      withConfig(nic1, { name: "ipconfig2", subnet: { id: SECOND_ID } }),
    );
    expect(grown.ipConfigurations!.map((c) => c.privateIPAddress)).to.deep.equal(["10.2.0.4", "10.2.0.5"]);
    expect(grown.ipConfigurations![1]!.subnet?.id).to.equal(SECOND_ID);
    expect(fake.nic("vm1-nic1")).to.deep.include({ subnet: "second" });
    expect(nicChanges.at(-1)).to.deep.include({ name: "vm1-nic1", subnet: "second" });

    const refusal = async (name: string, body: NetworkInterface) => {
      const error = await rejection(arm.networkInterfaces.beginCreateOrUpdateAndWait(RG, name, body));
      return { status: error.statusCode, code: error.code, message: error.message };
    };
    expect(
      await refusal("vm1-nic1", withConfig(grown, { name: "ipconfig3", subnet: { id: SUBNET_ID } })),
    ).to.deep.include({ status: 400, code: "IpConfigurationsOnNicInDifferentSubnets" });
    expect(
      await refusal(
        "vm1-nic1",
        withConfig(grown, {
          name: "ipconfig3",
          subnet: { id: SECOND_ID },
          privateIPAllocationMethod: "Static",
          privateIPAddress: "10.1.0.9",
        }),
      ),
    ).to.deep.include({ status: 400, code: "PrivateIPAddressNotInSubnet" });

    // vm1-nic0 holds 2 private addresses, so vm1-nic1 may hold 254, not 255 (vm2's NIC is not counted).
    const holding = (count: number): NetworkInterface => ({
      ...grown,
      ipConfigurations: [
        ...grown.ipConfigurations!,
        ...Array.from({ length: count - 2 }, (_, i) => ({ name: `extra${i}`, subnet: { id: SECOND_ID } })),
      ],
    });
    const over = await refusal("vm1-nic1", holding(255));
    expect(over).to.deep.include({ status: 400, code: "PrivateIPAddressesPerVirtualMachineExceedLimit" });
    expect(over.message).to.contain(
      "would give virtual machine /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1 257 private IP addresses, which exceeds the limit of 256 private IP addresses per virtual machine",
    );
    const full = await arm.networkInterfaces.beginCreateOrUpdateAndWait(RG, "vm1-nic1", holding(254));
    expect(full.ipConfigurations).to.have.length(254);
    const nic0 = await arm.networkInterfaces.get(RG, NIC);
    expect(
      await refusal(NIC, withConfig(nic0, { name: "ipconfig3", subnet: { id: SUBNET_ID } })),
    ).to.deep.include({ code: "PrivateIPAddressesPerVirtualMachineExceedLimit" });
    const vm2 = await arm.networkInterfaces.get(RG, "vm2-nic0");
    await arm.networkInterfaces.beginCreateOrUpdateAndWait(
      RG,
      "vm2-nic0",
      withConfig(vm2, { name: "ipconfig2", subnet: { id: SUBNET_ID } }),
    );
    expect(fake.nic("vm2-nic0").ipConfigurations).to.have.length(2);
  });

  it("refuses subnets it cannot model: a NIC in an unknown subnet, overlapping or twice-named subnets", async () => {
    const refused = async (extra: Partial<FakeArmOptions>) => {
      try {
        const started = await start(extra);
        await started.close();
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error("expected startFakeArm to refuse the options");
    };
    expect(await refused({ nics: [{ ...nics()[0]!, subnet: "nowhere" }] })).to.equal(
      `NIC ${NIC} names subnet nowhere, which the stand-in's options lack`,
    );
    expect(
      await refused({ subnets: [{ name: "second", vnetName: "vnet1", prefix: "10.1.0.128/25" }] }),
    ).to.equal("subnets default (10.1.0.0/24) and second (10.1.0.128/25) overlap");
    expect(
      await refused({ subnets: [{ name: "DEFAULT", vnetName: "vnet1", prefix: "10.2.0.0/24" }] }),
    ).to.equal("two subnets are named DEFAULT");
    expect(() => fake.setNic({ ...nics()[0]!, subnet: "nowhere" })).to.throw(
      `NIC ${NIC} names subnet nowhere, which the stand-in's options lack`,
    );
  });

  it("public IP: create, read, associate, delete refused while associated, dissociate, delete", async () => {
    const arm = client();
    const created = await arm.publicIPAddresses.beginCreateOrUpdateAndWait(RG, "pip1", {
      location: LOCATION,
      sku: { name: "Standard" },
      publicIPAllocationMethod: "Static",
      tags: { "azure-vnet": "10.1.0.5" },
    });
    expect(created.ipAddress).to.equal("198.51.100.200");
    expect(created.provisioningState).to.equal("Succeeded");
    const read = await arm.publicIPAddresses.get(RG, "pip1");
    expect(read.tags).to.deep.equal({ "azure-vnet": "10.1.0.5" });
    expect(read.ipConfiguration).to.equal(undefined);
    expect(publicIpChanges).to.deep.equal([{ publicIp: "198.51.100.200", privateIp: undefined }]);

    const nic = await arm.networkInterfaces.get(RG, NIC);
    await arm.networkInterfaces.beginCreateOrUpdateAndWait(
      RG,
      NIC,
      editConfig(nic, "ipconfig2", (c) => ({ ...c, publicIPAddress: { id: created.id } })),
    );
    const configId = `${NIC_ID}/ipConfigurations/ipconfig2`;
    expect((await arm.publicIPAddresses.get(RG, "pip1")).ipConfiguration?.id).to.equal(configId);
    expect(fake.publicIps()).to.deep.equal([
      {
        name: "pip1",
        id: created.id,
        ipAddress: "198.51.100.200",
        ipConfigurationId: configId,
        tags: { "azure-vnet": "10.1.0.5" },
      },
    ]);
    expect(publicIpChanges.at(-1)).to.deep.equal({ publicIp: "198.51.100.200", privateIp: "10.1.0.5" });

    // The same public IP on a second configuration is refused while the first holds it.
    const associated = await arm.networkInterfaces.get(RG, NIC);
    const inUse = await rejection(
      arm.networkInterfaces.beginCreateOrUpdateAndWait(
        RG,
        NIC,
        withConfig(associated, {
          name: "ipconfig3",
          subnet: { id: SUBNET_ID },
          publicIPAddress: { id: created.id },
        }),
      ),
    );
    expect(inUse.code).to.equal("PublicIPAddressInUse");

    const refused = await rejection(arm.publicIPAddresses.beginDeleteAndWait(RG, "pip1"));
    expect(refused.statusCode).to.equal(400);
    expect(refused.code).to.equal("PublicIPAddressCannotBeDeleted");
    expect(refused.message).to.include(configId);

    await arm.networkInterfaces.beginCreateOrUpdateAndWait(
      RG,
      NIC,
      editConfig(associated, "ipconfig2", ({ publicIPAddress: _dropped, ...rest }) => rest),
    );
    expect(publicIpChanges.at(-1)).to.deep.equal({ publicIp: "198.51.100.200", privateIp: undefined });
    expect(fake.publicIps()[0]!.ipConfigurationId).to.equal(undefined);

    await arm.publicIPAddresses.beginDeleteAndWait(RG, "pip1");
    expect(fake.publicIps()).to.deep.equal([]);
    expect((await rejection(arm.publicIPAddresses.get(RG, "pip1"))).code).to.equal("ResourceNotFound");
    // The SDK polled the Azure-AsyncOperation URL, not the Location one.
    expect(count("GET", "/operationResults/")).to.equal(0);
    // Deleting what is gone succeeds at once (204, no operation).
    const operationsBefore = count("GET", "/operations/");
    await arm.publicIPAddresses.beginDeleteAndWait(RG, "pip1");
    expect(count("GET", "/operations/")).to.equal(operationsBefore);

    const next = await arm.publicIPAddresses.beginCreateOrUpdateAndWait(RG, "pip2", {
      location: LOCATION,
      sku: { name: "Standard" },
      publicIPAllocationMethod: "Static",
    });
    expect(next.ipAddress).to.equal("198.51.100.201");
  });

  it("refuses a Standard public IP without Static allocation", async () => {
    const error = await rejection(
      client().publicIPAddresses.beginCreateOrUpdateAndWait(RG, "pip1", {
        location: LOCATION,
        sku: { name: "Standard" },
      }),
    );
    expect(error.code).to.equal("StandardSkuPublicIPAddressesMustBeStatic");
    expect(fake.publicIps()).to.deep.equal([]);
  });

  it("backend pool membership follows the NIC's loadBalancerBackendAddressPools", async () => {
    const arm = client();
    expect(
      (await arm.loadBalancerBackendAddressPools.get(RG, "lb1", "pool1")).backendIPConfigurations,
    ).to.deep.equal([]);
    const nic = await arm.networkInterfaces.get(RG, NIC);
    await arm.networkInterfaces.beginCreateOrUpdateAndWait(
      RG,
      NIC,
      editConfig(nic, "ipconfig2", (c) => ({ ...c, loadBalancerBackendAddressPools: [{ id: POOL_ID }] })),
    );
    const pool = await arm.loadBalancerBackendAddressPools.get(RG, "lb1", "pool1");
    expect(pool.id).to.equal(POOL_ID);
    expect(pool.backendIPConfigurations!.map((c) => c.id)).to.deep.equal([
      `${NIC_ID}/ipConfigurations/ipconfig2`,
    ]);
    expect(fake.backendPoolMembers("lb1", "pool1")).to.deep.equal([`${NIC_ID}/ipConfigurations/ipconfig2`]);
    const reread = await arm.networkInterfaces.get(RG, NIC);
    expect(reread.ipConfigurations![1]!.loadBalancerBackendAddressPools!.map((p) => p.id)).to.deep.equal([
      POOL_ID,
    ]);
    const missing = await rejection(arm.loadBalancerBackendAddressPools.get(RG, "lb1", "nope"));
    expect(missing.statusCode).to.equal(404);
  });

  it("models a VM's second NIC in a second subnet: its own resource, its subnet's addresses, no foreign subnet", async () => {
    const SUBNET2_ID = `${NET}/virtualNetworks/vnet1/subnets/subnet2`;
    const NIC2 = "vm1-nic1";
    await fake.close();
    fake = await start({
      subnets: [{ name: "subnet2", vnetName: "vnet1", prefix: "10.1.1.0/24" }],
      nics: [
        ...nics(),
        {
          name: NIC2,
          vmName: "vm1",
          mac: "00:0d:3a:1b:c7:22",
          subnet: "subnet2",
          ipConfigurations: [{ name: "ipconfig1", privateIp: "10.1.1.4", primary: true, backendPoolIds: [] }],
        },
      ],
    });
    const arm = client();
    const listed: string[] = [];
    for await (const nic of arm.networkInterfaces.list(RG)) listed.push(nic.name!);
    expect(listed).to.deep.equal([NIC, "vm2-nic0", NIC2]);
    const second = await arm.networkInterfaces.get(RG, NIC2);
    expect(second.primary, "a VM's first NIC is its primary one").to.equal(false);
    expect(second.ipConfigurations![0]!.subnet?.id).to.equal(SUBNET2_ID);
    expect((await arm.networkInterfaces.get(RG, NIC)).ipConfigurations![0]!.subnet?.id).to.equal(SUBNET_ID);

    const added = await arm.networkInterfaces.beginCreateOrUpdateAndWait(
      RG,
      NIC2,
      withConfig(second, {
        name: "ipconfig2",
        privateIPAllocationMethod: "Dynamic",
        subnet: { id: SUBNET2_ID },
      }),
    );
    // The lowest free address of subnet 2 (.4 is the NIC's primary), not of subnet 1.
    expect(added.ipConfigurations!.map((c) => c.privateIPAddress)).to.deep.equal(["10.1.1.4", "10.1.1.5"]);
    expect(fake.nic(NIC2)).to.deep.include({ subnet: "subnet2" });
    expect(nicChanges.map((n) => n.name)).to.deep.equal([NIC2]);

    const refuse = async (config: NetworkInterfaceIPConfiguration) => {
      const error = await rejection(
        arm.networkInterfaces.beginCreateOrUpdateAndWait(RG, NIC2, withConfig(added, config)),
      );
      expect(error.statusCode, error.message).to.equal(400);
      return [error.code, error.message];
    };
    const [code, message] = await refuse({ name: "ipconfig3", subnet: { id: SUBNET_ID } });
    expect(code).to.equal("IpConfigurationsOnNicInDifferentSubnets");
    expect(message).to.include("cannot belong to different subnets");
    expect(
      await refuse({
        name: "ipconfig3",
        privateIPAllocationMethod: "Static",
        privateIPAddress: "10.1.0.9",
        subnet: { id: SUBNET2_ID },
      }),
    ).to.deep.include("PrivateIPAddressNotInSubnet");
    expect(fake.nic(NIC2).ipConfigurations).to.have.length(2);
  });

  it("refuses a wrong token with 401 AuthenticationFailed", async () => {
    const error = await rejection(client(fake.url, "someone-elses-token").networkInterfaces.get(RG, NIC));
    expect(error.statusCode).to.equal(401);
    expect(error.code).to.equal("AuthenticationFailed");
    expect(fake.requests.map((r) => r.authorization)).to.deep.equal(["Bearer someone-elses-token"]);
  });

  it("the SDK will not send the token over plain http, so the stand-in must be https", async () => {
    const error = await rejection(client(fake.url.replace("https:", "http:")).networkInterfaces.get(RG, NIC));
    expect(error.message).to.include("non-TLS");
    expect(fake.requests).to.have.length(0);
  });

  describe("raw HTTP details the SDK does not show", () => {
    type Raw = { status: number; headers: Record<string, string | string[] | undefined>; body: string };
    const raw = (
      method: string,
      url: string,
      options: { body?: unknown; headers?: Record<string, string>; socketPath?: string } = {},
    ) =>
      new Promise<Raw>((resolve, reject) => {
        const target = new URL(url);
        const req = https.request(
          {
            method,
            ...(options.socketPath
              ? { socketPath: options.socketPath, servername: "localhost", host: "localhost" }
              : { host: target.hostname, port: target.port }),
            path: target.pathname + target.search,
            ca: caPem,
            agent: false,
            headers: { Authorization: `Bearer ${FAKE_MI_TOKEN}`, ...options.headers },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (chunk: Buffer) => chunks.push(chunk));
            res.on("end", () =>
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: Buffer.concat(chunks).toString(),
              }),
            );
          },
        );
        req.on("error", reject);
        req.end(options.body === undefined ? undefined : JSON.stringify(options.body));
      });
    const nicUrl = () => `${fake.url}${NIC_ID}?api-version=${FAKE_ARM_API_VERSION}`;
    const nicBody = (nic: FakeArmNic) => ({
      location: LOCATION,
      properties: {
        ipConfigurations: nic.ipConfigurations.map((c) => ({
          name: c.name,
          properties: {
            privateIPAddress: c.privateIp,
            privateIPAllocationMethod: c.allocation ?? "Dynamic",
            primary: c.primary,
            subnet: { id: SUBNET_ID },
          },
        })),
      },
    });

    it("requires api-version", async () => {
      const res = await raw("GET", `${fake.url}${NIC_ID}`);
      expect(res.status).to.equal(400);
      expect(JSON.parse(res.body)).to.deep.include({
        error: {
          code: "MissingApiVersionParameter",
          message: "The api-version query parameter (?api-version=) is required for all requests.",
        },
      });
    });

    it("honours If-Match and refuses a second change while one is in progress", async () => {
      const stale = await raw("PUT", nicUrl(), {
        body: nicBody(fake.nic(NIC)),
        headers: { "If-Match": 'W/"old"' },
      });
      expect(stale.status).to.equal(412);
      const etag = (JSON.parse((await raw("GET", nicUrl())).body) as { etag: string }).etag;
      const accepted = await raw("PUT", nicUrl(), {
        body: nicBody(fake.nic(NIC)),
        headers: { "If-Match": etag },
      });
      expect(accepted.status).to.equal(200);
      expect(accepted.headers["azure-asyncoperation"]).to.match(
        new RegExp(
          `^${fake.url}/subscriptions/${SUB}/providers/Microsoft.Network/locations/${LOCATION}/operations/[0-9a-f-]{36}\\?api-version=${FAKE_ARM_API_VERSION}$`,
        ),
      );
      expect(accepted.headers["retry-after"]).to.equal("1");
      const second = await raw("PUT", nicUrl(), { body: nicBody(fake.nic(NIC)) });
      expect(second.status).to.equal(429);
      expect(JSON.parse(second.body).error.code).to.equal("AnotherOperationInProgress");
      expect(second.headers["retry-after"]).to.equal("1");
    });

    it("a delete's Location URL answers 202 until done, then 204", async () => {
      const put = await raw(
        "PUT",
        `${fake.url}${NET}/publicIPAddresses/pip1?api-version=${FAKE_ARM_API_VERSION}`,
        {
          body: {
            location: LOCATION,
            sku: { name: "Standard" },
            properties: { publicIPAllocationMethod: "Static" },
          },
        },
      );
      expect(put.status).to.equal(201);
      const operation = put.headers["azure-asyncoperation"] as string;
      expect(JSON.parse((await raw("GET", operation)).body)).to.deep.equal({ status: "InProgress" });
      expect(JSON.parse((await raw("GET", operation)).body)).to.deep.equal({ status: "Succeeded" });

      const del = await raw(
        "DELETE",
        `${fake.url}${NET}/publicIPAddresses/pip1?api-version=${FAKE_ARM_API_VERSION}`,
      );
      expect(del.status).to.equal(202);
      const location = del.headers.location as string;
      expect(location).to.include("/operationResults/");
      const first = await raw("GET", location);
      expect([first.status, first.headers["retry-after"]]).to.deep.equal([202, "1"]);
      expect(fake.publicIps()).to.have.length(1);
      expect((await raw("GET", location)).status).to.equal(204);
      expect(fake.publicIps()).to.have.length(0);
    });

    it("listens on a unix socket and writes the public URL into operation headers", async () => {
      const socketPath = join(dir, "arm.sock");
      const onSocket = await start({ listen: { socketPath }, publicUrl: "https://10.99.0.1:8443" });
      try {
        expect(onSocket.url).to.equal("https://10.99.0.1:8443");
        const res = await raw("PUT", `https://localhost${NIC_ID}?api-version=${FAKE_ARM_API_VERSION}`, {
          socketPath,
          body: nicBody(onSocket.nic(NIC)),
        });
        expect(res.status).to.equal(200);
        expect(res.headers["azure-asyncoperation"]).to.match(/^https:\/\/10\.99\.0\.1:8443\/subscriptions\//);
      } finally {
        await onSocket.close();
      }
    });
  });
});
