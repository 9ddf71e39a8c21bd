/**
 * Hostile input: at least 10,000 malformed or edge-case requests, from a seeded generator, to every
 * call of both APIs (and to calls that do not exist). The service must answer each one with a proper
 * status and, for errors, an `Err` text; it must never crash; and a rejected request must change
 * neither the state file nor the host (the recording fake host sees no change).
 */
import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { printable } from "../../plugin/server.js";
import { rawPost, startPlugin, type PluginUnderTest } from "../helpers/plugin-under-test.js";

const REQUESTS = 10_000;
const NET = "adf4fa8e1772" + "0".repeat(52);
const EP = "e1e2e3e4e5e6" + "2".repeat(52);
/** The only 500s a request can earn: ids the plugin does not know (500, not 404, on purpose). */
const EXPECTED_500 =
  /^(unknown pool .*|network <id> is not known to the azure plugin|endpoint <id> is not known to the azure plugin) — /;

/** Valid-looking requests for every call; the fuzzer mutates them. */
const TEMPLATES: Record<string, Record<string, unknown>> = {
  "/Plugin.Activate": {},
  "/IpamDriver.GetCapabilities": {},
  "/IpamDriver.GetDefaultAddressSpaces": {},
  "/IpamDriver.RequestPool": {
    AddressSpace: "azure-local",
    Pool: "10.1.0.0/24",
    SubPool: "",
    Options: {},
    V6: false,
  },
  "/IpamDriver.ReleasePool": { PoolID: "azure;00:0d:3a:00:00:01;10.1.0.0/24;*;subnet" },
  "/IpamDriver.RequestAddress": {
    PoolID: "azure;00:0d:3a:00:00:01;10.1.0.0/24;*;subnet",
    Address: "10.1.0.5",
    Options: {},
  },
  "/IpamDriver.ReleaseAddress": {
    PoolID: "azure;00:0d:3a:00:00:01;10.1.0.0/24;*;subnet",
    Address: "10.1.0.5",
  },
  "/NetworkDriver.GetCapabilities": {},
  "/NetworkDriver.CreateNetwork": {
    NetworkID: NET,
    Options: { "com.docker.network.generic": { mode: "transparent" }, "com.docker.network.internal": false },
    IPv4Data: [{ AddressSpace: "azure-local", Pool: "10.1.0.0/24", Gateway: "10.1.0.1/24" }],
  },
  "/NetworkDriver.DeleteNetwork": { NetworkID: NET },
  "/NetworkDriver.CreateEndpoint": {
    NetworkID: NET,
    EndpointID: EP,
    Interface: { Address: "10.1.0.5/24", MacAddress: "" },
    Options: {},
  },
  "/NetworkDriver.EndpointOperInfo": { NetworkID: NET, EndpointID: EP },
  "/NetworkDriver.DeleteEndpoint": { NetworkID: NET, EndpointID: EP },
  "/NetworkDriver.Join": {
    NetworkID: NET,
    EndpointID: EP,
    SandboxKey: "/var/run/docker/netns/abc",
    Options: {},
  },
  "/NetworkDriver.Leave": { NetworkID: NET, EndpointID: EP },
  "/NetworkDriver.ProgramExternalConnectivity": { NetworkID: NET, EndpointID: EP, Options: {} },
  "/NetworkDriver.RevokeExternalConnectivity": { NetworkID: NET, EndpointID: EP },
  "/NetworkDriver.AllocateNetwork": { NetworkID: NET },
  "/NetworkDriver.FreeNetwork": { NetworkID: NET },
  "/NetworkDriver.DiscoverNew": { DiscoveryType: 1 },
  "/NetworkDriver.DiscoverDelete": { DiscoveryType: 1 },
  "/NetworkDriver.Unknown": {},
  "/../../etc/passwd": {},
};

/** Values aimed at parsers and at the host tools the plugin runs. */
const NASTY: unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  NaN,
  "",
  " ",
  "x".repeat(5000),
  "\u0000",
  "😀",
  "-o",
  "--help",
  "; reboot",
  "$(reboot)",
  "`id`",
  "eth0; ip link del eth0",
  "../../../etc/shadow",
  "10.1.0.5; rm -rf /",
  "10.1.0.0/24\n-A INPUT -j DROP",
  "0.0.0.0/0",
  "255.255.255.255",
  "10.1.0.1",
  "10.1.0.4",
  "::1",
  "fe80::1%eth0",
  "10.1.0.5/33",
  "1.2.3.4.5",
  "00:00:00:00:00:00",
  "ff:ff:ff:ff:ff:ff",
  NET,
  EP,
  [],
  [1, "a"],
  {},
  { a: { b: { c: {} } } },
  { "com.docker.network.generic": { mode: "$(id)" } },
  { "com.docker.network.generic": { "vnet-ranges": "0.0.0.0/0,-j ACCEPT" } },
  { interface: "eth0 -j DROP" },
  { mac: "zz" },
  [{ Gateway: "10.1.0.1/24; reboot" }],
  [{ Gateway: 5 }],
  { Address: "10.1.0.5/24", MacAddress: "02:42:ac:11:00:02 -j" },
];

/** Mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(template: Record<string, unknown>, rand: () => number): string {
  const pick = <T>(list: T[]): T => list[Math.floor(rand() * list.length)]!;
  const body: Record<string, unknown> = structuredClone(template);
  const keys = Object.keys(body);
  switch (Math.floor(rand() * 8)) {
    case 0: // not JSON at all, or truncated
      return pick([
        "{",
        "}",
        "[",
        "nul",
        '{"PoolID": ',
        "\u0000\u0001",
        '{"a":1}garbage',
        JSON.stringify(body).slice(0, Math.floor(rand() * 40)),
      ]);
    case 1: // JSON that is not an object
      return JSON.stringify(pick([[], [body], 42, "str", null, true]));
    case 2: // a field removed
      if (keys.length) delete body[pick(keys)];
      break;
    case 3: // unknown fields
      body[pick(["__proto__", "constructor", "Extra", "pooLID", "x".repeat(300)])] = pick(NASTY);
      break;
    default: // a field replaced by something nasty (twice, sometimes)
      for (let i = 0; i < 1 + Math.floor(rand() * 2); i++)
        body[keys.length ? pick(keys) : "PoolID"] = pick(NASTY);
  }
  return JSON.stringify(body);
}

describe("fuzzing both APIs", function () {
  this.timeout(180_000);
  let plugin: PluginUnderTest;
  before(async () => {
    plugin = await startPlugin();
  });
  after(async () => {
    await plugin.stop();
  });

  it(`answers ${REQUESTS} hostile requests properly; rejected ones change neither state nor host`, async () => {
    const rand = random(20261128);
    const paths = Object.keys(TEMPLATES);
    const statuses = new Map<number, number>();
    let rejected = 0;
    const internalErrors = new Set<string>();
    for (let i = 0; i < REQUESTS; i++) {
      const path = paths[Math.floor(rand() * paths.length)]!;
      const body = mutate(TEMPLATES[path]!, rand);
      const stateBefore = await readFile(plugin.stateFile, "utf8").catch(() => "");
      const hostBefore = plugin.host.snapshot();
      let answer: { status: number; json: unknown };
      try {
        answer = await rawPost(plugin.socketPath, path, body);
      } catch (error) {
        throw new Error(
          `request #${i} ${path} ${body.slice(0, 200)} got no JSON answer: ${(error as Error).message}`,
        );
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const where = `request #${i} ${path} ${body.slice(0, 200)} → ${answer.status} ${JSON.stringify(answer.json).slice(0, 200)}`;
      expect([200, 400, 404, 409, 413, 500, 503], where).to.include(answer.status);
      expect(answer.json, where).to.be.an("object");
      if (answer.status === 200) continue;
      rejected += 1;
      expect((answer.json as { Err?: unknown }).Err, where)
        .to.be.a("string")
        .and.not.equal("");
      const err = (answer.json as { Err: string }).Err;
      expect(err, `${where}: one printable line`).to.equal(printable(err));
      expect(
        await readFile(plugin.stateFile, "utf8").catch(() => ""),
        `${where}: state file changed`,
      ).to.equal(stateBefore);
      expect(plugin.host.snapshot(), `${where}: the host changed`).to.equal(hostBefore);
      if (answer.status === 500)
        internalErrors.add((answer.json as { Err: string }).Err.replace(/[0-9a-f]{12}/g, "<id>"));
    }
    for (const message of internalErrors)
      expect(message, "a 500 other than an unknown id is a bug").to.match(EXPECTED_500);
    const activate = await rawPost(plugin.socketPath, "/Plugin.Activate", "");
    expect(activate.status, "still serving").to.equal(200);
    expect(rejected, "most hostile requests are rejected").to.be.greaterThan(REQUESTS / 2);
    console.log(
      `      fuzz: ${REQUESTS} requests, ${rejected} rejected; by status: ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
  });
});
