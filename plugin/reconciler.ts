/**
 * Reconciliation with Docker, in the background: records that Docker no longer explains are removed.
 * dockerd does not tell a plugin about everything: it cannot reach a plugin that was down or crashed
 * at the wrong moment, and after its own restart it forgets to clean up some endpoints. So the plugin
 * asks the Docker API which networks, endpoints and addresses exist and releases the rest. It never
 * runs inside a plugin request (dockerd may be waiting on that request, and would deadlock), and it
 * leaves alone anything younger than a grace period, which may still be on its way into Docker.
 * Without a Docker API socket (an operator may withhold it: it grants full control of Docker) it is
 * off, and says so once.
 */
import type { NetworkDriver } from "../driver/network-driver.js";
import type { IpamDriver } from "../ipam-driver/ipam-driver.js";
import { dockerApi } from "./docker-api.js";
import type { Logger } from "../lib/logger.js";

export type ReconcilerOptions = {
  /** Docker's API socket; undefined turns reconciliation off. */
  socketPath: string | undefined;
  intervalMs: number;
  graceMs: number;
  /** Told what each pass removed, e.g. for metrics. */
  onReport?: (report: ReconcileReport) => void;
};

/** What one pass removed, and how many records it could not remove. */
export type ReconcileReport = { networks: number; endpoints: number; addresses: number; failures: number };

/** Whether reconciliation runs, for `azure-vnet status` and `doctor`. */
export type ReconcileStatus = {
  on: boolean;
  dockerSocket: string | undefined;
  /** Why the last pass could not ask Docker; absent after a pass that could. */
  lastError?: string;
};

/** What Docker knows, reduced to what reconciliation compares. */
export type DockerView = { networkIds: Set<string>; endpointIds: Set<string>; addresses: Set<string> };

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly docker: ReturnType<typeof dockerApi> | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly network: NetworkDriver,
    private readonly ipam: IpamDriver,
    private readonly logger: Logger,
    private readonly options: ReconcilerOptions,
  ) {
    this.docker = options.socketPath === undefined ? undefined : dockerApi(options.socketPath);
  }

  start(): void {
    if (!this.docker) {
      this.logger.warn(
        "reconciliation with Docker is off: no Docker API socket (--docker-socket is empty). Records that dockerd fails to delete stay until removed by hand",
        { hint: "give the plugin the Docker socket to turn it on; docs/security.md says what that grants" },
      );
      return;
    }
    if (this.options.intervalMs <= 0) return;
    // Soon after start, when dockerd has had a moment to finish its own cleanup; then periodically.
    this.schedule(Math.min(this.options.intervalMs, 10_000));
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  status(): ReconcileStatus {
    return {
      on: this.docker !== undefined && this.options.intervalMs > 0,
      dockerSocket: this.options.socketPath,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    };
  }

  /** One pass; resolves to what was removed, or undefined when Docker could not be asked. */
  async runOnce(): Promise<ReconcileReport | undefined> {
    if (!this.docker) return undefined;
    let view: DockerView;
    try {
      view = await this.dockerView(this.docker);
    } catch (error) {
      if (this.lastError === undefined) {
        this.logger.warn("cannot reach the Docker API; reconciliation waits for it", {
          socket: this.options.socketPath,
          error: (error as Error).message,
        });
      }
      this.lastError = (error as Error).message;
      return undefined;
    }
    this.lastError = undefined;
    return this.apply(view);
  }

  /**
   * Removes what Docker no longer explains. Each record is its own step: one that keeps failing (a
   * network whose rules cannot be removed, say) is logged and retried next pass, and never stops the
   * rest, the address pass included.
   */
  private async apply(view: DockerView): Promise<ReconcileReport> {
    const report: ReconcileReport = { networks: 0, endpoints: 0, addresses: 0, failures: 0 };
    const settled = (iso: string) => Date.now() - Date.parse(iso) > this.options.graceMs;
    const remove = async (
      kind: "networks" | "endpoints" | "addresses",
      id: string,
      step: () => Promise<void>,
    ) => {
      try {
        await step();
        report[kind] += 1;
      } catch (error) {
        report.failures += 1;
        this.logger.warn("reconciliation could not remove a record; it tries again next pass", {
          kind,
          id,
          error: (error as Error).message,
        });
      }
    };
    const { networks, endpoints } = this.network.summary();
    for (const network of networks) {
      if (view.networkIds.has(network.id) || !settled(network.createdAt)) continue;
      await remove("networks", network.id, () =>
        this.network.removeStaleNetwork(network.id, "Docker has no such network"),
      );
    }
    for (const endpoint of endpoints) {
      if (
        !view.networkIds.has(endpoint.networkId) ||
        view.endpointIds.has(endpoint.id) ||
        !settled(endpoint.createdAt)
      )
        continue;
      await remove("endpoints", endpoint.id, () =>
        this.network.removeStaleEndpoint(endpoint.id, "no container on its network has it"),
      );
    }
    for (const reservation of this.ipam.reservations()) {
      const inUse =
        view.addresses.has(reservation.address) ||
        (reservation.endpointId !== undefined && view.endpointIds.has(reservation.endpointId));
      if (inUse || !settled(reservation.reservedAt)) continue;
      await remove("addresses", reservation.address, () =>
        this.ipam.releaseStale(
          reservation.address,
          "no container or auxiliary address of any Docker network uses it",
        ),
      );
    }
    if (report.networks + report.endpoints + report.addresses + report.failures > 0)
      this.logger.info("reconciled with Docker", report);
    return report;
  }

  /** Every network's endpoints and addresses; all networks, since the IPAM may serve any driver. */
  private async dockerView(docker: ReturnType<typeof dockerApi>): Promise<DockerView> {
    const details = await docker.networks();
    const view: DockerView = { networkIds: new Set(), endpointIds: new Set(), addresses: new Set() };
    for (const network of details) {
      view.networkIds.add(network.Id);
      for (const container of Object.values(network.Containers ?? {})) {
        view.endpointIds.add(container.EndpointID);
        if (container.IPv4Address) view.addresses.add(container.IPv4Address.split("/")[0]!);
      }
      for (const config of network.IPAM?.Config ?? []) {
        for (const address of Object.values(config.AuxiliaryAddresses ?? {})) view.addresses.add(address);
      }
    }
    return view;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .catch((error: unknown) =>
          this.logger.error("reconciliation failed", { error: (error as Error).message }),
        )
        .finally(() => {
          this.running = undefined;
          if (this.timer !== undefined) this.schedule(this.options.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }
}
