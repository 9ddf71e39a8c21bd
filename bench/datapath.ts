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
/** Paced pings: each one finds the CPUs idle, as a request every few ms would. */
const PACED_PINGS = 100;
const PING_INTERVAL_S = "0.01";
/** Back-to-back pings (`-A`: the next as soon as the reply is in): the path's own cost, no wake-ups. */
const BACK_TO_BACK_PINGS = 1000;

export type DatapathOptions = { rounds: number; seconds: number };

type Config =
  | "vm"
  | "reference"
  | "transparent"
  | "transparent-ns"
  | "docker-bridge"
  | "docker-bridge-ns"
  | "bridge"
  | "bridge-ns"
  | "vm-bridged";

const LABELS: Record<Config, string> = {
  vm: "VM itself (baseline)",
  reference: "hand-made routed veth, no plugin (reference)",
  transparent: "azure network, transparent mode",
  "transparent-ns": "… its network namespace only, entered with nsenter",
  bridge: "azure network, bridge mode",
  "bridge-ns": "… its network namespace only, entered with nsenter",
  "docker-bridge": "Docker default bridge (NAT)",
  "docker-bridge-ns": "… its network namespace only, entered with nsenter",
  "vm-bridged": "VM itself while its NIC is in an azure bridge",
};

/** Runs a command (argv[0] is the program) at one place of the test: the VM, a container, a namespace. */
type Runner = (argv: string[]) => Promise<RunResult>;

/** Per round: one throughput, and the RTTs (ms) of each ping of both kinds. */
type Samples = { gbps: number[]; paced: number[][]; b2b: number[][] };

