/**
 * Every IpamDriver call and Plugin.Activate over the real unix socket, as dockerd sends them:
 * no Content-Type, empty bodies where dockerd sends none, errors as non-200 `{"Err": ...}`.
 */
import { expect } from "chai";
import { readFile } from "node:fs/promises";
import {
  ETH0_MAC,
  ETH1_MAC,
  rawPost,
  startPlugin,
  twoNicPool,
  type PluginUnderTest,
} from "../helpers/plugin-under-test.js";

/** Pool ids name the NIC, subnet, range and request, and end in a tag unique to each RequestPool. */
const poolIdOf = (mac: string, rest: string) =>
  new RegExp(`^azure;${mac};${rest.replace(/[.*/]/g, "\\$&")};[0-9a-f]{8}$`);
const ANY_POOL = poolIdOf(ETH0_MAC, "10.1.0.0/24;*;any");
const SUBNET_POOL = poolIdOf(ETH0_MAC, "10.1.0.0/24;*;subnet");

describe("IpamDriver API over the unix socket", () => {
  let plugin: PluginUnderTest;
  beforeEach(async () => {
    plugin = await startPlugin();
  });
  afterEach(async () => {
    await plugin.stop();
  });

  const post = (path: string, body: unknown) => plugin.api().post(path).send(JSON.stringify(body));

  describe("activation and capabilities (empty bodies, no Content-Type)", () => {
    it("Plugin.Activate announces both drivers", async () => {
      const answer = await rawPost(plugin.socketPath, "/Plugin.Activate", "\n");
      expect(answer).to.deep.equal({ status: 200, json: { Implements: ["NetworkDriver", "IpamDriver"] } });
    });
    it("IpamDriver.GetCapabilities", async () => {
      const answer = await rawPost(plugin.socketPath, "/IpamDriver.GetCapabilities", "");
      expect(answer.json).to.deep.equal({ RequiresMACAddress: false, RequiresRequestReplay: false });
    });
    it("IpamDriver.GetDefaultAddressSpaces", async () => {
      const answer = await rawPost(plugin.socketPath, "/IpamDriver.GetDefaultAddressSpaces", "\n");
      expect(answer.json).to.deep.equal({
        LocalDefaultAddressSpace: "azure-local",
        GlobalDefaultAddressSpace: "azure-global",
      });
    });
    it("NetworkDriver.GetCapabilities: local data, global connectivity (as macvlan, for swarm networks)", async () => {
      const answer = await rawPost(plugin.socketPath, "/NetworkDriver.GetCapabilities", "\n");
      expect(answer.json).to.deep.equal({ Scope: "local", ConnectivityScope: "global" });
    });
    it("a JSON body without Content-Type is decoded", async () => {
      const answer = await rawPost(
        plugin.socketPath,
        "/IpamDriver.RequestPool",
        JSON.stringify({ AddressSpace: "azure-local", Pool: "10.1.0.0/24" }) + "\n",
      );
      expect(answer.status).to.equal(200);
      expect(answer.json).to.have.property("Pool", "10.1.0.0/24");
    });
  });

  describe("RequestPool", () => {
    it("without --subnet answers 0.0.0.0/0 with the primary NIC's gateway, so dockerd's overlap loop cannot start", async () => {
      const res = await post("/IpamDriver.RequestPool", {
        AddressSpace: "azure-local",
        Pool: "",
        SubPool: "",
        Options: {},
        V6: false,
      });
      expect(res.status).to.equal(200);
      expect(res.body.PoolID).to.match(ANY_POOL);
      expect(res.body).to.deep.equal({
        PoolID: res.body.PoolID,
        Pool: "0.0.0.0/0",
        Data: { "com.docker.network.gateway": "10.1.0.1/24" },
      });
    });
    it("with --subnet answers that subnet", async () => {
      const res = await post("/IpamDriver.RequestPool", { AddressSpace: "azure-local", Pool: "10.1.0.0/24" });
      expect(res.body.PoolID).to.match(SUBNET_POOL);
      expect(res.body).to.deep.equal({
        PoolID: res.body.PoolID,
        Pool: "10.1.0.0/24",
        Data: { "com.docker.network.gateway": "10.1.0.1/24" },
      });
    });
    it("picks the NIC named by --ipam-opt interface=, azure.interface.name= or mac=", async () => {
      for (const Options of [
        { interface: "eth1" },
        { "azure.interface.name": "eth1" },
        { mac: "00-0D-3A-00-00-02" },
      ]) {
        const res = await post("/IpamDriver.RequestPool", { Pool: "", Options });
        expect(res.status, JSON.stringify(Options)).to.equal(200);
        expect(res.body.PoolID).to.match(poolIdOf(ETH1_MAC, "10.2.0.0/24;*;any"));
        expect(res.body.Data).to.deep.equal({ "com.docker.network.gateway": "10.2.0.1/24" });
      }
    });
    it("gives each request a pool of its own, so a repeated ReleasePool never touches another network's addresses", async () => {
      const first = await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" });
      const second = await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" });
      expect(second.body.PoolID).to.not.equal(first.body.PoolID);
      await post("/IpamDriver.RequestAddress", { PoolID: second.body.PoolID, Address: "10.1.0.6" }).expect(
        200,
      );
      // dockerd re-sends a call after a transport error: the second ReleasePool must change nothing.
      await post("/IpamDriver.ReleasePool", { PoolID: first.body.PoolID }).expect(200, {});
      await post("/IpamDriver.ReleasePool", { PoolID: first.body.PoolID }).expect(200, {});
      const held = await post("/IpamDriver.RequestAddress", {
        PoolID: second.body.PoolID,
        Address: "10.1.0.6",
      });
      expect(held.status, "the other network still holds 10.1.0.6").to.equal(409);
      const gone = await post("/IpamDriver.RequestAddress", { PoolID: first.body.PoolID });
      expect(gone.status).to.equal(500);
      expect(gone.body.Err).to.match(/^unknown pool .* — .*create it again/);
    });
    it("treats ids like __proto__ as unknown pools", async () => {
      for (const PoolID of ["__proto__", "constructor", "toString"]) {
        await post("/IpamDriver.ReleasePool", { PoolID }).expect(200, {});
        const res = await post("/IpamDriver.RequestAddress", { PoolID });
        expect(res.status, PoolID).to.equal(500);
        expect(res.body.Err).to.equal(
          `unknown pool ${PoolID} — the plugin's state does not know this network; remove the network and create it again`,
        );
      }
      expect(Object.prototype).to.not.have.property("refCount");
    });
    it("--ip-range restricts automatic allocation and needs --subnet", async () => {
      const res = await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24", SubPool: "10.1.0.6/31" });
      expect(res.status).to.equal(200);
      expect(res.body.PoolID).to.match(poolIdOf(ETH0_MAC, "10.1.0.0/24;10.1.0.6/31;subnet"));
      const addresses = [];
      for (let i = 0; i < 2; i++)
        addresses.push((await post("/IpamDriver.RequestAddress", { PoolID: res.body.PoolID })).body.Address);
      expect(addresses).to.deep.equal(["10.1.0.6/24", "10.1.0.7/24"]);
      const third = await post("/IpamDriver.RequestAddress", { PoolID: res.body.PoolID });
      expect(third.status).to.equal(503);
      expect(third.body.Err).to.equal(
        "no free address on eth0 in --ip-range 10.1.0.6/31: 2 of 2 secondary IPs in use — add IP configurations to the NIC, or remove containers that no longer run",
      );
      const noSubnet = await post("/IpamDriver.RequestPool", { Pool: "", SubPool: "10.1.0.6/31" });
      expect(noSubnet.status).to.equal(400);
      expect(noSubnet.body.Err).to.equal("--ip-range needs --subnet — add --subnet with the NIC's subnet");
    });
    const refusals: [string, unknown, number, string][] = [
      [
        "a subnet of no NIC",
        { Pool: "10.9.0.0/24" },
        400,
        "--subnet 10.9.0.0/24 is not a subnet of this VM's NICs — use one of: 10.2.0.0/24 (eth1), 10.1.0.0/24 (eth0), or omit --subnet",
      ],
      [
        "a subnet with host bits",
        { Pool: "10.1.0.7/24" },
        400,
        "--subnet 10.1.0.7/24 is not a network prefix — did you mean 10.1.0.0/24?",
      ],
      [
        "garbage as subnet",
        { Pool: "ten/24" },
        400,
        "--subnet ten/24 is not a network prefix — write it as network/length, e.g. 10.1.0.0/24",
      ],
      [
        "an --ip-range outside the subnet",
        { Pool: "10.1.0.0/24", SubPool: "10.2.0.0/28" },
        400,
        "--ip-range 10.2.0.0/28 is not inside subnet 10.1.0.0/24 of eth0 — choose a range inside 10.1.0.0/24",
      ],
      [
        "an unknown interface",
        { Options: { interface: "eth7" } },
        400,
        "this VM has no Azure NIC named eth7 — its NICs are: eth1 (00:0d:3a:00:00:02), eth0 (00:0d:3a:00:00:01)",
      ],
      [
        "a malformed MAC",
        { Options: { mac: "zz" } },
        400,
        "--ipam-opt mac=zz is not a MAC address — e.g. mac=00:0d:3a:f8:06:ec",
      ],
      [
        "an unknown --ipam-opt",
        { Options: { colour: "blue" } },
        400,
        "unknown --ipam-opt colour — supported: interface=..., azure.interface.name=..., mac=...",
      ],
      [
        "IPv6 without --subnet (dockerd 20.10-26 could loop on it)",
        { V6: true },
        400,
        "an IPv6 pool needs --subnet — this VM's NICs have no IPv6 addresses; add IPv6 IP configurations to the NIC, or drop --ipv6",
      ],
      [
        "an IPv4 subnet with V6",
        { V6: true, Pool: "10.1.0.0/24" },
        400,
        "--subnet 10.1.0.0/24 is not an IPv6 prefix — give an IPv6 prefix",
      ],
      [
        "another address space",
        { AddressSpace: "GlobalDefault" },
        400,
        'address space "GlobalDefault" is not served by this plugin — azure networks are local to this VM; use azure-local (the default)',
      ],
      ["Pool of the wrong type", { Pool: 7 }, 400, '"Pool" must be a string, not number 7'],
      [
        "Options of the wrong type",
        { Options: ["a"] },
        400,
        '"Options" must be an object of strings, not an array',
      ],
      ["V6 of the wrong type", { V6: "yes" }, 400, '"V6" must be true or false, not string "yes"'],
    ];
    for (const [what, body, status, message] of refusals) {
      it(`refuses ${what}`, async () => {
        const res = await post("/IpamDriver.RequestPool", body);
        expect(res.status).to.equal(status);
        expect(res.body).to.deep.equal({ Err: message });
      });
    }
  });

  describe("RequestAddress and ReleaseAddress", () => {
    let poolId: string;
    beforeEach(async () => {
      poolId = (await post("/IpamDriver.RequestPool", { Pool: "10.1.0.0/24" })).body.PoolID as string;
    });
    const gatewayOptions = { RequestAddressType: "com.docker.network.gateway" };

    it("the gateway request gets the subnet's first host address, and releasing it is harmless", async () => {
      const res = await post("/IpamDriver.RequestAddress", {
        PoolID: poolId,
        Address: "",
        Options: gatewayOptions,
      });
      expect(res.body).to.deep.equal({ Address: "10.1.0.1/24", Data: {} });
      await post("/IpamDriver.ReleaseAddress", { PoolID: poolId, Address: "10.1.0.1" }).expect(200, {});
    });
    it("refuses a --gateway other than Azure's", async () => {
      const res = await post("/IpamDriver.RequestAddress", {
        PoolID: poolId,
        Address: "10.1.0.9",
        Options: gatewayOptions,
      });
      expect(res.status).to.equal(400);
      expect(res.body.Err).to.equal(
        "10.1.0.9 cannot be the gateway of 10.1.0.0/24 — Azure routes the subnet through 10.1.0.1; omit --gateway",
      );
    });
    it("hands out secondary IPs as ip/len, never twice, and round-robin after a release", async () => {
      const got = [];
      for (let i = 0; i < 4; i++)
        got.push((await post("/IpamDriver.RequestAddress", { PoolID: poolId, Address: "" })).body.Address);
      expect(got).to.deep.equal(["10.1.0.5/24", "10.1.0.6/24", "10.1.0.7/24", "10.1.0.8/24"]);
      await post("/IpamDriver.ReleaseAddress", { PoolID: poolId, Address: "10.1.0.6" }).expect(200, {});
      const again = await post("/IpamDriver.RequestAddress", { PoolID: poolId });
      expect(again.body.Address).to.equal("10.1.0.6/24");
    });
    it("exhaustion says how many are in use and what to do", async () => {
      for (let i = 0; i < 4; i++) await post("/IpamDriver.RequestAddress", { PoolID: poolId }).expect(200);
      const res = await post("/IpamDriver.RequestAddress", { PoolID: poolId });
      expect(res.status).to.equal(503);
      expect(res.body.Err).to.equal(
        "no free address on eth0 (10.1.0.0/24): 4 of 4 secondary IPs in use — add IP configurations to the NIC, or remove containers that no longer run",
      );
    });
    it("gives a requested secondary IP (--ip / --aux-address)", async () => {
      const res = await post("/IpamDriver.RequestAddress", { PoolID: poolId, Address: "10.1.0.7" });
      expect(res.body).to.deep.equal({ Address: "10.1.0.7/24", Data: {} });
    });
    const refusals: [string, string, number, RegExp | string][] = [
      [
        "the primary IP",
        "10.1.0.4",
        400,
        "10.1.0.4 is the primary IP of eth0, the VM's own address — choose one of eth0's secondary IPs",
      ],
      [
        "the gateway",
        "10.1.0.1",
        400,
        "10.1.0.1 is the gateway of 10.1.0.0/24 — choose one of eth0's secondary IPs",
      ],
      [
        "an address outside the subnet",
        "10.2.0.5",
        400,
        "10.2.0.5 is not in subnet 10.1.0.0/24 of eth0 — choose one of eth0's secondary IPs",
      ],
      [
        "an address not on the NIC",
        "10.1.0.77",
        400,
        "10.1.0.77 is not a secondary IP of eth0 — add it to the NIC as an IP configuration, or choose one of: 10.1.0.5, 10.1.0.6, 10.1.0.7, 10.1.0.8",
      ],
      [
        "a malformed address",
        "10.1.0.5/24",
        400,
        '"10.1.0.5/24" is not an IP address — give a plain address without /length',
      ],
    ];
    for (const [what, address, status, message] of refusals) {
      it(`refuses ${what}`, async () => {
        const res = await post("/IpamDriver.RequestAddress", { PoolID: poolId, Address: address });
        expect(res.status).to.equal(status);
        expect(res.body).to.deep.equal({ Err: message });
      });
    }
    it("refuses an address another container holds, saying since when", async () => {
      await post("/IpamDriver.RequestAddress", { PoolID: poolId, Address: "10.1.0.5" }).expect(200);
      const res = await post("/IpamDriver.RequestAddress", { PoolID: poolId, Address: "10.1.0.5" });
      expect(res.status).to.equal(409);
      expect(res.body.Err).to.match(
        /^10\.1\.0\.5 is already held by a container \(reserved 20\d\d-.*\) — choose another address or omit --ip$/,
      );
    });
    it("ReleaseAddress is idempotent and tolerates unknown addresses and pools", async () => {
      await post("/IpamDriver.RequestAddress", { PoolID: poolId, Address: "10.1.0.5" }).expect(200);
      for (let i = 0; i < 2; i++)
        await post("/IpamDriver.ReleaseAddress", { PoolID: poolId, Address: "10.1.0.5" }).expect(200, {});
      await post("/IpamDriver.ReleaseAddress", { PoolID: poolId, Address: "10.1.0.99" }).expect(200, {});
      await post("/IpamDriver.ReleaseAddress", { PoolID: "nope", Address: "10.1.0.5" }).expect(200, {});
      await post("/IpamDriver.ReleasePool", { PoolID: "nope" }).expect(200, {});
    });
    it("requires PoolID and a valid Address on release", async () => {
      const noPool = await post("/IpamDriver.RequestAddress", {});
      expect(noPool.status).to.equal(400);
      expect(noPool.body.Err).to.equal('"PoolID" is required');
      const bad = await post("/IpamDriver.ReleaseAddress", { PoolID: poolId, Address: "x" });
      expect(bad.body.Err).to.equal('"Address" "x" is not an IP address');
    });
    it("writes each reservation to the state file before answering", async () => {
      const res = await post("/IpamDriver.RequestAddress", { PoolID: poolId });
      const onDisk = JSON.parse(await readFile(plugin.stateFile, "utf8")) as {
        ipam: { reservations: Record<string, { poolId: string }> };
      };
      expect(onDisk.ipam.reservations["10.1.0.5"]?.poolId).to.equal(poolId);
      expect(res.body.Address).to.equal("10.1.0.5/24");
    });
    it("100 parallel requests on a 250-address pool get 100 distinct addresses and a consistent state file", async () => {
      await plugin.setPool(twoNicPool(250));
      await plugin.restart();
      const answers = await Promise.all(
        Array.from({ length: 100 }, () =>
          post("/IpamDriver.RequestAddress", { PoolID: poolId, Address: "" }),
        ),
      );
      expect(answers.map((a) => a.status)).to.deep.equal(Array(100).fill(200));
      const addresses = answers.map((a) => (a.body.Address as string).split("/")[0]);
      expect(new Set(addresses).size).to.equal(100);
      const onDisk = JSON.parse(await readFile(plugin.stateFile, "utf8")) as {
        ipam: { reservations: Record<string, unknown> };
      };
      expect(Object.keys(onDisk.ipam.reservations).sort()).to.deep.equal([...addresses].sort());
    });
  });

  describe("malformed requests", () => {
    it("refuses a body that is not JSON", async () => {
      const res = await rawPost(plugin.socketPath, "/IpamDriver.RequestPool", "{nope");
      expect(res.status).to.equal(400);
      expect((res.json as { Err: string }).Err).to.match(/^request body is not valid JSON: /);
    });
    it("refuses JSON that is not an object", async () => {
      for (const body of ["[]", "null", "42", '"s"']) {
        const res = await rawPost(plugin.socketPath, "/IpamDriver.RequestAddress", body);
        expect(res).to.deep.equal({ status: 400, json: { Err: "request body must be a JSON object" } });
      }
    });
    it("refuses bodies over 1 MiB", async () => {
      const res = await rawPost(
        plugin.socketPath,
        "/IpamDriver.RequestPool",
        JSON.stringify({ Pool: "x".repeat(2 * 1024 * 1024) }),
      );
      expect(res).to.deep.equal({ status: 413, json: { Err: "request body is larger than 1048576 bytes" } });
    });
    it("answers unknown calls with 404 and Err", async () => {
      const res = await rawPost(plugin.socketPath, "/IpamDriver.Frobnicate", "{}");
      expect(res.status).to.equal(404);
      expect((res.json as { Err: string }).Err).to.match(/^unknown call IpamDriver.Frobnicate/);
    });
    it("logs one structured line per request with call, ids, outcome and duration", async () => {
      await post("/IpamDriver.RequestPool", { Pool: "10.9.0.0/24" });
      const lines = plugin.logs
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.msg === "request");
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({
        level: "info",
        call: "IpamDriver.RequestPool",
        Pool: "10.9.0.0/24",
        status: 400,
        outcome: "error",
        code: "ERR_INVALID_PARAMETER",
      });
      expect(lines[0]!.durationMs).to.be.a("number");
    });
  });
});
