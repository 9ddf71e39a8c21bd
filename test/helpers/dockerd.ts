// Runs a private, real dockerd inside one VM namespace of an emulated VNet, with its own data/exec
// roots, socket and /run/docker/plugins, so e2e tests never meet another Docker on the machine. The
// dockerd is the machine's own (docker.io 20.10) or, with E2E_DOCKERD=26 or 28, one from a Debian
// rootfs of another release (test/dockerd-rootfs.sh) made the root of its mount namespace.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, readlinkSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { killPid, pidAlive, pollUntil, run, runOk } from "./run.js";
import type { RunOptions, RunResult } from "./run.js";
import type { Vnet } from "./vnet.js";

/**
 * The docker CLI to use. docker.io's own client (/usr/bin/docker, 20.10) speaks to every dockerd under
 * test (20.10 to 28 all serve API 1.41); a newer client elsewhere on PATH would refuse dockerd 20.10's
 * API unless pinned, which {@link Dockerd.docker} also does through DOCKER_API_VERSION.
 */
export const DOCKER_CLI = existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";

/** dockerd 20.10 speaks API 1.41 at most. */
const DOCKER_API_VERSION = "1.41";

/**
 * The Docker versions the e2e suites run against, and the Debian release whose docker.io carries each
 * (README, "Tested Docker versions"). The machine's own is bookworm's.
 */
export const DOCKERD_RELEASES = { "20.10": "bookworm", "26": "trixie", "28": "sid" } as const;
export type DockerdVersion = keyof typeof DOCKERD_RELEASES;

/**
 * The dockerd version this e2e run uses: E2E_DOCKERD (20.10, 26 or 28; test/run-all.sh runs the core
 * suites once per version), by default the machine's own 20.10.
 */
export function dockerdVersionUnderTest(): DockerdVersion {
  const wanted = process.env["E2E_DOCKERD"] ?? "20.10";
  if (!Object.hasOwn(DOCKERD_RELEASES, wanted))
    throw new Error(`E2E_DOCKERD=${wanted}: pick one of ${Object.keys(DOCKERD_RELEASES).join(", ")}`);
  return wanted as DockerdVersion;
}

const ROOTFS_SCRIPT = fileURLToPath(new URL("../../../test/dockerd-rootfs.sh", import.meta.url));

/**
 * The root filesystem that carries `version`'s dockerd, built (or found in the cache) by
 * test/dockerd-rootfs.sh; undefined for the machine's own.
 */
async function rootfsOf(version: DockerdVersion): Promise<string | undefined> {
  const release = DOCKERD_RELEASES[version];
  if (release === "bookworm") return undefined;
  const built = await runOk("bash", [ROOTFS_SCRIPT, release], { timeoutMs: 600_000 });
  return built.stdout.trim().split("\n").pop();
}

/** Options of {@link startDockerd}. */
export type DockerdOptions = {
  /**
   * Folder this dockerd sees as /run/docker/plugins (put the plugin's socket here). Default: a fresh
   * folder inside the dockerd's temp dir, removed by {@link Dockerd.stop}; a folder you pass is left alone.
   */
  pluginsDir?: string;
  /** Extra dockerd flags, e.g. ["--bridge=none"]. */
  extraArgs?: string[];
  /** How long to wait for the API to answer; default 60 s. */
  startTimeoutMs?: number;
  /**
   * Restart a dockerd stopped with `keepDir`: reuse its folder (containers, networks, images) and its
   * mount namespace.
   */
  restartOf?: Dockerd;
  /** Which dockerd; default {@link dockerdVersionUnderTest}. */
  version?: DockerdVersion;
  /**
   * Arrange this dockerd's private mount namespace as the machine a README user has (see
   * {@link MachineOptions}); README commands then run in that namespace with `readmeCommand`.
   */
  machine?: MachineOptions;
  /**
   * Give this dockerd its own UTS namespace with this host name (what `docker info` and a swarm node
   * report), instead of sharing the machine's. Kept by a restart.
   */
  hostname?: string;
  /**
   * Extra environment of the dockerd process, e.g. DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 (a swarm node
   * then runs a service's image from its own store instead of trying a registry first, as moby's own
   * integration daemons do). Kept by a restart.
   */
  env?: Record<string, string>;
};

