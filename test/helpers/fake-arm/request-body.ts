/**
 * Reading request bodies as ARM reads them: JSON, an ipConfiguration as a NIC PUT states it, tags,
 * and a resource's location. Each refusal is ARM's 400 for it.
 */
import type http from "node:http";
import { ArmError, invalidContent } from "./errors.js";

/** An ipConfiguration as a PUT body states it, before validation. */
export type RequestedIpConfig = {
  name: string;
  allocation: "Static" | "Dynamic";
  privateIp: string | undefined;
  primary: boolean | undefined;
  subnetId: string | undefined;
  publicIpId: string | undefined;
  backendPoolIds: string[];
};

export async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw invalidContent(error instanceof Error ? error.message : "not JSON");
  }
}

export function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export function parseIpConfiguration(raw: unknown, index: number, nicId: string): RequestedIpConfig {
  const config = asObject(raw);
  const name = config?.name;
  if (!config || typeof name !== "string" || name === "") {
    throw new ArmError(400, "InvalidRequestFormat", `IP configuration ${index} of ${nicId} has no name.`);
  }
  const properties = asObject(config.properties) ?? {};
  const method = properties.privateIPAllocationMethod ?? "Dynamic";
  if (method !== "Static" && method !== "Dynamic") {
    throw new ArmError(
      400,
      "InvalidRequestFormat",
      `privateIPAllocationMethod ${JSON.stringify(method)} is invalid.`,
    );
  }
  const version = properties.privateIPAddressVersion;
  if (version !== undefined && version !== "IPv4") {
    throw new ArmError(
      400,
      "InvalidRequestFormat",
      `The stand-in models IPv4 IP configurations only (got ${JSON.stringify(version)}).`,
    );
  }
  return {
    name,
    allocation: method,
    privateIp: typeof properties.privateIPAddress === "string" ? properties.privateIPAddress : undefined,
    primary: typeof properties.primary === "boolean" ? properties.primary : undefined,
    subnetId: idOf(properties.subnet),
    publicIpId: idOf(properties.publicIPAddress),
    backendPoolIds: poolIds(properties.loadBalancerBackendAddressPools),
  };
}

function poolIds(pools: unknown): string[] {
  if (pools !== undefined && !Array.isArray(pools))
    throw invalidContent("loadBalancerBackendAddressPools is not an array");
  return ((pools ?? []) as unknown[]).map((pool) => {
    const id = idOf(pool);
    if (id === undefined) throw invalidContent("a loadBalancerBackendAddressPools entry has no id");
    return id;
  });
}

/** The `id` of a `{ "id": ... }` reference. */
function idOf(reference: unknown): string | undefined {
  const id = asObject(reference)?.id;
  return typeof id === "string" ? id : undefined;
}

export function parseTags(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  const tags = asObject(raw);
  if (!tags || Object.values(tags).some((value) => typeof value !== "string"))
    throw invalidContent("tags must map names to strings");
  return tags as Record<string, string>;
}

/**
 * Refuses a resource body whose location is missing or not the stand-in's one region; `exists` says
 * whether the resource is already there (a move) or would be created (an unknown region).
 */
export function checkLocation(
  location: unknown,
  name: string,
  exists: boolean,
  region: { location: string; resourceGroup: string },
): void {
  if (typeof location !== "string" || location === "") {
    throw new ArmError(400, "LocationRequired", "The location property is required for this definition.");
  }
  const normalize = (text: string) => text.replace(/\s+/g, "").toLowerCase();
  if (normalize(location) === normalize(region.location)) return;
  if (!exists) {
    // Azure would create it there; the stand-in has one region, and a cross-region reference fails anyway.
    throw new ArmError(
      400,
      "LocationNotAvailableForResourceType",
      `The stand-in models only location '${region.location}'; cannot create '${name}' in '${location}'.`,
    );
  }
  throw new ArmError(
    400,
    "InvalidResourceLocation",
    `The resource '${name}' already exists in location '${region.location}' in resource group '${region.resourceGroup}'. A resource with the same name cannot be created in location '${location}'. Please select a new resource name.`,
  );
}
