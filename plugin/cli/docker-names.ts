/**
 * Docker's names for the ids in the plugin's records (network and container names), for the operator's
 * status table. Only the operator commands ask Docker; the plugin itself never does while answering.
 */
import { dockerApi } from "../docker-api.js";

/** Docker's names by network id and by endpoint id. */
export type DockerNames = { networks: Map<string, string>; containers: Map<string, string> };

/** Names by network id and by endpoint id; empty maps when Docker cannot be reached. */
export async function dockerNames(socketPath: string): Promise<DockerNames> {
  const names: DockerNames = { networks: new Map(), containers: new Map() };
  try {
    for (const network of await dockerApi(socketPath, 5_000).networks()) {
      names.networks.set(network.Id, network.Name);
      for (const container of Object.values(network.Containers ?? {}))
        names.containers.set(container.EndpointID, container.Name);
    }
  } catch {
    // Names are a convenience; the table shows ids without them.
  }
  return names;
}