/**
 * One change to the private mount namespace: a tmpfs, a bind mount, or an overlay whose upper folder
 * (a test folder) takes every write and may hold files that shadow the machine's own.
 */
export type MachineMount =
  | { type: "tmpfs"; target: string }
  | { type: "bind"; source: string; target: string }
  | { type: "overlay"; target: string; upper: string; work: string };

/**
 * The machine a user has, in dockerd's private mount namespace: `/run` is a fresh tmpfs in which dockerd
 * also listens on the default `/var/run/docker.sock` (recreated by a restarted dockerd, as on a real
 * host) and the plugins folder is `/run/docker/plugins`; docker.io's CLI is the one `docker` on PATH
 * (this machine has a newer one in /usr/local/bin that refuses dockerd 20.10's API); plus `mounts`.
 */
export type MachineOptions = { mounts?: MachineMount[] };

/** Options of {@link Dockerd.stop}. */
export type StopOptions = {
  /** Leave the folder (data, images, networks) for a dockerd started again with `dir`. */
  keepDir?: boolean;
  /** Stop dockerd only, leaving its containers running (what live-restore needs). */
  keepContainers?: boolean;
};

/**
 * Arranges a private mount namespace, then runs a program in it: run as `unshare --mount --propagation
 * private -- sh -c MACHINE_SCRIPT sh STEP... -- PROGRAM ARG...`. Every path arrives as a positional
 * parameter, never spliced into the script text.
 */
export const MACHINE_SCRIPT = `set -e
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; exec "$@" ;;
    tmpfs) mount -t tmpfs -o mode=0755 tmpfs "$2"; shift 2 ;;
    mkdir) mkdir -p "$2"; shift 2 ;;
    bind) mount --bind "$2" "$3"; shift 3 ;;
    overlay) mount -t overlay overlay -o "lowerdir=$2,upperdir=$3,workdir=$4" "$2"; shift 4 ;;
    hostname) hostname "$2"; shift 2 ;;
    *) echo "machine: unknown step $1" >&2; exit 2 ;;
  esac
done
echo "machine: no -- PROGRAM" >&2
exit 2`;

/** The steps of {@link MACHINE_SCRIPT} that make `mounts`. */
export function mountSteps(mounts: readonly MachineMount[]): string[] {
  const steps: string[] = [];
  for (const mount of mounts) {
    if (mount.type === "tmpfs") steps.push("tmpfs", mount.target);
    else if (mount.type === "bind") steps.push("bind", mount.source, mount.target);
    else steps.push("overlay", mount.target, mount.upper, mount.work);
  }
  return steps;
}

/**
 * The README's user runs Node.js 24 as their `node`. This machine's /usr/bin/node may be older, so on
 * an arranged machine the node running the tests (24: test/run-all.sh puts it first on PATH) stands in
 * for it.
 */
export const USER_NODE: readonly MachineMount[] =
  process.execPath !== "/usr/bin/node" && existsSync("/usr/bin/node")
    ? [{ type: "bind", source: process.execPath, target: "/usr/bin/node" }]
    : [];

/** The user's default Docker socket, inside a {@link MachineOptions} namespace. */
export const MACHINE_DOCKER_SOCKET = "/var/run/docker.sock";

function anchorSteps(pluginsDir: string, machine: MachineOptions | undefined): string[] {
  const steps: string[] = [];
  if (machine !== undefined) {
    steps.push("tmpfs", "/run");
    if (existsSync("/usr/local/bin/docker") && existsSync("/usr/bin/docker"))
      steps.push("bind", "/usr/bin/docker", "/usr/local/bin/docker");
    steps.push(...mountSteps(USER_NODE));
  }
  steps.push("mkdir", "/run/docker/plugins", "bind", pluginsDir, "/run/docker/plugins");
  return [...steps, ...mountSteps(machine?.mounts ?? [])];
}

