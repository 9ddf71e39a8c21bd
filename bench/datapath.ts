// Benchmark 1, the data path: TCP throughput (iperf3) and round-trip time (ping) from vm1 to vm2 for
// the VM itself, containers on azure networks in both modes, and a container on Docker's default bridge.
import { run, runOk, pollUntil, type RunResult } from "../test/helpers/run.js";
import type { Vnet } from "../test/helpers/vnet.js";
import { BENCH_IMAGE, IPERF3, importBenchImage, requireIperf3 } from "./bench-image.js";
import { section, startClock, table, writeSection } from "./report.js";
import { fmt, median, quantile, range, ratio } from "./stats.js";
import { startBenchTestbed, type BenchTestbed } from "./testbed.js";

const VM2_IP = "10.1.0.200";
/** Outside the azure networks' --ip-range, so the hand-made reference path can use it. */
const REFERENCE_IP = "10.1.0.5";
const SECONDARIES = Array.from({ length: 16 }, (_, i) => `10.1.0.${5 + i}`);
const IP_RANGE = "10.1.0.8/29";
const PINGS_PER_ROUND = 100;
const PING_INTERVAL_S = "0.01";

export type DatapathOptions = { rounds: number; seconds: number };

type Config = "vm" | "reference" | "transparent" | "docker-bridge" | "bridge" | "vm-bridged";

const LABELS: Record<Config, string> = {
  vm: "VM itself (baseline)",
  reference: "hand-made routed veth, no plugin (reference)",
  transparent: "azure network, transparent mode",
  bridge: "azure network, bridge mode",
  "docker-bridge": "Docker default bridge (NAT)",
  "vm-bridged": "VM itself while its NIC is in an azure bridge",
};

/** Runs a command (argv[0] is the program) at one place of the test: the VM, a container, a namespace. */
type Runner = (argv: string[]) => Promise<RunResult>;

type Samples = { gbps: number[]; rttMs: number[][] };

export async function runDatapathBench(options: DatapathOptions): Promise<string> {
  requireIperf3();
  const start = startClock();
  const testbed = await startBenchTestbed("datapath", [
    { name: "vm1", mac: "00:0d:3a:00:00:01", primary: "10.1.0.4", secondaries: SECONDARIES },
    { name: "vm2", mac: "00:0d:3a:00:00:02", primary: VM2_IP },
  ]);
  try {
    const samples = await measure(testbed, options);
    const body = render(samples, options);
    const text = section("datapath", body, start);
    await writeSection("datapath", text);
    return text;
  } finally {
    await testbed.teardown();
  }
}

async function measure(testbed: BenchTestbed, options: DatapathOptions): Promise<Map<Config, Samples>> {
  const { vnet, dockerd } = testbed;
  const dockerOk = (...args: string[]) => dockerd.dockerOk(args, { timeoutMs: 120_000 });
  log("importing the bench image (busybox + iperf3)");
  await importBenchImage(dockerd);
  await startIperfServer(vnet);
  const referenceNs = await startReferencePath(vnet);

  const inVm: Runner = (argv) => vnet.exec("vm1", argv, { timeoutMs: 120_000 });
  const inNs: Runner = (argv) => run("ip", ["netns", "exec", referenceNs, ...argv], { timeoutMs: 120_000 });
  const inContainer =
    (name: string): Runner =>
    (argv) =>
      dockerd.docker(["exec", name, ...argv], { timeoutMs: 120_000 });

  await dockerOk("run", "-d", "--name", "dp-docker", BENCH_IMAGE, "sleep", "1000000");
  const samples = new Map<Config, Samples>();
  const record = async (config: Config, runner: Runner) => {
    const entry = samples.get(config) ?? { gbps: [], rttMs: [] };
    samples.set(config, entry);
    entry.gbps.push(await throughputGbps(runner, options.seconds));
    entry.rttMs.push(await pings(runner, PINGS_PER_ROUND));
    log(
      `  ${LABELS[config]}: ${fmt(entry.gbps.at(-1)!)} Gbit/s, RTT ${fmt(median(entry.rttMs.at(-1)!) * 1000)} µs`,
    );
  };
  const warmUp = async (runner: Runner) => {
    await pings(runner, 3);
  };
  await warmUp(inVm);
  await warmUp(inNs);
  await warmUp(inContainer("dp-docker"));

  for (let round = 0; round < options.rounds; round++) {
    log(`round ${round + 1} of ${options.rounds}: transparent phase`);
    await dockerOk(...azureNetwork("transparent", "dp-transparent"));
    await dockerOk(
      "run",
      "-d",
      "--name",
      "dp-t",
      "--network",
      "dp-transparent",
      BENCH_IMAGE,
      "sleep",
      "1000000",
    );
    await warmUp(inContainer("dp-t"));
    const phase1: [Config, Runner][] = [
      ["vm", inVm],
      ["reference", inNs],
      ["transparent", inContainer("dp-t")],
      ["docker-bridge", inContainer("dp-docker")],
    ];
    for (const [config, runner] of rotate(phase1, round)) await record(config, runner);
    await dockerOk("rm", "-f", "dp-t");
    await dockerOk("network", "rm", "dp-transparent");

    log(`round ${round + 1} of ${options.rounds}: bridge phase`);
    await dockerOk(...azureNetwork("bridge", "dp-bridge"));
    await dockerOk("run", "-d", "--name", "dp-b", "--network", "dp-bridge", BENCH_IMAGE, "sleep", "1000000");
    await warmUp(inContainer("dp-b"));
    const phase2: [Config, Runner][] = [
      ["vm-bridged", inVm],
      ["bridge", inContainer("dp-b")],
    ];
    for (const [config, runner] of rotate(phase2, round)) await record(config, runner);
    await dockerOk("rm", "-f", "dp-b");
    await dockerOk("network", "rm", "dp-bridge");
  }
  await dockerOk("rm", "-f", "dp-docker");
  return samples;
}

