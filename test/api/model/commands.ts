/**
 * The commands of the model-based test, one per dockerd call plus a plugin restart, a crash between
 * the state write and the answer, and a reconciliation pass; and the fast-check arbitraries that pick
 * them. Every command is always allowed: the model decides whether the plugin must accept it.
 */
import fc from "fast-check";
import { checkInvariants, checkReservationsOwned, exchange, fail } from "./checks.js";
import type { DockerView, Harness } from "./harness.js";
import { gatewayCidr, type Model, type NetworkData, type PoolRequest } from "./model.js";
import {
  ADDRESSES,
  ANY_POOL,
  AZURE_ADDRESS_SPACE,
  DOCKER_DEFAULT_ADDRESS_SPACE,
  ENDPOINT_IDS,
  INTERFACES,
  NICS,
  NETWORK_IDS,
  PREFIX_LENGTH,
  RANGES,
  SUBNETS,
  UNKNOWN_POOL_IDS,
  short,
} from "./world.js";

type Command = fc.AsyncCommand<Model, Harness>;

/** A PoolID as a command names it: the n-th most recent one answered, or one never answered. */
type PoolRef = { recent: number } | { unknown: string };

function resolvePool(model: Model, ref: PoolRef): string {
  if ("unknown" in ref) return ref.unknown;
  const pools = model.issuedPools;
  return pools[Math.max(0, pools.length - 1 - ref.recent)]?.id ?? "no-pool-yet";
}

function describePool(ref: PoolRef, resolved: string | undefined): string {
  if ("unknown" in ref) return JSON.stringify(ref.unknown);
  const which = ref.recent === 0 ? "latest pool" : `pool -${ref.recent}`;
  return resolved === undefined ? which : `${which} = ${resolved}`;
}

/** Base of the commands: always allowed; `label` is what a failure report shows. */
abstract class Step implements Command {
  /** Filled in by run: the ids the command resolved to, for the report. */
  protected resolved: string | undefined;
  check(): boolean {
    return true;
  }
  abstract run(model: Model, real: Harness): Promise<void>;
  abstract label(): string;
  toString(): string {
    return this.label();
  }
  /** fast-check runs a fresh copy each time, so a report shows the ids of the run it reports. */
  [fc.cloneMethod](): this {
    const copy = Object.assign(Object.create(Object.getPrototypeOf(this) as object) as this, this);
    copy.resolved = undefined;
    return copy;
  }
}

class RequestPool extends Step {
  constructor(private readonly request: PoolRequest) {
    super();
  }
  async run(model: Model, real: Harness): Promise<void> {
    const { subnet, range, v6, iface } = this.request;
    const body = {
      AddressSpace: AZURE_ADDRESS_SPACE,
      Pool: subnet,
      SubPool: range,
      Options: iface === undefined ? {} : { interface: iface },
      V6: v6,
    };
    const answer = await exchange(
      model,
      real,
      "/IpamDriver.RequestPool",
      body,
      model.requestPool(this.request),
    );
    this.resolved = typeof answer.json.PoolID === "string" ? answer.json.PoolID : undefined;
  }
  label(): string {
    const { subnet, range, v6, iface } = this.request;
    const flags = [
      subnet && `--subnet ${subnet}`,
      range && `--ip-range ${range}`,
      v6 && "--ipv6",
      iface !== undefined && `--ipam-opt interface=${iface}`,
    ].filter(Boolean);
    return `RequestPool(${flags.join(" ")})${this.resolved ? ` → ${this.resolved}` : ""}`;
  }
}

class ReleasePool extends Step {
  constructor(private readonly pool: PoolRef) {
    super();
  }
  async run(model: Model, real: Harness): Promise<void> {
    const poolId = (this.resolved = resolvePool(model, this.pool));
    await exchange(model, real, "/IpamDriver.ReleasePool", { PoolID: poolId }, model.releasePool(poolId));
  }
  label(): string {
    return `ReleasePool(${describePool(this.pool, this.resolved)})`;
  }
}

