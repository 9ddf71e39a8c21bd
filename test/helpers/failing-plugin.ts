/**
 * Stands in for a plugin that answers but fails every call, on the plugin's socket while the real one
 * is down: dockerd then gives up on the plugin at once instead of retrying a dead socket for a while.
 */
import http from "node:http";
import { unlink } from "node:fs/promises";

export async function withFailingPlugin<T>(socketPath: string, body: () => Promise<T>): Promise<T> {
  await unlink(socketPath).catch(() => undefined);
  const server = http.createServer((_req, res) => {
    res.writeHead(500, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ Err: "the plugin is restarting" }));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    return await body();
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(socketPath).catch(() => undefined);
  }
}
