/**
 * Docker's names for the ids in the plugin's records (network and container names), for the operator's
 * status table. Only the operator commands ask Docker; the plugin itself never does while answering.
 */
import Docker from "dockerode";

export type DockerNames = { networks: Map<string, string>; containers: Map<string, string> };

/** Names by network id and by endpoint id; empty maps when Docker cannot be reached. */
export async function dockerNames(socketPath: string): Promise<DockerNames> {
  const names: DockerNames = { networks: new Map(), containers: new Map() };
  try {
    const docker = new Docker({ socketPath, timeout: 5_000 });
    for (const summary of await docker.listNetworks()) {
      names.networks.set(summary.Id, summary.Name);
      const details = (await docker.getNetwork(summary.Id).inspect()) as {
        Containers?: Record<string, { Name: string; EndpointID: string }>;
      };
      for (const container of Object.values(details.Containers ?? {}))
        names.containers.set(container.EndpointID, container.Name);
    }
  } catch {
    // Names are a convenience; the table shows ids without them.
  }
  return names;
}
