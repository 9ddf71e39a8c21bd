/**
 * Model-based test of the two drivers together: random sequences of dockerd's IpamDriver and
 * NetworkDriver calls (repeats, out of order, unknown ids, two networks on one subnet), plugin restarts,
 * crashes between the state write and the answer, and reconciliation passes, run against the real
 * service and a small model of the intended semantics (test/api/model/model.ts). After every step the
 * invariants of test/api/model/checks.ts must hold. The sequences are shared between one worker thread
 * per core, each with its own service; every sequence starts from the state of a fresh start.
 *
 * A failure prints the shard's seed, the replay path and the shrunk sequence. To replay it, or to
 * explore with more or fewer sequences (in this thread, one service):
 *   MODEL_SEED=<seed> [MODEL_PATH=<path>] [MODEL_RUNS=<n>] npx mocha dist/test/api/model.test.js
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { runShard, type ShardOptions, type ShardResult } from "./model/run.js";

const RUNS = Number(process.env.MODEL_RUNS ?? 10_000);
const SEED = process.env.MODEL_SEED === undefined ? undefined : Number(process.env.MODEL_SEED);
const PATH = process.env.MODEL_PATH;

function inWorker(options: ShardOptions): Promise<ShardResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./model/shard.js", import.meta.url), { workerData: options });
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`model worker exited with ${code} before reporting`)));
  });
}

describe("model-based test of both drivers", function () {
  this.timeout(20 * 60_000);

  it(`${RUNS} random call sequences keep the plugin equal to the model and every invariant`, async () => {
    const started = Date.now();
    let results: ShardResult[];
    if (SEED !== undefined) {
      results = [await runShard({ runs: RUNS, seed: SEED, ...(PATH === undefined ? {} : { path: PATH }) })];
    } else {
      const shards = Math.max(1, Math.min(availableParallelism(), 4));
      const base = (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
      results = await Promise.all(
        Array.from({ length: shards }, (_, i) =>
          inWorker({ runs: Math.ceil(RUNS / shards), seed: (base + i) | 0 }),
        ),
      );
    }
    const sum = (key: "sequences" | "commands" | "freshStarts") => results.reduce((n, r) => n + r[key], 0);
    console.log(
      `      model: ${sum("sequences")} sequences, ${sum("commands")} commands in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
        `on ${results.length} thread(s); ${sum("freshStarts")} resets needed a fresh start`,
    );
    const failures = results.flatMap((r) => (r.failure ? [r.failure] : []));
    if (failures.length > 0)
      throw new Error(`${failures.join("\n\n")}\n\nReplay one with MODEL_SEED=<seed> MODEL_PATH=<path>.`);
  });
});
