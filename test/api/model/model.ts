/**
 * What the two drivers should do, as a small model: for each call, one rule decides whether it succeeds,
 * what a success answers, and what it changes. The rules are the intended semantics (see each `refuse`
 * reason); the test compares the plugin with them after every step.
 */
import { expect } from "chai";
import {
  ANY_POOL,
  AZURE_ADDRESS_SPACE,
  NICS,
  PREFIX_LENGTH,
  RANGES,
  inSubnet,
  nicByName,
  short,
  type ModelNic,
} from "./world.js";

export type Json = Record<string, unknown>;

/** What the model expects of one call: success (checked and applied to the model), or a refusal. */
export type Expectation =
  | { ok: true; rule: string; check?: (answer: Json) => void; apply?: (answer: Json) => void }
  | { ok: false; rule: string; message?: RegExp };

const accept = (
  rule: string,
  more: Omit<Extract<Expectation, { ok: true }>, "ok" | "rule"> = {},
): Expectation => ({
  ok: true,
  rule,
  ...more,
});
const refuse = (rule: string, message?: RegExp): Expectation => ({ ok: false, rule, message });

export type ModelPool = { id: string; nic: ModelNic; range: string | undefined; answeredPool: string };
export type ModelReservation = { poolId: string; nic: ModelNic; endpointId: string | undefined };
export type ModelNetwork = { nic: ModelNic };
export type ModelEndpoint = { networkId: string; address: string; joined: boolean };

export type PoolRequest = { subnet: string; range: string; v6: boolean; iface: string | undefined };
export type NetworkData = { addressSpace: string; pool: string; gateway: string };

export class Model {
  /** Every PoolID ever answered, in order (released ones too), so commands can name old ids. */
  readonly issuedPools: ModelPool[] = [];
  readonly pools = new Map<string, ModelPool>();
  readonly reservations = new Map<string, ModelReservation>();
  readonly networks = new Map<string, ModelNetwork>();
  readonly endpoints = new Map<string, ModelEndpoint>();

  requestPool(request: PoolRequest): Expectation {
    const { subnet, range, v6, iface } = request;
    if (v6 && subnet === "") return refuse("IPv6 without --subnet is refused: pass --subnet");
    if (subnet !== "" && subnet.includes(":") !== v6) return refuse("--subnet of the other IP family");
    if (range !== "" && subnet === "") return refuse("--ip-range needs --subnet");
    const chosen = iface === undefined ? undefined : nicByName(iface);
    if (iface !== undefined && !chosen) return refuse("--ipam-opt interface= names no NIC");
    const candidates = subnet === "" ? [] : (chosen ? [chosen] : NICS).filter((n) => n.subnet === subnet);
    if (subnet !== "" && candidates.length === 0) return refuse("--subnet is no subnet of the (chosen) NIC");
    if (candidates.length > 1)
      return refuse("two NICs on the --subnet without --ipam-opt interface= is ambiguous");
    const nic = candidates[0] ?? chosen ?? NICS.find((n) => n.isPrimary)!;
    const rangeInfo = RANGES.find((r) => r.text === range);
    if (range !== "" && rangeInfo?.subnet !== nic.subnet) return refuse("--ip-range outside the subnet");
    const answeredPool = subnet === "" ? ANY_POOL : nic.subnet;
    return accept("every RequestPool gets a new PoolID", {
      check: (answer) => {
        expect(answer.PoolID, "PoolID").to.be.a("string").and.not.equal("");
        const id = answer.PoolID as string;
        expect(
          this.issuedPools.map((p) => p.id),
          `RequestPool answered PoolID ${id}, which an earlier RequestPool already got: every RequestPool must get a new PoolID`,
        ).not.to.include(id);
        expect(answer.Pool, "Pool").to.equal(answeredPool);
        expect(answer.Data, "Data").to.deep.equal({ "com.docker.network.gateway": gatewayCidr(nic) });
      },
      apply: (answer) => {
        const pool = { id: answer.PoolID as string, nic, range: rangeInfo?.text, answeredPool };
        this.issuedPools.push(pool);
        this.pools.set(pool.id, pool);
      },
    });
  }

  /** Always 200 {}; a live pool goes with its reservations, an unknown or released id changes nothing. */
  releasePool(poolId: string): Expectation {
    return accept("ReleasePool always answers {}; only a live pool is removed", {
      check: (answer) => expect(answer).to.deep.equal({}),
      apply: () => {
        if (!this.pools.delete(poolId)) return;
        for (const [address, r] of this.reservations)
          if (r.poolId === poolId) this.reservations.delete(address);
      },
    });
  }

