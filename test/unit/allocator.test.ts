/** The pool's rules as pure functions: no socket, no disk, no root. */
import { expect } from "chai";
import * as allocator from "../../ipam-driver/allocator.js";
import { resolveInventory, type Inventory } from "../../ipam-driver/inventory.js";
import { emptyIpamState, type IpamState } from "../../ipam-driver/ipam-state.js";
import { parseIp, parsePrefix } from "../../lib/ip.js";

const NOW = new Date("2026-11-28T00:00:00Z");

function inventory(secondaries: string[], v6: string[] = []): Inventory {
  return resolveInventory(
    [
      {
        macAddress: "000D3A000001",
        subnets: [
          { prefix: "10.1.0.0/24", primary: "10.1.0.4", secondaries },
          ...(v6.length ? [{ prefix: "fd00:1::/64", primary: "fd00:1::4", secondaries: v6 }] : []),
        ],
      },
    ],
    [{ name: "eth0", macAddress: "00:0d:3a:00:00:01", mtu: 1500, hasDefaultRoute: true }],
  );
}

const poolRequest = (overrides: Partial<allocator.PoolRequest> = {}): allocator.PoolRequest => ({
  family: 4,
  pool: undefined,
  range: undefined,
  nic: undefined,
  ...overrides,
});

describe("allocator", () => {
  let state: IpamState;
  beforeEach(() => {
    state = emptyIpamState();
  });

  it("serves IPv6 from the NIC's IPv6 secondaries with the real /64, for an explicit --subnet only", () => {
    const inv = inventory(["10.1.0.5"], ["fd00:1::5", "fd00:1::6"]);
    expect(() => allocator.requestPool(state, inv, poolRequest({ family: 6 }), "t0")).to.throw(
      "an IPv6 pool needs --subnet",
    );
    expect(state.pools).to.deep.equal({});
    const grant = allocator.requestPool(
      state,
      inv,
      poolRequest({ family: 6, pool: parsePrefix("fd00:1::/64") }),
      "t1",
    );
    expect(grant).to.deep.equal({
      poolId: "azure;00:0d:3a:00:00:01;fd00:1::/64;*;subnet;t1",
      pool: "fd00:1::/64",
      gateway: "fd00:1::1/64",
    });
    const address = allocator.requestAddress(
      state,
      inv,
      { poolId: grant.poolId, address: undefined, isGateway: false },
      NOW,
    );
    expect(address).to.equal("fd00:1::5/64");
  });

  it("records who holds what, and when", () => {
    const inv = inventory(["10.1.0.5"]);
    const { poolId } = allocator.requestPool(state, inv, poolRequest(), "t2");
    allocator.requestAddress(state, inv, { poolId, address: undefined, isGateway: false }, NOW);
    expect(state.reservations).to.deep.equal({
      "10.1.0.5": {
        address: "10.1.0.5",
        poolId,
        macAddress: "00:0d:3a:00:00:01",
        reservedAt: NOW.toISOString(),
      },
    });
    expect(state.pools[poolId]).to.include({
      refCount: 1,
      lastAllocated: "10.1.0.5",
      subnet: "10.1.0.0/24",
      requested: "",
    });
  });

  it("names the endpoint holding an address once the network driver has recorded it", () => {
    const inv = inventory(["10.1.0.5"]);
    const { poolId } = allocator.requestPool(state, inv, poolRequest(), "t3");
    allocator.requestAddress(state, inv, { poolId, address: undefined, isGateway: false }, NOW);
    state.reservations["10.1.0.5"]!.endpointId = "ep1";
    expect(() =>
      allocator.requestAddress(state, inv, { poolId, address: parseIp("10.1.0.5"), isGateway: false }, NOW),
    ).to.throw("10.1.0.5 is already held by endpoint ep1");
  });

  it("explains a NIC that lost the pool's subnet", () => {
    const { poolId } = allocator.requestPool(state, inventory(["10.1.0.5"]), poolRequest(), "t4");
    const gone: Inventory = { nics: [] };
    expect(() =>
      allocator.requestAddress(state, gone, { poolId, address: undefined, isGateway: false }, NOW),
    ).to.throw("NIC 00:0d:3a:00:00:01 no longer has subnet 10.1.0.0/24");
  });

  it("gives every request its own pool: a repeated release removes only the pool it names", () => {
    const inv = inventory(["10.1.0.5", "10.1.0.6"]);
    const subnet = poolRequest({ pool: parsePrefix("10.1.0.0/24") });
    const a = allocator.requestPool(state, inv, subnet, "a");
    const b = allocator.requestPool(state, inv, subnet, "b");
    expect(a.poolId).to.not.equal(b.poolId);
    allocator.requestAddress(state, inv, { poolId: a.poolId, address: undefined, isGateway: false }, NOW);
    allocator.requestAddress(state, inv, { poolId: b.poolId, address: undefined, isGateway: false }, NOW);
    expect(allocator.releasePool(state, a.poolId).map((r) => r.address)).to.deep.equal(["10.1.0.5"]);
    expect(allocator.releasePool(state, a.poolId), "again: nothing").to.deep.equal([]);
    expect(Object.keys(state.reservations)).to.deep.equal(["10.1.0.6"]);
    expect(Object.keys(state.pools)).to.deep.equal([b.poolId]);
  });

  it("still counts references on a pool that an older release shared between networks", () => {
    const inv = inventory(["10.1.0.5"]);
    const { poolId } = allocator.requestPool(state, inv, poolRequest(), "old");
    state.pools[poolId]!.refCount = 2;
    allocator.requestAddress(state, inv, { poolId, address: undefined, isGateway: false }, NOW);
    expect(allocator.releasePool(state, poolId)).to.deep.equal([]);
    expect(allocator.releasePool(state, poolId).map((r) => r.address)).to.deep.equal(["10.1.0.5"]);
    expect(state).to.deep.equal(emptyIpamState());
  });

  it("treats ids such as __proto__ as unknown pools, and never writes onto Object.prototype", () => {
    const inv = inventory(["10.1.0.5"]);
    for (const id of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      expect(allocator.releasePool(state, id)).to.deep.equal([]);
      expect(() =>
        allocator.requestAddress(state, inv, { poolId: id, address: undefined, isGateway: false }, NOW),
      ).to.throw(`unknown pool ${id}`);
    }
    expect(Object.prototype).to.not.have.property("refCount");
    expect(state).to.deep.equal(emptyIpamState());
  });

  it("refuses a --subnet that two NICs share unless an option picks one, naming them", () => {
    const twoInOne = resolveInventory(
      ["000D3A000001", "000D3A000002"].map((macAddress, i) => ({
        macAddress,
        subnets: [
          { prefix: "10.1.0.0/24", primary: `10.1.0.${4 + i * 10}`, secondaries: [`10.1.0.${5 + i * 10}`] },
        ],
      })),
      [
        { name: "eth0", macAddress: "00:0d:3a:00:00:01", mtu: 1500, hasDefaultRoute: true },
        { name: "eth1", macAddress: "00:0d:3a:00:00:02", mtu: 1500, hasDefaultRoute: false },
      ],
    );
    const subnet = parsePrefix("10.1.0.0/24");
    expect(() => allocator.requestPool(state, twoInOne, poolRequest({ pool: subnet }), "x")).to.throw(
      "--subnet 10.1.0.0/24 is on 2 NICs: eth0, eth1",
    );
    const picked = allocator.requestPool(
      state,
      twoInOne,
      poolRequest({ pool: subnet, nic: { interfaceName: "eth1" } }),
      "y",
    );
    expect(state.pools[picked.poolId]!.macAddress).to.equal("00:0d:3a:00:00:02");
  });

  it("keeps an address reserved under one pool when another pool releases it", () => {
    const inv = inventory(["10.1.0.5"]);
    const a = allocator.requestPool(state, inv, poolRequest(), "t7");
    const b = allocator.requestPool(state, inv, poolRequest({ pool: parsePrefix("10.1.0.0/24") }), "t8");
    allocator.requestAddress(state, inv, { poolId: a.poolId, address: undefined, isGateway: false }, NOW);
    expect(allocator.releaseAddress(state, b.poolId, parseIp("10.1.0.5")!)).to.equal(undefined);
    expect(state.reservations["10.1.0.5"]).to.not.equal(undefined);
  });

  it("continues after the last allocated address and wraps around", () => {
    const inv = inventory(["10.1.0.5", "10.1.0.6", "10.1.0.7"]);
    const { poolId } = allocator.requestPool(state, inv, poolRequest(), "t9");
    const next = () =>
      allocator.requestAddress(state, inv, { poolId, address: undefined, isGateway: false }, NOW);
    expect([next(), next()]).to.deep.equal(["10.1.0.5/24", "10.1.0.6/24"]);
    allocator.releaseAddress(state, poolId, parseIp("10.1.0.5")!);
    expect(next()).to.equal("10.1.0.7/24");
    expect(next()).to.equal("10.1.0.5/24");
  });

  it("reports usage per subnet, including addresses gone from the NIC but still held", () => {
    const { poolId } = allocator.requestPool(
      state,
      inventory(["10.1.0.5", "10.1.0.6"]),
      poolRequest(),
      "t10",
    );
    allocator.requestAddress(
      state,
      inventory(["10.1.0.5", "10.1.0.6"]),
      { poolId, address: undefined, isGateway: false },
      NOW,
    );
    expect(allocator.usage(state, inventory(["10.1.0.6", "10.1.0.7"]))).to.deep.equal([
      {
        nic: "eth0",
        macAddress: "00:0d:3a:00:00:01",
        subnet: "10.1.0.0/24",
        primary: "10.1.0.4",
        gateway: "10.1.0.1",
        secondaries: 2,
        free: ["10.1.0.6", "10.1.0.7"],
        inUse: [],
        goneButHeld: ["10.1.0.5"],
      },
    ]);
  });

  it("says when the pool source reported no NICs at all", () => {
    expect(() => allocator.requestPool(state, { nics: [] }, poolRequest(), "t11")).to.throw(
      "the pool source reported no NICs",
    );
  });

  it("says when the NIC has no secondary IPs at all", () => {
    const inv = inventory([]);
    const { poolId } = allocator.requestPool(state, inv, poolRequest(), "t12");
    expect(() =>
      allocator.requestAddress(state, inv, { poolId, address: undefined, isGateway: false }, NOW),
    ).to.throw("no free address on eth0 (10.1.0.0/24): 0 of 0 secondary IPs in use");
    expect(() =>
      allocator.requestAddress(state, inv, { poolId, address: parseIp("10.1.0.9"), isGateway: false }, NOW),
    )
      .to.throw("10.1.0.9 is not a secondary IP of eth0")
      .with.property(
        "hint",
        "add it to the NIC as an IP configuration, or choose one of: none (the NIC has no secondary IPs)",
      );
  });
});
