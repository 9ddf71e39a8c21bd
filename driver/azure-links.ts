/**
 * Links endpoints to Azure outside the request path: a public IP on the IP configuration that holds the
 * container's address, and load-balancer backend pools. Azure takes seconds to minutes, and dockerd must
 * not wait for it, so CreateEndpoint and DeleteEndpoint only record what is wanted; this worker does it
 * one change at a time, in order, records progress in the state file (shown by EndpointOperInfo and
 * `azure-vnet status`), retries what failed, and picks up unfinished work after a restart.
 */
import { IpConfigurationMissingError } from "../lib/arm/azure-nics.js";
import { PluginError, RetryLaterError } from "../lib/errors.js";
import type { Logger } from "../lib/logger.js";
import { SerialQueue } from "../lib/serial-queue.js";
import { shortId } from "../lib/short-id.js";
import type { StateSection } from "../lib/state-section.js";
import type { AzureLinks, DriverState } from "./driver-state.js";

/** The Azure operations the links need (Azure Resource Manager in production). */
export type LinkEditor = {
  createPublicIp(name: string): Promise<{ id: string; address: string }>;
  publicIp(reference: string): Promise<{ id: string; address: string }>;
  deletePublicIp(id: string): Promise<void>;
  linkIpConfiguration(
    macAddress: string,
    address: string,
    links: {
      publicIpId?: string;
      removePublicIpId?: string;
      addBackendPools?: string[];
      removeBackendPools?: string[];
    },
  ): Promise<void>;
};

/** Name of the public IP the plugin creates for an endpoint. */
export const PUBLIC_IP_NAME_PREFIX = "azure-vnet-";
const RETRY_DELAYS_MS = [5_000, 20_000, 60_000, 180_000];

