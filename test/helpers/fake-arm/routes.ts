/**
 * Routing: what every request passes first (token, injected status fault, api-version), the table of
 * the paths the stand-in models with their handlers, and the 404s for a wrong subscription or group.
 */
import type http from "node:http";
import { checkAuthorization } from "./auth.js";
import type { ArmContext } from "./context.js";
import { ArmError, notModelled, type Answer } from "./errors.js";
import { getBackendPool } from "./load-balancers.js";
import { getNic, listNics, putNic } from "./nics.js";
import { deletePublicIp, getPublicIp, listPublicIps, putPublicIp } from "./public-ips.js";
import { readJson } from "./request-body.js";
import { FAKE_ARM_API_VERSION } from "./types.js";

/** What a handler gets besides the path's names; `path` is the request's, for matching injected faults. */
type RouteRequest = { body: unknown; ifMatch: string | undefined; path: string };

type Route = {
  method: string;
  /** Whether the path is under a subscription only or under a resource group too. */
  scope: "subscription" | "resourceGroup";
  pattern: RegExp;
  /** `names`: the path's captures after the subscription (and resource group). */
  run: (ctx: ArmContext, names: string[], request: RouteRequest) => Answer | Promise<Answer>;
};

function route(method: string, scope: Route["scope"], tail: string, run: Route["run"]): Route {
  const prefix = scope === "subscription" ? "" : "/resourceGroups/([^/]+)";
  const pattern = new RegExp(`^/subscriptions/([^/]+)${prefix}/providers/Microsoft\\.Network/${tail}$`, "i");
  return { method, scope, pattern, run };
}

const NAME = "([^/]+)";

const ROUTES: Route[] = [
  route("GET", "subscription", "networkInterfaces", (ctx) => listNics(ctx)),
  route("GET", "resourceGroup", "networkInterfaces", (ctx) => listNics(ctx)),
  route("GET", "resourceGroup", `networkInterfaces/${NAME}`, (ctx, [name = ""]) => getNic(ctx, name)),
  route("PUT", "resourceGroup", `networkInterfaces/${NAME}`, (ctx, [name = ""], { body, ifMatch, path }) =>
    putNic(ctx, name, body, ifMatch, path),
  ),
  route("GET", "subscription", `locations/${NAME}/operations/${NAME}`, (ctx, [, id = ""]) =>
    ctx.operations.poll(id, "async-operation"),
  ),
  route("GET", "subscription", `locations/${NAME}/operationResults/${NAME}`, (ctx, [, id = ""]) =>
    ctx.operations.poll(id, "location"),
  ),
  route("GET", "resourceGroup", "publicIPAddresses", (ctx) => listPublicIps(ctx)),
  route("GET", "resourceGroup", `publicIPAddresses/${NAME}`, (ctx, [name = ""]) => getPublicIp(ctx, name)),
  route("PUT", "resourceGroup", `publicIPAddresses/${NAME}`, (ctx, [name = ""], { body, path }) =>
    putPublicIp(ctx, name, body, path),
  ),
  route("DELETE", "resourceGroup", `publicIPAddresses/${NAME}`, (ctx, [name = ""], { path }) =>
    deletePublicIp(ctx, name, path),
  ),
  route(
    "GET",
    "resourceGroup",
    `loadBalancers/${NAME}/backendAddressPools/${NAME}`,
    (ctx, [lb = "", pool = ""]) => getBackendPool(ctx, lb, pool),
  ),
];

/** Answers one request, or throws the ArmError ARM would answer with. */
export async function dispatch(
  ctx: ArmContext,
  req: http.IncomingMessage,
  method: string,
  url: URL,
): Promise<Answer> {
  checkAuthorization(req.headers.authorization);
  ctx.faults.throwStatusFault(method, url.pathname);
  checkApiVersion(url.searchParams.get("api-version"));
  const path = url.pathname.replace(/\/+$/, "");
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (!match || route.method !== method) continue;
    const body = method === "PUT" ? await readJson(req) : undefined;
    const [subscription = "", ...rest] = match.slice(1).map(decodeURIComponent);
    const group = route.scope === "resourceGroup" ? rest.shift() : undefined;
    checkScope(ctx, subscription, group);
    return route.run(ctx, rest, { body, ifMatch: req.headers["if-match"], path: url.pathname });
  }
  throw notModelled(`The ARM stand-in does not model ${method} ${url.pathname}.`);
}

function checkApiVersion(apiVersion: string | null): void {
  if (!apiVersion) {
    throw new ArmError(
      400,
      "MissingApiVersionParameter",
      "The api-version query parameter (?api-version=) is required for all requests.",
    );
  }
  // The stand-in models one api-version's shapes: an SDK that moved to another must fail here, not
  // pass against shapes Azure no longer answers with.
  if (apiVersion !== FAKE_ARM_API_VERSION) {
    throw new ArmError(
      400,
      "InvalidApiVersionParameter",
      `The ARM stand-in models api-version ${FAKE_ARM_API_VERSION} only, not ${apiVersion}.`,
    );
  }
}

/** ARM's 404 for a subscription or resource group other than the stand-in's one. */
function checkScope(ctx: ArmContext, subscription: string, resourceGroup?: string): void {
  const { subscription: sub, resourceGroup: rg } = ctx.ids;
  if (subscription.toLowerCase() !== sub.toLowerCase()) {
    throw new ArmError(404, "SubscriptionNotFound", `The subscription '${subscription}' could not be found.`);
  }
  if (resourceGroup !== undefined && resourceGroup.toLowerCase() !== rg.toLowerCase()) {
    throw new ArmError(404, "ResourceGroupNotFound", `Resource group '${resourceGroup}' could not be found.`);
  }
}