// Runs as `sh -c SCRIPT sh PLUGINS_DIR DOCKERD_DIR ROOTFS DOCKER_CLI [HOSTNAME]`: a private mount namespace with PLUGINS_DIR
// on /run/docker/plugins, like MACHINE_SCRIPT's, and with ROOTFS made its root. A chroot is not enough: runc would start containers on the host's root. The
// rootfs is shared by every run, so what the dockerd writes lands in tmpfs or in DOCKERD_DIR, bound at
// its own path; the kernel views (proc, sysfs of the VM's network namespace, cgroups, devices) are
// mounted as a booted system has them.
const ROOTFS_ANCHOR_SCRIPT = `set -e
root=$3
if [ -n "\${5:-}" ]; then hostname "$5"; fi
mount --bind "$root" "$root"
for fs in run tmp; do mount -t tmpfs -o mode=0755 tmpfs "$root/$fs"; done
chmod 1777 "$root/tmp"
mkdir -p "$root/run/docker/plugins" "$root$2"
mount --bind "$1" "$root/run/docker/plugins"
mount --bind "$2" "$root$2"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
# Debian's docker.io of these releases ships no CLI: a documented command run here (machineOf) uses
# the machine's own, as a user's shell on such a VM finds one on its PATH.
mount -t tmpfs -o mode=0755 tmpfs "$root/usr/local/bin"
touch "$root/usr/local/bin/docker"
mount --bind "$4" "$root/usr/local/bin/docker"
cd "$root"
pivot_root . .oldroot
umount -l /.oldroot
exec sleep 2147483647`;

/** A private dockerd started by {@link startDockerd}. */
export class Dockerd {
  /** Temp dir holding data/, exec/, docker.sock, docker.pid, dockerd.log. */
  readonly dir: string;
  /** Value for `docker -H` / DOCKER_HOST. */
  readonly host: string;
  readonly socketPath: string;
  /** The folder this dockerd sees as /run/docker/plugins. */
  readonly pluginsDir: string;
  readonly logFile: string;
  /** dockerd's pid (the launcher execs into it, so this is the spawned child's pid). */
  readonly pid: number;
  /** The VM (namespace) it runs in. */
  readonly vm: string;
  /** Milliseconds from spawn until the API answered. */
  startupMs = 0;
  /** The process that holds this dockerd's private mount namespace. */
  readonly anchorPid: number;
  /** `/run/netns/...` of {@link vm}. */
  readonly netnsPath: string;
  /** The machine arranged in the mount namespace, if any. */
  readonly machine: MachineOptions | undefined;
  /** Its own host name (and UTS namespace, held by the anchor), if it was given one. */
  readonly hostname: string | undefined;
  /** Extra environment it was started with. */
  readonly env: Record<string, string> | undefined;
  private containerdPid: number | undefined;
  private stopping: Promise<void> | undefined;

  /** @internal use {@link startDockerd}. */
  constructor(init: {
    dir: string;
    pluginsDir: string;
    pid: number;
    vm: string;
    anchorPid: number;
    netnsPath: string;
    machine: MachineOptions | undefined;
    hostname?: string | undefined;
    env?: Record<string, string> | undefined;
  }) {
    this.dir = init.dir;
    this.hostname = init.hostname;
    this.env = init.env;
    this.anchorPid = init.anchorPid;
    this.netnsPath = init.netnsPath;
    this.machine = init.machine;
    this.socketPath = join(init.dir, "docker.sock");
    this.host = `unix://${this.socketPath}`;
    this.pluginsDir = init.pluginsDir;
    this.logFile = join(init.dir, "dockerd.log");
    this.pid = init.pid;
    this.vm = init.vm;
  }

  /** True while the dockerd process is alive. */
  get running(): boolean {
    return pidAlive(this.pid);
  }

  /** Runs the docker CLI against this dockerd (never through a shell); a non-zero exit is returned. */
  docker(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return run(DOCKER_CLI, ["-H", this.host, ...args], { timeoutMs: 60_000, ...options, env: this.cliEnv() });
  }

  /** Like {@link docker} but throws on a non-zero exit. */
  async dockerOk(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const result = await this.docker(args, options);
    if (result.code !== 0) {
      throw new Error(
        `docker ${args.join(" ")} exited ${result.code}: ${(result.stderr || result.stdout).trim()}`,
      );
    }
    return result;
  }

  /**
   * `docker network create -d azure --ipam-driver azure <options> <name>` (the legacy plugin's driver
   * name); returns the network id.
   */
  async createAzureNetwork(name: string, ...options: string[]): Promise<string> {
    const args = ["network", "create", "-d", "azure", "--ipam-driver", "azure", ...options, name];
    return (await this.dockerOk(args)).stdout.trim();
  }

