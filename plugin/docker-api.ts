/**
 * The Docker Engine API calls the plugin and its operator commands need (list networks, inspect a
 * network, version, and for the doctor the engine's info), as plain HTTP over dockerd's unix socket. A client library would cost the
 * plugin ~25 MiB of memory for these three GETs (docs/architecture.md, "Package choices").
 */
import http from "node:http";

export type DockerNetwork = {
  Id: string;
  Name: string;
  Containers?: Record<string, { Name: string; EndpointID: string; IPv4Address?: string }>;
  IPAM?: { Config?: { AuxiliaryAddresses?: Record<string, string> }[] };
};

export type DockerVersion = { Version: string; ApiVersion: string };

/** What the doctor reads of `GET /info`: the resources this node advertises to the swarm scheduler. */
export type DockerInfo = {
  GenericResources?: { DiscreteResourceSpec?: { Kind: string; Value: number } }[] | null;
};

/** A client for dockerd at `socketPath`; every call fails after `timeoutMs`. */
export function dockerApi(socketPath: string, timeoutMs = 10_000) {
  const get = (path: string) => getJson(socketPath, path, timeoutMs);
  return {
    /** Every network, each inspected (the list alone does not carry containers). */
    async networks(): Promise<DockerNetwork[]> {
      const list = (await get("/networks")) as { Id: string }[];
      return Promise.all(
        list.map((network) => get(`/networks/${encodeURIComponent(network.Id)}`) as Promise<DockerNetwork>),
      );
    },
    version: () => get("/version") as Promise<DockerVersion>,
    info: () => get("/info") as Promise<DockerInfo>,
  };
}

function getJson(socketPath: string, path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      { socketPath, path, timeout: timeoutMs, headers: { Host: "docker" } },
      (response) => {
        let text = "";
        response.on("data", (chunk: Buffer) => (text += chunk.toString()));
        response.on("end", () => {
          if (response.statusCode !== 200) {
            reject(
              new Error(`Docker answered ${path} with HTTP ${response.statusCode}: ${text.slice(0, 200)}`),
            );
            return;
          }
          try {
            resolve(JSON.parse(text));
          } catch {
            reject(new Error(`Docker answered ${path} with something that is not JSON`));
          }
        });
      },
    );
    request.on("timeout", () =>
      request.destroy(new Error(`Docker did not answer ${path} within ${timeoutMs} ms`)),
    );
    request.on("error", reject);
  });
}