class RequestAddress extends Step {
  constructor(
    private readonly pool: PoolRef,
    private readonly address: string,
    private readonly gateway: boolean,
  ) {
    super();
  }
  async run(model: Model, real: Harness): Promise<void> {
    const poolId = (this.resolved = resolvePool(model, this.pool));
    const body = {
      PoolID: poolId,
      Address: this.address,
      Options: this.gateway ? { RequestAddressType: "com.docker.network.gateway" } : {},
    };
    await exchange(
      model,
      real,
      "/IpamDriver.RequestAddress",
      body,
      model.requestAddress(poolId, this.address, this.gateway),
    );
  }
  label(): string {
    const what = [this.address || "auto", this.gateway && "gateway"].filter(Boolean).join(" ");
    return `RequestAddress(${describePool(this.pool, this.resolved)}, ${what})`;
  }
}

class ReleaseAddress extends Step {
  constructor(
    private readonly pool: PoolRef,
    private readonly address: string,
  ) {
    super();
  }
  async run(model: Model, real: Harness): Promise<void> {
    const poolId = (this.resolved = resolvePool(model, this.pool));
    const body = { PoolID: poolId, Address: this.address };
    await exchange(
      model,
      real,
      "/IpamDriver.ReleaseAddress",
      body,
      model.releaseAddress(poolId, this.address),
    );
  }
  label(): string {
    return `ReleaseAddress(${describePool(this.pool, this.resolved)}, ${this.address})`;
  }
}

/** How CreateNetwork's IPv4Data is made: from a RequestPool answer as dockerd does, or hostile. */
type NetworkSource = { pool: PoolRef } | { localDefault: number } | { foreignGateway: true };

class CreateNetwork extends Step {
  constructor(
    private readonly network: string,
    private readonly source: NetworkSource,
  ) {
    super();
  }
  async run(model: Model, real: Harness): Promise<void> {
    const data = this.data(model);
    this.resolved = `${data.addressSpace} ${data.pool} gw ${data.gateway}`;
    const body = {
      NetworkID: this.network,
      Options: {
        "com.docker.network.generic": {},
        "com.docker.network.enable_ipv6": false,
        "com.docker.network.internal": false,
      },
      IPv4Data: [
        { AddressSpace: data.addressSpace, Pool: data.pool, Gateway: data.gateway, AuxAddresses: {} },
      ],
      IPv6Data: [],
    };
    await exchange(
      model,
      real,
      "/NetworkDriver.CreateNetwork",
      body,
      model.createNetwork(this.network, data),
    );
  }
  private data(model: Model): NetworkData {
    const source = this.source;
    if ("localDefault" in source) {
      // --subnet of a NIC, but with Docker's default IPAM driver.
      const nic = NICS[source.localDefault % NICS.length]!;
      return { addressSpace: DOCKER_DEFAULT_ADDRESS_SPACE, pool: nic.subnet, gateway: gatewayCidr(nic) };
    }
    if ("foreignGateway" in source)
      return { addressSpace: AZURE_ADDRESS_SPACE, pool: NICS[0]!.subnet, gateway: gatewayCidr(NICS[1]!) };
    const id = resolvePool(model, source.pool);
    const pool = model.issuedPools.find((p) => p.id === id);
    if (!pool) return { addressSpace: AZURE_ADDRESS_SPACE, pool: ANY_POOL, gateway: gatewayCidr(NICS[0]!) };
    return { addressSpace: AZURE_ADDRESS_SPACE, pool: pool.answeredPool, gateway: gatewayCidr(pool.nic) };
  }
  label(): string {
    const from =
      "pool" in this.source
        ? `from ${describePool(this.source.pool, undefined)}`
        : "localDefault" in this.source
          ? "LocalDefault address space"
          : "gateway of another NIC";
    return `CreateNetwork(${short(this.network)}, ${from}${this.resolved ? `: ${this.resolved}` : ""})`;
  }
}

class DeleteNetwork extends Step {
  constructor(private readonly network: string) {
    super();
  }
  async run(model: Model, real: Harness): Promise<void> {
    const body = { NetworkID: this.network };
    await exchange(model, real, "/NetworkDriver.DeleteNetwork", body, model.deleteNetwork(this.network));
  }
  label(): string {
    return `DeleteNetwork(${short(this.network)})`;
  }
}

/** CreateEndpoint's address: the one the IPAM answered last (as dockerd does), or a fixed one. */
type EndpointAddress = { lastReserved: true } | { fixed: string };

