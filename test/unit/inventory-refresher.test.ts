/** The refresher against a scripted source: last good pool kept, backoff, Retry-After, coalescing. */
import { expect } from "chai";
import { InventoryRefresher } from "../../ipam-driver/inventory-refresher.js";
import type { SourceNic } from "../../ipam-driver/inventory.js";
import { RetryLaterError } from "../../lib/errors.js";
import type { PoolSource } from "../../ipam-driver/sources/source.js";
import { UnavailableError } from "../../lib/errors.js";
import { silentLogger } from "../../lib/logger.js";

const GOOD: SourceNic[] = [
  {
    macAddress: "000D3A000001",
    subnets: [{ prefix: "10.1.0.0/24", primary: "10.1.0.4", secondaries: ["10.1.0.5"] }],
  },
];
const host = { listInterfaces: () => Promise.resolve([]) };

function scriptedSource(script: (SourceNic[] | Error)[]): PoolSource & { calls: number } {
  const source = {
    name: "test",
    location: "script",
    calls: 0,
    fetchNics() {
      const step = script[Math.min(source.calls++, script.length - 1)]!;
      return step instanceof Error ? Promise.reject(step) : Promise.resolve(step);
    },
  };
  return source;
}

describe("inventory refresher", () => {
  it("keeps the last good inventory through failures and reports change only when it changes", async () => {
    const source = scriptedSource([GOOD, new UnavailableError("down"), GOOD]);
    const changes: number[] = [];
    const refresher = new InventoryRefresher(
      source,
      host,
      silentLogger,
      { intervalMs: 60_000, minSpacingMs: 0 },
      () => {
        changes.push(source.calls);
      },
    );
    const first = await refresher.refreshNow();
    expect(first?.nics[0]?.subnets[0]?.secondaries).to.deep.equal(["10.1.0.5"]);
    const second = await refresher.refreshNow();
    expect(second).to.equal(first);
    expect(refresher.consecutiveFailures).to.equal(1);
    expect(refresher.lastError).to.equal("down");
    await refresher.refreshNow();
    expect(refresher.lastError).to.equal(undefined);
    expect(changes).to.deep.equal([1]);
    refresher.stop();
  });

  it("coalesces concurrent reads into one", async () => {
    const source = scriptedSource([GOOD]);
    const refresher = new InventoryRefresher(
      source,
      host,
      silentLogger,
      { intervalMs: 60_000, minSpacingMs: 0 },
      () => undefined,
    );
    await Promise.all([refresher.refreshNow(), refresher.refreshNow(), refresher.refreshNow()]);
    expect(source.calls).to.equal(1);
    refresher.stop();
  });

  it("spaces reads and honours Retry-After", async () => {
    const source = scriptedSource([new RetryLaterError("429", 150), GOOD]);
    const refresher = new InventoryRefresher(
      source,
      host,
      silentLogger,
      { intervalMs: 60_000, minSpacingMs: 20 },
      () => undefined,
    );
    await refresher.refreshNow();
    const started = Date.now();
    await refresher.refreshNow();
    expect(Date.now() - started).to.be.at.least(140);
    const again = Date.now();
    await refresher.refreshNow();
    expect(Date.now() - again).to.be.at.least(15);
    refresher.stop();
  });

  it("a malformed document does not replace the inventory", async () => {
    const source = scriptedSource([GOOD, [{ macAddress: "bad", subnets: [] }]]);
    const refresher = new InventoryRefresher(
      source,
      host,
      silentLogger,
      { intervalMs: 60_000, minSpacingMs: 0 },
      () => undefined,
    );
    const good = await refresher.refreshNow();
    expect(await refresher.refreshNow()).to.equal(good);
    expect(refresher.lastError).to.equal('NIC #1 has an invalid MAC address "bad"');
    refresher.stop();
  });
});
