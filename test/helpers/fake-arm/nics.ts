/**
 * The network interface handlers: list, GET and PUT. A PUT is validated at once (nic-plan.ts) and
 * takes effect, with the test's callbacks, when its operation is polled to the end.
 */
import type { ArmContext } from "./context.js";
import { ArmError, notModelled, type Answer } from "./errors.js";
import { nicJson } from "./json.js";
import { planNicUpdate } from "./nic-plan.js";
import { newEtag, type NicRecord } from "./store.js";
import type { FakeArmNic } from "./types.js";

function nicState(ctx: ArmContext, record: NicRecord): string {
  return ctx.operations.isBusy(ctx.ids.nic(record.nic.name)) ? "Updating" : "Succeeded";
}

export function listNics(ctx: ArmContext): Answer {
  return {
    status: 200,
    body: { value: [...ctx.store.nics.values()].map((r) => nicJson(ctx, r.nic, r, nicState(ctx, r))) },
  };
}

export function getNic(ctx: ArmContext, name: string): Answer {
  const record = ctx.store.nicRecord(name);
  return { status: 200, body: nicJson(ctx, record.nic, record, nicState(ctx, record)) };
}

/** `path`: the request's, for matching an injected "operation-failed" fault. */
export function putNic(
  ctx: ArmContext,
  name: string,
  body: unknown,
  ifMatch: string | undefined,
  path: string,
): Answer {
  const record = ctx.store.nics.get(name.toLowerCase());
  if (!record) throw notModelled(`Creating network interface ${name} is not modelled.`);
  if (ifMatch !== undefined && ifMatch !== "*" && ifMatch !== record.etag) {
    throw new ArmError(
      412,
      "PreconditionFailed",
      `Precondition failed: If-Match ${ifMatch} does not match ${record.etag}.`,
    );
  }
  const id = ctx.ids.nic(record.nic.name);
  ctx.operations.refuseIfBusy(id);
  const next = planNicUpdate(ctx, record, body);
  const failure = ctx.faults.take("PUT", path, "operation-failed");
  const etag = newEtag();
  const operation = ctx.operations.start(id, failure, () => commitNic(ctx, next, etag), next);
  return {
    status: 200,
    body: nicJson(ctx, next, record, "Updating", etag),
    headers: ctx.operations.acceptedHeaders(operation, false),
  };
}

/** Makes the NIC change take effect, then tells the test about it and about each public IP it moved. */
async function commitNic(ctx: ArmContext, next: FakeArmNic, etag: string): Promise<void> {
  const { store, options } = ctx;
  const before = store.committedAssociations();
  store.replaceNic(next, etag);
  await options.onNicChange?.(structuredClone(next));
  const after = store.committedAssociations();
  for (const [publicIp, privateIp] of after) {
    if (before.get(publicIp) !== privateIp) await options.onPublicIpChange?.({ publicIp, privateIp });
  }
  for (const publicIp of before.keys()) {
    if (!after.has(publicIp)) await options.onPublicIpChange?.({ publicIp, privateIp: undefined });
  }
}
