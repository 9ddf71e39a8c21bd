/**
 * What every handler of the stand-in shares, built once per startFakeArm: the options, resource ids,
 * the subnet's ranges, the resource store, the running operations, the fault queue and the request log.
 */
import { FaultQueue } from "./faults.js";
import { ArmIds } from "./ids.js";
import { parseSubnet, type SubnetRange } from "./ipv4.js";
import { ArmOperations } from "./operations.js";
import { ArmStore } from "./store.js";
import type { FakeArm, FakeArmOptions } from "./types.js";

export type ArmContext = {
  options: FakeArmOptions;
  ids: ArmIds;
  subnet: SubnetRange;
  store: ArmStore;
  operations: ArmOperations;
  faults: FaultQueue;
  requests: FakeArm["requests"];
};

/** Builds the stand-in's state; throws when the options are not a network Azure could have. */
export function createContext(options: FakeArmOptions): ArmContext {
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const subnet = parseSubnet(options.subnet.prefix);
  const ids = new ArmIds(options);
  return {
    options,
    ids,
    subnet,
    store: new ArmStore(options, ids),
    operations: new ArmOperations(ids, options.operationPolls ?? 1, retryAfter),
    faults: new FaultQueue(retryAfter),
    requests: [],
  };
}
