// Benchmark 2, the control plane: wall time of `docker run --rm busybox:local true` on an azure network
// against a user-defined Docker bridge network, in alternating pairs, and the plugin's own time per call.
import { statSync } from "node:fs";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { durableWriteCost, ipSpawnCost, roundTripCost } from "./micro.js";
import { perCallTable, requestLines, type RequestLine } from "./process-stats.js";
import { section, startClock, table, writeSection } from "./report.js";
import { fmt, median, quantile, range, ratio, summarize } from "./stats.js";
import { startBenchTestbed, type BenchTestbed } from "./testbed.js";

export type ControlOptions = { pairs: number };

const SECONDARIES = Array.from({ length: 16 }, (_, i) => `10.1.0.${5 + i}`);
const WARM_UP_RUNS = 3;

type Run = { network: "azure" | "bridge"; ms: number; start: number; end: number };

export async function runControlBench(options: ControlOptions): Promise<string> {
  const start = await startClock();
  const testbed = await startBenchTestbed("control", [
    { name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: SECONDARIES },
  ]);
  try {
    const body = await measure(testbed, options);
    const text = section("control", body, start);
    await writeSection("control", text);
    return text;
  } finally {
    await testbed.teardown();
  }
}

function log(message: string): void {
  process.stderr.write(`[control] ${message}\n`);
}

async function measure(testbed: BenchTestbed, options: ControlOptions): Promise<string> {
  const { dockerd, plugin } = testbed;
  const dockerOk = (...args: string[]) => dockerd.dockerOk(args, { timeoutMs: 120_000 });
  // prettier-ignore
  await dockerOk("network", "create", "-d", "azure", "--ipam-driver", "azure", "--subnet", "10.1.0.0/24", "cp-azure");
  await dockerOk("network", "create", "-d", "bridge", "cp-bridge");
  const once = async (network: Run["network"]): Promise<Run> => {
    const start = Date.now();
    const started = performance.now();
    await dockerOk("run", "--rm", "--network", `cp-${network}`, "busybox:local", "true");
    return { network, ms: performance.now() - started, start, end: Date.now() };
  };
  log(`${WARM_UP_RUNS} warm-up runs on each network`);
  for (let i = 0; i < WARM_UP_RUNS; i++) {
    await once("azure");
    await once("bridge");
  }
  const logsBefore = plugin.logs().length;
  const runs: Run[] = [];
  for (let pair = 0; pair < options.pairs; pair++) {
    const order: Run["network"][] = pair % 2 === 0 ? ["azure", "bridge"] : ["bridge", "azure"];
    for (const network of order) runs.push(await once(network));
    if ((pair + 1) % 10 === 0) log(`${pair + 1} of ${options.pairs} pairs`);
  }
  const lines = requestLines(plugin.logs().slice(logsBefore));

  log("measuring what one ip spawn, one durable state write and one request round trip cost");
  const stateBytes = statSync(`${plugin.stateDir}/state.json`).size;
  const ipCost = await ipSpawnCost();
  const writeCost = await durableWriteCost(dirname(plugin.stateDir), stateBytes);
  const roundTrip = await roundTripCost(plugin.socketPath);
  await dockerOk("network", "rm", "cp-azure", "cp-bridge");
  return render(runs, lines, { ipCost, writeCost, roundTrip, stateBytes }, options);
}

type Micro = {
  ipCost: ReturnType<typeof summarize>;
  writeCost: ReturnType<typeof summarize>;
  roundTrip: ReturnType<typeof summarize>;
  stateBytes: number;
};

function render(runs: Run[], lines: RequestLine[], micro: Micro, options: ControlOptions): string {
  const azure = runs.filter((r) => r.network === "azure");
  const bridge = runs.filter((r) => r.network === "bridge");
  const pairRatios = azure.map((a, i) => a.ms / bridge[i]!.ms);
  const pairDiffs = azure.map((a, i) => a.ms - bridge[i]!.ms);
  const headline = median(pairRatios);
  // The plugin's time inside each azure run: its request lines logged while that run was going on.
  const pluginPerRun = azure.map((run) =>
    lines
      .filter((l) => l.time >= run.start - 1 && l.time <= run.end + 1)
      .reduce((sum, l) => sum + l.durationMs, 0),
  );
  const callsPerRun = lines.length / azure.length;
  const row = (name: string, values: number[], ratioText: string, target: string) => {
    const s = summarize(values);
    return [name, String(s.n), fmt(s.median), range(s.p10, s.p90), range(s.min, s.max), ratioText, target];
  };
  return [
    `${options.pairs} pairs after ${WARM_UP_RUNS} warm-up runs on each network; the order inside a pair alternates ` +
      "(azure first, then bridge first). Wall time of the docker CLI from spawn to exit. The azure network is " +
      "`-d azure --ipam-driver azure --subnet 10.1.0.0/24` (transparent mode); the baseline is " +
      "`docker network create -d bridge`. Ratio: median of the per-pair ratios azure ÷ bridge.",
    "",
    table(
      ["network", "n", "median ms", "p10–p90 ms", "min–max ms", "ratio to bridge", "target ≤ 1.05"],
      [
        row(
          "Docker bridge (baseline)",
          bridge.map((r) => r.ms),
          "1.00",
          "",
        ),
        row(
          "azure (transparent)",
          azure.map((r) => r.ms),
          ratio(headline),
          headline <= 1.05 ? "met" : "missed",
        ),
      ],
    ),
    "",
    `The plugin's own time per call during the measured runs (its request log, \`durationMs\`: from the ` +
      `request's arrival in express to the answer), ${fmt(callsPerRun, 2)} calls per container:`,
    "",
    perCallTable(lines),
    "",
    "Where the extra time goes:",
    "",
    table(
      ["quantity", "median", "p10–p90"],
      [
        [
          "azure − bridge, per pair (ms)",
          fmt(median(pairDiffs)),
          range(quantile(pairDiffs, 0.1), quantile(pairDiffs, 0.9)),
        ],
        [
          "plugin time per container, sum of its calls' `durationMs` (ms)",
          fmt(median(pluginPerRun)),
          range(quantile(pluginPerRun, 0.1), quantile(pluginPerRun, 0.9)),
        ],
        [
          "one `ip` spawn from node, `execFile` (ms)",
          fmt(micro.ipCost.median),
          range(micro.ipCost.p10, micro.ipCost.p90),
        ],
        [
          `one durable state write, the plugin's \`writeAtomically\` of ${micro.stateBytes} bytes (ms)`,
          fmt(micro.writeCost.median),
          range(micro.writeCost.p10, micro.writeCost.p90),
        ],
        [
          "one request round trip over the socket, `GetCapabilities`, keep-alive (ms)",
          fmt(micro.roundTrip.median),
          range(micro.roundTrip.p10, micro.roundTrip.p90),
        ],
      ],
    ),
  ].join("\n");
}
