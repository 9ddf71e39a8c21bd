/**
 * `azure-vnet status`: the running plugin's view of the pool per NIC subnet and its growth, its networks
 * and its endpoints with their containers' names and Azure links, as tables (default) or as JSON
 * (`--json`).
 */
import { dockerNames, type DockerNames } from "./docker-names.js";
import { fetchStatus, type PluginStatus } from "./plugin-client.js";
import type { AzureLinks } from "../../driver/driver-state.js";
import { formatTable } from "./table.js";
import { shortId } from "../../lib/short-id.js";

/** Runs `azure-vnet status`; resolves to what it prints. */
export async function statusCommand(options: {
  socket: string;
  dockerSocket: string;
  json: boolean;
}): Promise<string> {
  const status = await fetchStatus(options.socket);
  const names = await dockerNames(options.dockerSocket);
  return options.json ? statusJson(status, names) : statusTables(status, names);
}

/** The status as the plugin answers it, with Docker's names beside the ids. */
function statusJson(status: PluginStatus, names: DockerNames): string {
  const withNames = {
    ...status,
    networks: status.networks.map((n) => ({ ...n, name: names.networks.get(n.id) })),
    endpoints: status.endpoints.map((e) => ({
      ...e,
      container: names.containers.get(e.id),
      network: names.networks.get(e.networkId),
    })),
  };
  return JSON.stringify(withNames, null, 2) + "\n";
}

/** Pool, networks and endpoints always; growth and pending Azure unlinks only when there are any. */
function statusTables(status: PluginStatus, names: DockerNames): string {
  const sections = [poolTable(status), networksTable(status, names), endpointsTable(status, names)];
  if (status.growth.length > 0) sections.push(growthTable(status));
  if (status.unlinks.length > 0) sections.push(unlinksTable(status));
  const { name, location, lastError, failures } = status.source;
  const source = lastError
    ? `pool source ${name} (${location}): failing ${failures} times: ${lastError}`
    : `pool source ${name} (${location}): ok`;
  return `${sections.join("\n")}\n${source}\nstate: ${status.stateFile}\n`;
}

function poolTable(status: PluginStatus): string {
  return formatTable(
    ["NIC", "SUBNET", "PRIMARY", "GATEWAY", "SECONDARY IPS", "FREE", "IN USE", "GONE BUT HELD"],
    status.pool.map((p) => [
      p.nic,
      p.subnet,
      p.primary ?? "-",
      p.gateway,
      String(p.secondaries),
      String(p.free.length),
      p.inUse.join(" ") || "-",
      p.goneButHeld.join(" ") || "-",
    ]),
  );
}

function networksTable(status: PluginStatus, names: DockerNames): string {
  return formatTable(
    ["NETWORK", "NAME", "MODE", "NIC", "SUBNET", "INTERNAL", "IMDS", "WIRESERVER"],
    status.networks.map((n) => [
      shortId(n.id),
      names.networks.get(n.id) ?? "-",
      n.mode,
      n.interfaceName,
      n.subnet,
      n.internal ? "yes" : "no",
      n.imdsAccess ? "allowed" : "blocked",
      n.wireserverAccess ? "allowed" : "dns-only",
    ]),
  );
}

function endpointsTable(status: PluginStatus, names: DockerNames): string {
  return formatTable(
    ["ENDPOINT", "CONTAINER", "NETWORK", "ADDRESS", "MAC", "HOST INTERFACE", "AZURE"],
    status.endpoints.map((e) => [
      shortId(e.id),
      names.containers.get(e.id) ?? "-",
      names.networks.get(e.networkId) ?? "-",
      e.address,
      e.macAddress,
      e.hostInterface ?? "(not joined)",
      e.azure ? azureLinksText(e.azure) : "-",
    ]),
  );
}

function growthTable(status: PluginStatus): string {
  return formatTable(
    ["GROWTH", "SUBNET", "STATE", "ADDED", "GIVEN BACK", "LAST ERROR"],
    status.growth.map((g) => [
      g.nic,
      g.subnet,
      g.state,
      String(g.added),
      String(g.removed),
      g.lastError ?? "-",
    ]),
  );
}

/** Removed endpoints whose Azure links (public IP, load-balancer pools) are still being undone. */
function unlinksTable(status: PluginStatus): string {
  return formatTable(
    ["REMOVED ENDPOINT", "ADDRESS", "UNDOING IN AZURE"],
    status.unlinks.map((u) => [shortId(u.endpointId), u.address, azureLinksText(u.links)]),
  );
}

/** "linked 198.51.100.200 +1 lb pool", "failed: <why>". */
function azureLinksText(links: AzureLinks): string {
  const parts: string[] = [links.state];
  if (links.publicIpAddress) parts.push(links.publicIpAddress);
  else if (links.publicIp) parts.push("public IP");
  if (links.backendPools.length > 0) parts.push(`+${links.backendPools.length} lb pool`);
  return parts.join(" ") + (links.error ? `: ${links.error}` : "");
}
