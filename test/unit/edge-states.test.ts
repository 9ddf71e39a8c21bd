/**
 * States the running service normally keeps away from the drivers, checked directly: drivers asked to
 * work before any NIC inventory was read, and a metadata endpoint that asks to be retried later.
 */
import { expect } from "chai";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetworkDriver } from "../../driver/network-driver.js";
import type { InventoryRefresher } from "../../ipam-driver/inventory-refresher.js";
import { IpamDriver } from "../../ipam-driver/ipam-driver.js";
import { httpGet } from "../../lib/http-get.js";
import { RetryLaterError } from "../../lib/errors.js";
import { silentLogger } from "../../lib/logger.js";
import { pluginStateCodec } from "../../plugin/plugin-state.js";
import { StateFile } from "../../lib/state-file.js";
import { fieldOf, sectionOf } from "../../lib/state-section.js";
import { createFakeHost } from "../helpers/fake-host.js";

describe("edge states", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-edge-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("both drivers say so when no NIC inventory has been read yet", async () => {
    const state = await StateFile.open(join(dir, "state.json"), pluginStateCodec);
    const refresher = { current: undefined } as unknown as InventoryRefresher;
    const ipam = new IpamDriver({ state: sectionOf(state, "ipam"), refresher, logger: silentLogger });
    const network = new NetworkDriver({
      state: sectionOf(state, "driver"),
      bootId: fieldOf(state, "bootId"),
      addresses: ipam,
      host: createFakeHost(),
      logger: silentLogger,
      inventory: () => undefined,
    });
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => undefined,
        (error: Error) => error.message,
      );
    expect(await failure(ipam.requestPool({ Pool: "" }))).to.equal(
      "the VM's NIC configuration has not been read yet",
    );
    const create = network.createNetwork({
      NetworkID: "a".repeat(64),
      IPv4Data: [{ AddressSpace: "azure-local", Pool: "0.0.0.0/0", Gateway: "10.1.0.1/24" }],
    });
    expect(await failure(create)).to.equal("the VM's NIC configuration has not been read yet");
  });

  it("a 429 with Retry-After becomes a RetryLaterError carrying the delay", async () => {
    const server = http.createServer((_req, res) =>
      res.writeHead(429, { "Retry-After": "2" }).end("slow down"),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
      const error = await httpGet(url, { timeoutMs: 1000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(RetryLaterError);
      expect((error as RetryLaterError).retryAfterMs).to.equal(2000);
      expect((error as Error).message).to.equal(`${url} answered HTTP 429: slow down (Retry-After 2 s)`);
    } finally {
      server.close();
    }
  });
});
