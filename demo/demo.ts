/**
 * The demo, in one command (`npm run build && npm run demo`, as root): on an emulated Azure VNet built
 * from network namespaces, start the Azure IMDS stand-in, the azure-vnet plugin and a private dockerd
 * in vm1, run a container on an azure network, and show that (1) it holds a secondary IP of vm1's NIC,
 * (2) vm2 reaches it at that address and it sees vm2's own address, (3) the internet host sees its
 * traffic arrive from vm1's public address. Then it removes everything it made, also after a failure
 * or Ctrl-C. Exit status 0 only when every step passed.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { startAzureEndpoints, startPluginInVm, type PluginProcess } from "../test/helpers/azure-vm.js";
import { startDockerd, type Dockerd } from "../test/helpers/dockerd.js";
import { pollUntil, run } from "../test/helpers/run.js";
import { createVnet, IMDS_IP, INET_HOST_IP, WIRESERVER_IP, type Vnet } from "../test/helpers/vnet.js";

const VM1 = {
  name: "vm1",
  mac: "00:0d:3a:00:00:01",
  primary: "10.1.0.4",
  secondaries: ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"],
  publicIp: "198.51.100.4",
};
const VM2 = { name: "vm2", mac: "00:0d:3a:00:00:02", primary: "10.1.0.10" };
const SUBNET = "10.1.0.0/24";
const HTTP_PORT = 8080;
const INET_PORT = 9092;
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

let vnet: Vnet | undefined;
let vnetPending: Promise<Vnet> | undefined;
let dockerd: Dockerd | undefined;
let plugin: PluginProcess | undefined;
let dir: string | undefined;
let interrupted: NodeJS.Signals | undefined;
let cleaning: Promise<boolean> | undefined;
let lineOpen = false;

class StepFailed extends Error {}

/** Ends a step line left open (by a signal or a failure), then prints `text` on its own line. */
function say(text: string): void {
  if (lineOpen) process.stdout.write("\n");
  lineOpen = false;
  process.stdout.write(`${text}\n`);
}

/** Completes the open step line with `text`, or prints it on a line of its own. */
function endLine(text: string): void {
  process.stdout.write(lineOpen ? `${text}\n` : `    ${text}\n`);
  lineOpen = false;
}

function startLine(text: string): void {
  if (lineOpen) process.stdout.write("\n");
  process.stdout.write(text);
  lineOpen = true;
}

/** Prints `==> title ... `, runs `action`, and ends the line with `ok (detail)` or `FAILED`. */
async function step(
  title: string,
  action: () => Promise<string | void>,
  duringInterrupt = false,
): Promise<void> {
  // After Ctrl-C only the cleanup runs; the step that was in flight may still finish.
  if (interrupted && !duringInterrupt) throw new StepFailed(`${title} (not started: ${interrupted})`);
  startLine(`==> ${title} ... `);
  try {
    const detail = await action();
    if (!interrupted || duringInterrupt) endLine(detail ? `ok (${detail})` : "ok");
  } catch (error) {
    // Ctrl-C reaches our children too; let the signal handler run before deciding this is a failure.
    await delay(100);
    if (!interrupted || duringInterrupt) {
      endLine("FAILED");
      say(indent(error instanceof Error ? error.message : String(error)));
    }
    throw new StepFailed(title, { cause: error });
  }
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0]?.trim() ?? "";
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? "")
    .split(delimiter)
    .some((folder) => folder !== "" && existsSync(join(folder, program)));
}

async function docker(...args: string[]): Promise<string> {
  if (dockerd === undefined) throw new Error("dockerd is not running");
  return (await dockerd.dockerOk(args)).stdout.trim();
}

