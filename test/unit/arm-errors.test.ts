/**
 * How Azure Resource Manager's failures reach the user: each kind of SDK error becomes a plugin error
 * whose message says what happened and whose hint says what to do. Also the VM's own location from IMDS
 * compute metadata, ARM ids, and a network driver built without Azure access.
 */
import { expect } from "chai";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetworkDriver } from "../../driver/network-driver.js";
import type { InventoryRefresher } from "../../ipam-driver/inventory-refresher.js";
import { IpamDriver } from "../../ipam-driver/ipam-driver.js";
import { armFailure } from "../../lib/arm/arm-client.js";
import { readVmLocation, resourceName } from "../../lib/arm/azure-nics.js";
import { InvalidParameterError, PluginError, RetryLaterError, UnavailableError } from "../../lib/errors.js";
import { silentLogger } from "../../lib/logger.js";
import { pluginStateCodec } from "../../plugin/plugin-state.js";
import { StateFile } from "../../lib/state-file.js";
import { fieldOf, sectionOf } from "../../lib/state-section.js";
import { startFakeAzure } from "../helpers/fake-azure.js";
import { createFakeHost } from "../helpers/fake-host.js";

const restError = (statusCode: number, code: string, message: string, retryAfter?: string) =>
  Object.assign(new Error(message), {
    name: "RestError",
    statusCode,
    code,
    response: { headers: { get: (name: string) => (name === "retry-after" ? retryAfter : undefined) } },
  });

describe("Azure Resource Manager failures", () => {
  const action = "add IP configurations to NIC 00:0d:3a:00:00:01";

  it("403: names the action the identity lacks and how to grant it", () => {
    const error = armFailure(
      action,
      restError(
        403,
        "AuthorizationFailed",
        "The client 'x' with object id 'y' does not have authorization to perform action 'Microsoft.Network/networkInterfaces/write' over scope '/subscriptions/s' or the scope is invalid.",
      ),
    );
    expect(error).to.be.instanceOf(UnavailableError);
    expect(error.message).to.equal(
      `cannot ${action}: Azure refused (AuthorizationFailed): the VM's identity lacks Microsoft.Network/networkInterfaces/write`,
    );
    expect(error.hint).to.match(
      /^grant the VM's managed identity Microsoft\.Network\/networkInterfaces\/write/,
    );
  });

  it("429: a RetryLaterError with ARM's Retry-After (60 s without one)", () => {
    const error = armFailure(action, restError(429, "TooManyRequests", "slow down", "17"));
    expect(error).to.be.instanceOf(RetryLaterError);
    expect((error as RetryLaterError).retryAfterMs).to.equal(17_000);
    expect(error.message).to.contain(
      ": Azure Resource Manager is throttling this VM's requests (retry after 17 s)",
    );
    expect(
      (armFailure(action, restError(429, "TooManyRequests", "slow down")) as RetryLaterError).retryAfterMs,
    ).to.equal(60_000);
  });

  it("400 and 409: the change itself is wrong", () => {
    const error = armFailure(
      action,
      restError(400, "InvalidResourceReference", "Resource /x referenced by /y was not found."),
    );
    expect(error).to.be.instanceOf(InvalidParameterError);
    expect(error.message).to.equal(
      `cannot ${action}: Azure rejected the change (InvalidResourceReference): Resource /x referenced by /y was not found.`,
    );
  });

  it("412: the NIC kept changing under the plugin", () => {
    const error = armFailure(action, restError(412, "PreconditionFailed", "etag mismatch"));
    expect(error.message).to.equal(
      `cannot ${action}: the NIC kept changing in Azure while the plugin changed it`,
    );
  });

  it("a failed long-running operation leaves the NIC unchanged", () => {
    const error = armFailure(
      action,
      new Error("The long-running operation has failed. InternalServerError. boom"),
    );
    expect(error.message).to.equal(
      `cannot ${action}: the Azure operation failed: The long-running operation has failed. InternalServerError. boom`,
    );
    expect(error.hint).to.contain("the NIC is unchanged");
  });

  it("no managed identity: says to assign one", () => {
    const failure = Object.assign(new Error("ManagedIdentityCredential: no identity assigned"), {
      name: "CredentialUnavailableError",
    });
    const error = armFailure(action, failure);
    expect(error.message).to.equal(
      `cannot ${action}: no managed identity token: ManagedIdentityCredential: no identity assigned`,
    );
    expect(error.hint).to.contain("assign a managed identity to the VM");
  });

  it("anything else: ARM did not answer usefully; plugin errors pass through unchanged", () => {
    const error = armFailure(action, new Error("connect ECONNREFUSED 192.0.2.10:443"));
    expect(error.message).to.equal(`cannot ${action}: connect ECONNREFUSED 192.0.2.10:443`);
    expect(error.hint).to.contain("Azure Resource Manager is reachable");
    const original = new InvalidParameterError("as it was");
    expect(armFailure(action, original)).to.equal(original);
    expect(error).to.be.instanceOf(PluginError);
  });
});

