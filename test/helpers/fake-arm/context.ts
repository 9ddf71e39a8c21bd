/**
 * What every handler of the stand-in shares, built once per startFakeArm: the options, resource ids,
 * the subnets and their ranges, the resource store, the running operations, the fault queue and the
 * request log.
 */
import { FaultQueue } from "./faults.js";
import { ArmIds } from "./ids.js";
import { parseSubnet, type SubnetRange } from "./ipv4.js";
import { ArmOperations } from "./operations.js";
import { ArmStore } from "./store.js";
import type { FakeArm, FakeArmNic, FakeArmOptions } from "./types.js";

/** A subnet of the VNet: its name, prefix, resource id and the addresses Azure hands out in it. */
export type ArmSubnet = { name: string; prefix: string; id: string; range: SubnetRange };

export type ArmContext = {
  options: FakeArmOptions;
  ids: ArmIds;
  /** By lower-case name; the first subnet first. */
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
  const subnets = new Map<string, ArmSubnet>();
  for (const { name, prefix } of [options.subnet, ...(options.extraSubnets ?? [])]) {
    if (subnets.has(name.toLowerCase())) throw new Error(`subnet ${name} is given twice`);
    subnets.set(name.toLowerCase(), { name, prefix, id: ids.subnetId(name), range: parseSubnet(prefix) });
  }
  for (const nic of options.nics) {
    if (nic.subnet !== undefined && !subnets.has(nic.subnet.toLowerCase()))
      throw new Error(`NIC ${nic.name} is in subnet ${nic.subnet}, which is not given`);
  }
  return {
    options,
    ids,
    subnets,
    store: new ArmStore(options, ids),
    operations: new ArmOperations(ids, options.operationPolls ?? 1, retryAfter),
    faults: new FaultQueue(retryAfter),
    requests: [],
  };
}

/** The subnet `nic` is in (the first one when it names none). */
export function subnetOf(ctx: ArmContext, nic: FakeArmNic): ArmSubnet {
  const name = nic.subnet ?? ctx.options.subnet.name;
  const subnet = ctx.subnets.get(name.toLowerCase());
  if (subnet === undefined) throw new Error(`NIC ${nic.name} is in subnet ${name}, which is not given`);
  return subnet;
}
