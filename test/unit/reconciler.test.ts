/**
 * Reconciliation's passes against a stand-in Docker API: a record whose removal keeps failing is
 * reported and retried, and never stops the rest of the pass.
 */
import { expect } from "chai";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NetworkDriver } from "../../driver/network-driver.js";
import type { IpamDriver } from "../../ipam-driver/ipam-driver.js";
import { createLogger } from "../../lib/logger.js";
import { Reconciler } from "../../plugin/reconciler.js";

const LONG_AGO = "2020-01-01T00:00:00.000Z";

describe("reconciliation", () => {
  let dir: string;
  let docker: http.Server;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-reconcile-"));
    // A Docker with no networks at all: every record of the plugin is stale.
    docker = http.createServer((_req, res) => res.end("[]"));
    await new Promise<void>((resolve) => docker.listen(join(dir, "docker.sock"), resolve));
  });
  afterEach(async () => {
    await new Promise((resolve) => docker.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps going past a network whose removal fails: the address pass still runs, every pass", async () => {
    const released: string[] = [];
    const network = {
      summary: () => ({
        networks: [{ id: "a".repeat(64), createdAt: LONG_AGO }],
        endpoints: [],
        unlinks: [],
      }),
      removeStaleNetwork: () => Promise.reject(new Error("iptables: resource busy")),
    } as unknown as NetworkDriver;
    const ipam = {
      reservations: () =>
        released.length === 0
          ? [{ address: "10.1.0.5", poolId: "p", macAddress: "m", reservedAt: LONG_AGO }]
          : [],
      releaseStale: (address: string) => {
        released.push(address);
        return Promise.resolve();
      },
    } as unknown as IpamDriver;
    const lines: string[] = [];
    const logger = createLogger("info", (line) => lines.push(line));
    const reconciler = new Reconciler(network, ipam, logger, {
      socketPath: join(dir, "docker.sock"),
      intervalMs: 0,
      graceMs: 0,
    });
    expect(await reconciler.runOnce()).to.deep.equal({
      networks: 0,
      endpoints: 0,
      addresses: 1,
      failures: 1,
    });
    expect(released).to.deep.equal(["10.1.0.5"]);
    expect(await reconciler.runOnce(), "the next pass tries again").to.deep.equal({
      networks: 0,
      endpoints: 0,
      addresses: 0,
      failures: 1,
    });
    const warnings = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === "warn");
    expect(warnings[0]).to.include({
      msg: "reconciliation could not remove a record; it tries again next pass",
      kind: "networks",
      id: "a".repeat(64),
      error: "iptables: resource busy",
    });
  });

  it("is off without a Docker socket: says so once at start, never asks, and reports it", async () => {
    const lines: string[] = [];
    const logger = createLogger("info", (line) => lines.push(line));
    const untouchable = new Proxy({}, { get: () => expect.fail("a driver was asked") });
    const reconciler = new Reconciler(untouchable as NetworkDriver, untouchable as IpamDriver, logger, {
      socketPath: undefined,
      intervalMs: 60_000,
      graceMs: 0,
    });
    reconciler.start();
    expect(await reconciler.runOnce()).to.equal(undefined);
    await reconciler.stop();
    expect(reconciler.status()).to.deep.equal({ on: false, dockerSocket: undefined });
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).to.deep.equal([
      {
        ...(JSON.parse(lines[0]!) as { time: string }),
        level: "warn",
        msg: "reconciliation with Docker is off: no Docker API socket (--docker-socket is empty). Records that dockerd fails to delete stay until removed by hand",
        hint: "give the plugin the Docker socket to turn it on; docs/security.md says what that grants",
      },
    ]);
  });

  it("reports the last reason Docker could not be asked, until a pass can", async () => {
    const logger = createLogger("error", () => undefined);
    const reconciler = new Reconciler({} as NetworkDriver, {} as IpamDriver, logger, {
      socketPath: join(dir, "nothing-here.sock"),
      intervalMs: 60_000,
      graceMs: 0,
    });
    expect(await reconciler.runOnce()).to.equal(undefined);
    const status = reconciler.status();
    expect(status).to.include({ on: true, dockerSocket: join(dir, "nothing-here.sock") });
    expect(status.lastError).to.match(/ENOENT/);
  });
});
