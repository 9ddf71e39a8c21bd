/**
 * `azure-vnet doctor`: checks what the plugin needs, on this host, and explains every failure in a
 * sentence with its fix. Exit status 1 when anything is wrong. Run it where the plugin runs (the VM's
 * network namespace), as root.
 */
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { FORWARD_CHAIN_PREFIX, forwardChainName, natChainName } from "../../driver/names.js";
import { shortId } from "../../lib/short-id.js";
import { AZURE_DNS, DOCKER_USER_CHAIN, IMDS } from "../../driver/network-setup.js";
import { createImdsSource } from "../../ipam-driver/sources/imds.js";
import { createHostNetwork, type HostNetwork } from "../../lib/host-net/host-network.js";
import { dockerApi, type DockerVersion } from "../docker-api.js";
import { judgeDockerVersion } from "./tested-docker.js";
import { fetchStatus, type PluginStatus } from "./plugin-client.js";

/** One line of the doctor's report. */
export type Finding = { check: string; result: "ok" | "warn" | "fail"; message: string };

/** The host reads the doctor makes, all through the plugin's one door to the kernel. */
export type DoctorHost = Pick<
  HostNetwork,
  "readSysctl" | "listChainRules" | "iptablesVersion" | "listOwnRules" | "listTableRoutes"
>;

/** Where the plugin, Docker and IMDS are; and, in tests, the host to read. */
export type DoctorOptions = {
  socket: string;
  dockerSocket: string;
  imdsUrl: string;
  /** The host to read; the real one when not given. */
  host?: DoctorHost;
};

/** What every check may look at: the options, the host, and the running plugin's status if it answered. */
type DoctorContext = Required<DoctorOptions> & {
  status: PluginStatus | undefined;
  /** Why the plugin did not answer, when it did not. */
  statusError: Error | undefined;
};

type Report = (result: Finding["result"], message: string) => void;

/** One check: its name (the finding's `check`) and how it reports what it finds. */
type Check = { name: string; run(context: DoctorContext, report: Report): Promise<void> | void };

/** Every check, in the order the findings are listed. */
const CHECKS: Check[] = [
  { name: "plugin", run: checkPlugin },
  { name: "pool source", run: checkPoolSource },
  { name: "secondary IPs", run: checkSecondaryIps },
  { name: "azure", run: checkAzure },
  { name: "forwarding", run: checkForwarding },
  { name: "firewall", run: checkFirewall },
  { name: "shields", run: checkShields },
  { name: "routing", run: checkSourceRouting },
  { name: "state", run: checkStateFile },
  { name: "docker", run: checkDocker },
  { name: "reconciliation", run: checkReconciliation },
  { name: "swarm", run: checkSwarmCapacity },
];

/**
 * Runs every check and returns its findings. A check that throws keeps what it found so far and
 * adds a failure saying it could not be checked; the checks after it still run.
 */
export async function runDoctor(options: DoctorOptions): Promise<Finding[]> {
  const context: DoctorContext = {
    ...options,
    host: options.host ?? createHostNetwork(),
    ...(await readStatus(options.socket)),
  };
  const findings: Finding[] = [];
  for (const check of CHECKS) {
    const report: Report = (result, message) => findings.push({ check: check.name, result, message });
    try {
      await check.run(context, report);
    } catch (error) {
      report("fail", `could not be checked: ${(error as Error).message}`);
    }
  }
  return findings;
}

/** The report as the doctor prints it: `ok  `, `WARN` or `FAIL`, the check, the message. */
export function formatFindings(findings: Finding[]): string {
  const mark = { ok: "ok  ", warn: "WARN", fail: "FAIL" } as const;
  return findings.map((f) => `${mark[f.result]}  ${f.check}: ${f.message}`).join("\n") + "\n";
}

async function readStatus(socket: string): Promise<Pick<DoctorContext, "status" | "statusError">> {
  try {
    return { status: await fetchStatus(socket), statusError: undefined };
  } catch (error) {
    return { status: undefined, statusError: error as Error };
  }
}

function checkPlugin({ socket, status, statusError }: DoctorContext, report: Report): void {
  if (status) report("ok", `answers on ${socket}`);
  else
    report(
      "fail",
      `does not answer on ${socket} (${statusError?.message}) — start it: systemctl start azure-vnet, or docker plugin enable azure:latest`,
    );
}

