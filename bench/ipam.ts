// Benchmark 4, IPAM throughput: the plugin as its own process on a temporary socket, in a network
// namespace of its own, with a pool file of 250 addresses; RequestAddress and ReleaseAddress per second,
// one at a time and 16 at a time, against a request that writes nothing and the bare durable write.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { killPid, pollUntil, run, runOk } from "../test/helpers/run.js";
import { durableWriteCost, post } from "./micro.js";
import { cpuSeconds, memoryMiB, nodePid } from "./process-stats.js";
import { section, startClock, table, writeSection } from "./report.js";
import { fmt, median, quantile, range, ratio } from "./stats.js";
import { PLUGIN_NODE_FLAGS } from "../test/helpers/azure-vm.js";

export type IpamOptions = { rounds: number };

const PLUGIN_MAIN = fileURLToPath(new URL("../plugin/main.js", import.meta.url));
const COUNT = 250;
const ADDRESSES = Array.from({ length: COUNT }, (_, i) => `10.1.0.${5 + i}`);
const CONCURRENCY = 16;
const NIC_MAC = "00:0d:3a:00:00:01";

type Workload = "sequential" | "concurrent" | "noop" | "durable-write";
/** One batch of 250 operations. */
type Batch = { perSecond: number; latencies: number[] };
type Result = Record<"alloc" | "release", Batch[]>;

export async function runIpamBench(options: IpamOptions): Promise<string> {
  const start = await startClock();
  const dir = await mkdtemp(join(tmpdir(), "azure-vnet-bench-ipam-"));
  const ns = `avnbench${randomBytes(3).toString("hex")}-ipam`;
  let child: ChildProcess | undefined;
  try {
    await runOk("ip", ["netns", "add", ns]);
    // The pool file names eth0 by MAC; one end of a veth pair inside the namespace stands in for the NIC.
    // prettier-ignore
    await runOk("ip", ["-n", ns, "link", "add", "eth0", "address", NIC_MAC, "type", "veth", "peer", "name", "peer0"]);
    await runOk("ip", ["-n", ns, "link", "set", "peer0", "up"]);
    await runOk("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    await runOk("ip", ["-n", ns, "addr", "add", "10.1.0.4/24", "dev", "eth0"]);
    await runOk("ip", ["-n", ns, "route", "add", "default", "via", "10.1.0.1", "dev", "eth0"]);
    const poolFile = join(dir, "pool.json");
    const pool = {
      interfaces: [
        {
          macAddress: NIC_MAC,
          primary: true,
          subnets: [{ prefix: "10.1.0.0/24", primaryAddress: "10.1.0.4", secondaryAddresses: ADDRESSES }],
        },
      ],
    };
    await writeFile(poolFile, JSON.stringify(pool));
    const socketPath = join(dir, "azure.sock");
    const stateDir = join(dir, "state");
    const logFile = join(dir, "plugin.log");
    const out = openSync(logFile, "a");
    // prettier-ignore
    child = spawn("ip", [
      "netns", "exec", ns, process.execPath, ...PLUGIN_NODE_FLAGS, PLUGIN_MAIN,
      "--socket", socketPath, "--state-dir", stateDir, "--pool-source", "file", "--pool-file", poolFile,
      "--reconcile-interval", "0", "--log-level", "info",
    ], { stdio: ["ignore", out, out] });
    closeSync(out);
    const plugin = child;
    await pollUntil(
      "the plugin to answer on its socket",
      async () => {
        if (plugin.exitCode !== null) throw new Error(`the plugin exited: ${readFileSync(logFile, "utf8")}`);
        return (
          (await post(socketPath, "/IpamDriver.GetCapabilities", {}).catch(() => undefined))?.status === 200
        );
      },
      { timeoutMs: 20_000 },
    );
    const pid = nodePid(plugin.pid!);
    const idle = memoryMiB(pid).current;
    const body = await measure(socketPath, stateDir, pid, idle, options);
    const text = section("ipam", body, start);
    await writeSection("ipam", text);
    return text;
  } finally {
    if (child?.pid !== undefined) await killPid(child.pid);
    await run("ip", ["netns", "delete", ns]);
    await rm(dir, { recursive: true, force: true });
  }
}

function log(message: string): void {
  process.stderr.write(`[ipam] ${message}\n`);
}

/** Runs `ops` with at most `concurrency` in flight; the batch's rate and each op's latency in ms. */
async function batch(ops: (() => Promise<void>)[], concurrency: number): Promise<Batch> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < ops.length) {
      const op = ops[next++]!;
      const t = performance.now();
      await op();
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { perSecond: (ops.length * 1000) / (performance.now() - started), latencies };
}

