/**
 * Talks to a running plugin over its unix socket, for the operator commands: its status, and its log
 * level.
 */
import http from "node:http";
import type { SubnetUsage } from "../../ipam-driver/allocator.js";
import type { EndpointRecord, NetworkRecord, PendingUnlink } from "../../driver/driver-state.js";
import type { GrowthStatus } from "../../ipam-driver/pool-growth.js";
import type { ReconcileStatus } from "../reconciler.js";

/** What GET /status answers. */
export type PluginStatus = {
  pool: SubnetUsage[];
  networks: NetworkRecord[];
  endpoints: EndpointRecord[];
  /** Azure links of removed endpoints still being undone. */
  unlinks: PendingUnlink[];
  /** Pool growth through Azure, per NIC subnet (empty when growth is off). */
  growth: GrowthStatus[];
  source: { name: string; location: string; lastError?: string; failures: number };
  stateFile: string;
  /** Absent from plugins older than the Docker-socket option. */
  reconciliation?: ReconcileStatus;
};

/** GET /status of the running plugin. */
export function fetchStatus(socketPath: string): Promise<PluginStatus> {
  return call(socketPath, "GET", "/status") as Promise<PluginStatus>;
}

/** PUT /log-level: changes the running plugin's log level until it restarts. */
export function setLogLevel(socketPath: string, level: string): Promise<unknown> {
  return call(socketPath, "PUT", "/log-level", JSON.stringify({ level }));
}

function call(socketPath: string, method: string, path: string, body?: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = http.request({ socketPath, method, path, timeout: 5_000 }, (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => {
        try {
          const json = JSON.parse(text) as { Err?: string };
          if (response.statusCode !== 200) reject(new Error(json.Err ?? `HTTP ${response.statusCode}`));
          else resolve(json);
        } catch {
          reject(new Error(`the plugin answered HTTP ${response.statusCode} with no JSON`));
        }
      });
    });
    request.on("timeout", () => request.destroy(new Error("no answer within 5 s")));
    request.on("error", reject);
    request.end(body);
  });
}