/** The running plugin's view of its pool source; without a plugin, whether IMDS answers here. */
async function checkPoolSource({ status, imdsUrl }: DoctorContext, report: Report): Promise<void> {
  if (status) {
    const { name, location, lastError, failures } = status.source;
    if (!lastError) report("ok", `${name} answers (${location})`);
    else
      report(
        "fail",
        `${name} at ${location} failed ${failures} times in a row: ${lastError} — ${sourceFix(name)}`,
      );
    return;
  }
  try {
    await createImdsSource(imdsUrl, 2_000).fetchNics();
    report("ok", `IMDS answers at ${imdsUrl}`);
  } catch (error) {
    report("fail", `IMDS at ${imdsUrl} does not answer: ${(error as Error).message} — ${sourceFix("imds")}`);
  }
}

function checkSecondaryIps({ status }: DoctorContext, report: Report): void {
  for (const subnet of status?.pool ?? []) {
    const where = `${subnet.nic} (${subnet.subnet})`;
    if (subnet.secondaries === 0) {
      report(
        "fail",
        `${where} has no secondary IPs, so containers get no address — add IP configurations to the NIC in Azure (az network nic ip-config create)`,
      );
    } else if (subnet.free.length === 0) {
      report(
        "warn",
        `${where}: all ${subnet.secondaries} secondary IPs are in use — the next container fails; add IP configurations to the NIC`,
      );
    } else {
      report("ok", `${where}: ${subnet.secondaries} secondary IPs, ${subnet.free.length} free`);
    }
    if (subnet.goneButHeld.length > 0) {
      report(
        "warn",
        `${where}: ${subnet.goneButHeld.join(", ")} were removed from the NIC but containers still use them — stop those containers, or add the addresses back`,
      );
    }
  }
}

/** Pool growth, and Azure links (public IPs, load-balancer pools) not yet made or not yet undone. */
function checkAzure({ status }: DoctorContext, report: Report): void {
  if (!status) return;
  for (const growth of status.growth) {
    const where = `${growth.nic} (${growth.subnet})`;
    if (growth.lastError) report("warn", `pool growth of ${where} failed: ${growth.lastError}`);
    else
      report(
        "ok",
        `pool growth of ${where}: ${growth.state}, ${growth.added} added, ${growth.removed} given back`,
      );
  }
  for (const endpoint of status.endpoints.filter((e) => e.azure?.state === "failed")) {
    report(
      "warn",
      `endpoint ${shortId(endpoint.id)} (${endpoint.address}) is not linked in Azure yet: ${endpoint.azure!.error} — the plugin retries; fix the cause, or remove the container`,
    );
  }
  for (const pending of status.unlinks.filter((u) => u.links.error)) {
    report(
      "warn",
      `the Azure links of removed endpoint ${shortId(pending.endpointId)} (${pending.address}) are not undone yet: ${pending.links.error} — the plugin retries; fix the cause`,
    );
  }
}

async function checkForwarding({ host, status }: DoctorContext, report: Report): Promise<void> {
  const forwarding = await host.readSysctl("net/ipv4/ip_forward");
  if (forwarding === "1") report("ok", "IPv4 forwarding is on");
  else if ((status?.networks ?? []).length === 0)
    report("ok", "IPv4 forwarding is off; the first azure network turns it on");
  else
    report(
      "fail",
      "IPv4 forwarding is off, so containers reach nothing beyond the VM — something turned it off; restart the plugin, which turns it on again",
    );
}

/** Which iptables the host uses, where our FORWARD jumps sit, and every network's chains and jumps. */
async function checkFirewall({ host, status }: DoctorContext, report: Report): Promise<void> {
  report("ok", `${await host.iptablesVersion()} (the plugin and dockerd use the same iptables)`);
  const forwardRules = (await host.listChainRules("filter", "FORWARD")) ?? [];
  const dockerUser = forwardRules.findIndex((rule) => rule.endsWith(`-j ${DOCKER_USER_CHAIN}`));
  const firstOurs = forwardRules.findIndex((rule) => rule.includes(`-j ${FORWARD_CHAIN_PREFIX}`));
  if (dockerUser >= 0 && firstOurs >= 0 && firstOurs < dockerUser)
    report(
      "warn",
      `a FORWARD jump of azure-vnet sits ahead of ${DOCKER_USER_CHAIN}, so rules there do not see its containers' traffic — restart the plugin: it moves its jumps behind ${DOCKER_USER_CHAIN} at start`,
    );
  const jumps = {
    forward: forwardRules.join("\n"),
    nat: ((await host.listChainRules("nat", "POSTROUTING")) ?? []).join("\n"),
  };
  for (const network of status?.networks ?? []) {
    const missing = await missingFirewallRules(host, network, jumps);
    if (missing.length === 0)
      report("ok", `network ${shortId(network.id)}: forwarding and outbound NAT rules in place`);
    else
      report(
        "fail",
        `network ${shortId(network.id)} is missing ${missing.join(", ")} (removed by a firewall reload?) — restart the plugin: it re-creates missing rules at start`,
      );
  }
}

