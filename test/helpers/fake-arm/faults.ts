/**
 * Fault injection: the queue of ARM faults a test asked for (403, 429, failed operations, ...) and
 * the matching of requests against it.
 */
import { ArmError } from "./errors.js";
import type { FakeArmFault } from "./types.js";

type QueuedFault = { method: string; pathIncludes: string; fault: FakeArmFault; remaining: number };

export class FaultQueue {
  private readonly faults: QueuedFault[] = [];

  /** `retryAfter`: the Retry-After seconds a 429 gets when its fault names none. */
  constructor(private readonly retryAfter: string) {}

  /** FakeArm.injectFault. */
  inject(match: { method: string; pathIncludes: string }, fault: FakeArmFault, count = 1): void {
    const method = match.method.toUpperCase();
    if (fault.kind === "operation-failed" && method !== "PUT" && method !== "DELETE") {
      throw new Error("an operation-failed fault applies to PUT or DELETE only");
    }
    this.faults.push({ method, pathIncludes: match.pathIncludes, fault, remaining: count });
  }

  /** Uses up and returns the first queued fault of `kind` that matches the request, if any. */
  take(method: string, path: string, kind: FakeArmFault["kind"]): FakeArmFault | undefined {
    const queued = this.faults.find(
      (f) => f.remaining > 0 && f.fault.kind === kind && f.method === method && path.includes(f.pathIncludes),
    );
    if (!queued) return undefined;
    queued.remaining--;
    return queued.fault;
  }

  /** Throws the "status" fault queued for this request, if any, as ARM's answer. */
  throwStatusFault(method: string, path: string): void {
    const fault = this.take(method, path, "status");
    if (fault?.kind !== "status") return;
    const seconds = fault.retryAfterSeconds ?? (fault.status === 429 ? Number(this.retryAfter) : undefined);
    throw new ArmError(
      fault.status,
      fault.code,
      fault.message,
      seconds === undefined ? {} : { "Retry-After": String(seconds) },
    );
  }
}