export async function runDatapathBench(options: DatapathOptions): Promise<string> {
  requireIperf3();
  const start = await startClock();
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
  // The same network path without the container runtime around the measuring process (cgroup,
  // seccomp, docker exec): the host's binaries run in the container's network namespace.
  const inContainerNs = async (name: string): Promise<Runner> => {
    const pid = (await dockerOk("inspect", "-f", "{{.State.Pid}}", name)).stdout.trim();
    return (argv) => run("nsenter", [`--net=/proc/${pid}/ns/net`, "--", ...argv], { timeoutMs: 120_000 });
  };

  await dockerOk("run", "-d", "--name", "dp-docker", BENCH_IMAGE, "sleep", "1000000");
  const samples = new Map<Config, Samples>();
  const record = async (config: Config, runner: Runner) => {
    const entry = samples.get(config) ?? { gbps: [], paced: [], b2b: [] };
    samples.set(config, entry);
    entry.gbps.push(await throughputGbps(runner, options.seconds));
    entry.b2b.push(await pings(runner, BACK_TO_BACK_PINGS, ["-A"]));
    entry.paced.push(await pings(runner, PACED_PINGS, ["-i", PING_INTERVAL_S]));
    log(
      `  ${LABELS[config]}: ${fmt(entry.gbps.at(-1)!)} Gbit/s, RTT ${fmt(mean(entry.b2b.at(-1)!) * 1000)} µs back to back, ${fmt(median(entry.paced.at(-1)!) * 1000)} µs paced`,
    );
  };
  const warmUp = async (runner: Runner) => {
    await pings(runner, 3);
  };
  await warmUp(inVm);
  await warmUp(inNs);
  await warmUp(inContainer("dp-docker"));
  const dockerNs = await inContainerNs("dp-docker");

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
      ["transparent-ns", await inContainerNs("dp-t")],
      ["docker-bridge", inContainer("dp-docker")],
      ["docker-bridge-ns", dockerNs],
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
      ["bridge-ns", await inContainerNs("dp-b")],
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
async function pings(
  runner: Runner,
  count: number,
  pacing: string[] = ["-i", PING_INTERVAL_S],
): Promise<number[]> {
  const result = await runner(["busybox", "ping", "-c", String(count), ...pacing, VM2_IP]);
  const times = [...result.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (times.length < count) {
    throw new Error(
      `ping got ${times.length} of ${count} replies: ${(result.stdout + result.stderr).slice(-400)}`,
    );
  }
  return times;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

function render(samples: Map<Config, Samples>, options: DatapathOptions): string {
  const order: Config[] = [
    "vm",
    "reference",
    "transparent",
    "transparent-ns",
    "bridge",
    "bridge-ns",
    "docker-bridge",
    "docker-bridge-ns",
    "vm-bridged",
  ];
  const get = (config: Config) => samples.get(config)!;
  const base = get("vm");
  /** Median over rounds of (this config's value ÷ the VM's value in the same round). */
  const paired = (values: number[], baseline: number[]) => median(values.map((v, i) => v / baseline[i]!));
  const tputRatio = (c: Config) => paired(get(c).gbps, base.gbps);
  const b2bRatio = (c: Config) => paired(get(c).b2b.map(mean), base.b2b.map(mean));
  const pacedRatio = (c: Config) => paired(get(c).paced.map(median), base.paced.map(median));
  const us = (ms: number) => fmt(ms * 1000);

  const throughputRows = order.map((c) => {
    const g = get(c).gbps;
    return [LABELS[c], fmt(median(g)), range(Math.min(...g), Math.max(...g)), ratio(tputRatio(c))];
  });
  const latencyRows = order.map((c) => {
    const b2b = get(c).b2b.flat();
    const paced = get(c).paced.flat();
    return [
      LABELS[c],
      us(median(b2b)),
      fmt(mean(b2b) * 1000),
      us(quantile(b2b, 0.99)),
      ratio(b2bRatio(c)),
      us(median(paced)),
      `${us(quantile(paced, 0.1))}–${us(quantile(paced, 0.9))}`,
      us(quantile(paced, 0.99)),
      ratio(pacedRatio(c)),
    ];
  });
  const verdicts = (["transparent", "bridge", "transparent-ns", "bridge-ns"] as Config[]).map((c) => {
    const rival = c.endsWith("-ns") ? get("docker-bridge-ns") : get("docker-bridge");
    const s = get(c);
    const yes = (ok: boolean) => (ok ? "met" : "missed");
    const exact = (value: number) => value.toFixed(3);
    return [
      LABELS[c].startsWith("…") ? `${LABELS[c.replace(/-ns$/, "") as Config]}, namespace only` : LABELS[c],
      `${exact(tputRatio(c))}: ${yes(tputRatio(c) >= 0.95)}`,
      `${exact(b2bRatio(c))}: ${yes(b2bRatio(c) <= 1.1)}`,
      `${exact(pacedRatio(c))}: ${yes(pacedRatio(c) <= 1.1)}`,
      `${median(s.gbps) > median(rival.gbps) ? "more" : "less"} throughput (${fmt(median(s.gbps))} vs ` +
        `${fmt(median(rival.gbps))}), ${mean(s.b2b.flat()) < mean(rival.b2b.flat()) ? "lower" : "higher"} ` +
        `back-to-back RTT (${fmt(mean(s.b2b.flat()) * 1000)} vs ${fmt(mean(rival.b2b.flat()) * 1000)} µs)`,
    ];
  });
  return [
    `${options.rounds} round(s). Each round measures every configuration once, in an order rotated from round to ` +
      `round: one iperf3 run of ${options.seconds} s (one TCP stream; the first second, slow start, left out with ` +
      `\`-O 1\`), ${BACK_TO_BACK_PINGS} back-to-back pings (\`-A\`: the next leaves when the reply is in) and ` +
      `${PACED_PINGS} pings at ${PING_INTERVAL_S} s intervals, all to vm2 (${VM2_IP}), with busybox ping (the same ` +
      "binary everywhere; it reports whole microseconds, so back-to-back RTTs are also given as a mean). A NIC " +
      "serves one mode at a time, so each round has a transparent phase (VM, reference, transparent, Docker " +
      "bridge) and then a bridge phase (bridge, and the VM itself again while its NIC is bridged). Each container " +
      "is measured twice: inside it (`docker exec`), and with the host's binaries in its network namespace only " +
      "(`nsenter --net`), which leaves the container runtime (cgroup, seccomp, exec) out. Ratios are the median " +
      "over rounds of each round's ratio to the VM itself in the same round (back-to-back RTT: of the means; " +
      "paced: of the medians). RTT percentiles pool all pings of all rounds.",
    "",
    "Throughput:",
    "",
    table(["from", "Gbit/s median", "Gbit/s min–max", "ratio to VM"], throughputRows),
    "",
    "Round-trip time, µs:",
    "",
    table(
      [
        "from",
        "back-to-back median",
        "mean",
        "p99",
        "ratio to VM",
        "paced median",
        "p10–p90",
        "p99",
        "ratio to VM",
      ],
      latencyRows,
    ),
    "",
    "Targets (throughput ≥ 0.95 and latency ≤ 1.10 of the VM itself, and better than Docker's bridge):",
    "",
    table(
      [
        "azure network",
        "throughput ratio",
        "back-to-back RTT ratio",
        "paced RTT ratio",
        "against Docker bridge",
      ],
      verdicts,
    ),
  ].join("\n");
}
