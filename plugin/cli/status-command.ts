/**
 * `azure-vnet status`: the running plugin's view of the pool per NIC subnet and its growth, its networks
 * and its endpoints with their containers' names and Azure links, as tables (default) or as JSON
 * (`--json`).
 */
import { dockerNames } from "./docker-names.js";
import { fetchStatus } from "./plugin-client.js";
import type { AzureLinks } from "../../driver/driver-state.js";
import { formatTable } from "./table.js";

export async function statusCommand(options: {
  socket: string;
  dockerSocket: string;
  json: boolean;
}): Promise<string> {
  const status = await fetchStatus(options.socket);
  const names = await dockerNames(options.dockerSocket);
  const networkName = (id: string) => names.networks.get(id) ?? "-";
  if (options.json) {
    return (
      JSON.stringify(
        {
          ...status,
          networks: status.networks.map((n) => ({ ...n, name: names.networks.get(n.id) })),
          endpoints: status.endpoints.map((e) => ({
            ...e,
            container: names.containers.get(e.id),
            network: names.networks.get(e.networkId),
          })),
        },
        null,
        2,
      ) + "\n"
    );
  }
  const short = (id: string) => id.slice(0, 12);
  const sections = [
    formatTable(
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
    ),
    formatTable(
      ["NETWORK", "NAME", "MODE", "NIC", "SUBNET", "INTERNAL", "IMDS"],
      status.networks.map((n) => [
        short(n.id),
        networkName(n.id),
        n.mode,
        n.interfaceName,
        n.subnet,
        n.internal ? "yes" : "no",
        n.imdsAccess ? "allowed" : "blocked",
      ]),
    ),
    formatTable(
      ["ENDPOINT", "CONTAINER", "NETWORK", "ADDRESS", "MAC", "HOST INTERFACE", "AZURE"],
      status.endpoints.map((e) => [
        short(e.id),
        names.containers.get(e.id) ?? "-",
        networkName(e.networkId),
        e.address,
        e.macAddress,
        e.hostInterface ?? "(not joined)",
        e.azure ? azureLinksText(e.azure) : "-",
      ]),
    ),
  ];
  if (status.growth.length > 0) {
    sections.push(
      formatTable(
        ["GROWTH", "SUBNET", "STATE", "ADDED", "GIVEN BACK", "LAST ERROR"],
        status.growth.map((g) => [
          g.nic,
          g.subnet,
          g.state,
          String(g.added),
          String(g.removed),
          g.lastError ?? "-",
        ]),
      ),
    );
  }
  if (status.unlinks.length > 0) {
    sections.push(
      formatTable(
        ["REMOVED ENDPOINT", "ADDRESS", "UNDOING IN AZURE"],
        status.unlinks.map((u) => [short(u.endpointId), u.address, azureLinksText(u.links)]),
      ),
    );
  }
  const source = status.source.lastError
    ? `pool source ${status.source.name} (${status.source.location}): failing ${status.source.failures} times: ${status.source.lastError}`
    : `pool source ${status.source.name} (${status.source.location}): ok`;
  return `${sections.join("\n")}\n${source}\nstate: ${status.stateFile}\n`;
}

/** "linked 198.51.100.200 +1 lb pool", "failed: <why>". */
function azureLinksText(links: AzureLinks): string {
  const parts: string[] = [links.state];
  if (links.publicIpAddress) parts.push(links.publicIpAddress);
  else if (links.publicIp) parts.push("public IP");
  if (links.backendPools.length > 0) parts.push(`+${links.backendPools.length} lb pool`);
  return parts.join(" ") + (links.error ? `: ${links.error}` : "");
}
