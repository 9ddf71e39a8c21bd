/**
 * Makes sure only one plugin process owns a state directory. The lock is an abstract unix socket named
 * after the directory's device and inode: binding it is atomic, and the kernel frees the name the
 * moment its holder dies, however it dies, so there is no stale lock to recognise or take over. A pid
 * written in a file would not do: the managed plugin runs in a PID namespace of its own, where the host
 * service's pid means nothing. Abstract sockets belong to the network namespace instead, which the host
 * service and the managed plugin (host network) share; the state directory is the same inode in both.
 */
import { mkdir, stat } from "node:fs/promises";
import net from "node:net";
import { ConflictError } from "../lib/errors.js";

export type InstanceLock = {
  /** The abstract socket's name, as `ss -xlp` shows it (with a leading `@`). */
  name: string;
  release(): Promise<void>;
};

/** What the holder tells a second instance that asks, so that the refusal can name it. */
type Holder = { pid: number; socket: string };

/**
 * Takes the lock of `stateDir` for a plugin serving `socketPath`; throws ConflictError while another
 * live process, in any PID namespace, holds it.
 */
export async function acquireInstanceLock(stateDir: string, socketPath: string): Promise<InstanceLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const { dev, ino } = await stat(stateDir);
  const name = `azure-vnet-lock/${dev}:${ino}`;
  const me: Holder = { pid: process.pid, socket: socketPath };
  const server = net.createServer((connection) => connection.end(`${JSON.stringify(me)}\n`));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ path: `\0${name}` }, resolve);
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    const holder = await askHolder(name);
    const who = holder ? ` (pid ${holder.pid} in its PID namespace, serving ${holder.socket})` : "";
    throw new ConflictError(`another azure-vnet process${who} owns the state in ${stateDir}`, {
      hint: "stop it first, or give this instance its own --state-dir",
    });
  }
  // The lock must not keep a finished process alive.
  server.unref();
  return {
    name: `@${name}`,
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The holder's own description; undefined when it does not answer at once (it may be exiting). */
function askHolder(name: string): Promise<Holder | undefined> {
  return new Promise((resolve) => {
    let text = "";
    const socket = net.connect({ path: `\0${name}` });
    const done = (holder: Holder | undefined) => {
      socket.destroy();
      resolve(holder);
    };
    socket.setTimeout(1_000, () => done(undefined));
    socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
    socket.on("error", () => done(undefined));
    socket.on("end", () => {
      try {
        const holder = JSON.parse(text) as Partial<Holder>;
        done(typeof holder.pid === "number" ? { pid: holder.pid, socket: String(holder.socket) } : undefined);
      } catch {
        done(undefined);
      }
    });
  });
}
