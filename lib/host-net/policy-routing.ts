/**
 * Policy routing the plugin owns: routing rules (`ip rule`) and the routes of its own routing tables,
 * each tagged with the plugin's route protocol number, so cleanup can tell them from the host's own.
 * Adding is idempotent and removing tolerates absence, as for every other host change.
 */
import { InternalError } from "../errors.js";
import { ignoreMissing, runTool } from "./run-tool.js";
import { checkInterfaceName } from "./names.js";

/**
 * The route protocol number on every rule and route of ours (iproute2 shows it as `proto 170`). The
 * kernel ignores it; it only marks what is ours.
 */
export const OWN_ROUTE_PROTOCOL = "170";

/** A routing rule: `from` an address (or every source), look up `table`, at `priority`. */
export type PolicyRule = {
  priority: number;
  table: number;
  /** A single address (`10.1.1.5`); every source when absent. */
  from?: string;
  /** Ignore routes of `table` with this prefix length or shorter (only with `table` main = 254). */
  suppressPrefixLength?: number;
};

/** A route of one of our tables: to `dst` on `device`, through `gateway` when given. */
export type TableRoute = { dst: string; device: string; gateway?: string };

/** The main routing table's number. */
export const MAIN_TABLE = 254;

type IpRule = {
  priority?: number;
  src?: string;
  table?: string;
  protocol?: string;
  suppress_prefixlen?: number;
};
type IpRouteJson = { dst?: string; dev?: string; gateway?: string };

/** Our rules (those with our protocol number), as the kernel has them now. */
export async function listOwnRules(): Promise<PolicyRule[]> {
  const { stdout } = await runTool("ip", ["-j", "-4", "rule", "show"]);
  return (JSON.parse(stdout || "[]") as IpRule[])
    .filter((rule) => rule.protocol === OWN_ROUTE_PROTOCOL && rule.priority !== undefined)
    .map((rule) => ({
      priority: rule.priority!,
      table: rule.table === "main" ? MAIN_TABLE : Number(rule.table),
      ...(rule.src && rule.src !== "all" ? { from: rule.src } : {}),
      ...(rule.suppress_prefixlen !== undefined ? { suppressPrefixLength: rule.suppress_prefixlen } : {}),
    }));
}

/** Adds the rule unless an identical one of ours is there (the kernel would refuse a duplicate). */
export async function ensureRule(rule: PolicyRule): Promise<void> {
  const key = ruleKey(rule);
  if ((await listOwnRules()).some((existing) => ruleKey(existing) === key)) return;
  await runTool("ip", ["-4", "rule", "add", ...ruleArgs(rule), "protocol", OWN_ROUTE_PROTOCOL]);
}

/** Removes the rule; one that is not there is fine. */
export async function deleteRule(rule: PolicyRule): Promise<void> {
  await runTool("ip", ["-4", "rule", "del", ...ruleArgs(rule)]).catch(ignoreMissing("rule"));
}

/**
 * Makes `table` hold exactly `routes`: each is added or replaced, and any other route in it removed,
 * so a repeated call (a restart) converges on the same table.
 */
export async function setTableRoutes(table: number, routes: TableRoute[]): Promise<void> {
  for (const route of routes) {
    const via = route.gateway ? ["via", checkAddress(route.gateway)] : [];
    const scope = route.gateway ? [] : ["scope", "link"];
    // prettier-ignore
    await runTool("ip", [
      "-4", "route", "replace", checkPrefix(route.dst), ...via, "dev", checkInterfaceName(route.device),
      "table", checkTable(table), "proto", OWN_ROUTE_PROTOCOL, ...scope,
    ]);
  }
  const wanted = new Set(routes.map((route) => route.dst));
  for (const existing of await listTableRoutes(table)) {
    if (!existing.dst || wanted.has(existing.dst)) continue;
    await runTool("ip", ["-4", "route", "del", existing.dst, "table", checkTable(table)]).catch(
      ignoreMissing("route", "table"),
    );
  }
}

/** Removes every route of `table`; a table that does not exist is fine. */
export async function flushTable(table: number): Promise<void> {
  await runTool("ip", ["-4", "route", "flush", "table", checkTable(table)]).catch(ignoreMissing("table"));
}

/** The routes of `table`, `default` written as `0.0.0.0/0`. */
export async function listTableRoutes(table: number): Promise<TableRoute[]> {
  const { stdout } = await runTool("ip", ["-j", "-4", "route", "show", "table", checkTable(table)]).catch(
    (error: unknown) => {
      ignoreMissing("table")(error);
      return { stdout: "[]" };
    },
  );
  return (JSON.parse(stdout || "[]") as IpRouteJson[]).map((route) => ({
    dst: route.dst === "default" ? "0.0.0.0/0" : (route.dst ?? ""),
    device: route.dev ?? "",
    ...(route.gateway ? { gateway: route.gateway } : {}),
  }));
}

function ruleArgs(rule: PolicyRule): string[] {
  return [
    ...(rule.from ? ["from", checkAddress(rule.from)] : []),
    "lookup",
    checkTable(rule.table),
    ...(rule.suppressPrefixLength !== undefined
      ? ["suppress_prefixlength", String(Math.trunc(rule.suppressPrefixLength))]
      : []),
    "pref",
    String(Math.trunc(rule.priority)),
  ];
}

function ruleKey(rule: PolicyRule): string {
  return [rule.priority, rule.table, rule.from ?? "all", rule.suppressPrefixLength ?? "-"].join(" ");
}

function checkTable(table: number): string {
  const reserved = table > 252 && table < 256 && table !== MAIN_TABLE;
  if (!Number.isInteger(table) || table < 1 || table > 0x7fffffff || reserved) refuse("table", table);
  return String(table);
}

function checkAddress(address: string): string {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(address)) refuse("address", address);
  return address;
}

function checkPrefix(prefix: string): string {
  const [address, length, ...rest] = prefix.split("/");
  if (rest.length > 0 || length === undefined || !/^\d{1,2}$/.test(length) || Number(length) > 32)
    refuse("prefix", prefix);
  checkAddress(address!);
  return prefix;
}

/** A safety check: a value a host tool could misread never reaches it. */
function refuse(what: string, value: unknown): never {
  throw new InternalError(`refusing routing ${what} ${JSON.stringify(value)}`);
}
