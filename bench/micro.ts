// Small measurements that explain the plugin's time per call: what spawning one `ip` costs, what one
// durable state write (temp file, fsync, rename, directory fsync) costs, and one request's round trip.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { writeAtomically } from "../lib/state-file.js";
import { summarize, type Summary } from "./stats.js";

async function timeEach(count: number, step: () => Promise<unknown>): Promise<Summary> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await step();
    samples.push(performance.now() - started);
  }
  return summarize(samples);
}

/** Milliseconds to spawn `ip -j link show dev lo` and read its output, as the plugin's runTool does. */
export function ipSpawnCost(count = 50): Promise<Summary> {
  return timeEach(
    count,
    () =>
      new Promise<void>((resolve, reject) =>
        execFile("ip", ["-j", "link", "show", "dev", "lo"], (error) =>
          error ? reject(new Error(error.message, { cause: error })) : resolve(),
        ),
      ),
  );
}

/** Milliseconds of the plugin's own writeAtomically of `bytes` bytes in a fresh folder inside `parent`. */
export async function durableWriteCost(parent: string, bytes: number, count = 50): Promise<Summary> {
  const dir = await mkdtemp(join(parent, "bench-fsync-"));
  try {
    const content = "x".repeat(Math.max(1, bytes - 1)) + "\n";
    return await timeEach(count, () => writeAtomically(join(dir, "state.json"), content));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** POSTs `body` to `path` on a plugin socket; resolves with the status and the parsed answer. */
export function post(
  socketPath: string,
  path: string,
  body: unknown,
  agent?: http.Agent,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        socketPath,
        path,
        method: "POST",
        agent,
        headers: { Accept: "application/vnd.docker.plugins.v1.2+json" },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> });
          } catch (error) {
            reject(error as Error);
          }
        });
      },
    );
    request.on("error", reject);
    request.end(JSON.stringify(body));
  });
}

/** Milliseconds of one request that changes nothing (`NetworkDriver.GetCapabilities`), over the socket. */
export function roundTripCost(socketPath: string, count = 200): Promise<Summary> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return timeEach(count, async () => {
    const answer = await post(socketPath, "/NetworkDriver.GetCapabilities", {}, agent);
    if (answer.status !== 200) throw new Error(`GetCapabilities answered ${answer.status}`);
  }).finally(() => agent.destroy());
}
