/**
 * The pool sources through the real client code against the Azure stand-in on 127.0.0.1: IMDS and
 * wireserver documents, NICs matched by MAC, changes picked up without a restart, faults survived.
 */
import { expect } from "chai";
import { startFakeAzure, type FakeAzure } from "../helpers/fake-azure.js";
import { ETH0_MAC, startPlugin, twoNicPool, type PluginUnderTest } from "../helpers/plugin-under-test.js";
import type { PoolFile } from "../../ipam-driver/sources/file.js";

type StatusBody = {
  pool: { nic: string; free: string[]; inUse: string[]; goneButHeld: string[]; primary: string }[];
};

describe("pool sources against the Azure stand-in", () => {
  let nics: PoolFile;
  let azure: FakeAzure;
  let plugin: PluginUnderTest | undefined;

  beforeEach(async () => {
    nics = twoNicPool(2);
    azure = await startFakeAzure({ nics: () => nics });
  });
  afterEach(async () => {
    await plugin?.stop();
    plugin = undefined;
    await azure.close();
  });

  const post = (path: string, body: unknown) => plugin!.api().post(path).send(JSON.stringify(body));
  const status = async () => (await plugin!.api().get("/status").expect(200)).body as StatusBody;
  const eth0 = async () => (await status()).pool.find((p) => p.nic === "eth0")!;

  for (const source of ["imds", "wireserver"] as const) {
    describe(`${source}`, () => {
      beforeEach(async () => {
        const config =
          source === "imds"
            ? { poolSource: source, imdsUrl: azure.url, sourceTimeoutMs: 300 }
            : { poolSource: source, wireserverUrl: azure.url, sourceTimeoutMs: 300 };
        plugin = await startPlugin({ config });
      });

      it("matches NICs by MAC, keeps the primary out of the pool and serves the secondaries", async () => {
        const pool = await eth0();
        expect(pool).to.deep.include({ primary: "10.1.0.4", free: ["10.1.0.5", "10.1.0.6"], inUse: [] });
        const poolId = (await post("/IpamDriver.RequestPool", { Pool: "" })).body.PoolID as string;
        expect(poolId.startsWith(`azure;${ETH0_MAC};10.1.0.0/24;*;any;`), poolId).to.equal(true);
        const res = await post("/IpamDriver.RequestAddress", { PoolID: poolId });
        expect(res.body.Address).to.equal("10.1.0.5/24");
      });

      it("uses an address added to the NIC without a restart: an exhausted request re-reads the source", async () => {
        const poolId = (await post("/IpamDriver.RequestPool", { Pool: "" })).body.PoolID as string;
        await post("/IpamDriver.RequestAddress", { PoolID: poolId }).expect(200);
        await post("/IpamDriver.RequestAddress", { PoolID: poolId }).expect(200);
        nics.interfaces[1]!.subnets[0]!.secondaryAddresses!.push("10.1.0.9");
        const res = await post("/IpamDriver.RequestAddress", { PoolID: poolId });
        expect(res.status).to.equal(200);
        expect(res.body.Address).to.equal("10.1.0.9/24");
      });

      it("keeps an address removed from the NIC with its container, reports it and never hands it out again", async () => {
        const poolId = (await post("/IpamDriver.RequestPool", { Pool: "" })).body.PoolID as string;
        await post("/IpamDriver.RequestAddress", { PoolID: poolId, Address: "10.1.0.5" }).expect(200);
        nics.interfaces[1]!.subnets[0]!.secondaryAddresses = ["10.1.0.6"];
        await plugin!.service.refreshPool();
        expect(await eth0()).to.deep.include({ free: ["10.1.0.6"], inUse: [], goneButHeld: ["10.1.0.5"] });
        expect(
          plugin!.logs.some((l) => l.includes("still held by containers") && l.includes("10.1.0.5")),
        ).to.equal(true);
        await post("/IpamDriver.ReleaseAddress", { PoolID: poolId, Address: "10.1.0.5" }).expect(200);
        await post("/IpamDriver.RequestAddress", { PoolID: poolId }).expect(200, {
          Address: "10.1.0.6/24",
          Data: {},
        });
        const res = await post("/IpamDriver.RequestAddress", { PoolID: poolId });
        expect(res.status).to.equal(503);
        expect((await eth0()).goneButHeld).to.deep.equal([]);
      });

      const faults = [
        { name: "HTTP 500", fault: { kind: "status", status: 500 } },
        { name: "HTTP 429 with Retry-After", fault: { kind: "status", status: 429, retryAfter: "0" } },
        { name: "HTTP 403", fault: { kind: "status", status: 403 } },
        { name: "a timeout", fault: { kind: "hang" } },
        {
          name: "a malformed document",
          fault: { kind: "body", body: source === "imds" ? '{"interface": [{' : "<Interfaces><Interface" },
        },
        {
          name: "a document of the wrong shape",
          fault: { kind: "body", body: source === "imds" ? '{"interface": 5}' : "<Nothing/>" },
        },
      ] as const;
      for (const { name, fault } of faults) {
        it(`keeps the last good pool through ${name} and logs why`, async () => {
          azure.injectFault(fault);
          await plugin!.service.refreshPool();
          expect(await eth0()).to.deep.include({ free: ["10.1.0.5", "10.1.0.6"] });
          const warning = plugin!.logs
            .map((l) => JSON.parse(l) as Record<string, unknown>)
            .find((l) => l.msg?.toString().startsWith("pool source read failed"));
          expect(warning, "a warning is logged").to.not.equal(undefined);
          expect(warning).to.include({ source, failures: 1 });
          await plugin!.service.refreshPool();
          expect(plugin!.logs.some((l) => l.includes("pool source answers again"))).to.equal(true);
        });
      }
    });
  }

  it("sends IMDS the Metadata header and an api-version", async () => {
    plugin = await startPlugin({ config: { poolSource: "imds", imdsUrl: azure.url } });
    const request = azure.requests.find((r) => r.path === "/metadata/instance/network");
    expect(request?.headers.metadata).to.equal("true");
  });
});
