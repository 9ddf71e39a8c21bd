/**
 * Keeps the NIC inventory current: reads the pool source periodically and on demand (when a request
 * finds no free address), keeps the last good inventory when a read fails, and backs off while the
 * source keeps failing. Reads are coalesced and spaced so IMDS's limit of 5 requests a second per VM
 * is never approached.
 */
import type { HostNetwork } from "../lib/host-net/host-network.js";
import type { Logger } from "../lib/logger.js";
import { resolveInventory, type Inventory } from "./inventory.js";
import { withPendingAddresses, type PendingAddress } from "./pending-addresses.js";
import { RetryLaterError } from "../lib/errors.js";
import type { PoolSource } from "./sources/source.js";

export type RefresherOptions = {
  /** Time between reads while the source answers. */
  intervalMs: number;
  /** Minimum time between two reads, also on demand. */
  minSpacingMs: number;
};

export class InventoryRefresher {
  private inventory: Inventory | undefined;
  /** What the source last reported, before pending changes are laid over it. */
  private reported: Inventory | undefined;
  private pending: PendingAddress[] = [];
  private inFlight: Promise<Inventory | undefined> | undefined;
  private lastReadAt = 0;
  private failures = 0;
  private lastFailure: string | undefined;
  /** Set by a Retry-After answer: no read before this time. */
  private notBefore = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(
    private readonly source: PoolSource,
    private readonly host: Pick<HostNetwork, "listInterfaces">,
    private readonly logger: Logger,
    private readonly options: RefresherOptions,
    /** Called after every read that changed the inventory. */
    private readonly onChange: (
      inventory: Inventory,
      previous: Inventory | undefined,
    ) => Promise<void> | void,
    initial?: Inventory,
  ) {
    this.inventory = initial;
  }

  /** The last inventory read successfully (or restored from state), if any. */
  get current(): Inventory | undefined {
    return this.inventory;
  }

  /** How many reads in a row have failed. */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Why the last read failed, while reads keep failing. */
  get lastError(): string | undefined {
    return this.failures > 0 ? this.lastFailure : undefined;
  }

  /** Starts the periodic reads. */
  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /**
   * Reads the source now (or joins a read in progress) and returns the current inventory. Never throws:
   * a failed read is logged and the last good inventory stays.
   */
  refreshNow(): Promise<Inventory | undefined> {
    this.inFlight ??= this.read().finally(() => {
      this.inFlight = undefined;
      this.schedule();
    });
    return this.inFlight;
  }

  private async read(): Promise<Inventory | undefined> {
    const wait = Math.max(this.lastReadAt + this.options.minSpacingMs, this.notBefore) - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    this.lastReadAt = Date.now();
    try {
      const [nics, locals] = await Promise.all([this.source.fetchNics(), this.host.listInterfaces()]);
      this.reported = resolveInventory(nics, locals);
      const previous = this.inventory;
      const next = this.merge()!;
      if (this.failures > 0)
        this.logger.info("pool source answers again", { source: this.source.name, failures: this.failures });
      this.failures = 0;
      if (JSON.stringify(previous) !== JSON.stringify(next)) await this.onChange(next, previous);
    } catch (error) {
      this.failures += 1;
      this.lastFailure = (error as Error).message;
      if (error instanceof RetryLaterError) this.notBefore = Date.now() + error.retryAfterMs;
      this.logger.warn("pool source read failed; keeping the last good pool", {
        source: this.source.name,
        location: this.source.location,
        error: (error as Error).message,
        failures: this.failures,
        retryInMs: this.delay(),
      });
    }
    return this.inventory;
  }

  /**
   * Lays changes the plugin made through Azure over the inventory at once, until the source shows them.
   * Synchronous, so a caller can apply it inside a state update; the caller persists the result.
   */
  applyPending(changes: PendingAddress[]): Inventory | undefined {
    // A later change of an address replaces an earlier one (a withdrawal undone, say).
    const changed = new Set(changes.map((c) => c.address));
    this.pending = [...this.pending.filter((p) => !changed.has(p.address)), ...changes];
    return this.merge();
  }

  private merge(): Inventory | undefined {
    const base = this.reported ?? this.inventory;
    if (!base) return undefined;
    const merged = withPendingAddresses(base, this.pending, Date.now());
    this.pending = merged.pending;
    this.reported = base;
    this.inventory = merged.inventory;
    return merged.inventory;
  }

  private delay(): number {
    const backoff =
      this.failures === 0
        ? this.options.intervalMs
        : Math.min(this.options.intervalMs, this.options.minSpacingMs * 2 ** (this.failures - 1));
    return Math.max(backoff, this.notBefore - Date.now());
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.refreshNow(), this.delay());
    this.timer.unref();
  }
}