async function demo(): Promise<void> {
  say(`azure-vnet demo: a container directly on an (emulated) Azure VNet ${SUBNET}`);
  say(`  vm1   NIC ${VM1.mac}: primary ${VM1.primary}, secondary IPs ${VM1.secondaries.join(" ")},`);
  say(`        public address ${VM1.publicIp}; runs the azure-vnet plugin and a private dockerd`);
  say(`  vm2   another VM in the VNet, ${VM2.primary}`);
  say(`  inet  a host on the internet, ${INET_HOST_IP}`);
  say("");

  await step("building the VNet from network namespaces", async () => {
    vnetPending = createVnet({ subnet: SUBNET, vms: [VM1, VM2] });
    vnet = await vnetPending;
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-demo-"));
    return `namespaces ${vnet.prefix}-*`;
  });
  const net = vnet!;
  const workDir = dir!;
  const pluginsDir = join(workDir, "plugins");

  await step(`starting the Azure IMDS/wireserver stand-in (${IMDS_IP}, ${WIRESERVER_IP})`, () =>
    startAzureEndpoints(net, VM1.name, workDir).then(() => undefined),
  );
  await step("starting the azure-vnet plugin in vm1", async () => {
    plugin = await startPluginInVm(net, VM1.name, workDir);
    const pool = (await plugin.status()).pool[0];
    return `it read vm1's NIC from IMDS: free ${pool?.free.join(" ") ?? "?"}`;
  });
  await step("starting a private dockerd in vm1", async () => {
    dockerd = await startDockerd(net, VM1.name, { pluginsDir });
    const version = await docker("version", "--format", "{{.Server.Version}}");
    return `Docker ${version}, up in ${(dockerd.startupMs / 1000).toFixed(1)} s`;
  });
  await step("importing busybox-static as the image busybox:local (nothing is pulled)", async () => {
    await dockerd!.importBusybox();
  });

  const createArgs = [
    "network",
    "create",
    "-d",
    "azure",
    "--ipam-driver",
    "azure",
    "--subnet",
    SUBNET,
    "vnet",
  ];
  await step(`docker ${createArgs.join(" ")}`, async () => {
    await docker(...createArgs);
  });
  // prettier-ignore
  const runArgs = [
    "run", "-d", "--name", "web", "--network", "vnet", "busybox:local", "httpd", "-f", "-vv", "-p", String(HTTP_PORT), "-h", "/",
  ];
  await step(`docker ${runArgs.join(" ")}`, async () => {
    await docker(...runArgs);
  });

  say("");
  say("(1) the container has a VNet address: a secondary IP of vm1's NIC");
  let ip = "";
  await step("docker exec web ip -o -4 addr show eth0", async () => {
    const out = await docker("exec", "web", "ip", "-o", "-4", "addr", "show", "eth0");
    const cidr = /\binet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(out);
    check(cidr !== null, `no IPv4 address on the container's eth0: ${out}`);
    ip = cidr[1]!;
    return `inet ${cidr[1]}/${cidr[2]}`;
  });
  await step(`is ${ip} a secondary IP of vm1's NIC?`, async () => {
    const nic = net.vm(VM1.name);
    check(ip !== nic.primary, `${ip} is the NIC's primary address, not a secondary`);
    check(
      nic.secondaries.includes(ip),
      `${ip} is not among the NIC's secondaries ${nic.secondaries.join(" ")}`,
    );
    const inUse = (await plugin!.status()).pool[0]?.inUse ?? [];
    check(inUse.includes(ip), `the plugin does not list ${ip} as in use (it has ${inUse.join(" ")})`);
    return `yes: the NIC has primary ${nic.primary} and secondaries ${nic.secondaries.join(" ")}; the plugin holds ${ip}`;
  });

  say("");
  say("(2) the other VM reaches the container at that address, and each sees the other's own address");
  await step(`vm2 (${VM2.primary}) connects to the container at ${ip}:${HTTP_PORT}`, async () => {
    // httpd may need a moment after `docker run -d` returns.
    const probe = await pollUntil(
      `httpd in the container to answer vm2`,
      async () => {
        const p = await net.tcpProbe(VM2.name, ip, HTTP_PORT, { payload: "GET / HTTP/1.0\r\n\r\n" });
        if (!p.connected) throw new Error(`connection failed: ${p.error ?? "closed"}`);
        return p;
      },
      { timeoutMs: 10_000, intervalMs: 250 },
    );
    check(/^HTTP\/1\.[01] /.test(probe.data), `it answered, but not HTTP: ${JSON.stringify(probe.data)}`);
    return `it answered: ${firstLine(probe.data)}`;
  });
  await step("whom did the container see? (docker logs web)", async () => {
    // busybox httpd -vv logs each request as "[::ffff:10.1.0.10]:41234: url:/" on stderr.
    const line = await pollUntil(
      "httpd's log line for the request",
      async () => {
        const logs = await dockerd!.docker(["logs", "web"]);
        return /^\S*:\d+: url:.*$/m.exec(logs.stdout + logs.stderr)?.[0];
      },
      { timeoutMs: 5_000, intervalMs: 200 },
    );
    const peer = /(\d+\.\d+\.\d+\.\d+)\]?:\d+:/.exec(line)?.[1];
    check(peer === VM2.primary, `httpd logged "${line}", not vm2's address ${VM2.primary}`);
    return `httpd logged "${line}": vm2's own address, no NAT in between`;
  });

  say("");
  say("(3) the internet sees the container's traffic arrive from vm1's public address");
  const recorder = await net.startTcpRecorder(
    "inet",
    INET_HOST_IP,
    INET_PORT,
    "hello from the internet, you are",
  );
  try {
    await step(`docker exec web sh -c "echo hi | nc ${INET_HOST_IP} ${INET_PORT}"`, async () => {
      const reply = await docker("exec", "web", "sh", "-c", `echo hi | nc ${INET_HOST_IP} ${INET_PORT}`);
      return `the container read: "${firstLine(reply)}"`;
    });
    await step(`whom did the internet host ${INET_HOST_IP} see?`, async () => {
      const [connection] = await recorder.waitForConnections(1);
      const from = connection?.remoteAddress;
      check(from === VM1.publicIp, `it saw ${from}, not vm1's public address ${VM1.publicIp}`);
      return `it saw ${from}, vm1's public address, not the container's own ${ip}`;
    });
  } finally {
    await recorder.close();
  }

  say("");
  await step("docker rm -f web && docker network rm vnet (the plugin releases the address)", async () => {
    await docker("rm", "-f", "web");
    await docker("network", "rm", "vnet");
    const pool = (await plugin!.status()).pool[0];
    check(pool?.inUse.length === 0, `the plugin still holds ${pool?.inUse.join(" ")}`);
    return `free again: ${pool.free.join(" ")}`;
  });
}

