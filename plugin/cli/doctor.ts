/**
 * `azure-vnet doctor`: checks what the plugin needs, on this host, and explains every failure in a
 * sentence with its fix. Exit status 1 when anything is wrong. Run it where the plugin runs (the VM's
 * network namespace), as root.
 */
import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { forwardChainName, natChainName } from "../../driver/names.js";
import { DOCKER_USER_CHAIN } from "../../driver/network-setup.js";
import { createImdsSource } from "../../ipam-driver/sources/imds.js";
import { dockerApi, type DockerVersion } from "../docker-api.js";
import { iptablesVersion, listChain } from "../../lib/host-net/iptables.js";
import { judgeDockerVersion } from "./tested-docker.js";
import { readSysctl } from "../../lib/host-net/links.js";
import { fetchStatus, type PluginStatus } from "./plugin-client.js";

export type Finding = { check: string; result: "ok" | "warn" | "fail"; message: string };

export type DoctorOptions = { socket: string; dockerSocket: string; imdsUrl: string };

export async function runDoctor(options: DoctorOptions): Promise<Finding[]> {
  const findings: Finding[] = [];
  const add = (check: string, result: Finding["result"], message: string) =>
    findings.push({ check, result, message });
  const attempt = async (check: string, body: () => Promise<void>) => {
    try {
      await body();
    } catch (error) {
      add(check, "fail", `could not be checked: ${(error as Error).message}`);
    }
  };

  let status: PluginStatus | undefined;
  try {
    status = await fetchStatus(options.socket);
    add("plugin", "ok", `answers on ${options.socket}`);
  } catch (error) {
    add(
      "plugin",
      "fail",
      `does not answer on ${options.socket} (${(error as Error).message}) — start it: systemctl start azure-vnet, or docker plugin enable azure:latest`,
    );
  }

  await attempt("pool source", async () => {
    if (status) {
      const { name, location, lastError, failures } = status.source;
      if (!lastError) add("pool source", "ok", `${name} answers (${location})`);
      else
        add(
          "pool source",
          "fail",
          `${name} at ${location} failed ${failures} times in a row: ${lastError} — ${sourceFix(name)}`,
        );
      return;
    }
    try {
      await createImdsSource(options.imdsUrl, 2_000).fetchNics();
      add("pool source", "ok", `IMDS answers at ${options.imdsUrl}`);
    } catch (error) {
      add(
        "pool source",
        "fail",
        `IMDS at ${options.imdsUrl} does not answer: ${(error as Error).message} — ${sourceFix("imds")}`,
      );
    }
  });

  if (status) {
    for (const subnet of status.pool) {
      const where = `${subnet.nic} (${subnet.subnet})`;
      if (subnet.secondaries === 0) {
        add(
          "secondary IPs",
          "fail",
          `${where} has no secondary IPs, so containers get no address — add IP configurations to the NIC in Azure (az network nic ip-config create)`,
        );
      } else if (subnet.free.length === 0) {
        add(
          "secondary IPs",
          "warn",
          `${where}: all ${subnet.secondaries} secondary IPs are in use — the next container fails; add IP configurations to the NIC`,
        );
      } else {
        add(
          "secondary IPs",
          "ok",
          `${where}: ${subnet.secondaries} secondary IPs, ${subnet.free.length} free`,
        );
      }
      if (subnet.goneButHeld.length > 0) {
        add(
          "secondary IPs",
          "warn",
          `${where}: ${subnet.goneButHeld.join(", ")} were removed from the NIC but containers still use them — stop those containers, or add the addresses back`,
        );
      }
    }
  }

  if (status) {
    for (const growth of status.growth) {
      const where = `${growth.nic} (${growth.subnet})`;
      if (growth.lastError) add("azure", "warn", `pool growth of ${where} failed: ${growth.lastError}`);
      else
        add(
          "azure",
          "ok",
          `pool growth of ${where}: ${growth.state}, ${growth.added} added, ${growth.removed} given back`,
        );
    }
    for (const endpoint of status.endpoints.filter((e) => e.azure?.state === "failed")) {
      add(
        "azure",
        "warn",
        `endpoint ${endpoint.id.slice(0, 12)} (${endpoint.address}) is not linked in Azure yet: ${endpoint.azure!.error} — the plugin retries; fix the cause, or remove the container`,
      );
    }
    for (const unlink of status.unlinks.filter((u) => u.links.error)) {
      add(
        "azure",
        "warn",
        `the Azure links of removed endpoint ${unlink.endpointId.slice(0, 12)} (${unlink.address}) are not undone yet: ${unlink.links.error} — the plugin retries; fix the cause`,
      );
    }
  }

  const networks = status?.networks ?? [];
  await attempt("forwarding", async () => {
    const forwarding = await readSysctl("net/ipv4/ip_forward");
    if (forwarding === "1") add("forwarding", "ok", "IPv4 forwarding is on");
    else if (networks.length === 0)
      add("forwarding", "ok", "IPv4 forwarding is off; the first azure network turns it on");
    else
      add(
        "forwarding",
        "fail",
        "IPv4 forwarding is off, so containers reach nothing beyond the VM — something turned it off; restart the plugin, which turns it on again",
      );
  });

  await attempt("firewall", async () => {
    add("firewall", "ok", `${await iptablesVersion()} (the plugin and dockerd use the same iptables)`);
    const forwardRules = (await listChain("filter", "FORWARD")) ?? [];
    const forwardJumps = forwardRules.join("\n");
    const dockerUser = forwardRules.findIndex((rule) => rule.endsWith(`-j ${DOCKER_USER_CHAIN}`));
    const firstOurs = forwardRules.findIndex((rule) => rule.includes("-j AZV-FWD-"));
    if (dockerUser >= 0 && firstOurs >= 0 && firstOurs < dockerUser)
      add(
        "firewall",
        "warn",
        `a FORWARD jump of azure-vnet sits ahead of ${DOCKER_USER_CHAIN}, so rules there do not see its containers' traffic — restart the plugin: it moves its jumps behind ${DOCKER_USER_CHAIN} at start`,
      );
    const natJumps = ((await listChain("nat", "POSTROUTING")) ?? []).join("\n");
    for (const network of networks) {
      const missing: string[] = [];
      if (!(await listChain("filter", forwardChainName(network.id))))
        missing.push(`chain ${forwardChainName(network.id)}`);
      if (!forwardJumps.includes(`-j ${forwardChainName(network.id)}`)) missing.push("its FORWARD jump");
      if (!network.internal) {
        if (!(await listChain("nat", natChainName(network.id))))
          missing.push(`chain ${natChainName(network.id)}`);
        if (!natJumps.includes(`-j ${natChainName(network.id)}`)) missing.push("its POSTROUTING jump");
      }
      if (missing.length === 0)
        add(
          "firewall",
          "ok",
          `network ${network.id.slice(0, 12)}: forwarding and outbound NAT rules in place`,
        );
      else
        add(
          "firewall",
          "fail",
          `network ${network.id.slice(0, 12)} is missing ${missing.join(", ")} (removed by a firewall reload?) — restart the plugin: it re-creates missing rules at start`,
        );
    }
  });

  await attempt("state", async () => {
    if (!status) return;
    const file = await stat(status.stateFile);
    const directory = await stat(dirname(status.stateFile));
    if ((file.mode & 0o077) !== 0 || (directory.mode & 0o077) !== 0) {
      add(
        "state",
        "fail",
        `${status.stateFile} or its directory is readable by others than root — chmod 600 the file and 700 the directory`,
      );
    } else add("state", "ok", `${status.stateFile} is root's only`);
  });

  await attempt("docker", async () => {
    let version: DockerVersion;
    try {
      version = await dockerApi(options.dockerSocket, 5_000).version();
    } catch (error) {
      add(
        "docker",
        "warn",
        `cannot reach Docker at ${options.dockerSocket} (${(error as Error).message}), so the plugin cannot reconcile with it — give the right --docker-socket`,
      );
      return;
    }
    add("docker", "ok", `Docker ${version.Version} (API ${version.ApiVersion})`);
    const judged = judgeDockerVersion(version.Version);
    add("docker", judged.result, judged.message);
    if (Number(version.Version.split(".")[0]) < 27) {
      add(
        "docker",
        "ok",
        "this dockerd loops on pools that overlap the host's routes, so networks created without --subnet show Subnet 0.0.0.0/0 (see docs/ipam.md); pass --subnet to see the NIC's subnet",
      );
    }
  });
  return findings;
}

export function formatFindings(findings: Finding[]): string {
  const mark = { ok: "ok  ", warn: "WARN", fail: "FAIL" } as const;
  return findings.map((f) => `${mark[f.result]}  ${f.check}: ${f.message}`).join("\n") + "\n";
}

function sourceFix(name: string): string {
  return name === "file"
    ? "fix the pool file (docs/ipam.md, 'Outside Azure: the pool file')"
    : "the VM must reach 169.254.169.254 (IMDS) or 168.63.129.16 (wireserver) directly, without a proxy or firewall rule in between; outside Azure use --pool-source file";
}