describe("finding the VM in Azure", () => {
  it("reads subscription, resource group, VM id and region from IMDS compute metadata", async () => {
    const azure = await startFakeAzure({ nics: () => ({ interfaces: [] }) });
    try {
      expect(await readVmLocation(azure.url, 1000)).to.deep.equal({
        subscriptionId: "00000000-0000-0000-0000-000000000000",
        resourceGroup: "rg",
        vmId: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        location: "westeurope",
      });
      azure.injectFault({ kind: "body", body: JSON.stringify({ subscriptionId: "s", location: "x" }) });
      const error = (await readVmLocation(azure.url, 1000).catch((e: unknown) => e)) as Error;
      expect(error.message).to.equal("IMDS compute metadata has no resourceGroupName");
    } finally {
      await azure.close();
    }
  });

  it("reads resource group and name from ARM ids, and refuses anything else", () => {
    expect(
      resourceName(
        "/subscriptions/s/resourceGroups/Other-RG/providers/Microsoft.Network/publicIPAddresses/pip1",
        "publicIPAddresses",
      ),
    ).to.deep.equal({ resourceGroup: "Other-RG", name: "pip1" });
    expect(() =>
      resourceName(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n",
        "publicIPAddresses",
      ),
    ).to.throw(
      '"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n" is not the id of a publicIPAddresses resource',
    );
  });
});

describe("a network driver without Azure access", () => {
  it("refuses public IPs and load balancers instead of recording links nobody makes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "azure-vnet-nolinks-"));
    try {
      const state = await StateFile.open(join(dir, "state.json"), pluginStateCodec);
      await state.update((draft) => {
        draft.driver.networks["a".repeat(64)] = {
          id: "a".repeat(64),
          mode: "transparent",
          interfaceName: "eth0",
          macAddress: "00:0d:3a:00:00:01",
          subnet: "10.1.0.0/24",
          gateway: "10.1.0.1",
          primary: "10.1.0.4",
          mtu: 1500,
          vnetRanges: [],
          internal: false,
          imdsAccess: false,
          createdAt: "t",
        };
      });
      const refresher = { current: undefined } as unknown as InventoryRefresher;
      const ipam = new IpamDriver({ state: sectionOf(state, "ipam"), refresher, logger: silentLogger });
      const network = new NetworkDriver({
        state: sectionOf(state, "driver"),
        bootId: fieldOf(state, "bootId"),
        addresses: ipam,
        host: createFakeHost(),
        logger: silentLogger,
        inventory: () => undefined,
      });
      const error = (await network
        .createEndpoint({
          NetworkID: "a".repeat(64),
          EndpointID: "b".repeat(64),
          Interface: { Address: "10.1.0.5/24" },
          Options: { "public-ip": "true" },
        })
        .catch((e: unknown) => e)) as Error;
      expect(error.message).to.equal("public IPs and load balancers are not available in this plugin");
      expect(state.current.driver.endpoints).to.deep.equal({});
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
