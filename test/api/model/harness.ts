/**
 * The real side of the model-based test: the plugin service (both drivers) on a unix socket with a
 * fake host and the twoNicPool() pool file, its state directory on tmpfs, a fake Docker API for
 * reconciliation, and a keep-alive client. One service serves many sequences; `reset` brings it back
 * to the state of a fresh start before each one, and proves it did (or starts afresh).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type PluginConfig } from "../../../plugin/config.js";
import type { DockerNetwork } from "../../../plugin/docker-api.js";
import { createLogger } from "../../../lib/logger.js";
import type { ReconcileReport } from "../../../plugin/reconciler.js";
import { startService, type RunningService } from "../../../plugin/service.js";
import { createFakeHost, type FakeHost } from "../../helpers/fake-host.js";
import { twoNicPool } from "../../helpers/plugin-under-test.js";

export type Answer = { status: number; json: Record<string, unknown>; text: string };
/** What the fake Docker API reports: networks with their endpoints' ids and addresses. */
export type DockerView = Map<string, { endpointId: string; address: string }[]>;

/** State directories go to tmpfs when there is one, so the plugin's fsyncs cost little. */
function scratchRoot(): string {
  try {
    const probe = mkdtempSync("/dev/shm/azure-vnet-model-");
    return probe;
  } catch {
    return mkdtempSync(join(tmpdir(), "azure-vnet-model-"));
  }
}

export class Harness {
  readonly dir = scratchRoot();
  readonly stateFile = join(this.dir, "state", "state.json");
  private readonly socketPath = join(this.dir, "azure.sock");
  private readonly dockerSocket = join(this.dir, "docker.sock");
  private readonly config: PluginConfig;
  private readonly logger = createLogger("error", () => undefined);
  private service: RunningService | undefined;
  private agent = new http.Agent({ keepAlive: true });
  private docker: http.Server | undefined;
  private dockerView: DockerView = new Map();
  host: FakeHost = createFakeHost();
  /** The state file and host right after a fresh start: what `reset` must reproduce. */
  private cleanState = "";
  private cleanHost = "";
  /** How many resets needed a fresh start, for the summary line. */
  freshStarts = 0;

  constructor() {
    const poolFile = join(this.dir, "pool.json");
    writeFileSync(poolFile, JSON.stringify(twoNicPool()));
    this.config = {
      ...loadConfig(
        [
          ...["--socket", this.socketPath, "--state-dir", join(this.dir, "state")],
          ...["--pool-source", "file", "--pool-file", poolFile],
          ...["--docker-socket", this.dockerSocket, "--reconcile-interval", "0"],
        ],
        {},
      ),
      // Every record counts as settled, as if the pass ran long after the record was made.
      reconcileGraceMs: -1,
    };
  }

  async open(): Promise<void> {
    this.docker = http.createServer((req, res) => this.answerDocker(req, res));
    await new Promise<void>((resolve) => this.docker!.listen(this.dockerSocket, resolve));
    await this.startFresh();
  }

  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((resolve) => (this.docker ? this.docker.close(() => resolve()) : resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** POSTs a JSON body as dockerd does (no Content-Type) and reads the whole answer. */
  call(path: string, body: unknown): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        { socketPath: this.socketPath, path, method: "POST", agent: this.agent },
        (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => (text += chunk));
          response.on("end", () => {
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            const object = typeof json === "object" && json !== null && !Array.isArray(json);
            resolve({ status: response.statusCode ?? 0, json: object ? (json as Answer["json"]) : {}, text });
          });
        },
      );
      request.on("error", reject);
      request.end(JSON.stringify(body) + "\n");
    });
  }

  /** Stops the service and starts it again on the same state directory and host. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** One reconciliation pass against a Docker that knows `view`. */
  async reconcile(view: DockerView): Promise<ReconcileReport | undefined> {
    this.dockerView = view;
    return this.service!.reconcile();
  }

  readState(): string {
    return readFileSync(this.stateFile, "utf8");
  }

  /** The service's in-memory state document, serialised as the state file is. */
  memoryState(): string {
    return JSON.stringify(this.service!.currentState()) + "\n";
  }

  /**
   * Back to a fresh start before each sequence: when the state file or the host differ from what a
   * fresh start left, the service stops and starts again on an empty state directory and a new host
   * (cheaper here than undoing a sequence through the API, and nothing can survive it).
   */
  async reset(): Promise<void> {
    this.host.calls.length = 0;
    if (this.readState() === this.cleanState && this.host.snapshot() === this.cleanHost) return;
    this.freshStarts += 1;
    await this.startFresh();
  }

  private async startFresh(): Promise<void> {
    await this.stop();
    rmSync(join(this.dir, "state"), { recursive: true, force: true });
    mkdirSync(join(this.dir, "state"), { mode: 0o700 });
    this.host = createFakeHost();
    await this.start();
    this.host.calls.length = 0;
    this.cleanState = this.readState();
    this.cleanHost = this.host.snapshot();
  }

  private async start(): Promise<void> {
    this.service = await startService(this.config, { logger: this.logger, host: this.host, minSpacingMs: 0 });
  }

  private async stop(): Promise<void> {
    // Keep-alive connections die with the server; a new agent never reuses a dead one.
    this.agent.destroy();
    this.agent = new http.Agent({ keepAlive: true });
    await this.service?.close();
    this.service = undefined;
  }

  /** GET /networks and GET /networks/<id>, as plugin/docker-api.ts asks them. */
  private answerDocker(req: http.IncomingMessage, res: http.ServerResponse): void {
    const network = (id: string): DockerNetwork => ({
      Id: id,
      Name: `net-${id.slice(0, 5)}`,
      Containers: Object.fromEntries(
        (this.dockerView.get(id) ?? []).map((e, i) => [
          `container${i}`,
          { Name: `c${i}`, EndpointID: e.endpointId, IPv4Address: `${e.address}/24` },
        ]),
      ),
      IPAM: { Config: [] },
    });
    const path = req.url ?? "";
    let body: unknown;
    if (path === "/networks") body = [...this.dockerView.keys()].map((Id) => ({ Id }));
    else if (path.startsWith("/networks/"))
      body = network(decodeURIComponent(path.slice("/networks/".length)));
    res.writeHead(body === undefined ? 404 : 200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body ?? { message: "not found" }));
  }
}