  /** The last `lines` lines of dockerd's log, for failure messages. */
  logTail(lines = 40): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no dockerd log)";
    }
  }

  /**
   * No image can be pulled here, so tests use one built from busybox-static: every applet symlinked
   * into /bin, imported with `tar -c | docker import`. Idempotent per tag.
   */
  async importBusybox(tag = "busybox:local"): Promise<void> {
    const rootfs = await mkdtemp(join(this.dir, "busybox-rootfs-"));
    try {
      for (const sub of ["bin", "etc", "tmp", "proc", "sys", "dev", "root"]) await mkdir(join(rootfs, sub));
      await copyFile("/usr/bin/busybox", join(rootfs, "bin", "busybox"));
      await chmod(join(rootfs, "bin", "busybox"), 0o755);
      const applets = (await runOk("/usr/bin/busybox", ["--list"])).stdout
        .split("\n")
        .filter((a) => /^[\w.[-]+$/.test(a));
      for (const applet of applets) {
        if (applet !== "busybox") await symlink("busybox", join(rootfs, "bin", applet));
      }
      await writeFile(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
      await writeFile(join(rootfs, "etc", "group"), "root:x:0:\n");
      await this.pipeTarIntoImport(rootfs, tag);
    } finally {
      await rm(rootfs, { recursive: true, force: true });
    }
  }

  private pipeTarIntoImport(rootfs: string, tag: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const tar = spawn("tar", ["-C", rootfs, "-c", "."], { stdio: ["ignore", "pipe", "pipe"] });
      const imp = spawn(DOCKER_CLI, ["-H", this.host, "import", "-", tag], {
        stdio: ["pipe", "pipe", "pipe"],
        env: this.cliEnv(),
      });
      let errors = "";
      tar.stderr.on("data", (c: Buffer) => (errors += c.toString()));
      imp.stderr.on("data", (c: Buffer) => (errors += c.toString()));
      imp.stdout.resume();
      imp.stdin.on("error", () => undefined);
      tar.stdout.pipe(imp.stdin);
      const codes = new Map<string, number | null>();
      const timer = setTimeout(() => {
        tar.kill("SIGKILL");
        imp.kill("SIGKILL");
      }, 120_000);
      const finish = (name: string, code: number | null): void => {
        codes.set(name, code);
        if (codes.size < 2) return;
        clearTimeout(timer);
        if (codes.get("tar") === 0 && codes.get("import") === 0) resolve();
        else
          reject(
            new Error(
              `tar | docker import ${tag} failed (tar ${codes.get("tar")}, import ${codes.get("import")}): ${errors.trim()}`,
            ),
          );
      };
      tar.on("error", reject);
      imp.on("error", reject);
      tar.on("close", (code) => finish("tar", code));
      imp.on("close", (code) => finish("import", code));
    });
  }

  /**
   * Stops dockerd (SIGTERM, SIGKILL after a bounded wait), then any containerd or shim of this dockerd
   * that outlived it, then deletes the temp dir. Safe to call twice; keeps going past errors.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.stopping ??= this.runStop(options);
    return this.stopping;
  }

  /** @internal records containerd's pid while its pid file still exists. */
  noteContainerdPid(): void {
    const pidFile = join(this.dir, "exec", "containerd", "containerd.pid");
    try {
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0) this.containerdPid = pid;
    } catch {
      // dockerd may have been given an external containerd; then there is nothing of ours to stop.
    }
  }

  private async runStop(options: StopOptions): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (step: () => Promise<unknown>): Promise<void> => {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    };
    this.noteContainerdPid();
    // dockerd stops its containers on SIGTERM (up to --shutdown-timeout, set to 5 s at start).
    await attempt(async () => {
      if (!(await killPid(this.pid, 20_000))) throw new Error(`dockerd pid ${this.pid} would not die`);
    });
    if (options.keepContainers) {
      if (errors.length > 0) throw new AggregateError(errors, `stopping dockerd ${this.pid}`);
      return;
    }
    if (!options.keepDir) await attempt(() => killPid(this.anchorPid, 5_000));
    const leftovers = new Set<number>(this.processesUsingDir());
    if (this.containerdPid !== undefined) leftovers.add(this.containerdPid);
    await Promise.all(
      [...leftovers].map((pid) =>
        attempt(async () => {
          if (!(await killPid(pid, 5_000)))
            throw new Error(`pid ${pid} (of dockerd ${this.pid}) would not die`);
        }),
      ),
    );
    // Mounts were made in dockerd's private mount namespace, which died with its last process; this
    // only catches something that leaked into ours.
    for (const mountPoint of mountsUnder(this.dir).reverse()) {
      await attempt(() => runOk("umount", ["-l", mountPoint]));
    }
    if (!options.keepDir) await attempt(() => rm(this.dir, { recursive: true, force: true, maxRetries: 3 }));
    if (errors.length > 0)
      throw new AggregateError(errors, `stopping dockerd ${this.pid}: ${errors.length} error(s)`);
  }

  /**
   * Pids whose command line names this dockerd's exec or data root: its containerd and
   * containerd-shims, which reparent away from dockerd. The dir name is random per run, so nothing
   * else can match (a plugin given this dockerd's API socket names the dir, but not those roots).
   */
  private processesUsingDir(): number[] {
    const pids: number[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8");
        const cwd = safeReadlink(`/proc/${entry}/cwd`);
        const roots = [join(this.dir, "exec"), join(this.dir, "data")];
        if (roots.some((root) => argv.includes(root) || cwd.startsWith(root)) && pidAlive(Number(entry)))
          pids.push(Number(entry));
      } catch {
        // The process exited while we looked.
      }
    }
    return pids;
  }

  private cliEnv(): NodeJS.ProcessEnv {
    // A private CLI config dir keeps the test from reading or writing ~/.docker.
    return {
      ...process.env,
      DOCKER_API_VERSION,
      DOCKER_CONFIG: join(this.dir, "cli"),
      DOCKER_HOST: this.host,
      DOCKER_CONTEXT: "",
    };
  }
}

