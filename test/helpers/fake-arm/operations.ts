/**
 * Long-running operations: an accepted change takes effect only when a client polls its operation to
 * the end, through either URL ARM hands out (Azure-AsyncOperation or Location). While it runs, its
 * resource is busy and other changes of it are refused with 429.
 */
import { randomUUID } from "node:crypto";
import { ArmError, type Answer } from "./errors.js";
import type { ArmIds } from "./ids.js";
import type { FakeArmFault, FakeArmNic } from "./types.js";

type OperationResult =
  | { status: "Succeeded" }
  | { status: "Failed"; error: { code: string; message: string } };

/** An accepted change that takes effect when a client polls it to the end. */
type Operation = {
  /** Lower-case id of the resource it changes; a second change of it meanwhile is refused. */
  resourceKey: string;
  pollsLeft: number;
  /** Set by an injected "operation-failed": the operation ends so and changes nothing. */
  failure: { code: string; message: string } | undefined;
  /** The NIC as the operation will leave it, so its addresses and associations count as taken. */
  pendingNic?: FakeArmNic;
  commit: () => Promise<void>;
  /** Started by the first poll that finds no InProgress answers left; every later poll repeats it. */
  result?: Promise<OperationResult>;
};

export class ArmOperations {
  private readonly operations = new Map<string, Operation>();
  /** Resources with an unfinished operation, by lower-case id. */
  private readonly busy = new Map<string, string>();

  constructor(
    private readonly ids: ArmIds,
    /** InProgress answers before an operation reports its final status. */
    private readonly polls: number,
    /** Retry-After seconds, as the header writes them. */
    readonly retryAfter: string,
  ) {}

  /** Accepts a change of `resourceId`; returns the operation's id. */
  start(
    resourceId: string,
    failure: FakeArmFault | undefined,
    commit: () => Promise<void>,
    pendingNic?: FakeArmNic,
  ): string {
    const id = randomUUID();
    this.operations.set(id, {
      resourceKey: resourceId.toLowerCase(),
      pollsLeft: this.polls,
      failure: failure ? { code: failure.code, message: failure.message } : undefined,
      commit,
      ...(pendingNic ? { pendingNic } : {}),
    });
    this.busy.set(resourceId.toLowerCase(), id);
    return id;
  }

  isBusy(resourceId: string): boolean {
    return this.busy.has(resourceId.toLowerCase());
  }

  /** ARM's 429 while another operation changes the resource. */
  refuseIfBusy(resourceId: string): void {
    const operationId = this.busy.get(resourceId.toLowerCase());
    if (operationId === undefined) return;
    throw new ArmError(
      429,
      "AnotherOperationInProgress",
      `Another operation on this or dependent resource is in progress. To retrieve status of the operation use uri: ${this.ids.operationUrl(operationId)}.`,
      { "Retry-After": this.retryAfter },
    );
  }

  /** The NICs as unfinished operations will leave them, oldest operation first. */
  pendingNics(): FakeArmNic[] {
    const result: FakeArmNic[] = [];
    for (const op of this.operations.values()) if (op.pendingNic && !op.result) result.push(op.pendingNic);
    return result;
  }

  /** The headers of a change's first answer: where to poll, and how soon. */
  acceptedHeaders(id: string, withLocation: boolean): Record<string, string> {
    return {
      "Azure-AsyncOperation": this.ids.operationUrl(id),
      ...(withLocation ? { Location: this.ids.operationResultUrl(id) } : {}),
      "Retry-After": this.retryAfter,
    };
  }

  /** One poll: InProgress while polls are left, then the final result (and the commit, once). */
  async poll(id: string, style: "async-operation" | "location"): Promise<Answer> {
    const op = this.operations.get(id);
    if (!op) throw new ArmError(404, "NotFound", `Operation ${id} was not found.`);
    const headers = { "Retry-After": this.retryAfter };
    if (!op.result && op.pollsLeft > 0) {
      op.pollsLeft--;
      return style === "location"
        ? { status: 202, headers: { ...headers, Location: this.ids.operationResultUrl(id) } }
        : { status: 200, body: { status: "InProgress" }, headers };
    }
    op.result ??= this.finish(op);
    const result = await op.result;
    if (style === "async-operation") return { status: 200, body: result, headers };
    if (result.status === "Failed") throw new ArmError(400, result.error.code, result.error.message, headers);
    return { status: 204, headers };
  }

  private async finish(op: Operation): Promise<OperationResult> {
    try {
      if (op.failure) return { status: "Failed", error: op.failure };
      await op.commit();
      return { status: "Succeeded" };
    } catch (error) {
      // A failing callback means the test's network could not follow; say so through ARM's channel.
      const message = error instanceof Error ? error.message : String(error);
      return {
        status: "Failed",
        error: { code: "InternalServerError", message: `stand-in callback failed: ${message}` },
      };
    } finally {
      this.busy.delete(op.resourceKey);
    }
  }
}