/** Prints the tails of dockerd's and the plugin's logs, which are deleted by the cleanup. */
function printDiagnostics(): void {
  if (dockerd !== undefined) {
    process.stderr.write(`\n--- last lines of dockerd's log ---\n${dockerd.logTail(15)}\n`);
  }
  if (plugin !== undefined) {
    let text = "";
    try {
      text = readFileSync(plugin.logFile, "utf8").trimEnd().split("\n").slice(-15).join("\n");
    } catch {
      text = "(no plugin log)";
    }
    process.stderr.write(`\n--- last lines of the plugin's log ---\n${text}\n`);
  }
}

async function removeContainers(daemon: Dockerd): Promise<void> {
  const ids = (await daemon.docker(["ps", "-aq"], { timeoutMs: 5_000 })).stdout.split(/\s+/);
  const all = ids.filter((id) => id !== "");
  if (all.length > 0) await daemon.docker(["rm", "-f", ...all], { timeoutMs: 10_000 });
}

/** Tears everything down once, however often it is asked; resolves to whether nothing was left. */
function cleanup(): Promise<boolean> {
  cleaning ??= (async () => {
    let ok = true;
    try {
      await step(
        "cleaning up: dockerd, plugin, Azure stand-in, namespaces, temp files",
        async () => {
          const problems: string[] = [];
          // A VNet still being built is waited for, so no half-built namespaces stay behind.
          const net = vnet ?? (await vnetPending?.catch(() => undefined));
          if (net !== undefined) {
            // After a failure the container may still run; httpd as pid 1 ignores SIGTERM, so dockerd's
            // own shutdown would wait its full timeout for it. Best effort: dockerd may be going already.
            if (dockerd?.running) await removeContainers(dockerd).catch(() => undefined);
            // Stops dockerd (and its containers), then the plugin and the stand-in, then the namespaces.
            await net.teardown().catch((error: unknown) => problems.push(String(error)));
            const left = (await run("ip", ["netns", "list"])).stdout
              .split("\n")
              .filter((line) => line.startsWith(`${net.prefix}-`));
            if (left.length > 0) problems.push(`namespaces left: ${left.join(", ")}`);
          }
          if (dir !== undefined) await rm(dir, { recursive: true, force: true });
          if (problems.length > 0) throw new Error(problems.join("\n"));
          return net === undefined ? "nothing had been started" : "nothing left";
        },
        true,
      );
    } catch {
      ok = false;
    }
    return ok;
  })();
  return cleaning;
}

function onSignal(signal: NodeJS.Signals): void {
  if (interrupted !== undefined) {
    say(`${signal} again: still cleaning up, please wait`);
    return;
  }
  interrupted = signal;
  say(`\n${signal}: stopping the demo and cleaning up`);
  void cleanup().then((ok) => {
    say(ok ? "interrupted; everything was cleaned up" : "interrupted; the cleanup reported problems (above)");
    process.exit(SIGNAL_EXIT[signal] ?? 1);
  });
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write("the demo needs root: it creates network namespaces and runs dockerd\n");
    return 1;
  }
  const needs: [string, string][] = [
    ["dockerd", "docker.io"],
    ["iptables", "iptables"],
    ["ip", "iproute2"],
    ["nsenter", "util-linux"],
    ["unshare", "util-linux"],
  ];
  const missing = needs
    .filter(([program]) => !onPath(program))
    .map(([program, pkg]) => `${program} (${pkg})`);
  if (!existsSync("/usr/bin/busybox")) missing.push("/usr/bin/busybox (busybox-static)");
  if (missing.length > 0) {
    process.stderr.write(
      `the demo needs ${missing.join(", ")}: apt-get install docker.io iptables busybox-static iproute2 util-linux, or run bash test/run-all.sh once\n`,
    );
    return 1;
  }
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const started = Date.now();
  let failed: string | undefined;
  try {
    await demo();
  } catch (error) {
    failed = error instanceof StepFailed ? error.message : String(error);
    if (!(error instanceof StepFailed) && !interrupted) say(`FAILED: ${failed}`);
    if (!interrupted) printDiagnostics();
  }
  const cleanedUp = await cleanup();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  say("");
  if (failed !== undefined) say(`DEMO FAILED at "${failed}" after ${seconds} s`);
  else if (!cleanedUp) say(`all three shown, but the cleanup failed (above); ${seconds} s`);
  else say(`DEMO PASSED: all three shown, and everything cleaned up, in ${seconds} s`);
  return failed === undefined && cleanedUp ? 0 : 1;
}

const code = await main();
// A signal's handler exits on its own once the cleanup is done.
if (interrupted === undefined) process.exit(code);