export class AzureLinker {
  private readonly queue = new SerialQueue();
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly state: StateSection<DriverState>,
    private readonly editor: LinkEditor,
    private readonly logger: Logger,
    /** Called once an endpoint's public IP is associated in Azure. */
    private readonly onPublicIpLinked: (networkId: string, address: string) => Promise<void>,
    private readonly retryDelaysMs: readonly number[] = RETRY_DELAYS_MS,
  ) {}

  /** Queues the work a restart left unfinished. */
  resume(): void {
    const { endpoints, unlinks } = this.state.current;
    for (const endpoint of Object.values(endpoints))
      if (endpoint.azure && endpoint.azure.state !== "linked") void this.link(endpoint.id);
    for (const endpointId of Object.keys(unlinks)) void this.unlink(endpointId);
  }

  /** Links a recorded endpoint's IP configuration as its record asks; returns when done or failed. */
  link(endpointId: string): Promise<void> {
    return this.enqueue(endpointId, "link", () => this.linkNow(endpointId));
  }

  /** Undoes the links of a removed endpoint (recorded in `unlinks`) and deletes what the plugin created. */
  unlink(endpointId: string): Promise<void> {
    return this.enqueue(endpointId, "unlink", () => this.unlinkNow(endpointId));
  }

  /**
   * Takes no more work and waits a little for the change under way; what is left is recorded and
   * resumed at the next start (every step can be done twice).
   */
  async stop(waitMs = 5_000): Promise<void> {
    this.stopped = true;
    for (const timer of this.retries) clearTimeout(timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.queue.run(() => Promise.resolve()),
      new Promise((resolve) => (timer = setTimeout(resolve, waitMs))),
    ]);
    clearTimeout(timer);
  }

  private enqueue(endpointId: string, kind: "link" | "unlink", work: () => Promise<void>): Promise<void> {
    return this.queue.run(async () => {
      if (this.stopped) return;
      const started = Date.now();
      try {
        await work();
        this.logger.info(`azure ${kind} done`, { endpointId, durationMs: Date.now() - started });
      } catch (error) {
        await this.failed(endpointId, kind, error).catch((recordError: unknown) => {
          this.logger.error(`azure ${kind} failed and could not be recorded`, {
            endpointId,
            error: (error as Error).message,
            recordError: (recordError as Error).message,
          });
        });
      }
    });
  }

  private async linkNow(endpointId: string): Promise<void> {
    const endpoint = this.state.current.endpoints[endpointId];
    const network = endpoint && this.state.current.networks[endpoint.networkId];
    if (!endpoint?.azure || !network || endpoint.azure.state === "linked") return;
    const wanted = endpoint.azure;
    if (wanted.publicIp && !wanted.publicIpId) {
      const created = wanted.publicIp === "create";
      const publicIp = created
        ? await this.editor.createPublicIp(`${PUBLIC_IP_NAME_PREFIX}${shortId(endpointId)}`)
        : await this.editor.publicIp(wanted.publicIp);
      // Recorded before it is linked, so a crash or a removal in between still deletes what was created.
      await this.updateLinks(endpointId, {
        publicIpId: publicIp.id,
        publicIpAddress: publicIp.address,
        createdPublicIp: created,
      });
    }
    const current = this.state.current.endpoints[endpointId]?.azure;
    if (!current) return; // removed meanwhile: its unlink undoes what was done
    await this.editor.linkIpConfiguration(network.macAddress, endpoint.address, {
      ...(current.publicIpId ? { publicIpId: current.publicIpId } : {}),
      addBackendPools: current.backendPools,
    });
    // Removed while Azure worked: its unlink, queued behind this, undoes the link.
    if (!this.state.current.endpoints[endpointId]) return;
    // Outbound NAT changes first, so "linked" means the container's traffic already uses its public IP.
    if (current.publicIpId) await this.onPublicIpLinked(endpoint.networkId, endpoint.address);
    await this.updateLinks(endpointId, { state: "linked", error: undefined });
  }

  private async unlinkNow(endpointId: string): Promise<void> {
    const pending = this.state.current.unlinks[endpointId];
    if (!pending) return;
    const { links } = pending;
    // The address may already serve a new container (this unlink is a retry): what that container
    // asked for stays.
    const successor = Object.values(this.state.current.endpoints).find(
      (e) =>
        e.address === pending.address &&
        this.state.current.networks[e.networkId]?.macAddress === pending.macAddress,
    )?.azure;
    const removePublicIpId =
      links.publicIpId && !sameId(links.publicIpId, successor?.publicIpId) ? links.publicIpId : undefined;
    const removeBackendPools = links.backendPools.filter(
      (pool) => !(successor?.backendPools ?? []).some((kept) => sameId(kept, pool)),
    );
    if (removePublicIpId || removeBackendPools.length > 0) {
      await this.editor
        .linkIpConfiguration(pending.macAddress, pending.address, {
          ...(removePublicIpId ? { removePublicIpId } : {}),
          removeBackendPools,
        })
        .catch((error: unknown) => {
          // The address is no longer on the NIC: nothing is linked to it any more.
          if (!(error instanceof IpConfigurationMissingError)) throw error;
        });
    }
    if (links.publicIpId && links.createdPublicIp) await this.editor.deletePublicIp(links.publicIpId);
    await this.state.update((draft) => {
      delete draft.unlinks[endpointId];
    });
  }

  /** Records the failure where an operator sees it and schedules another try, while tries remain. */
  private async failed(endpointId: string, kind: "link" | "unlink", error: unknown): Promise<void> {
    const message = error instanceof PluginError ? error.userMessage : (error as Error).message;
    const attempts = await this.state.update((draft) => {
      const links = draft.endpoints[endpointId]?.azure ?? draft.unlinks[endpointId]?.links;
      if (!links) return undefined;
      links.attempts += 1;
      links.error = message;
      if (kind === "link") links.state = "failed";
      links.updatedAt = new Date().toISOString();
      return links.attempts;
    });
    if (attempts === undefined) return;
    const delay = error instanceof RetryLaterError ? error.retryAfterMs : this.retryDelaysMs[attempts - 1];
    this.logger.warn(`azure ${kind} failed`, { endpointId, error: message, attempts, retryInMs: delay });
    if (delay === undefined || this.stopped) return;
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      void (kind === "link" ? this.link(endpointId) : this.unlink(endpointId));
    }, delay);
    timer.unref();
    this.retries.add(timer);
  }

  private updateLinks(endpointId: string, change: Partial<AzureLinks>): Promise<void> {
    return this.state.update((draft) => {
      const links = draft.endpoints[endpointId]?.azure ?? draft.unlinks[endpointId]?.links;
      if (links) Object.assign(links, change, { updatedAt: new Date().toISOString() });
    });
  }
}

/** Azure resource ids compare without regard to case. */
function sameId(a: string, b: string | undefined): boolean {
  return b !== undefined && a.toLowerCase() === b.toLowerCase();
}
