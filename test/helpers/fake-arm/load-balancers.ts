/**
 * The load balancer backend pool handler (GET): the pools are fixed by the options, their members are
 * the committed ipConfigurations that name them.
 */
import type { ArmContext } from "./context.js";
import { ArmError, resourceNotFound, type Answer } from "./errors.js";
import { backendPoolJson } from "./json.js";

export function getBackendPool(ctx: ArmContext, lb: string, pool: string): Answer {
  const loadBalancer = (ctx.options.loadBalancers ?? []).find(
    (l) => l.name.toLowerCase() === lb.toLowerCase(),
  );
  if (!loadBalancer) throw resourceNotFound("loadBalancers", lb, ctx.ids.resourceGroup);
  const id = ctx.store.pools.get(ctx.ids.pool(lb, pool).toLowerCase());
  if (!id) throw new ArmError(404, "NotFound", `Resource ${ctx.ids.pool(lb, pool)} not found.`);
  return { status: 200, body: backendPoolJson(ctx, id) };
}

/** FakeArm.backendPoolMembers: ipConfiguration ids in the pool, from the committed NICs. */
export function backendPoolMembers(ctx: ArmContext, lb: string, pool: string): string[] {
  const id = ctx.store.pools.get(ctx.ids.pool(lb, pool).toLowerCase());
  if (!id) throw new Error(`no backend pool ${pool} in load balancer ${lb}`);
  return ctx.store.poolMembers(id);
}