async function measure(
  socketPath: string,
  stateDir: string,
  pid: number,
  idleMiB: number,
  options: IpamOptions,
): Promise<string> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const call = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const answer = await post(socketPath, path, body, agent);
    if (answer.status !== 200)
      throw new Error(`${path} answered ${answer.status}: ${JSON.stringify(answer.json)}`);
    return answer.json;
  };
  const { PoolID } = (await call("/IpamDriver.RequestPool", { AddressSpace: "", Pool: "10.1.0.0/24" })) as {
    PoolID: string;
  };
  const results: Record<Workload, Result> = {
    sequential: { alloc: [], release: [] },
    concurrent: { alloc: [], release: [] },
    noop: { alloc: [], release: [] },
    "durable-write": { alloc: [], release: [] },
  };
  const cpu: Record<"sequential" | "concurrent", number[]> = { sequential: [], concurrent: [] };
  const held: string[] = [];
  const fill = async (concurrency: number): Promise<Batch> => {
    held.length = 0;
    const ops = ADDRESSES.map(() => async () => {
      const { Address } = (await call("/IpamDriver.RequestAddress", { PoolID })) as { Address: string };
      held.push(Address.split("/")[0]!);
    });
    const result = await batch(ops, concurrency);
    if (new Set(held).size !== COUNT)
      throw new Error(`got ${new Set(held).size} distinct addresses of ${COUNT}`);
    return result;
  };
  const empty = (concurrency: number): Promise<Batch> =>
    batch(
      [...held].map((address) => async () => {
        await call("/IpamDriver.ReleaseAddress", { PoolID, Address: address });
      }),
      concurrency,
    );
  const stateBytes = () => readFileSync(join(stateDir, "state.json")).length;
  const workloads: Record<Workload, () => Promise<void>> = {
    sequential: async () => {
      const c0 = cpuSeconds(pid);
      results.sequential.alloc.push(await fill(1));
      results.sequential.release.push(await empty(1));
      cpu.sequential.push(cpuSeconds(pid) - c0);
    },
    concurrent: async () => {
      const c0 = cpuSeconds(pid);
      results.concurrent.alloc.push(await fill(CONCURRENCY));
      results.concurrent.release.push(await empty(CONCURRENCY));
      cpu.concurrent.push(cpuSeconds(pid) - c0);
    },
    noop: async () => {
      const ops = ADDRESSES.map(() => async () => void (await call("/IpamDriver.GetCapabilities", {})));
      results.noop.alloc.push(await batch(ops, 1));
      results.noop.release.push(await batch(ops, CONCURRENCY));
    },
    "durable-write": async () => {
      // The floor of a durable change: the plugin's own write of a state file as big as the full one.
      const cost = await durableWriteCost(stateDir, fullStateBytes, COUNT);
      results["durable-write"].alloc.push({ perSecond: 1000 / cost.median, latencies: [cost.median] });
    },
  };
  // Warm-up, and the size of the state file with the pool full (for the durable-write floor).
  await fill(1);
  let fullStateBytes = stateBytes();
  await empty(1);
  const order: Workload[] = ["sequential", "concurrent", "noop", "durable-write"];
  for (let round = 0; round < options.rounds; round++) {
    const shift = round % order.length;
    for (const workload of [...order.slice(shift), ...order.slice(0, shift)]) await workloads[workload]();
    log(`round ${round + 1} of ${options.rounds} done`);
  }
  fullStateBytes = Math.max(fullStateBytes, stateBytes());
  const status = (await new Promise<Record<string, unknown>>((resolve, reject) => {
    http
      .get({ socketPath, path: "/status" }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve(JSON.parse(text) as Record<string, unknown>));
      })
      .on("error", reject);
  })) as { pool: { free: string[]; inUse: string[] }[] };
  agent.destroy();
  const memory = memoryMiB(pid);
  return render(results, cpu, {
    free: status.pool[0]!.free.length,
    inUse: status.pool[0]!.inUse.length,
    idleMiB,
    peakMiB: memory.peak,
    fullStateBytes,
    options,
  });
}

