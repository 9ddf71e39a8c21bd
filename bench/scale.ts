// Benchmark 3, scale: 250 containers on one VM whose NIC has 250 secondary IPs. All must start with
// distinct addresses; measures the time to start and remove them all, the plugin's peak memory and
// CPU, and checks the pool is full again; the same on a Docker bridge network is the baseline.
import { statSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { pollUntil } from "../test/helpers/run.js";
import { cpuSeconds, memoryMiB, perCallTable, requestLines, type RequestLine } from "./process-stats.js";
import { section, startClock, table, writeSection } from "./report.js";
import { fmt, median, ratio } from "./stats.js";
import { startBenchTestbed, type BenchTestbed } from "./testbed.js";

export type ScaleOptions = { rounds: number };

const COUNT = 250;
/** 10.1.0.5–10.1.0.254: exactly 250 secondaries fit the /24 next to the gateway (.1) and the primary (.4). */
const SECONDARIES = Array.from({ length: COUNT }, (_, i) => `10.1.0.${5 + i}`);
/** docker CLI processes at once, for starting and for removing. */
const CONCURRENCY = 8;

type Network = "azure" | "bridge";
type Phase = {
  network: Network;
  started: number;
  failures: string[];
  distinct: number;
  inPool: number;
  startSeconds: number;
  removeSeconds: number;
  /** Azure only: from the last `docker rm` returning until the plugin reported the pool full again. */
  settleSeconds: number;
  poolFull: boolean;
  pluginCpuStart: number;
  pluginCpuRemove: number;
  pluginRssAfterStart: number;
  /** Azure only: the plugin's state file with every container running. */
  stateBytes: number;
  pluginPeak: number;
  lines: RequestLine[];
};

export async function runScaleBench(options: ScaleOptions): Promise<string> {
  const start = await startClock();
  const testbed = await startBenchTestbed("scale", [
    { name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: SECONDARIES },
  ]);
  try {
    const { dockerd } = testbed;
    // prettier-ignore
    await dockerd.dockerOk(["network", "create", "-d", "azure", "--ipam-driver", "azure", "--subnet", "10.1.0.0/24", "sc-azure"]);
    await dockerd.dockerOk(["network", "create", "-d", "bridge", "sc-bridge"]);
    const idle = memoryMiB(testbed.pluginPid);
    const phases: Phase[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const order: Network[] = round % 2 === 0 ? ["azure", "bridge"] : ["bridge", "azure"];
      for (const network of order) phases.push(await phase(testbed, network));
    }
    // Not part of the measurement; Docker's bridge driver sometimes still counts a removed endpoint.
    await dockerd.docker(["network", "rm", "sc-azure", "sc-bridge"]);
    const body = render(phases, idle.current, memoryMiB(testbed.pluginPid).peak, options);
    const text = section("scale", body, start);
    await writeSection("scale", text);
    return text;
  } finally {
    await testbed.teardown();
  }
}

function log(message: string): void {
  process.stderr.write(`[scale] ${message}\n`);
}

/** Runs `task` for every item with `CONCURRENCY` at a time. */
async function pool<T>(items: readonly T[], task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

async function phase(testbed: BenchTestbed, network: Network): Promise<Phase> {
  const { dockerd, plugin, pluginPid } = testbed;
  const names = Array.from({ length: COUNT }, (_, i) => `sc-${network}-${i}`);
  const failures: string[] = [];
  const logsBefore = plugin.logs().length;
  const cpu0 = cpuSeconds(pluginPid);

  log(`${network}: starting ${COUNT} containers, ${CONCURRENCY} at a time`);
  let started = 0;
  const t0 = performance.now();
  await pool(names, async (name) => {
    // prettier-ignore
    const result = await dockerd.docker(["run", "-d", "--name", name, "--network", `sc-${network}`, "busybox:local", "sleep", "1000000"], { timeoutMs: 180_000 });
    if (result.code === 0) started += 1;
    else failures.push(`${name}: ${result.stderr.trim().split("\n").at(-1) ?? ""}`);
  });
  const startSeconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(pluginPid);
  const rssAfterStart = memoryMiB(pluginPid).current;
  const stateBytes = network === "azure" ? statSync(`${plugin.stateDir}/state.json`).size : 0;
  log(`${network}: ${started} of ${COUNT} started in ${fmt(startSeconds)} s`);

  const inspect = await dockerd.dockerOk(
    ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", ...names],
    { timeoutMs: 120_000 },
  );
  const addresses = inspect.stdout.split("\n").filter((a) => a !== "");
  const distinct = new Set(addresses).size;
  const inPool = addresses.filter((a) => SECONDARIES.includes(a)).length;
  const pluginInUse = network === "azure" ? (await plugin.status()).pool[0]!.inUse.length : 0;
  if (network === "azure") log(`azure: ${distinct} distinct addresses, plugin reports ${pluginInUse} in use`);

  log(`${network}: removing them`);
  const batches: string[][] = [];
  for (let i = 0; i < names.length; i += 10) batches.push(names.slice(i, i + 10));
  const t1 = performance.now();
  await pool(batches, async (batch) => {
    const result = await dockerd.docker(["rm", "-f", ...batch], { timeoutMs: 180_000 });
    if (result.code !== 0) failures.push(`rm: ${result.stderr.trim().split("\n").at(-1) ?? ""}`);
  });
  const removeSeconds = (performance.now() - t1) / 1000;
  let settleSeconds = 0;
  let poolFull = true;
  if (network === "azure") {
    const t2 = performance.now();
    poolFull = await pollUntil(
      "the plugin's pool to be full again",
      async () => {
        const status = await plugin.status();
        const nic = status.pool[0]!;
        return nic.inUse.length === 0 && nic.free.length === COUNT && status.endpoints.length === 0;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    ).catch(() => false);
    settleSeconds = (performance.now() - t2) / 1000;
  }
  const cpu2 = cpuSeconds(pluginPid);
  log(
    `${network}: removed in ${fmt(removeSeconds)} s${network === "azure" ? `, pool full again: ${poolFull}` : ""}`,
  );
  return {
    network,
    started,
    failures,
    distinct,
    inPool,
    startSeconds,
    removeSeconds,
    settleSeconds,
    poolFull,
    pluginCpuStart: cpu1 - cpu0,
    pluginCpuRemove: cpu2 - cpu1,
    pluginRssAfterStart: rssAfterStart,
    stateBytes,
    pluginPeak: memoryMiB(pluginPid).peak,
    lines: requestLines(plugin.logs().slice(logsBefore)),
  };
}

/** p50 of one call over the first and the last 50 containers, to show whether cost grows with their number. */
function growth(lines: RequestLine[], call: string): string {
  const times = lines.filter((l) => l.call === call).map((l) => l.durationMs);
  if (times.length < 100) return "–";
  return `${fmt(median(times.slice(0, 50)))} → ${fmt(median(times.slice(-50)))}`;
}

function render(phases: Phase[], idleRss: number, peak: number, options: ScaleOptions): string {
  const azure = phases.filter((p) => p.network === "azure");
  const bridge = phases.filter((p) => p.network === "bridge");
  const med = (ps: Phase[], f: (p: Phase) => number) => median(ps.map(f));
  const startRatio = med(azure, (p) => p.startSeconds) / med(bridge, (p) => p.startSeconds);
  const removeRatio = med(azure, (p) => p.removeSeconds) / med(bridge, (p) => p.removeSeconds);
  const allStarted = azure.every((p) => p.started === COUNT && p.distinct === COUNT && p.inPool === COUNT);
  const allFull = azure.every((p) => p.poolFull);
  const spread = (ps: Phase[], f: (p: Phase) => number) =>
    ps.length > 1 ? `${fmt(Math.min(...ps.map(f)))}–${fmt(Math.max(...ps.map(f)))}` : "one run";
  const lines = azure.flatMap((p) => p.lines);
  const failures = phases.flatMap((p) => p.failures.map((f) => `${p.network}: ${f}`));
  return [
    `${COUNT} containers (\`docker run -d … busybox:local sleep\`), ${CONCURRENCY} docker CLIs at a time, on an azure ` +
      `network (transparent, vm1's NIC has ${COUNT} secondary IPs 10.1.0.5–10.1.0.254) and on a user-defined Docker ` +
      `bridge network (the baseline); then \`docker rm -f\` of all, 10 per CLI, ${CONCURRENCY} at a time. ` +
      `${options.rounds} round(s), alternating which network goes first (${phases.map((p) => p.network).join(", ")}).`,
    "",
    table(
      ["quantity", "azure", "Docker bridge", "azure ÷ bridge", "target"],
      [
        [
          "containers started, distinct addresses, addresses from the NIC's pool",
          azure.map((p) => `${p.started}, ${p.distinct}, ${p.inPool}`).join("; "),
          bridge.map((p) => `${p.started}, ${p.distinct}`).join("; "),
          "",
          `${COUNT} of ${COUNT}: ${allStarted ? "met" : "missed"}`,
        ],
        [
          `time to start all ${COUNT}, s (median; spread)`,
          `${fmt(med(azure, (p) => p.startSeconds))} (${spread(azure, (p) => p.startSeconds)})`,
          `${fmt(med(bridge, (p) => p.startSeconds))} (${spread(bridge, (p) => p.startSeconds)})`,
          ratio(startRatio),
          "",
        ],
        [
          `time to remove all ${COUNT}, s (median; spread)`,
          `${fmt(med(azure, (p) => p.removeSeconds))} (${spread(azure, (p) => p.removeSeconds)})`,
          `${fmt(med(bridge, (p) => p.removeSeconds))} (${spread(bridge, (p) => p.removeSeconds)})`,
          ratio(removeRatio),
          "",
        ],
        [
          "pool full again after removal (plugin's /status: 250 free, 0 in use, 0 endpoints); wait after the last rm, s",
          azure.map((p) => `${p.poolFull ? "yes" : "NO"}, ${p.settleSeconds.toFixed(1)}`).join("; "),
          "",
          "",
          allFull ? "met" : "missed",
        ],
        [
          "plugin memory: idle RSS → RSS with 250 running → peak (VmHWM), MiB",
          `${fmt(idleRss)} → ${azure.map((p) => fmt(p.pluginRssAfterStart)).join(", ")} → ${fmt(peak)}`,
          "",
          "",
          `< 100 MiB: ${peak < 100 ? "met" : "missed"}`,
        ],
        [
          `plugin state file with ${COUNT} containers running, KiB (rewritten whole on every change)`,
          azure.map((p) => fmt(p.stateBytes / 1024)).join(", "),
          "",
          "",
          "",
        ],
        [
          "plugin CPU (utime + stime), s: while starting 250; while removing 250",
          azure.map((p) => `${fmt(p.pluginCpuStart)}; ${fmt(p.pluginCpuRemove)}`).join(" / "),
          bridge.map((p) => `${fmt(p.pluginCpuStart)}; ${fmt(p.pluginCpuRemove)}`).join(" / ") +
            " (idle plugin)",
          "",
          "",
        ],
        [
          "plugin p50 ms, first 50 → last 50 calls (includes waiting in the plugin's queue): RequestAddress; Join; Leave",
          ["IpamDriver.RequestAddress", "NetworkDriver.Join", "NetworkDriver.Leave"]
            .map((call) => growth(lines, call))
            .join("; "),
          "",
          "",
          "",
        ],
      ],
    ),
    "",
    "The plugin's own time per call during the azure phase(s), with up to 250 endpoints (and 8 requests) at once:",
    "",
    perCallTable(lines),
    ...(failures.length > 0 ? ["", "Failures:", "", ...failures.slice(0, 20).map((f) => `- ${f}`)] : []),
  ].join("\n");
}