class CreateEndpoint extends Step {
  constructor(
    private readonly network: string,
    private readonly endpoint: string,
    private readonly address: EndpointAddress,
  ) {
    super();
  }
  async run(model: Model, real: Harness): Promise<void> {
    const address = (this.resolved =
      "fixed" in this.address ? this.address.fixed : ([...model.reservations.keys()].at(-1) ?? "10.1.0.5"));
    const body = {
      NetworkID: this.network,
      EndpointID: this.endpoint,
      Interface: { Address: `${address}/${PREFIX_LENGTH}`, AddressIPv6: "", MacAddress: "" },
      Options: {},
    };
    await exchange(
      model,
      real,
      "/NetworkDriver.CreateEndpoint",
      body,
      model.createEndpoint(this.network, this.endpoint, address),
    );
  }
  label(): string {
    const address =
      "fixed" in this.address
        ? this.address.fixed
        : `last reserved${this.resolved ? ` = ${this.resolved}` : ""}`;
    return `CreateEndpoint(${short(this.network)}, ${short(this.endpoint)}, ${address})`;
  }
}

/** Join, Leave, DeleteEndpoint, EndpointOperInfo: on the endpoint's own network when the model knows it. */
class EndpointCall extends Step {
  constructor(
    private readonly call: "Join" | "Leave" | "DeleteEndpoint" | "EndpointOperInfo",
    private readonly endpoint: string,
    private readonly fallbackNetwork: string,
  ) {
    super();
  }
  async run(model: Model, real: Harness): Promise<void> {
    const network = (this.resolved = model.endpoints.get(this.endpoint)?.networkId ?? this.fallbackNetwork);
    const body: Record<string, unknown> = { NetworkID: network, EndpointID: this.endpoint };
    if (this.call === "Join") Object.assign(body, { SandboxKey: "/var/run/docker/netns/model", Options: {} });
    const expectation =
      this.call === "Join"
        ? model.join(network, this.endpoint)
        : this.call === "Leave"
          ? model.leave(this.endpoint)
          : this.call === "DeleteEndpoint"
            ? model.deleteEndpoint(this.endpoint)
            : model.endpointOperInfo(network, this.endpoint);
    await exchange(model, real, `/NetworkDriver.${this.call}`, body, expectation);
  }
  label(): string {
    return `${this.call}(${short(this.resolved ?? this.fallbackNetwork)}, ${short(this.endpoint)})`;
  }
}

class Restart extends Step {
  async run(model: Model, real: Harness): Promise<void> {
    await real.restart();
    checkInvariants(model, real, "a restart");
  }
  label(): string {
    return "Restart()";
  }
}

/**
 * The plugin wrote its state but crashed before dockerd read the answer: dockerd sees a transport
 * error and sends the same call again to the restarted plugin.
 */
class CrashAndResend extends Step {
  constructor(private inner: Step) {
    super();
  }
  override [fc.cloneMethod](): this {
    const copy = super[fc.cloneMethod]();
    copy.inner = this.inner[fc.cloneMethod]();
    return copy;
  }
  async run(model: Model, real: Harness): Promise<void> {
    await this.inner.run(model, real);
    await real.restart();
    checkInvariants(model, real, `a restart after ${this.inner.label()}`);
    await this.inner.run(model, real);
  }
  label(): string {
    return `CrashAndResend(${this.inner.label()})`;
  }
}

class Reconcile extends Step {
  constructor(private readonly forgotten: string[]) {
    super();
  }
  async run(model: Model, real: Harness): Promise<void> {
    // Docker knows the model's networks and endpoints, except the endpoints it forgot.
    const forgotten = new Set(this.forgotten.filter((id) => model.endpoints.has(id)));
    const view: DockerView = new Map([...model.networks.keys()].map((id) => [id, []]));
    for (const [id, e] of model.endpoints)
      if (!forgotten.has(id)) view.get(e.networkId)?.push({ endpointId: id, address: e.address });
    const known = [...view.values()].flat();
    const report = await real.reconcile(view);
    const expected = model.reconcile(forgotten);
    const where = this.label();
    if (JSON.stringify(report) !== JSON.stringify(expected))
      fail(
        `reconciliation removed ${JSON.stringify(report)}, the model expects ${JSON.stringify(expected)}\n  after: ${where}`,
      );
    checkReservationsOwned(
      real,
      new Set(known.map((e) => e.address)),
      new Set(known.map((e) => e.endpointId)),
      where,
    );
    checkInvariants(model, real, where);
  }
  label(): string {
    return `Reconcile(${this.forgotten.length ? `Docker forgot ${this.forgotten.map(short).join(",")}` : ""})`;
  }
}

