/**
 * What every handler of the stand-in shares, built once per startFakeArm: the options, resource ids,
 * the subnets with their ranges, the resource store, the running operations, the fault queue and the
 * request log.
 */
import { FaultQueue } from "./faults.js";
import { ArmIds } from "./ids.js";
import { parseSubnet, type SubnetRange } from "./ipv4.js";
import { ArmOperations } from "./operations.js";
import { ArmStore } from "./store.js";
import type { FakeArm, FakeArmNic, FakeArmOptions, FakeArmSubnet } from "./types.js";

/** A subnet as the handlers use it: its options, its resource id and the addresses Azure hands out. */
export type ArmSubnet = FakeArmSubnet & { id: string; range: SubnetRange };

export type ArmContext = {
  options: FakeArmOptions;
  ids: ArmIds;
  /** By lower-case name: `subnet` of the options and `subnets`. */
  subnets: Map<string, ArmSubnet>;
  store: ArmStore;
  operations: ArmOperations;
  faults: FaultQueue;
  requests: FakeArm["requests"];
};

/** Builds the stand-in's state; throws when the options are not a network Azure could have. */
export function createContext(options: FakeArmOptions): ArmContext {
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const ids = new ArmIds(options);
  const ctx: ArmContext = {
    options,
    ids,
    subnets: readSubnets(options, ids),
    store: new ArmStore(options, ids),
    operations: new ArmOperations(ids, options.operationPolls ?? 1, retryAfter),
    faults: new FaultQueue(retryAfter),
    requests: [],
  };
  for (const nic of options.nics) subnetOf(ctx, nic);
  return ctx;
}

/** The subnet `nic`'s ipConfigurations are in; throws when the options have no such subnet. */
export function subnetOf(ctx: ArmContext, nic: FakeArmNic): ArmSubnet {
  const name = nic.subnet ?? ctx.options.subnet.name;
  const subnet = ctx.subnets.get(name.toLowerCase());
  if (!subnet) throw new Error(`NIC ${nic.name} names subnet ${name}, which the stand-in's options lack`);
  return subnet;
}

function readSubnets(options: FakeArmOptions, ids: ArmIds): Map<string, ArmSubnet> {
  const subnets = new Map<string, ArmSubnet>();
  for (const subnet of [options.subnet, ...(options.subnets ?? [])]) {
    const range = parseSubnet(subnet.prefix);
    if (subnets.has(subnet.name.toLowerCase())) throw new Error(`two subnets are named ${subnet.name}`);
    for (const other of subnets.values()) {
      if (range.network <= other.range.broadcast && other.range.network <= range.broadcast)
        throw new Error(
          `subnets ${other.name} (${other.prefix}) and ${subnet.name} (${subnet.prefix}) overlap`,
        );
    }
    subnets.set(subnet.name.toLowerCase(), { ...subnet, id: ids.subnetId(subnet), range });
  }
  return subnets;
}
