/**
 * Runs one share of the model-based test's sequences on its own service (a harness with its own
 * state directory and sockets), so that shares can run side by side in worker threads.
 */
import fc from "fast-check";
import { commandArbitraries } from "./commands.js";
import { Harness } from "./harness.js";
import { Model } from "./model.js";

/** Longest sequence; fast-check generates shorter ones more often. */
export const MAX_COMMANDS = 12;

export type ShardOptions = { runs: number; seed: number; path?: string };
export type ShardResult = {
  /** fast-check's report (seed, path, shrunk sequence, error), when a sequence failed. */
  failure: string | undefined;
  sequences: number;
  commands: number;
  freshStarts: number;
};

export async function runShard(options: ShardOptions): Promise<ShardResult> {
  const real = new Harness();
  await real.open();
  let sequences = 0;
  let commands = 0;
  try {
    const property = fc.asyncProperty(
      fc.commands(commandArbitraries, { maxCommands: MAX_COMMANDS }),
      async (sequence) => {
        await real.reset();
        sequences += 1;
        commands += [...sequence].length;
        await fc.asyncModelRun(() => ({ model: new Model(), real }), sequence);
      },
    );
    const details = await fc.check(property, {
      numRuns: options.runs,
      seed: options.seed,
      verbose: fc.VerbosityLevel.Verbose,
      ...(options.path === undefined ? {} : { path: options.path }),
    });
    const failure = details.failed
      ? `${await fc.asyncDefaultReportMessage(details)}\nThe shrunk sequence failed with: ${errorText(details.errorInstance)}`
      : undefined;
    return { failure, sequences, commands, freshStarts: real.freshStarts };
  } finally {
    await real.close();
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