function render(
  results: Record<Workload, Result>,
  cpu: Record<"sequential" | "concurrent", number[]>,
  info: {
    free: number;
    inUse: number;
    idleMiB: number;
    peakMiB: number;
    fullStateBytes: number;
    options: IpamOptions;
  },
): string {
  const floor = median(results["durable-write"].alloc.map((b) => b.perSecond));
  const row = (label: string, batches: Batch[], concurrency: number, withRatio = true) => {
    const rates = batches.map((b) => b.perSecond);
    const lat = batches.flatMap((b) => b.latencies);
    return [
      label,
      String(concurrency),
      fmt(median(rates)),
      range(Math.min(...rates), Math.max(...rates)),
      withRatio ? ratio(median(rates) / floor) : "",
      fmt(median(lat)),
      fmt(quantile(lat, 0.99)),
    ];
  };
  const cpuPerOp = (values: number[]) => fmt((median(values) / (2 * COUNT)) * 1000);
  return [
    `The plugin (\`node --max-semi-space-size=2 --lite-mode dist/plugin/main.js --pool-source file\`, log level info) in a network namespace of its ` +
      `own with a veth as eth0, state in a temp folder on the machine's disk (${tmpdir()}), one pool of ${COUNT} ` +
      `addresses. ${info.options.rounds} rounds; each round runs every workload once, in an order rotated from ` +
      `round to round: ${COUNT} RequestAddress (the pool fills up, all distinct) then ${COUNT} ReleaseAddress, one ` +
      `at a time and ${CONCURRENCY} at a time (HTTP keep-alive, as dockerd); ${COUNT} \`GetCapabilities\` (a ` +
      "request that changes nothing); and the plugin's own `writeAtomically` of a state file as large as the full " +
      `one (${info.fullStateBytes} bytes), the floor of any durable change on this disk. Ratio: operations per ` +
      "second ÷ durable writes per second.",
    "",
    table(
      [
        "operation",
        "in flight",
        "ops/s median",
        "ops/s min–max",
        "÷ durable writes/s",
        "latency p50 ms",
        "p99 ms",
      ],
      [
        row("RequestAddress", results.sequential.alloc, 1),
        row("ReleaseAddress", results.sequential.release, 1),
        row("RequestAddress", results.concurrent.alloc, CONCURRENCY),
        row("ReleaseAddress", results.concurrent.release, CONCURRENCY),
        row("GetCapabilities (no state change)", results.noop.alloc, 1, false),
        row("GetCapabilities (no state change)", results.noop.release, CONCURRENCY, false),
        [
          "durable write alone (`writeAtomically`, fsync + rename + directory fsync)",
          "1",
          fmt(floor),
          range(
            Math.min(...results["durable-write"].alloc.map((b) => b.perSecond)),
            Math.max(...results["durable-write"].alloc.map((b) => b.perSecond)),
          ),
          "1.00",
          fmt(median(results["durable-write"].alloc.map((b) => b.latencies[0]!))),
          "",
        ],
      ],
    ),
    "",
    `Plugin CPU per operation: ${cpuPerOp(cpu.sequential)} ms one at a time, ${cpuPerOp(cpu.concurrent)} ms ` +
      `${CONCURRENCY} at a time. Memory: ${fmt(info.idleMiB)} MiB resident when idle, peak (VmHWM) ${fmt(info.peakMiB)} MiB. At the end the pool has ` +
      `${info.free} free and ${info.inUse} in use (expected ${COUNT} and 0).`,
  ].join("\n");
}