  requestAddress(poolId: string, address: string, gateway: boolean): Expectation {
    const pool = this.pools.get(poolId);
    if (!pool) return refuse("RequestAddress on an unknown or released pool", /^unknown pool /);
    const { nic } = pool;
    if (gateway) {
      if (address !== "" && address !== nic.gateway)
        return refuse("--gateway other than the subnet's gateway");
      return accept("the gateway request answers the subnet gateway and reserves nothing", {
        check: (answer) => expect(answer).to.deep.equal({ Address: gatewayCidr(nic), Data: {} }),
      });
    }
    if (address !== "") {
      if (!inSubnet(address, nic.subnet)) return refuse("--ip outside the pool's subnet");
      if (address === nic.primary) return refuse("--ip is the NIC's primary");
      if (address === nic.gateway) return refuse("--ip is the gateway");
      if (this.reservations.has(address)) return refuse("--ip is already held");
      if (!nic.secondaries.includes(address)) return refuse("--ip is not a secondary IP of the NIC");
      return this.reserve(pool, [address]);
    }
    const candidates = pool.range ? RANGES.find((r) => r.text === pool.range)!.members : nic.secondaries;
    const free = candidates.filter((a) => !this.reservations.has(a));
    if (free.length === 0) return refuse("no free address in the pool");
    return this.reserve(pool, free);
  }

  /** Always 200 {}; frees the address only when this pool holds it. */
  releaseAddress(poolId: string, address: string): Expectation {
    return accept("ReleaseAddress always answers {}; frees only its own pool's address", {
      check: (answer) => expect(answer).to.deep.equal({}),
      apply: () => {
        if (this.reservations.get(address)?.poolId === poolId) this.reservations.delete(address);
      },
    });
  }

  createNetwork(networkId: string, data: NetworkData): Expectation {
    if (data.addressSpace !== AZURE_ADDRESS_SPACE)
      return refuse("CreateNetwork from another IPAM driver's address space (use --ipam-driver azure)");
    const nic = NICS.find((n) => gatewayCidr(n) === data.gateway);
    if (!nic) return refuse("CreateNetwork whose gateway is no NIC subnet's gateway");
    if (data.pool !== ANY_POOL && data.pool !== nic.subnet)
      return refuse("CreateNetwork whose gateway lies outside its pool");
    if (this.networks.has(networkId)) return accept("CreateNetwork again: nothing changes", { check: empty });
    return accept("CreateNetwork", { check: empty, apply: () => this.networks.set(networkId, { nic }) });
  }

  /** Always 200 {}; the network goes with its endpoints (their addresses stay reserved until released). */
  deleteNetwork(networkId: string): Expectation {
    return accept("DeleteNetwork always answers {}", {
      check: empty,
      apply: () => {
        this.networks.delete(networkId);
        for (const [id, e] of this.endpoints) if (e.networkId === networkId) this.endpoints.delete(id);
      },
    });
  }

  createEndpoint(networkId: string, endpointId: string, address: string): Expectation {
    const network = this.networks.get(networkId);
    if (!network) return refuse("CreateEndpoint on an unknown network");
    if (!inSubnet(address, network.nic.subnet))
      return refuse("CreateEndpoint with an address outside the subnet");
    const existing = this.endpoints.get(endpointId);
    if (existing) {
      if (existing.networkId === networkId && existing.address === address)
        return accept("CreateEndpoint again: nothing changes", { check: endpointAnswer });
      return refuse("CreateEndpoint with an endpoint id that exists elsewhere or with another address");
    }
    const reservation = this.reservations.get(address);
    if (reservation?.nic !== network.nic)
      return refuse("CreateEndpoint needs its address reserved in the IPAM on the network's NIC");
    if ([...this.endpoints.values()].some((e) => e.address === address))
      return refuse("CreateEndpoint with an address another endpoint owns");
    return accept("CreateEndpoint", {
      check: endpointAnswer,
      apply: () => {
        this.endpoints.set(endpointId, { networkId, address, joined: false });
        reservation.endpointId = endpointId;
      },
    });
  }

  join(networkId: string, endpointId: string): Expectation {
    const endpoint = this.endpoints.get(endpointId);
    if (!this.networks.has(networkId) || endpoint?.networkId !== networkId)
      return refuse("Join of an unknown network or endpoint");
    return accept("Join (again)", {
      check: (answer) => {
        const name = answer.InterfaceName as Json | undefined;
        expect(name?.SrcName, "InterfaceName.SrcName").to.be.a("string").and.not.equal("");
        expect(name?.DstPrefix, "InterfaceName.DstPrefix").to.equal("eth");
        expect(answer.Gateway, "Gateway").to.match(/^\d+\.\d+\.\d+\.\d+$/);
      },
      apply: () => (endpoint.joined = true),
    });
  }