function azureNetwork(mode: "transparent" | "bridge", name: string): string[] {
  // prettier-ignore
  return [
    "network", "create", "-d", "azure", "--ipam-driver", "azure", "-o", `mode=${mode}`,
    "--subnet", "10.1.0.0/24", "--ip-range", IP_RANGE, name,
  ];
}

/** `items` rotated left by `by`, so every configuration takes every position across rounds. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

function log(message: string): void {
  process.stderr.write(`[datapath] ${message}\n`);
}

async function startIperfServer(vnet: Vnet): Promise<void> {
  vnet.spawnIn("vm2", [IPERF3, "-s", "-B", VM2_IP], { stdio: "ignore" });
  await pollUntil(
    "iperf3 to listen in vm2",
    async () => (await vnet.exec("vm2", ["ss", "-Hltn", "sport", "=", ":5201"])).stdout.includes("5201"),
    { timeoutMs: 10_000 },
  );
}

/**
 * The least a routed container path can be: a namespace behind a veth, a /32 route and proxy ARP on
 * the host end, and two FORWARD accepts past Docker's DROP policy. No plugin involved.
 */
async function startReferencePath(vnet: Vnet): Promise<string> {
  const ns = `${vnet.prefix}-bref`;
  const vm1 = vnet.nsName("vm1");
  await runOk("ip", ["netns", "add", ns]);
  vnet.onTeardown(async () => {
    await run("ip", ["netns", "delete", ns]);
  });
  // prettier-ignore
  await runOk("ip", ["-n", vm1, "link", "add", "bref0", "type", "veth", "peer", "name", "eth0", "netns", ns]);
  await runOk("ip", ["-n", ns, "link", "set", "lo", "up"]);
  await runOk("ip", ["-n", ns, "addr", "add", `${REFERENCE_IP}/24`, "dev", "eth0"]);
  await runOk("ip", ["-n", ns, "link", "set", "eth0", "up"]);
  await runOk("ip", ["-n", ns, "route", "add", "default", "via", vnet.gateway, "dev", "eth0"]);
  await runOk("ip", ["-n", vm1, "link", "set", "bref0", "up"]);
  await vnet.execOk("vm1", [
    "sysctl",
    "-q",
    "-w",
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.bref0.proxy_arp=1",
    "net.ipv4.neigh.bref0.proxy_delay=0",
  ]);
  await runOk("ip", ["-n", vm1, "route", "add", `${REFERENCE_IP}/32`, "dev", "bref0"]);
  await vnet.execOk("vm1", ["iptables", "-w", "-I", "FORWARD", "1", "-i", "bref0", "-j", "ACCEPT"]);
  await vnet.execOk("vm1", ["iptables", "-w", "-I", "FORWARD", "1", "-o", "bref0", "-j", "ACCEPT"]);
  return ns;
}

