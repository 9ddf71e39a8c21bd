/**
 * CreateNetwork and DeleteNetwork: which NIC a new network is built on, the checks against the networks
 * already there, the host changes through the network's data path (undone if a later step fails), and
 * the records, the IPAM driver's pool binding included.
 */
import { ConflictError, InvalidParameterError, UnavailableError } from "../lib/errors.js";
import { keepGoing } from "../lib/keep-going.js";
import { shortId } from "../lib/short-id.js";
import type { Nic, Subnet } from "../ipam-driver/inventory.js";
import type { PoolView } from "./address-book.js";
import type { DriverContext } from "./context.js";
import type { NetworkRecord } from "./driver-state.js";
import { checkNicModes, checkSharedNat, checkVethPrefix } from "./network-checks.js";
import type { CreateNetworkRequest } from "./network-options.js";
import {
  deleteNetworkRules,
  enableForwarding,
  ensureNetworkRules,
  refreshSubnetNatRules,
} from "./network-setup.js";
import { forgetEndpoint } from "./records.js";
import { routeTableFor } from "./source-routing.js";

type ChosenNic = { nic: Nic; subnet: Subnet; pool: PoolView | undefined };

/** Builds the network, or re-verifies it when it exists (dockerd may send CreateNetwork again). */
export async function createNetwork(ctx: DriverContext, request: CreateNetworkRequest): Promise<void> {
  const state = ctx.state.current;
  const existing = state.networks[request.networkId];
  const chosen = existing ? undefined : chooseNic(ctx, request);
  const network = existing ?? newNetworkRecord(ctx, request, chosen!);
  const dataPath = ctx.dataPath(network.mode);
  const others = Object.values(state.networks);
  checkNicModes(others, network);
  checkSharedNat(others, network);
  checkVethPrefix(others, network);
  try {
    await enableForwarding(ctx.host);
    await dataPath.setupNetwork(ctx.host, network, state);
    await ensureNetworkRules(ctx.host, network, dataPath.trafficPath(network), state);
    await recordNetwork(ctx, network, chosen?.pool);
  } catch (error) {
    if (!existing) await undoNetwork(ctx, network);
    throw error;
  }
  ctx.logger.info("network ready", {
    networkId: network.id,
    mode: network.mode,
    nic: network.interfaceName,
    subnet: network.subnet,
  });
}

/** Removes the network with whatever endpoints Docker left on it; an unknown network is fine. */
export async function deleteNetwork(ctx: DriverContext, networkId: string): Promise<void> {
  const state = ctx.state.current;
  const network = state.networks[networkId];
  if (!network) return;
  const dataPath = ctx.dataPath(network.mode);
  // Endpoints Docker never removed (a crash in between) go with their network.
  for (const endpoint of Object.values(state.endpoints).filter((e) => e.networkId === networkId)) {
    await dataPath.teardownEndpoint(ctx.host, network, endpoint, state);
  }
  await undoNetwork(ctx, network);
  const linked = await ctx.state.update((draft) => {
    const removed = Object.values(draft.endpoints).filter((e) => e.networkId === networkId);
    for (const endpoint of removed) forgetEndpoint(draft, endpoint, network);
    delete draft.networks[networkId];
    return removed.filter((e) => e.azure);
  });
  // Other networks on the subnet stop exempting these addresses from outbound NAT.
  if (linked.some((e) => e.azure?.publicIpId))
    await refreshSubnetNatRules(ctx.host, ctx.state.current, network);
  for (const endpoint of linked) void ctx.linker?.unlink(endpoint.id);
}

/**
 * Binds the pool in the IPAM driver's records, then records the network in ours: two writes, in this
 * order. A crash in between leaves a pool bound to a network without a record, which is harmless: the
 * pool was granted for that network alone, a CreateNetwork sent again still finds it (candidatePools
 * accepts a pool bound to the same network), and dockerd's ReleasePool removes it. The other order
 * could leave a recorded network whose pool still looks free, and a later network on a subnet that two
 * NICs share would see two candidate pools and be refused. If our write fails, the binding is undone.
 */