const poolRef: fc.Arbitrary<PoolRef> = fc.oneof(
  { arbitrary: fc.nat(2).map((recent) => ({ recent })), weight: 6 },
  { arbitrary: fc.constantFrom(...UNKNOWN_POOL_IDS).map((unknown) => ({ unknown })), weight: 1 },
);
const network = fc.constantFrom(...NETWORK_IDS);
const endpoint = fc.constantFrom(...ENDPOINT_IDS);
const address = fc.constantFrom(...ADDRESSES);
/** RequestAddress with Options RequestAddressType: the gateway request of a network create. */
const gateway = fc.oneof(
  { arbitrary: fc.constant(false), weight: 4 },
  { arbitrary: fc.constant(true), weight: 1 },
);

const poolRequest: fc.Arbitrary<PoolRequest> = fc.record({
  subnet: fc.oneof(
    { arbitrary: fc.constant(""), weight: 3 },
    { arbitrary: fc.constantFrom(...SUBNETS), weight: 3 },
  ),
  range: fc.oneof(
    { arbitrary: fc.constant(""), weight: 4 },
    { arbitrary: fc.constantFrom(...RANGES.map((r) => r.text)), weight: 1 },
  ),
  v6: fc.oneof({ arbitrary: fc.constant(false), weight: 6 }, { arbitrary: fc.constant(true), weight: 1 }),
  iface: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 3 },
    { arbitrary: fc.constantFrom(...INTERFACES), weight: 1 },
  ),
});

const networkSource: fc.Arbitrary<NetworkSource> = fc.oneof(
  { arbitrary: poolRef.map((pool) => ({ pool })), weight: 8 },
  { arbitrary: fc.nat(1).map((localDefault) => ({ localDefault })), weight: 1 },
  { arbitrary: fc.constant({ foreignGateway: true as const }), weight: 1 },
);

const endpointAddress: fc.Arbitrary<EndpointAddress> = fc.oneof(
  { arbitrary: fc.constant({ lastReserved: true as const }), weight: 3 },
  { arbitrary: address.map((fixed) => ({ fixed })), weight: 1 },
);

/** The dockerd calls, with weights that reach networks with joined endpoints often. */
const calls: { arbitrary: fc.Arbitrary<Step>; weight: number }[] = [
  { arbitrary: poolRequest.map((r) => new RequestPool(r)), weight: 4 },
  { arbitrary: poolRef.map((p) => new ReleasePool(p)), weight: 2 },
  {
    arbitrary: fc
      .tuple(
        poolRef,
        fc.oneof({ arbitrary: fc.constant(""), weight: 2 }, { arbitrary: address, weight: 2 }),
        gateway,
      )
      .map(([p, a, gw]) => new RequestAddress(p, a, gw)),
    weight: 5,
  },
  { arbitrary: fc.tuple(poolRef, address).map(([p, a]) => new ReleaseAddress(p, a)), weight: 2 },
  { arbitrary: fc.tuple(network, networkSource).map(([n, s]) => new CreateNetwork(n, s)), weight: 4 },
  { arbitrary: network.map((n) => new DeleteNetwork(n)), weight: 1 },
  {
    arbitrary: fc.tuple(network, endpoint, endpointAddress).map(([n, e, a]) => new CreateEndpoint(n, e, a)),
    weight: 5,
  },
  ...(["Join", "Leave", "DeleteEndpoint", "EndpointOperInfo"] as const).map((call) => ({
    arbitrary: fc.tuple(endpoint, network).map(([e, n]) => new EndpointCall(call, e, n)),
    weight: call === "Join" ? 3 : 1,
  })),
];
const call = fc.oneof(...calls);

/** Every command: the dockerd calls, and (rarer, being slow) restarts, crashes and reconciliation. */
export const commandArbitraries: fc.Arbitrary<Command>[] = [
  ...calls.flatMap(({ arbitrary, weight }) => Array<fc.Arbitrary<Step>>(weight).fill(arbitrary)),
  fc.constant(new Restart()),
  call.map((inner) => new CrashAndResend(inner)),
  fc.subarray(ENDPOINT_IDS, { maxLength: 2 }).map((forgotten) => new Reconcile(forgotten)),
  fc.constant(new Reconcile([])),
];
