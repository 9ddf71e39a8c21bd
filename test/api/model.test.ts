/**
 * Model-based test of the two drivers together: random sequences of dockerd's IpamDriver and
 * NetworkDriver calls (repeats, out of order, unknown ids, two networks on one subnet), plugin restarts,
 * crashes between the state write and the answer, and reconciliation passes, run against the real
 * service and a small model of the intended semantics (test/api/model/model.ts). After every step the
 * invariants of test/api/model/checks.ts must hold.
 *
 * A failure prints the seed, the replay path and the shrunk sequence. To replay or explore:
 *   MODEL_SEED=<seed> [MODEL_PATH=<path>] [MODEL_RUNS=<n>] npx mocha dist/test/api/model.test.js
 */
import fc from "fast-check";
import { commandArbitraries } from "./model/commands.js";
import { Harness } from "./model/harness.js";
import { Model } from "./model/model.js";

const RUNS = Number(process.env.MODEL_RUNS ?? 10_000);
const SEED = process.env.MODEL_SEED === undefined ? undefined : Number(process.env.MODEL_SEED);
const PATH = process.env.MODEL_PATH;
const MAX_COMMANDS = 12;

describe("model-based test of both drivers", function () {
  this.timeout(20 * 60_000);
  const real = new Harness();
  before(() => real.open());
  after(() => real.close());

  it(`${RUNS} random call sequences keep the plugin equal to the model and every invariant`, async () => {
    const started = Date.now();
    let commands = 0;
    await fc.assert(
      fc.asyncProperty(fc.commands(commandArbitraries, { maxCommands: MAX_COMMANDS }), async (sequence) => {
        await real.reset();
        commands += [...sequence].length;
        await fc.asyncModelRun(() => ({ model: new Model(), real }), sequence);
      }),
      { numRuns: RUNS, verbose: true, ...(SEED === undefined ? {} : { seed: SEED }), ...(PATH ? { path: PATH } : {}) },
    );
    console.log(
      `      model: ${RUNS} sequences, ${commands} commands in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `${real.freshStarts} resets needed a fresh start`,
    );
  });
});
