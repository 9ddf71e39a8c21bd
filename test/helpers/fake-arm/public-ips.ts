/**
 * The public IP address handlers: list, GET, PUT (create or change tags) and DELETE. Standard SKU,
 * static IPv4 only; addresses count up from `firstPublicIp` and are never reused.
 */
import { randomUUID } from "node:crypto";
import type { ArmContext } from "./context.js";
import { ArmError, invalidContent, resourceNotFound, type Answer } from "./errors.js";
import { publicIpHolders } from "./in-play.js";
import { publicIpJson } from "./json.js";
import { asObject, checkLocation, parseTags } from "./request-body.js";
import { newEtag, type PublicIpRecord } from "./store.js";

export function listPublicIps(ctx: ArmContext): Answer {
  return {
    status: 200,
    body: { value: [...ctx.store.publicIps.values()].map((r) => publicIpJson(ctx, r, "Succeeded")) },
  };
}

export function getPublicIp(ctx: ArmContext, name: string): Answer {
  const record = ctx.store.publicIps.get(name.toLowerCase());
  if (!record) throw resourceNotFound("publicIPAddresses", name, ctx.ids.resourceGroup);
  const state = ctx.operations.isBusy(ctx.ids.publicIp(record.name)) ? "Updating" : "Succeeded";
  return { status: 200, body: publicIpJson(ctx, record, state) };
}

/** `path`: the request's, for matching an injected "operation-failed" fault. */
export function putPublicIp(ctx: ArmContext, name: string, body: unknown, path: string): Answer {
  const id = ctx.ids.publicIp(name);
  ctx.operations.refuseIfBusy(id);
  const existing = ctx.store.publicIps.get(name.toLowerCase());
  const tags = validatePublicIp(ctx, id, name, body, existing !== undefined);
  const failure = ctx.faults.take("PUT", path, "operation-failed");
  if (existing) {
    const updated = { ...existing, tags, etag: newEtag() };
    const op = ctx.operations.start(id, failure, () => {
      ctx.store.publicIps.set(name.toLowerCase(), updated);
      return Promise.resolve();
    });
    return {
      status: 200,
      body: publicIpJson(ctx, updated, "Updating"),
      headers: ctx.operations.acceptedHeaders(op, false),
    };
  }
  const created: PublicIpRecord = {
    name,
    ipAddress: ctx.store.nextPublicAddress(),
    tags,
    etag: newEtag(),
    resourceGuid: randomUUID(),
  };
  const op = ctx.operations.start(id, failure, async () => {
    ctx.store.publicIps.set(name.toLowerCase(), created);
    await ctx.options.onPublicIpChange?.({ publicIp: created.ipAddress, privateIp: undefined });
  });
  // Azure shows the address only once the creation has succeeded.
  return {
    status: 201,
    body: publicIpJson(ctx, created, "Updating", false),
    headers: ctx.operations.acceptedHeaders(op, false),
  };
}

/** Refuses a public IP body Azure would refuse (or the stand-in does not model); returns its tags. */
function validatePublicIp(
  ctx: ArmContext,
  id: string,
  name: string,
  body: unknown,
  exists: boolean,
): Record<string, string> {
  const resource = asObject(body);
  if (!resource) throw invalidContent("the body is not a JSON object");
  checkLocation(resource.location, name, exists, ctx.options);
  const sku = asObject(resource.sku)?.name;
  if (sku !== "Standard") {
    throw new ArmError(
      400,
      "InvalidRequestFormat",
      `Public IP address ${id} must have sku Standard (got ${JSON.stringify(sku ?? "Basic")}); Basic SKU public IP addresses were retired.`,
    );
  }
  const properties = asObject(resource.properties) ?? {};
  if (properties.publicIPAllocationMethod !== "Static") {
    throw new ArmError(
      400,
      "StandardSkuPublicIPAddressesMustBeStatic",
      `Standard sku publicIp ${id} must have AllocationMethod set to Static.`,
    );
  }
  if (properties.publicIPAddressVersion !== undefined && properties.publicIPAddressVersion !== "IPv4") {
    throw new ArmError(400, "InvalidRequestFormat", `The stand-in models IPv4 public IP addresses only.`);
  }
  return parseTags(resource.tags);
}

/** `path`: the request's, for matching an injected "operation-failed" fault. */
export function deletePublicIp(ctx: ArmContext, name: string, path: string): Answer {
  ctx.operations.refuseIfBusy(ctx.ids.publicIp(name)); // also while its creation is still running
  const record = ctx.store.publicIps.get(name.toLowerCase());
  if (!record) return { status: 204 }; // Azure: deleting what is not there succeeds at once
  const id = ctx.ids.publicIp(record.name);
  const holder = publicIpHolders(ctx).get(id.toLowerCase());
  if (holder !== undefined) {
    throw new ArmError(
      400,
      "PublicIPAddressCannotBeDeleted",
      `Public IP address ${id} can not be deleted since it is still allocated to resource ${holder}. In order to delete the public IP, disassociate/detach the Public IP address from the resource.  To learn how to do this, see aka.ms/deletepublicip.`,
    );
  }
  const failure = ctx.faults.take("DELETE", path, "operation-failed");
  const op = ctx.operations.start(id, failure, async () => {
    ctx.store.publicIps.delete(name.toLowerCase());
    await ctx.options.onPublicIpChange?.({ publicIp: record.ipAddress, privateIp: undefined });
  });
  return { status: 202, headers: ctx.operations.acceptedHeaders(op, true) };
}
