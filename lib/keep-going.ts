/**
 * Runs every teardown step even when some fail, then reports the failures together: a half-finished
 * teardown must not leave later steps undone because an earlier one hit a problem.
 */
import { InternalError, toPluginError, UnavailableError } from "./errors.js";

export async function keepGoing(what: string, steps: (() => Promise<unknown>)[]): Promise<void> {
  const failures: Error[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error instanceof Error ? error : new Error(String(error)));
    }
  }
  if (failures.length === 1) throw failures[0]!;
  if (failures.length > 1) {
    const message = `${what}: ${failures.length} steps failed: ${failures.map((f) => f.message).join("; ")}`;
    // 503 tells dockerd (and the user) that trying again may help: only true if a step may pass then.
    const retryable = failures.some((f) => toPluginError(f).status === 503);
    const options = { cause: new AggregateError(failures) };
    throw retryable ? new UnavailableError(message, options) : new InternalError(message, options);
  }
}
