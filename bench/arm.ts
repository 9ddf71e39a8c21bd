// Benchmark 5, pool growth through Azure Resource Manager: vm1's NIC starts with 4 secondary IPs and 32
// containers start one after another, so the plugin grows the NIC through the ARM stand-in (HTTPS, test
// CA, token from the IMDS stand-in). Once with growth on demand only (a container start waits for it),
// once ahead of need (a low-water mark). Measures container start times, growths, ARM requests per
// growth, and the plugin's memory before and after it loads the Azure SDKs.
import { performance } from "node:perf_hooks";
import { memoryMiB } from "./process-stats.js";
import { section, startClock, table, writeSection } from "./report.js";
import { fmt, median, quantile } from "./stats.js";
import { startBenchTestbed } from "./testbed.js";

const CONTAINERS = 32;
const INITIAL = ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"];

type Setting = { name: string; flags: string[] };
const SETTINGS: Setting[] = [
  {
    name: "on demand (`--pool-min-free 1 --pool-grow-step 1`)",
    flags: ["--pool-min-free", "1", "--pool-grow-step", "1"],
  },
  {
    name: "ahead of need (`--pool-min-free 4 --pool-grow-step 4`)",
    flags: ["--pool-min-free", "4", "--pool-grow-step", "4"],
  },
];

type Result = {
  setting: Setting;
  startMs: number[];
  growths: number;
  added: number;
  armRequests: Record<string, number>;
  rssIdle: number;
  rssAfter: number;
  peak: number;
  growthMs: number[];
};

export async function runArmBench(): Promise<string> {
  const start = await startClock();
  const results: Result[] = [];
  for (const setting of SETTINGS) results.push(await measure(setting));
  const text = section("arm", render(results), start);
  await writeSection("arm", text);
  return text;
}

function log(message: string): void {
  process.stderr.write(`[arm] ${message}\n`);
}

async function measure(setting: Setting): Promise<Result> {
  const testbed = await startBenchTestbed(
    "arm",
    [{ name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: INITIAL }],
    // Each operation ends at the second poll: the SDK polls once at once, then after the Retry-After of
    // 1 s, so a growth takes about a second, as a quick one on Azure does.
    { arm: { operationPolls: 1 }, pluginArgs: setting.flags },
  );
  try {
    const { dockerd, plugin, pluginPid } = testbed;
    const arm = testbed.arm!;
    await dockerd.createAzureNetwork("arm-net");
    const rssIdle = memoryMiB(pluginPid).current;
    log(`${setting.name}: starting ${CONTAINERS} containers one after another`);
    const startMs: number[] = [];
    for (let i = 0; i < CONTAINERS; i++) {
      const t = performance.now();
      // prettier-ignore
      await dockerd.dockerOk(["run", "-d", "--name", `arm-${i}`, "--network", "arm-net", "busybox:local", "sleep", "1000000"], { timeoutMs: 120_000 });
      startMs.push(performance.now() - t);
    }
    const status = await plugin.status();
    const growth = status.growth[0]!;
    const growthMs = plugin
      .logs()
      .filter((line) => line.msg === "pool grew")
      .map((line) => Number(line.durationMs));
    const armRequests: Record<string, number> = {};
    for (const request of arm.requests) {
      const kind = `${request.method} ${request.path.replace(/.*\/providers\/Microsoft\.Network\//, "").replace(/\/[^/]+$/, "/…")}`;
      armRequests[kind] = (armRequests[kind] ?? 0) + 1;
    }
    const rssAfter = memoryMiB(pluginPid).current;
    log(`${setting.name}: ${growthMs.length} growths, ${growth.added} addresses added`);
    return {
      setting,
      startMs,
      growths: growthMs.length,
      added: growth.added,
      armRequests,
      rssIdle,
      rssAfter,
      peak: memoryMiB(pluginPid).peak,
      growthMs,
    };
  } finally {
    await testbed.teardown();
  }
}

function render(results: Result[]): string {
  const kinds = [...new Set(results.flatMap((r) => Object.keys(r.armRequests)))].sort();
  return [
    `${CONTAINERS} containers started one after another on a NIC with ${INITIAL.length} secondary IPs. ` +
      "The ARM stand-in answers at once and ends each operation at its second poll; the SDK sends the first " +
      "at once and the second after the stand-in's Retry-After of 1 s, so a growth takes about a second " +
      "(on Azure a NIC PUT takes from seconds to a minute).",
    "",
    table(
      [
        "growth",
        "containers",
        "growths",
        "added",
        "start p50 ms",
        "start p90 ms",
        "start max ms",
        "growth p50 ms",
      ],
      results.map((r) => [
        r.setting.name,
        String(r.startMs.length),
        String(r.growths),
        String(r.added),
        fmt(median(r.startMs)),
        fmt(quantile(r.startMs, 0.9)),
        fmt(Math.max(...r.startMs)),
        r.growthMs.length ? fmt(median(r.growthMs)) : "-",
      ]),
    ),
    "",
    "ARM requests the plugin made (path after `Microsoft.Network/`, last segment elided):",
    "",
    table(
      ["request", ...results.map((r) => r.setting.name)],
      kinds.map((kind) => [`\`${kind}\``, ...results.map((r) => String(r.armRequests[kind] ?? 0))]),
    ),
    "",
    table(
      ["plugin memory (MiB)", ...results.map((r) => r.setting.name)],
      [
        ["RSS before any ARM use", ...results.map((r) => fmt(r.rssIdle))],
        ["RSS after the containers (SDKs loaded)", ...results.map((r) => fmt(r.rssAfter))],
        ["peak", ...results.map((r) => fmt(r.peak))],
      ],
    ),
  ].join("\n");
}
