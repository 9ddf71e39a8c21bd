// Builds the image the data-path benchmark runs in containers: busybox (ping, sh) plus this machine's
// iperf3 and the shared libraries ldd names, imported with `tar | docker import` (nothing is pulled).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { DOCKER_CLI, type Dockerd } from "../test/helpers/dockerd.js";
import { runOk } from "../test/helpers/run.js";

export const BENCH_IMAGE = "bench:local";
export const IPERF3 = "/usr/bin/iperf3";

/** A missing prerequisite: the message says what to do, so no stack trace is printed with it. */
export class MissingPrerequisite extends Error {}

/** Throws a clear message when iperf3 is missing; the benchmark installs nothing itself. */
export function requireIperf3(): void {
  if (!existsSync(IPERF3)) {
    throw new MissingPrerequisite(
      `${IPERF3} is missing: the data-path benchmark measures throughput with iperf3. ` +
        "Install it with `apt-get install -y iperf3` and run the benchmark again.",
    );
  }
}

/** Imports {@link BENCH_IMAGE} into `dockerd`. */
export async function importBenchImage(dockerd: Dockerd): Promise<void> {
  const rootfs = await mkdtemp(join(dockerd.dir, "bench-rootfs-"));
  try {
    for (const sub of ["bin", "etc", "tmp", "proc", "sys", "dev", "root"]) await mkdir(join(rootfs, sub));
    await copyFile("/usr/bin/busybox", join(rootfs, "bin", "busybox"));
    await chmod(join(rootfs, "bin", "busybox"), 0o755);
    const applets = (await runOk("/usr/bin/busybox", ["--list"])).stdout
      .split("\n")
      .filter((a) => /^[\w.[-]+$/.test(a) && a !== "busybox");
    for (const applet of applets) await symlink("busybox", join(rootfs, "bin", applet));
    const libraries = (await runOk("ldd", [IPERF3])).stdout
      .split("\n")
      .map((line) => /(\/\S+)\s+\(0x/.exec(line)?.[1])
      .filter((path): path is string => path !== undefined);
    for (const file of [IPERF3, ...libraries]) {
      await mkdir(join(rootfs, dirname(file)), { recursive: true });
      await copyFile(file, join(rootfs, file));
      await chmod(join(rootfs, file), 0o755);
    }
    await writeFile(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    await writeFile(join(rootfs, "etc", "group"), "root:x:0:\n");
    await tarIntoImport(dockerd, rootfs, BENCH_IMAGE);
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
}

function tarIntoImport(dockerd: Dockerd, rootfs: string, tag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const tar = spawn("tar", ["-C", rootfs, "-c", "."], { stdio: ["ignore", "pipe", "pipe"] });
    const imp = spawn(DOCKER_CLI, ["-H", dockerd.host, "import", "-", tag], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, DOCKER_API_VERSION: "1.41", DOCKER_CONFIG: join(dockerd.dir, "cli") },
    });
    let errors = "";
    tar.stderr.on("data", (c: Buffer) => (errors += c.toString()));
    imp.stderr.on("data", (c: Buffer) => (errors += c.toString()));
    imp.stdout.resume();
    imp.stdin.on("error", () => undefined);
    tar.stdout.pipe(imp.stdin);
    let pending = 2;
    let failed = false;
    const done = (what: string, code: number | null) => {
      if (code !== 0) failed = true;
      if (code !== 0) errors += ` (${what} exited ${code})`;
      pending -= 1;
      if (pending > 0) return;
      if (failed) reject(new Error(`tar | docker import ${tag} failed: ${errors.trim()}`));
      else resolve();
    };
    tar.on("error", reject);
    imp.on("error", reject);
    tar.on("close", (code) => done("tar", code));
    imp.on("close", (code) => done("docker import", code));
  });
}
