/**
 * Pool growth as plain TypeScript: a scripted NIC editor stands in for Azure. One growth per subnet
 * however many requests wait for it, the wait limit, backoff after failures, giving back idle extras
 * only through the pool's withdrawal, and pending addresses laid over what the pool source reports.
 */
import { expect } from "chai";
import type { Inventory } from "../../ipam-driver/inventory.js";
import { withPendingAddresses, type PendingAddress } from "../../ipam-driver/pending-addresses.js";
import {
  PoolGrowth,
  type GrowthHooks,
  type GrowthOptions,
  type NicEditor,
} from "../../ipam-driver/pool-growth.js";
import { PoolExhaustedError, RetryLaterError, UnavailableError } from "../../lib/errors.js";
import { silentLogger } from "../../lib/logger.js";
import { pollUntil } from "../helpers/run.js";

const MAC = "00:0d:3a:00:00:01";
const SUBNET = "10.1.0.0/24";
const OPTIONS: GrowthOptions = { minFree: 1, step: 2, waitMs: 2_000, maxFree: 0, shrinkAfterMs: 60_000 };

/** A subnet whose free addresses the test controls, and the hooks growth calls. */
function fakePool(free: string[]) {
  const adopted: string[] = [];
  const withdrawn: string[] = [];
  const restored: string[] = [];
  const hooks: GrowthHooks = {
    subnets: () => [{ macAddress: MAC, nic: "eth0", subnet: SUBNET, free: [...free] }],
    adopt: (_mac, _subnet, added) => {
      adopted.push(...added);
      free.push(...added);
      return Promise.resolve();
    },
    withdraw: (_mac, _subnet, candidates, count) => {
      const taken = candidates.filter((a) => free.includes(a)).slice(-count);
      withdrawn.push(...taken);
      free.splice(0, free.length, ...free.filter((a) => !taken.includes(a)));
      return Promise.resolve(taken);
    },
    restore: (_mac, _subnet, addresses) => {
      restored.push(...addresses);
      free.push(...addresses);
      return Promise.resolve();
    },
  };
  return { free, adopted, withdrawn, restored, hooks };
}

