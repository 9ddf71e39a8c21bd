/**
 * Keeps the pool from running dry: when a NIC subnet that a network uses has fewer free addresses than
 * the low-water mark, asks Azure for more secondary IP configurations; optionally gives idle extras back
 * above a high-water mark after a quiet period. One change per subnet at a time, which concurrent
 * requests share; a request that finds the pool empty waits for growth, but only so long.
 */
import { PluginError, PoolExhaustedError, RetryLaterError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";

/** Changes a NIC's secondary IP configurations (Azure Resource Manager in production). */
export type NicEditor = {
  /** Adds up to `count` addresses in `subnet`; returns the addresses added. */
  addSecondaries(macAddress: string, subnet: string, count: number): Promise<string[]>;
  /**
   * Removes addresses the plugin added; `choose` gets the removable ones and returns those to remove,
   * already withdrawn from the pool. Returns the addresses removed.
   */
  removeSecondaries(
    macAddress: string,
    subnet: string,
    choose: (removable: string[]) => Promise<string[]>,
  ): Promise<string[]>;
};

export type GrowthOptions = {
  /** Grow when a subnet has fewer free addresses than this; 0 turns growth off. */
  minFree: number;
  /** Addresses added per growth. */
  step: number;
  /** How long a request that found no free address waits for growth. */
  waitMs: number;
  /** Give back plugin-added addresses while more than this many are free; 0 never gives back. */
  maxFree: number;
  /** Only after this long without an allocation or release. */
  shrinkAfterMs: number;
};

/** What growth needs from the IPAM driver. */
export type GrowthHooks = {
  /** The IPv4 NIC subnets networks use, with their free addresses. */
  subnets(): { macAddress: string; nic: string; subnet: string; free: string[] }[];
  /** Puts addresses Azure just added into the pool. */
  adopt(macAddress: string, subnet: string, added: string[]): Promise<void>;
  /** Takes up to `count` of `candidates` that are free out of the pool; returns those taken. */
  withdraw(macAddress: string, subnet: string, candidates: string[], count: number): Promise<string[]>;
  /** Puts withdrawn addresses back (their removal failed). */
  restore(macAddress: string, subnet: string, addresses: string[]): Promise<void>;
};

export type GrowthStatus = {
  nic: string;
  subnet: string;
  state: "idle" | "growing" | "shrinking" | "waiting after a failure";
  added: number;
  removed: number;
  lastError?: string;
  retryAt?: string;
};

type SubnetGrowth = {
  macAddress: string;
  nic: string;
  subnet: string;
  growing?: Promise<string[]>;
  shrinking?: Promise<unknown>;
  failures: number;
  lastError?: PluginError;
  retryAt: number;
  added: number;
  removed: number;
};

const FIRST_BACKOFF_MS = 30_000;
const MAX_BACKOFF_MS = 600_000;

export class PoolGrowth {
  private readonly subnets = new Map<string, SubnetGrowth>();
  private lastActivity = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly editor: NicEditor,
    private readonly options: GrowthOptions,
    private readonly hooks: GrowthHooks,
    private readonly logger: Logger,
  ) {}

  /** Starts the periodic look for idle extras to give back (when a high-water mark is set). */
  start(): void {
    if (this.options.maxFree === 0) return;
    this.timer = setInterval(() => this.giveBackIdle(), Math.min(this.options.shrinkAfterMs / 2, 60_000));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** After an allocation or release: notes the activity and grows any subnet below the low-water mark. */
  afterChange(): void {
    this.lastActivity = Date.now();
    if (this.options.minFree === 0) return;
    for (const usage of this.hooks.subnets()) {
      const entry = this.entry(usage);
      if (usage.free.length < this.options.minFree && !entry.growing && Date.now() >= entry.retryAt)
        this.grow(entry).catch(() => undefined);
    }
  }

  /** How long a request waits for growth in all. */
  get waitMs(): number {
    return this.options.waitMs;
  }

  /**
   * For a request that found no free address: grows the subnet (or joins the growth under way) and
   * waits for it until `deadline`. Resolves once addresses were added; throws otherwise. Returns false
   * when growth is off.
   */
  async growFor(macAddress: string, subnet: string, nic: string, deadline: number): Promise<boolean> {
    if (this.options.minFree === 0) return false;
    const entry = this.entry({ macAddress, subnet, nic });
    if (entry.lastError instanceof RetryLaterError && Date.now() < entry.retryAt) throw entry.lastError;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => {
          reject(
            new PoolExhaustedError(
              `no free address on ${nic} (${subnet}): Azure has not finished adding IP configurations after ${this.options.waitMs / 1000} s`,
              { hint: "start the container again in a moment; 'azure-vnet status' shows the growth" },
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      const added = await Promise.race([entry.growing ?? this.grow(entry), timeout]);
      if (added.length === 0) {
        throw new PoolExhaustedError(`no free address on ${nic} (${subnet}): Azure added no addresses`, {
          hint: "check the NIC's IP configurations in Azure",
        });
      }
      return true;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Per subnet: what growth is doing and how it went, for the operator's status view. */
  status(): GrowthStatus[] {
    return [...this.subnets.values()].map((entry) => ({
      nic: entry.nic,
      subnet: entry.subnet,
      state: entry.growing
        ? "growing"
        : entry.shrinking
          ? "shrinking"
          : Date.now() < entry.retryAt
            ? "waiting after a failure"
            : "idle",
      added: entry.added,
      removed: entry.removed,
      ...(entry.lastError ? { lastError: entry.lastError.userMessage } : {}),
      ...(entry.retryAt > Date.now() ? { retryAt: new Date(entry.retryAt).toISOString() } : {}),
    }));
  }

  private grow(entry: SubnetGrowth): Promise<string[]> {
    const growth = (async () => {
      await entry.shrinking?.catch(() => undefined);
      const started = Date.now();
      const added = await this.editor.addSecondaries(entry.macAddress, entry.subnet, this.options.step);
      await this.hooks.adopt(entry.macAddress, entry.subnet, added);
      entry.added += added.length;
      entry.failures = 0;
      entry.lastError = undefined;
      entry.retryAt = 0;
      this.logger.info("pool grew", {
        nic: entry.nic,
        subnet: entry.subnet,
        added,
        durationMs: Date.now() - started,
      });
      return added;
    })();
    entry.growing = growth;
    growth.then(
      (added) => {
        entry.growing = undefined;
        if (added.length > 0) this.afterChange();
      },
      (error: unknown) => {
        entry.growing = undefined;
        this.recordFailure(entry, error);
      },
    );
    return growth;
  }

  private recordFailure(entry: SubnetGrowth, error: unknown): void {
    entry.failures += 1;
    entry.lastError =
      error instanceof PluginError
        ? error
        : new PoolExhaustedError(`could not grow the pool: ${(error as Error).message}`);
    const backoff = Math.min(FIRST_BACKOFF_MS * 2 ** (entry.failures - 1), MAX_BACKOFF_MS);
    entry.retryAt =
      Date.now() + (entry.lastError instanceof RetryLaterError ? entry.lastError.retryAfterMs : backoff);
    this.logger.warn("pool growth failed", {
      nic: entry.nic,
      subnet: entry.subnet,
      error: entry.lastError.userMessage,
      failures: entry.failures,
      retryAt: new Date(entry.retryAt).toISOString(),
    });
  }

  private giveBackIdle(): void {
    if (Date.now() - this.lastActivity < this.options.shrinkAfterMs) return;
    for (const usage of this.hooks.subnets()) {
      const entry = this.entry(usage);
      const excess = usage.free.length - this.options.maxFree;
      if (excess <= 0 || entry.growing || entry.shrinking || Date.now() < entry.retryAt) continue;
      entry.shrinking = this.shrink(entry, excess).finally(() => {
        entry.shrinking = undefined;
      });
    }
  }

  private async shrink(entry: SubnetGrowth, excess: number): Promise<void> {
    let withdrawn: string[] = [];
    try {
      const removed = await this.editor.removeSecondaries(
        entry.macAddress,
        entry.subnet,
        async (removable) => {
          withdrawn = await this.hooks.withdraw(entry.macAddress, entry.subnet, removable, excess);
          return withdrawn;
        },
      );
      entry.removed += removed.length;
      if (removed.length > 0)
        this.logger.info("pool gave back idle addresses", { nic: entry.nic, subnet: entry.subnet, removed });
    } catch (error) {
      await this.hooks.restore(entry.macAddress, entry.subnet, withdrawn).catch(() => undefined);
      this.recordFailure(entry, error);
    }
  }

  private entry(usage: { macAddress: string; subnet: string; nic: string }): SubnetGrowth {
    const key = `${usage.macAddress};${usage.subnet}`;
    let entry = this.subnets.get(key);
    if (!entry) {
      entry = { ...usage, failures: 0, retryAt: 0, added: 0, removed: 0 };
      this.subnets.set(key, entry);
    }
    return entry;
  }
}