/**
 * Per network: whether its containers are kept from IMDS and from the wireserver's agent ports, and
 * that the rules doing so are in place. An open shield is the operator's choice, said plainly.
 */
async function checkShields({ host, status }: DoctorContext, report: Report): Promise<void> {
  for (const network of status?.networks ?? []) {
    const rules = ((await host.listChainRules("filter", forwardChainName(network.id))) ?? []).join("\n");
    const shields = [
      {
        name: "IMDS",
        open: network.imdsAccess,
        drop: `-d ${IMDS} -j DROP`,
        grants: "act as the VM's managed identity",
      },
      {
        name: "the wireserver",
        open: network.wireserverAccess === true,
        drop: `-d ${AZURE_DNS} -j DROP`,
        grants: "read the VM's goal state and extension settings",
      },
    ];
    const said = shields.map((s) =>
      s.open ? `${s.name} open: its containers can ${s.grants}` : `${s.name} blocked`,
    );
    const missing = shields.filter((s) => !s.open && !rules.includes(s.drop)).map((s) => s.name);
    if (missing.length > 0)
      report(
        "fail",
        `network ${shortId(network.id)} should block ${missing.join(" and ")}, but the rule is missing (removed by a firewall reload?) — restart the plugin: it re-creates its rules at start`,
      );
    else report("ok", `network ${shortId(network.id)}: ${said.join("; ")} (docs/security.md)`);
  }
}

/**
 * Per network on a NIC other than the primary: its routing table and its containers' rules, without
 * which their replies leave through the primary NIC with an address it does not own, and Azure drops
 * them (the asymmetric routing that broke secondary NICs in the plugin this one replaces).
 */
async function checkSourceRouting({ host, status }: DoctorContext, report: Report): Promise<void> {
  const routed = (status?.networks ?? []).filter((n) => n.routeTable !== undefined);
  if (routed.length === 0) return;
  const rules = (await host.listOwnRules()).map((r) => `${r.table} ${r.from ?? "all"}`);
  for (const network of routed) {
    const table = network.routeTable!;
    const hasWayOut = (await host.listTableRoutes(table)).some((r) => r.dst === "0.0.0.0/0");
    const joined = (status?.endpoints ?? []).filter((e) => e.networkId === network.id && e.hostInterface);
    const missing = [
      ...(hasWayOut ? [] : [`the default route of table ${table}`]),
      ...joined
        .filter((e) => !rules.includes(`${table} ${e.address}`))
        .map((e) => `the rule for ${e.address}`),
    ];
    const where = `network ${shortId(network.id)} on ${network.interfaceName}`;
    if (missing.length === 0)
      report(
        "ok",
        `${where}: its containers leave through ${network.interfaceName} (routing table ${table})`,
      );
    else
      report(
        "fail",
        `${where} is missing ${missing.join(", ")}, so its containers answer through the primary NIC with addresses it does not own, and Azure drops those replies — restart the plugin: it re-creates its routing at start`,
      );
  }
}

/** What of a network's chains and jumps is gone; its NAT only when the network is not internal. */
async function missingFirewallRules(
  host: DoctorHost,
  network: PluginStatus["networks"][number],
  jumps: { forward: string; nat: string },
): Promise<string[]> {
  const missing: string[] = [];
  const forwardChain = forwardChainName(network.id);
  if (!(await host.listChainRules("filter", forwardChain))) missing.push(`chain ${forwardChain}`);
  if (!jumps.forward.includes(`-j ${forwardChain}`)) missing.push("its FORWARD jump");
  if (!network.internal) {
    const natChain = natChainName(network.id);
    if (!(await host.listChainRules("nat", natChain))) missing.push(`chain ${natChain}`);
    if (!jumps.nat.includes(`-j ${natChain}`)) missing.push("its POSTROUTING jump");
  }
  return missing;
}