/** An editor whose answers are released by the test. */
function scriptedEditor() {
  const calls: { count: number; release: (result: string[] | Error) => void }[] = [];
  let next = 100;
  const editor: NicEditor = {
    addSecondaries: (_mac, _subnet, count) =>
      new Promise((resolve, reject) => {
        calls.push({
          count,
          release: (result) => (result instanceof Error ? reject(result) : resolve(result)),
        });
      }),
    removeSecondaries: async (_mac, _subnet, choose) => choose(["10.1.0.5", "10.1.0.6", "10.1.0.7"]),
  };
  const addresses = (count: number) => Array.from({ length: count }, () => `10.1.0.${next++}`);
  return { editor, calls, addresses };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("pool growth", () => {
  it("starts one growth when free addresses fall below the low-water mark, however often it is asked", async () => {
    const pool = fakePool([]);
    const { editor, calls, addresses } = scriptedEditor();
    const growth = new PoolGrowth(editor, OPTIONS, pool.hooks, silentLogger);
    growth.afterChange();
    growth.afterChange();
    const waiting = [
      growth.growFor(MAC, SUBNET, "eth0", Date.now() + 2_000),
      growth.growFor(MAC, SUBNET, "eth0", Date.now() + 2_000),
    ];
    await settle();
    expect(calls).to.have.length(1);
    expect(calls[0]!.count).to.equal(2);
    expect(growth.status()[0]!.state).to.equal("growing");
    calls[0]!.release(addresses(2));
    expect(await Promise.all(waiting)).to.deep.equal([true, true]);
    expect(pool.adopted).to.deep.equal(["10.1.0.100", "10.1.0.101"]);
    expect(growth.status()[0]).to.deep.include({ state: "idle", added: 2 });
  });

  it("a waiting request gives up at its deadline with a clear error; the growth goes on", async () => {
    const pool = fakePool([]);
    const { editor, calls, addresses } = scriptedEditor();
    const growth = new PoolGrowth(editor, OPTIONS, pool.hooks, silentLogger);
    const error = await growth.growFor(MAC, SUBNET, "eth0", Date.now() + 30).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(PoolExhaustedError);
    expect((error as Error).message).to.equal(
      "no free address on eth0 (10.1.0.0/24): Azure has not finished adding IP configurations after 2 s",
    );
    calls[0]!.release(addresses(2));
    await settle();
    expect(pool.adopted).to.have.length(2);
  });

  it("says so when Azure added nothing", async () => {
    const pool = fakePool([]);
    const { editor, calls } = scriptedEditor();
    const growth = new PoolGrowth(editor, OPTIONS, pool.hooks, silentLogger);
    const waiting = growth.growFor(MAC, SUBNET, "eth0", Date.now() + 2_000).catch((e: unknown) => e);
    await settle();
    calls[0]!.release([]);
    expect(((await waiting) as Error).message).to.equal(
      "no free address on eth0 (10.1.0.0/24): Azure added no addresses",
    );
  });

  it("after a failure, background growth waits (ARM's Retry-After, else a growing backoff); a request still tries", async () => {
    const pool = fakePool([]);
    const { editor, calls, addresses } = scriptedEditor();
    const growth = new PoolGrowth(editor, OPTIONS, pool.hooks, silentLogger);
    growth.afterChange();
    await settle();
    calls[0]!.release(
      new UnavailableError("cannot add IP configurations: Azure refused (AuthorizationFailed)"),
    );
    await settle();
    const [status] = growth.status();
    expect(status).to.deep.include({ state: "waiting after a failure" });
    expect(status!.lastError).to.contain("Azure refused");
    expect(Date.parse(status!.retryAt!) - Date.now()).to.be.within(25_000, 30_000);
    growth.afterChange();
    await settle();
    expect(calls, "no background retry before the backoff ends").to.have.length(1);
    const request = growth.growFor(MAC, SUBNET, "eth0", Date.now() + 2_000);
    await settle();
    expect(calls, "a container start tries again").to.have.length(2);
    calls[1]!.release(addresses(2));
    expect(await request).to.equal(true);
    expect(growth.status()[0]).to.not.have.property("lastError");
  });

  it("while ARM throttles, requests fail at once with its Retry-After instead of asking again", async () => {
    const pool = fakePool([]);
    const { editor, calls } = scriptedEditor();
    const growth = new PoolGrowth(editor, OPTIONS, pool.hooks, silentLogger);
    growth.afterChange();
    await settle();
    calls[0]!.release(new RetryLaterError("throttled", 60_000));
    await settle();
    const error = await growth.growFor(MAC, SUBNET, "eth0", Date.now() + 2_000).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(RetryLaterError);
    expect(calls).to.have.length(1);
  });

  it("an editor failure that is not a plugin error still reads as a pool error", async () => {
    const pool = fakePool([]);
    const { editor, calls } = scriptedEditor();
    const growth = new PoolGrowth(editor, OPTIONS, pool.hooks, silentLogger);
    growth.afterChange();
    await settle();
    calls[0]!.release(new Error("socket hang up"));
    await settle();
    expect(growth.status()[0]!.lastError).to.equal("could not grow the pool: socket hang up");
  });

  it("is off with a low-water mark of 0: nothing grows and requests are told so", async () => {
    const pool = fakePool([]);
    const { editor, calls } = scriptedEditor();
    const growth = new PoolGrowth(editor, { ...OPTIONS, minFree: 0 }, pool.hooks, silentLogger);
    growth.afterChange();
    expect(await growth.growFor(MAC, SUBNET, "eth0", Date.now() + 2_000)).to.equal(false);
    expect(calls).to.deep.equal([]);
  });

  const shrinking = (refuse: boolean) => {
    const pool = fakePool(["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"]);
    const editor: NicEditor = {
      addSecondaries: () => Promise.resolve([]),
      removeSecondaries: async (_mac, _subnet, choose) => {
        // 10.1.0.99 is removable in Azure but not free in the pool: it must not be chosen.
        const chosen = await choose(["10.1.0.7", "10.1.0.8", "10.1.0.99"]);
        if (refuse) throw new UnavailableError("cannot remove IP configurations: the Azure operation failed");
        return chosen;
      },
    };
    const growth = new PoolGrowth(
      editor,
      { ...OPTIONS, maxFree: 3, shrinkAfterMs: 20 },
      pool.hooks,
      silentLogger,
    );
    return { pool, growth };
  };

  it("gives back idle extras above the high-water mark, only those the pool lets it withdraw", async () => {
    const { pool, growth } = shrinking(false);
    growth.start();
    try {
      await pollUntil("idle addresses to be given back", () => Promise.resolve(growth.status()[0]?.removed), {
        timeoutMs: 2_000,
        intervalMs: 10,
      });
    } finally {
      growth.stop();
    }
    expect(pool.withdrawn).to.deep.equal(["10.1.0.8"]);
    expect(pool.free).to.deep.equal(["10.1.0.5", "10.1.0.6", "10.1.0.7"]);
    expect(growth.status()[0]).to.deep.include({ removed: 1, state: "idle" });
  });

  it("puts withdrawn addresses back when Azure refuses to remove them", async () => {
    const { pool, growth } = shrinking(true);
    growth.start();
    try {
      await pollUntil("the refusal to be recorded", () => Promise.resolve(growth.status()[0]?.lastError), {
        timeoutMs: 2_000,
        intervalMs: 10,
      });
    } finally {
      growth.stop();
    }
    expect(pool.restored).to.deep.equal(["10.1.0.8"]);
    expect(pool.free).to.have.members(["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"]);
    expect(growth.status()[0]).to.deep.include({ removed: 0, state: "waiting after a failure" });
  });
});

describe("pending addresses", () => {
  const inventory: Inventory = {
    nics: [
      {
        macAddress: MAC,
        interfaceName: "eth0",
        mtu: 1500,
        isPrimary: true,
        subnets: [
          { family: 4, prefix: SUBNET, gateway: "10.1.0.1", primary: "10.1.0.4", secondaries: ["10.1.0.5"] },
        ],
      },
    ],
  };
  const pending = (
    address: string,
    change: "add" | "remove",
    expiresAt = Date.now() + 60_000,
  ): PendingAddress => ({
    macAddress: MAC,
    subnet: SUBNET,
    address,
    change,
    expiresAt,
  });
  const secondaries = (result: Inventory) => result.nics[0]!.subnets[0]!.secondaries;

  it("adds addresses Azure just gave until the source lists them, in address order", () => {
    const result = withPendingAddresses(
      inventory,
      [pending("10.1.0.10", "add"), pending("10.1.0.9", "add")],
      Date.now(),
    );
    expect(secondaries(result.inventory)).to.deep.equal(["10.1.0.5", "10.1.0.9", "10.1.0.10"]);
    expect(result.pending).to.have.length(2);
    expect(secondaries(inventory), "the source's inventory is not changed").to.deep.equal(["10.1.0.5"]);
  });

  it("removes withdrawn addresses while the source still lists them", () => {
    const result = withPendingAddresses(inventory, [pending("10.1.0.5", "remove")], Date.now());
    expect(secondaries(result.inventory)).to.deep.equal([]);
    expect(result.pending).to.have.length(1);
  });

  it("forgets a change once the source agrees, or once it expired", () => {
    const seen = withPendingAddresses(
      inventory,
      [pending("10.1.0.5", "add"), pending("10.1.0.77", "remove")],
      Date.now(),
    );
    expect(seen.pending).to.deep.equal([]);
    const expired = withPendingAddresses(inventory, [pending("10.1.0.9", "add", Date.now() - 1)], Date.now());
    expect(secondaries(expired.inventory)).to.deep.equal(["10.1.0.5"]);
    expect(expired.pending).to.deep.equal([]);
  });
});