  /** Always 200 {}. */
  leave(endpointId: string): Expectation {
    return accept("Leave always answers {}", {
      check: empty,
      apply: () => {
        const endpoint = this.endpoints.get(endpointId);
        if (endpoint) endpoint.joined = false;
      },
    });
  }

  /** Always 200 {}; the address stays reserved until ReleaseAddress. */
  deleteEndpoint(endpointId: string): Expectation {
    return accept("DeleteEndpoint always answers {}", {
      check: empty,
      apply: () => this.endpoints.delete(endpointId),
    });
  }

  endpointOperInfo(networkId: string, endpointId: string): Expectation {
    const endpoint = this.endpoints.get(endpointId);
    if (!this.networks.has(networkId) || endpoint?.networkId !== networkId)
      return refuse("EndpointOperInfo of an unknown network or endpoint");
    return accept("EndpointOperInfo", {
      check: (answer) =>
        expect((answer.Value as Json | undefined)?.["azure.address"]).to.equal(endpoint.address),
    });
  }

  /**
   * A reconciliation pass against Docker, which knows the model's networks and the endpoints not in
   * `forgotten`: forgotten endpoints go, and so does every reservation Docker has no owner for.
   * Returns what the pass must report.
   */
  reconcile(forgotten: Set<string>): {
    networks: number;
    endpoints: number;
    addresses: number;
    failures: number;
  } {
    for (const id of forgotten) this.endpoints.delete(id);
    const addresses = new Set([...this.endpoints.values()].map((e) => e.address));
    let released = 0;
    for (const [address, r] of this.reservations) {
      if (addresses.has(address) || (r.endpointId !== undefined && this.endpoints.has(r.endpointId)))
        continue;
      this.reservations.delete(address);
      released += 1;
    }
    return { networks: 0, endpoints: forgotten.size, addresses: released, failures: 0 };
  }

  /** Takes one of `free` (the plugin picks which) for the pool. */
  private reserve(pool: ModelPool, free: string[]): Expectation {
    return accept(free.length === 1 ? `reserve ${free[0]}` : "reserve a free address", {
      check: (answer) => {
        expect(answer.Data, "Data").to.deep.equal({});
        expect(answer.Address, "Address").to.be.a("string");
        const [address, length] = (answer.Address as string).split("/");
        expect(length, "prefix length").to.equal(String(PREFIX_LENGTH));
        expect(free, `answered ${answer.Address as string}; the model has these free`).to.include(address);
      },
      apply: (answer) => {
        const address = (answer.Address as string).split("/")[0]!;
        this.reservations.set(address, { poolId: pool.id, nic: pool.nic, endpointId: undefined });
      },
    });
  }

  /** One line of the model's state, for failure messages. */
  toString(): string {
    const pools = [...this.pools.values()].map((p) => `${p.id}`);
    const res = [...this.reservations].map(
      ([a, r]) => `${a}@${r.poolId}${r.endpointId ? `:${short(r.endpointId)}` : ""}`,
    );
    const nets = [...this.networks].map(([id, n]) => `${short(id)}:${n.nic.name}`);
    const eps = [...this.endpoints].map(
      ([id, e]) => `${short(id)}:${short(e.networkId)}:${e.address}${e.joined ? ":joined" : ""}`,
    );
    return `pools [${pools.join(" ")}] reservations [${res.join(" ")}] networks [${nets.join(" ")}] endpoints [${eps.join(" ")}]`;
  }
}

export function gatewayCidr(nic: ModelNic): string {
  return `${nic.gateway}/${PREFIX_LENGTH}`;
}

function empty(answer: Json): void {
  expect(answer).to.deep.equal({});
}

/** CreateEndpoint fills in only what Docker left empty (the MAC here), or answers {}. */
function endpointAnswer(answer: Json): void {
  if (Object.keys(answer).length === 0) return;
  expect(Object.keys(answer), "answer fields").to.deep.equal(["Interface"]);
  const iface = answer.Interface as Json;
  expect(Object.keys(iface), "Interface fields: never echo the Address Docker gave").to.deep.equal([
    "MacAddress",
  ]);
  expect(iface.MacAddress).to.match(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
}