/** The state file holds the plugin's records; only root may read it. */
async function checkStateFile({ status }: DoctorContext, report: Report): Promise<void> {
  if (!status) return;
  const file = await stat(status.stateFile);
  const directory = await stat(dirname(status.stateFile));
  if ((file.mode & 0o077) !== 0 || (directory.mode & 0o077) !== 0) {
    report(
      "fail",
      `${status.stateFile} or its directory is readable by others than root — chmod 600 the file and 700 the directory`,
    );
  } else report("ok", `${status.stateFile} is root's only`);
}

async function checkDocker({ dockerSocket }: DoctorContext, report: Report): Promise<void> {
  let version: DockerVersion;
  try {
    version = await dockerApi(dockerSocket, 5_000).version();
  } catch (error) {
    report(
      "warn",
      `cannot reach Docker at ${dockerSocket} (${(error as Error).message}), so the plugin cannot reconcile with it — give the right --docker-socket`,
    );
    return;
  }
  report("ok", `Docker ${version.Version} (API ${version.ApiVersion})`);
  const judged = judgeDockerVersion(version.Version);
  report(judged.result, judged.message);
  if (Number(version.Version.split(".")[0]) < 27) {
    report(
      "ok",
      "this dockerd loops on pools that overlap the host's routes, so networks created without --subnet show Subnet 0.0.0.0/0 (see docs/ipam.md); pass --subnet to see the NIC's subnet",
    );
  }
}

function sourceFix(name: string): string {
  return name === "file"
    ? "fix the pool file (docs/ipam.md, 'Outside Azure: the pool file')"
    : "the VM must reach 169.254.169.254 (IMDS) or 168.63.129.16 (wireserver) directly, without a proxy or firewall rule in between; outside Azure use --pool-source file";
}

/** Whether the running plugin reconciles its records with Docker (it needs the Docker socket to). */
function checkReconciliation({ status }: DoctorContext, report: Report): void {
  const reconciliation = status?.reconciliation;
  if (!reconciliation) return;
  if (reconciliation.dockerSocket === undefined)
    report(
      "warn",
      "the plugin runs without the Docker API socket, so reconciliation is off: records that dockerd fails to delete (after a crash) stay until removed by hand — give it the socket if you accept what that grants (docs/security.md)",
    );
  else if (reconciliation.lastError !== undefined)
    report(
      "warn",
      `the plugin cannot reach Docker at ${reconciliation.dockerSocket} (${reconciliation.lastError}), so it does not reconcile — give it the right --docker-socket`,
    );
  else if (!reconciliation.on) report("ok", "reconciliation is off (--reconcile-interval 0)");
  else report("ok", `the plugin reconciles with Docker at ${reconciliation.dockerSocket}`);
}

/** The generic resource a VM advertises to the swarm scheduler for its addresses (docs/swarm.md). */
export const ADDRESS_RESOURCE = "AZURE_VNET_IP";
/** Azure's limit on private IP addresses per VM, across its NICs. */
const VM_PRIVATE_IPS = 256;

/**
 * When this node advertises AZURE_VNET_IP to the swarm scheduler: whether the number fits the
 * addresses it has, plus what pool growth may still add. More would let the scheduler place tasks here
 * that get no address.
 */
async function checkSwarmCapacity({ dockerSocket, status }: DoctorContext, report: Report): Promise<void> {
  if (!status) return;
  const info = await dockerApi(dockerSocket, 5_000)
    .info()
    .catch(() => undefined);
  const advertised = info?.GenericResources?.find((r) => r.DiscreteResourceSpec?.Kind === ADDRESS_RESOURCE)
    ?.DiscreteResourceSpec?.Value;
  if (advertised === undefined) return;
  const secondaries = status.pool.reduce((sum, subnet) => sum + subnet.secondaries, 0);
  const growable =
    status.growth.length > 0 ? Math.max(0, VM_PRIVATE_IPS - secondaries - status.pool.length) : 0;
  const has = `${secondaries} secondary IPs${growable > 0 ? ` (and up to ${growable} more through pool growth)` : ""}`;
  if (advertised > secondaries + growable)
    report(
      "warn",
      `this node advertises ${ADDRESS_RESOURCE}=${advertised} to the swarm scheduler but has ${has}, so tasks placed here beyond that get no address — set node-generic-resources to ${ADDRESS_RESOURCE}=${secondaries + growable} or less, or add IP configurations to the NIC`,
    );
  else report("ok", `this node advertises ${ADDRESS_RESOURCE}=${advertised} and has ${has}`);
}