async function recordNetwork(ctx: DriverContext, network: NetworkRecord, pool: PoolView | undefined) {
  const binding = pool && pool.networkId === undefined ? pool.id : undefined;
  if (binding) await ctx.addresses.bindPool(binding, network.id);
  try {
    await ctx.state.update((draft) => {
      draft.networks[network.id] = network;
    });
  } catch (error) {
    if (binding) await ctx.addresses.unbindPool(binding, network.id).catch(() => undefined);
    throw error;
  }
}

function newNetworkRecord(
  ctx: DriverContext,
  request: CreateNetworkRequest,
  { nic, subnet }: ChosenNic,
): NetworkRecord {
  return {
    id: request.networkId,
    mode: request.mode,
    interfaceName: nic.interfaceName!,
    macAddress: nic.macAddress,
    subnet: subnet.prefix,
    gateway: subnet.gateway,
    primary: subnet.primary!,
    mtu: request.mtu ?? nic.mtu ?? 1500,
    vnetRanges: request.vnetRanges,
    internal: request.internal,
    imdsAccess: request.imdsAccess,
    wireserverAccess: request.wireserverAccess,
    ...(nic.isPrimary ? {} : { routeTable: routeTableFor(ctx.state.current, nic.macAddress) }),
    ...(request.azureLinks ? { azureLinks: request.azureLinks } : {}),
    createdAt: ctx.now().toISOString(),
  };
}

/**
 * The NIC a new network is built on, decided once: the one whose subnet has the network's gateway,
 * or, when two NICs share that subnet, the one the IPAM driver gave the network's pool.
 */
function chooseNic(ctx: DriverContext, request: CreateNetworkRequest): ChosenNic {
  const inventory = ctx.inventory();
  if (!inventory)
    throw new UnavailableError("the VM's NIC configuration has not been read yet", {
      hint: "check the plugin's log",
    });
  const gateway = request.gateway.text;
  const onGateway = inventory.nics.flatMap((nic) =>
    nic.subnets.filter((s) => s.family === 4 && s.gateway === gateway).map((subnet) => ({ nic, subnet })),
  );
  if (onGateway.length === 0) {
    throw new InvalidParameterError(`gateway ${gateway} is not the gateway of a subnet of this VM's NICs`, {
      hint: "create azure networks with --ipam-driver azure",
    });
  }
  const pools = ctx.addresses.candidatePools(request.networkId, request.pool, onGateway[0]!.subnet.prefix);
  const withPool = onGateway.filter(({ nic }) => pools.some((p) => p.macAddress === nic.macAddress));
  const chosen = onGateway.length === 1 ? onGateway[0]! : withPool.length === 1 ? withPool[0]! : undefined;
  if (!chosen) {
    const names = onGateway.map(({ nic }) => nic.interfaceName ?? nic.macAddress).join(", ");
    throw new ConflictError(
      `subnet ${onGateway[0]!.subnet.prefix} is on NICs ${names}, and the network's pool does not say which one it is for`,
      {
        hint: "create it with --ipam-driver azure --ipam-opt interface=NAME, one network at a time",
      },
    );
  }
  const { nic, subnet } = chosen;
  if (!nic.interfaceName) {
    throw new UnavailableError(
      `NIC ${nic.macAddress} of subnet ${subnet.prefix} is not an interface of this host`,
      {
        hint: "run the plugin in the VM's network namespace (host network for the managed plugin)",
      },
    );
  }
  if (!subnet.primary) {
    throw new UnavailableError(`the pool source gives no primary IP for ${nic.interfaceName}`, {
      hint: "check the pool source",
    });
  }
  return { nic, subnet, pool: pools.find((p) => p.macAddress === nic.macAddress) };
}

async function undoNetwork(ctx: DriverContext, network: NetworkRecord): Promise<void> {
  const state = ctx.state.current;
  const dataPath = ctx.dataPath(network.mode);
  await keepGoing(`removing network ${shortId(network.id)}`, [
    () => deleteNetworkRules(ctx.host, network, dataPath.trafficPath(network)),
    () => dataPath.teardownNetwork(ctx.host, network, state),
  ]);
}