async function throughputGbps(runner: Runner, seconds: number): Promise<number> {
  let last = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    // -O 1 leaves TCP's slow start out of the result.
    const result = await runner([IPERF3, "-c", VM2_IP, "-t", String(seconds), "-O", "1", "-J"]);
    if (result.code === 0) {
      const report = JSON.parse(result.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
      const bps = report.end?.sum_received?.bits_per_second;
      if (typeof bps === "number") return bps / 1e9;
    }
    last = (result.stdout + result.stderr).slice(-400);
    // The server takes a moment to be ready for the next test ("the server is busy").
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`iperf3 failed 5 times: ${last}`);
}

/** Round-trip times in ms of `count` pings (busybox ping, the same binary on the VM and in containers). */
async function pings(runner: Runner, count: number): Promise<number[]> {
  const result = await runner(["busybox", "ping", "-c", String(count), "-i", PING_INTERVAL_S, VM2_IP]);
  const times = [...result.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (times.length < count) {
    throw new Error(
      `ping got ${times.length} of ${count} replies: ${(result.stdout + result.stderr).slice(-400)}`,
    );
  }
  return times;
}

function render(samples: Map<Config, Samples>, options: DatapathOptions): string {
  const base = samples.get("vm")!;
  const docker = samples.get("docker-bridge")!;
  const order: Config[] = ["vm", "reference", "transparent", "bridge", "docker-bridge", "vm-bridged"];
  const pairedRatio = (values: number[], baseline: number[]) =>
    median(values.map((v, i) => v / baseline[i]!));
  const rows = order.map((config) => {
    const s = samples.get(config)!;
    const rtts = s.rttMs.flat();
    const roundMedians = s.rttMs.map((r) => median(r));
    const baseMedians = base.rttMs.map((r) => median(r));
    const basePooled = base.rttMs.flat();
    const tput = pairedRatio(s.gbps, base.gbps);
    const lat = pairedRatio(roundMedians, baseMedians);
    let verdict = "";
    if (config === "transparent" || config === "bridge") {
      const beatsDocker = median(s.gbps) > median(docker.gbps) && median(rtts) < median(docker.rttMs.flat());
      const met = tput >= 0.95 && lat <= 1.1 && beatsDocker;
      verdict = `${met ? "met" : "missed"} (≥ 0.95, ≤ 1.10, ${beatsDocker ? "beats" : "does not beat"} Docker bridge)`;
    }
    return [
      LABELS[config],
      fmt(median(s.gbps)),
      range(Math.min(...s.gbps), Math.max(...s.gbps)),
      ratio(tput),
      fmt(median(rtts) * 1000),
      range(quantile(rtts, 0.1) * 1000, quantile(rtts, 0.9) * 1000),
      fmt(quantile(rtts, 0.99) * 1000),
      ratio(lat),
      ratio(quantile(rtts, 0.99) / quantile(basePooled, 0.99)),
      verdict,
    ];
  });
  return [
    `${options.rounds} round(s). Each round measures every configuration once, in an order rotated from round to ` +
      `round: one iperf3 run of ${options.seconds} s (plus 1 s of slow start left out, \`-O 1\`, one TCP stream) ` +
      `and ${PINGS_PER_ROUND} pings at ${PING_INTERVAL_S} s intervals (busybox ping, the same binary everywhere), ` +
      `all to vm2 (${VM2_IP}). A NIC serves one mode at a time, so each round has a transparent phase ` +
      "(VM, reference, transparent, Docker bridge) and then a bridge phase (bridge, and the VM itself again while " +
      "its NIC is bridged). Ratios are the median of each round's ratio to the VM itself measured in the same round " +
      "(throughput: higher is better; RTT: lower is better). RTT percentiles pool all pings of all rounds.",
    "",
    table(
      [
        "from",
        "Gbit/s median",
        "Gbit/s min–max",
        "throughput ratio",
        "RTT median µs",
        "RTT p10–p90 µs",
        "RTT p99 µs",
        "RTT ratio",
        "p99 ratio",
        "target",
      ],
      rows,
    ),
  ].join("\n");
}
