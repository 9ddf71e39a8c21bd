/**
 * startFakeArm: builds the stand-in's state, starts its server, and returns the handle tests use to
 * inspect and steer it.
 */
import { createContext, subnetOf, type ArmContext } from "./context.js";
import { backendPoolMembers } from "./load-balancers.js";
import { serveArm } from "./server.js";
import type { FakeArm, FakeArmOptions, FakeArmPublicIp } from "./types.js";

export async function startFakeArm(options: FakeArmOptions): Promise<FakeArm> {
  const ctx = createContext(options);
  const server = await serveArm(ctx);
  return {
    url: server.url,
    requests: ctx.requests,
    injectFault: (match, fault, count) => ctx.faults.inject(match, fault, count),
    nic: (name) => structuredClone(ctx.store.nicRecord(name).nic),
    setNic: (nic) => {
      subnetOf(ctx, nic);
      ctx.store.replaceNic(nic);
    },
    publicIps: () => publicIps(ctx),
    backendPoolMembers: (lbName, poolName) => backendPoolMembers(ctx, lbName, poolName),
    close: () => server.close(),
  };
}

function publicIps(ctx: ArmContext): FakeArmPublicIp[] {
  return [...ctx.store.publicIps.values()].map((record) => {
    const ipConfigurationId = ctx.store.committedIpConfigurationOf(record.name);
    return {
      name: record.name,
      id: ctx.ids.publicIp(record.name),
      ipAddress: record.ipAddress,
      ...(ipConfigurationId ? { ipConfigurationId } : {}),
      tags: { ...record.tags },
    };
  });
}