function safeReadlink(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}

function mountsUnder(dir: string): string[] {
  let info: string;
  try {
    info = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  return info
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`));
}

/**
 * Starts a dockerd in `vm`'s namespace and resolves once its API answers. Its unix socket, data and
 * exec roots live in a fresh temp dir; `pluginsDir` is bind-mounted on /run/docker/plugins in a
 * private mount namespace, so a plugin socket `<pluginsDir>/<name>.sock` is discovered by this dockerd
 * only. `vnet.teardown()` stops it too, but call {@link Dockerd.stop} in `after` to stop it first.
 */
export async function startDockerd(vnet: Vnet, vm: string, options: DockerdOptions = {}): Promise<Dockerd> {
  vnet.vm(vm);
  const dir = options.restartOf?.dir ?? (await mkdtemp(join(tmpdir(), "avn-dockerd-")));
  const pluginsDir = options.restartOf?.pluginsDir ?? options.pluginsDir ?? join(dir, "plugins");
  await mkdir(pluginsDir, { recursive: true });
  await mkdir(join(dir, "cli"), { recursive: true });
  const configFile = join(dir, "daemon.json");
  // An empty config file keeps the host's /etc/docker/daemon.json out of the test.
  await writeFile(configFile, "{}\n");
  // prettier-ignore
  const args = [
    "--config-file", configFile,
    "--data-root", join(dir, "data"),
    "--exec-root", join(dir, "exec"),
    "--pidfile", join(dir, "docker.pid"),
    "-H", `unix://${join(dir, "docker.sock")}`,
    "--shutdown-timeout", "5",
    ...(options.extraArgs ?? []),
  ];
  const machine = options.restartOf?.machine ?? options.machine;
  const hostname = options.restartOf ? options.restartOf.hostname : options.hostname;
  const env = options.restartOf ? options.restartOf.env : options.env;
  if (hostname !== undefined && !/^[a-z][a-z0-9-]{0,62}$/.test(hostname))
    throw new Error(`bad host name ${JSON.stringify(hostname)}`);
  if (machine !== undefined) args.push("-H", `unix://${MACHINE_DOCKER_SOCKET}`);
  const rootfs = await rootfsOf(options.version ?? dockerdVersionUnderTest());
  if (rootfs !== undefined && machine !== undefined)
    throw new Error("a README machine runs the machine's own dockerd; E2E_DOCKERD is for the core suites");
  // Inside a root filesystem's own mount namespace (and its /run tmpfs) the user's default socket is
  // this dockerd's too, so a documented command run there (machineOf) reaches it as a user's would.
  if (rootfs !== undefined) args.push("-H", `unix://${MACHINE_DOCKER_SOCKET}`);
  const anchorPid =
    options.restartOf?.anchorPid ??
    (await (rootfs === undefined
      ? startMountAnchor(vnet, vm, MACHINE_SCRIPT, hostname !== undefined, [
          ...(hostname === undefined ? [] : ["hostname", hostname]),
          ...anchorSteps(pluginsDir, machine),
          "--",
          "sleep",
          "2147483647",
        ])
      : startMountAnchor(vnet, vm, ROOTFS_ANCHOR_SCRIPT, hostname !== undefined, [
          pluginsDir,
          dir,
          rootfs,
          "/usr/bin/docker",
          ...(hostname === undefined ? [] : [hostname]),
        ])));
  const log = openSync(join(dir, "dockerd.log"), "a");
  let child;
  try {
    const namespaces = [`--mount=/proc/${anchorPid}/ns/mnt`];
    if (hostname !== undefined) namespaces.push(`--uts=/proc/${anchorPid}/ns/uts`);
    child = vnet.spawnIn(vm, ["nsenter", ...namespaces, "--", "dockerd", ...args], {
      stdio: ["ignore", log, log],
      ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
    });
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (pid === undefined) {
    await rm(dir, { recursive: true, force: true });
    throw new Error("could not spawn dockerd (nsenter missing?)");
  }
  const dockerd = new Dockerd({
    dir,
    pluginsDir,
    pid,
    vm,
    anchorPid,
    netnsPath: vnet.nsPath(vm),
    machine,
    hostname,
    env,
  });
  vnet.onTeardown(() => dockerd.stop());
  let exitCode: number | null | undefined;
  child.once("exit", (code, signal) => (exitCode = code ?? (signal === null ? -1 : -2)));
  const started = Date.now();
  try {
    await pollUntil(
      `dockerd in ${vm} to answer on ${dockerd.host}`,
      async () => {
        if (exitCode !== undefined) throw new Error(`dockerd exited (${exitCode})`);
        const version = await dockerd.docker(["version", "--format", "{{.Server.Version}}"], {
          timeoutMs: 5_000,
        });
        return version.code === 0 && version.stdout.trim() !== "";
      },
      { timeoutMs: options.startTimeoutMs ?? 60_000, intervalMs: 100 },
    );
  } catch (error) {
    const tail = dockerd.logTail();
    await dockerd.stop().catch(() => undefined);
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n--- dockerd log tail ---\n${tail}`,
      {
        cause: error,
      },
    );
  }
  dockerd.startupMs = Date.now() - started;
  dockerd.noteContainerdPid();
  return dockerd;
}

/**
 * Starts the process that holds a private mount namespace, arranged by `script` (MACHINE_SCRIPT, or
 * ROOTFS_ANCHOR_SCRIPT for another release's dockerd) run with `args`; the script ends by exec'ing
 * `sleep`, which keeps the namespace alive, so a restarted dockerd finds the mounts (container network
 * namespaces) the previous one made, as it would on a real host. With `ownUts` it also holds a UTS
 * namespace of its own, whose host name the script sets.
 */
async function startMountAnchor(
  vnet: Vnet,
  vm: string,
  script: string,
  ownUts: boolean,
  args: string[],
): Promise<number> {
  const anchor = vnet.spawnIn(vm, [
    "unshare",
    "--mount",
    ...(ownUts ? ["--uts"] : []),
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    script,
    "sh",
    ...args,
  ]);
  const pid = anchor.pid;
  if (pid === undefined) throw new Error("could not spawn the mount-namespace anchor (unshare missing?)");
  // nsenter, unshare and sh exec one another in this pid; once it is `sleep`, every mount is made.
  await pollUntil(
    "the private mount namespace",
    () => {
      if (anchor.exitCode !== null) throw new Error(`the mount-namespace anchor exited (${anchor.exitCode})`);
      let argv0 = "";
      try {
        argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
      } catch {
        // Gone; the exit code says why on the next round.
      }
      return Promise.resolve(argv0 === "sleep");
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  return pid;
}
