// The `npm run bench -- <name>` command: parses the benchmark name and options, checks for root, runs
// the chosen benchmarks one after another and prints the sections each wrote into docs/benchmarks.md.
import { parseArgs } from "node:util";
import { runArmBench } from "./arm.js";
import { MissingPrerequisite } from "./bench-image.js";
import { runControlBench } from "./control.js";
import { runDatapathBench } from "./datapath.js";
import { runIpamBench } from "./ipam.js";
import { BENCH_NAMES, REPORT_PATH, type BenchName } from "./report.js";
import { runScaleBench } from "./scale.js";
import { teardownOnSignals } from "./testbed.js";

const USAGE = `usage: npm run bench -- <datapath|control|scale|ipam|arm|all> [--rounds N] [--seconds N] [--pairs N]
  datapath  iperf3 throughput and ping RTT to vm2: VM, azure transparent/bridge, Docker bridge (--rounds 5, --seconds 5)
  control   docker run --rm on an azure network vs a Docker bridge network, alternating (--pairs 40)
  scale     250 containers on one VM: start time, plugin memory and CPU, pool full again (--rounds 2)
  ipam      RequestAddress/ReleaseAddress per second through the socket, durable state (--rounds 5)
  arm       32 containers on a NIC of 4 secondary IPs that the plugin grows through the ARM stand-in
  all       every one of them, in that order
Needs root (network namespaces, dockerd). Writes its tables into docs/benchmarks.md.
`;

type Options = { rounds?: number; seconds?: number; pairs?: number };

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      rounds: { type: "string" },
      seconds: { type: "string" },
      pairs: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const name = positionals[0] ?? "";
  if (
    values.help ||
    positionals.length !== 1 ||
    !(name === "all" || BENCH_NAMES.includes(name as BenchName))
  ) {
    process.stderr.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      "the benchmarks need root: they build network namespaces and run a private dockerd\n",
    );
    return 1;
  }
  const options: Options = {};
  for (const key of ["rounds", "seconds", "pairs"] as const) {
    const text = values[key];
    if (text === undefined) continue;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1 || value > 1000) {
      process.stderr.write(`--${key} must be a whole number from 1 to 1000\n${USAGE}`);
      return 2;
    }
    options[key] = value;
  }
  teardownOnSignals();
  const names: BenchName[] = name === "all" ? [...BENCH_NAMES] : [name as BenchName];
  const started = Date.now();
  for (const bench of names) {
    const benchStarted = Date.now();
    process.stderr.write(`== ${bench}\n`);
    const text = await runOne(bench, options);
    process.stdout.write(`${text}\n\n`);
    process.stderr.write(`== ${bench} took ${Math.round((Date.now() - benchStarted) / 1000)} s\n`);
  }
  process.stderr.write(
    `all done in ${Math.round((Date.now() - started) / 1000)} s; tables in ${REPORT_PATH}\n`,
  );
  return 0;
}

function runOne(bench: BenchName, options: Options): Promise<string> {
  switch (bench) {
    case "datapath":
      return runDatapathBench({ rounds: options.rounds ?? 5, seconds: options.seconds ?? 5 });
    case "control":
      return runControlBench({ pairs: options.pairs ?? 40 });
    case "scale":
      return runScaleBench({ rounds: options.rounds ?? 2 });
    case "ipam":
      return runIpamBench({ rounds: options.rounds ?? 5 });
    case "arm":
      return runArmBench();
  }
}

process.exitCode = await main().catch((error: unknown) => {
  if (error instanceof MissingPrerequisite) {
    process.stderr.write(`bench: ${error.message}\n`);
    return 1;
  }
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  return 1;
});
