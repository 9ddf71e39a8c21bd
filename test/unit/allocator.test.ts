/** The pool's rules as pure functions: no socket, no disk, no root. */
import { expect } from "chai";
import * as allocator from "../../ipam-driver/allocator.js";
import { resolveInventory, type Inventory } from "../../ipam-driver/inventory.js";
import { emptyIpamState, type IpamState } from "../../ipam-driver/ipam-state.js";
import { parseIp, parsePrefix } from "../../ipam-driver/ip.js";

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

  it("serves IPv6 from the NIC's IPv6 secondaries with the real /64", () => {
    const inv = inventory(["10.1.0.5"], ["fd00:1::5", "fd00:1::6"]);
    const grant = allocator.requestPool(state, inv, poolRequest({ family: 6 }));
    expect(grant).to.deep.equal({
      poolId: "azure;00:0d:3a:00:00:01;fd00:1::/64;*;any",
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
    const { poolId } = allocator.requestPool(state, inv, poolRequest());
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
    const { poolId } = allocator.requestPool(state, inv, poolRequest());
    allocator.requestAddress(state, inv, { poolId, address: undefined, isGateway: false }, NOW);
    state.reservations["10.1.0.5"]!.endpointId = "ep1";
    expect(() =>
      allocator.requestAddress(state, inv, { poolId, address: parseIp("10.1.0.5"), isGateway: false }, NOW),
    ).to.throw("10.1.0.5 is already held by endpoint ep1");
  });

  it("explains a NIC that lost the pool's subnet", () => {
    const { poolId } = allocator.requestPool(state, inventory(["10.1.0.5"]), poolRequest());
    const gone: Inventory = { nics: [] };
    expect(() =>
      allocator.requestAddress(state, gone, { poolId, address: undefined, isGateway: false }, NOW),
    ).to.throw("NIC 00:0d:3a:00:00:01 no longer has subnet 10.1.0.0/24");
  });

  it("frees the addresses still reserved when the last reference to a pool goes", () => {
    const inv = inventory(["10.1.0.5", "10.1.0.6"]);
    const { poolId } = allocator.requestPool(state, inv, poolRequest({ pool: parsePrefix("10.1.0.0/24") }));
    allocator.requestPool(state, inv, poolRequest({ pool: parsePrefix("10.1.0.0/24") }));
    allocator.requestAddress(state, inv, { poolId, address: undefined, isGateway: false }, NOW);
    expect(allocator.releasePool(state, poolId)).to.deep.equal([]);
    expect(allocator.releasePool(state, poolId).map((r) => r.address)).to.deep.equal(["10.1.0.5"]);
    expect(state).to.deep.equal(emptyIpamState());
  });

  it("keeps an address reserved under one pool when another pool releases it", () => {
    const inv = inventory(["10.1.0.5"]);
    const a = allocator.requestPool(state, inv, poolRequest());
    const b = allocator.requestPool(state, inv, poolRequest({ pool: parsePrefix("10.1.0.0/24") }));
    allocator.requestAddress(state, inv, { poolId: a.poolId, address: undefined, isGateway: false }, NOW);
    expect(allocator.releaseAddress(state, b.poolId, parseIp("10.1.0.5")!)).to.equal(undefined);
    expect(state.reservations["10.1.0.5"]).to.not.equal(undefined);
  });

  it("continues after the last allocated address and wraps around", () => {
    const inv = inventory(["10.1.0.5", "10.1.0.6", "10.1.0.7"]);
    const { poolId } = allocator.requestPool(state, inv, poolRequest());
    const next = () =>
      allocator.requestAddress(state, inv, { poolId, address: undefined, isGateway: false }, NOW);
    expect([next(), next()]).to.deep.equal(["10.1.0.5/24", "10.1.0.6/24"]);
    allocator.releaseAddress(state, poolId, parseIp("10.1.0.5")!);
    expect(next()).to.equal("10.1.0.7/24");
    expect(next()).to.equal("10.1.0.5/24");
  });

  it("reports usage per subnet, including addresses gone from the NIC but still held", () => {
    const { poolId } = allocator.requestPool(state, inventory(["10.1.0.5", "10.1.0.6"]), poolRequest());
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
    expect(() => allocator.requestPool(state, { nics: [] }, poolRequest())).to.throw(
      "the pool source reported no NICs",
    );
  });

  it("says when the NIC has no secondary IPs at all", () => {
    const inv = inventory([]);
    const { poolId } = allocator.requestPool(state, inv, poolRequest());
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
