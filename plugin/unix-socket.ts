/**
 * Listening on the plugin's unix socket. A socket file left by a crashed instance is replaced; one that
 * a live process still answers on is not.
 */
import { mkdir, chmod, unlink } from "node:fs/promises";
import net from "node:net";
import type { Server } from "node:http";
import { dirname } from "node:path";
import { ConflictError } from "../lib/errors.js";

/** Resolves once `server` listens on `path` (mode 0600: only root may talk to the plugin). */
export async function listenOnUnixSocket(server: Server, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  if (await socketAnswers(path)) {
    throw new ConflictError(`${path} is already served by another process`, {
      hint: "stop the other plugin instance, or give this one another --socket",
    });
  }
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
}

/** True when a process accepts connections on the unix socket at `path`. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
