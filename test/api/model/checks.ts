/**
 * The checks of the model-based test: one call against the model's expectation (invariants 5 and 6),
 * and the invariants that hold after every step (1, 3 and 4, plus "no request touches
 * Object.prototype"), each failing with a message that names it.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import type { Answer, Harness } from "./harness.js";
import type { Expectation, Model } from "./model.js";

type StateDocument = {
  ipam: {
    pools: Record<string, unknown>;
    reservations: Record<string, { poolId: string; endpointId?: string }>;
  };
  driver: {
    networks: Record<string, { interfaceName: string }>;
    endpoints: Record<string, { networkId: string; address: string; hostInterface?: string }>;
  };
};

export class InvariantError extends Error {
  override name = "InvariantError";
}

export function fail(message: string): never {
  throw new InvariantError(message);
}

/** Every message template of docs/troubleshooting.md, as a pattern for `Err` ("…" is any text). */
const DOCUMENTED = (() => {
  const guide = readFileSync(
    fileURLToPath(new URL("../../../../docs/troubleshooting.md", import.meta.url)),
    "utf8",
  );
  return [...guide.matchAll(/^\| `([^`]+)`/gm)].map((m) => {
    const pattern = m[1]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/…/g, ".*");
    return new RegExp(`^${pattern}( — .+)?$`, "s");
  });
})();

/**
 * Sends one call and holds the plugin to the model: the same outcome; a success answers as the model
 * says and changes the model; a refusal is a documented `{"Err"}` and changes neither state file nor host.
 */
export async function exchange(
  model: Model,
  real: Harness,
  path: string,
  body: unknown,
  expectation: Expectation,
): Promise<Answer> {
  // Only a refusal must leave them alone; an unexpected refusal fails anyway.
  const stateBefore = expectation.ok ? "" : real.readState();
  const hostBefore = expectation.ok ? "" : real.host.snapshot();
  const answer = await real.call(path, body);
  const where = `${path} ${JSON.stringify(body)} → ${answer.status} ${answer.text.trim()}`;
  checkAnswerForm(answer, where);
  if (expectation.ok) {
    if (answer.status !== 200)
      fail(`the model accepts this call ("${expectation.rule}") but the plugin refused it:\n  ${where}`);
    try {
      expectation.check?.(answer.json);
    } catch (error) {
      fail(
        `the answer is not what the model expects ("${expectation.rule}"): ${(error as Error).message}\n  ${where}`,
      );
    }
    expectation.apply?.(answer.json);
  } else {
    if (answer.status === 200)
      fail(`the model refuses this call ("${expectation.rule}") but the plugin accepted it:\n  ${where}`);
    const err = answer.json.Err as string;
    if (expectation.message && !expectation.message.test(err))
      fail(`refused ("${expectation.rule}"), but not with ${String(expectation.message)}:\n  ${where}`);
    if (real.readState() !== stateBefore)
      fail(`invariant 6 (a refused call changes nothing): the state file changed\n  ${where}`);
    if (real.host.snapshot() !== hostBefore)
      fail(`invariant 6 (a refused call changes nothing): the host changed\n  ${where}`);
  }
  checkInvariants(model, real, where);
  return answer;
}

/** Invariant 5: 200 with a JSON object and no Err, or non-200 with a documented, non-empty Err. */
function checkAnswerForm(answer: Answer, where: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.text);
  } catch {
    fail(`invariant 5 (well-formed answers): the body is not JSON\n  ${where}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    fail(`invariant 5 (well-formed answers): the body is not a JSON object\n  ${where}`);
  if (answer.status === 200) {
    if ("Err" in answer.json || "Error" in answer.json)
      fail(
        `invariant 5 (well-formed answers): a 200 carries an error, which dockerd takes as success\n  ${where}`,
      );
    return;
  }
  const err = answer.json.Err;
  if (typeof err !== "string" || err === "")
    fail(`invariant 5 (well-formed answers): a refusal without a non-empty "Err"\n  ${where}`);
  if (![400, 409, 500, 503].includes(answer.status))
    fail(`invariant 5 (well-formed answers): status ${answer.status} is not one of the plugin's\n  ${where}`);
  if (!DOCUMENTED.some((pattern) => pattern.test(err)))
    fail(
      `invariant 5 (well-formed answers): "${err}" is not a message of docs/troubleshooting.md\n  ${where}`,
    );
}

/** The invariants that hold after every step, read from the state file and the service. */
export function checkInvariants(model: Model, real: Harness, after: string): void {
  const text = real.readState();
  const context = `\n  after: ${after}\n  model: ${model.toString()}\n  state: ${text.trim()}`;
  checkPrototypes(context);
  if (!isDeepStrictEqual(JSON.parse(text), JSON.parse(real.memoryState())))
    fail(
      `invariant 4 (the state file equals the service's memory): they differ${context}\n  memory: ${real.memoryState().trim()}`,
    );
  const state = JSON.parse(text) as StateDocument;
  const { reservations } = state.ipam;
  const { endpoints, networks } = state.driver;

  // 1: one address, one endpoint.
  const owners = new Map<string, string>();
  for (const [id, endpoint] of Object.entries(endpoints)) {
    const other = owners.get(endpoint.address);
    if (other)
      fail(
        `invariant 1 (one address, one endpoint): ${endpoint.address} is held by endpoints ${other} and ${id}${context}`,
      );
    owners.set(endpoint.address, id);
  }
  for (const [address, reservation] of Object.entries(reservations)) {
    const owner = reservation.endpointId === undefined ? undefined : endpoints[reservation.endpointId];
    if (owner && owner.address !== address)
      fail(
        `invariant 1 (one address, one endpoint): the reservation of ${address} names endpoint ${reservation.endpointId}, which has ${owner.address}${context}`,
      );
  }

  // 3 (released addresses are free) and the rest of the model: the records are the model's.
  const same = (what: string, actual: string[], expected: string[]) => {
    const [a, e] = [actual.sort().join("\n    "), expected.sort().join("\n    ")];
    if (a !== e)
      fail(`the plugin's ${what} are not the model's:\n  plugin:\n    ${a}\n  model:\n    ${e}${context}`);
  };
  same("pools", Object.keys(state.ipam.pools), [...model.pools.keys()]);
  same(
    "reservations (invariant 3: a released address is free)",
    Object.entries(reservations).map(([a, r]) => `${a} pool=${r.poolId} endpoint=${r.endpointId ?? "-"}`),
    [...model.reservations].map(([a, r]) => `${a} pool=${r.poolId} endpoint=${r.endpointId ?? "-"}`),
  );
  same(
    "networks",
    Object.entries(networks).map(([id, n]) => `${id} on ${n.interfaceName}`),
    [...model.networks].map(([id, n]) => `${id} on ${n.nic.name}`),
  );
  same(
    "endpoints",
    Object.entries(endpoints).map(
      ([id, e]) => `${id} ${e.networkId} ${e.address} joined=${e.hostInterface !== undefined}`,
    ),
    [...model.endpoints].map(([id, e]) => `${id} ${e.networkId} ${e.address} joined=${e.joined}`),
  );
  const joined = [...model.endpoints.values()].filter((e) => e.joined).length;
  if (real.host.links.size !== joined)
    fail(`the host has ${real.host.links.size} veths, the model ${joined} joined endpoints${context}`);
}

/** Own properties of the objects a request naming "__proto__", "constructor" or "toString" could reach. */
const GUARDED: [string, object][] = [
  ["Object", Object],
  ["Object.prototype", Object.prototype],
  ["Object.prototype.toString", Reflect.get(Object.prototype, "toString") as object],
  ["Object.prototype.hasOwnProperty", Reflect.get(Object.prototype, "hasOwnProperty") as object],
  ["Function.prototype", Function.prototype],
];
const PRISTINE = GUARDED.map(([, object]) => new Set(Reflect.ownKeys(object)));

/** No request may add properties to the objects every JavaScript object inherits from. */
function checkPrototypes(context: string): void {
  GUARDED.forEach(([name, object], i) => {
    const added = Reflect.ownKeys(object).filter((key) => !PRISTINE[i]!.has(key));
    if (added.length === 0) return;
    // Undo it, so that later sequences run in a clean process.
    for (const key of added) Reflect.deleteProperty(object, key);
    fail(`a request added ${added.map(String).join(", ")} to ${name}${context}`);
  });
}

/** Invariant 2: after a reconciliation pass, every reservation has an owner Docker knows. */
export function checkReservationsOwned(
  real: Harness,
  addresses: Set<string>,
  endpointIds: Set<string>,
  where: string,
): void {
  const state = JSON.parse(real.readState()) as StateDocument;
  for (const [address, r] of Object.entries(state.ipam.reservations)) {
    if (addresses.has(address) || (r.endpointId !== undefined && endpointIds.has(r.endpointId))) continue;
    fail(
      `invariant 2 (after reconciliation every reservation has an owner Docker knows): ${address} (pool ${r.poolId}) has none\n  after: ${where}`,
    );
  }
}
