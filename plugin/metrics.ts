/**
 * Prometheus metrics (opt-in with --metrics-address): the pool per NIC subnet and its growth through
 * Azure, Azure links by state, requests and their latency per call, errors by code, and what
 * reconciliation changed. Served on its own TCP address, never on the plugin socket, so a scraper
 * needs no access to the plugin's API.
 */
import http from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { SubnetUsage } from "../ipam-driver/allocator.js";
import type { GrowthStatus } from "../ipam-driver/pool-growth.js";

/** What the plugin does in Azure: pool growth per subnet, and the state of every endpoint's Azure links. */
export type AzureView = { growth: GrowthStatus[]; azureLinkStates: string[] };

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"call" | "outcome">;
  private readonly duration: Histogram<"call">;
  private readonly errors: Counter<"code">;
  private readonly reconciled: Counter<"kind">;

  constructor(usage: () => SubnetUsage[], azure: () => AzureView) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: "azure_vnet_requests_total",
      help: "Plugin API requests by call and outcome",
      labelNames: ["call", "outcome"],
      registers,
    });
    this.duration = new Histogram({
      name: "azure_vnet_request_duration_seconds",
      help: "Time to answer a plugin API request",
      labelNames: ["call"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.errors = new Counter({
      name: "azure_vnet_errors_total",
      help: "Failed requests by error code",
      labelNames: ["code"],
      registers,
    });
    this.reconciled = new Counter({
      name: "azure_vnet_reconciliation_actions_total",
      help: "Records removed because Docker no longer had them, by kind (network, endpoint, address)",
      labelNames: ["kind"],
      registers,
    });
    new Gauge({
      name: "azure_vnet_pool_addresses",
      help: "Secondary IPs of each NIC subnet by state (free, in_use, gone_but_held)",
      labelNames: ["nic", "subnet", "state"],
      registers,
      collect() {
        this.reset();
        for (const subnet of usage()) {
          const labels = { nic: subnet.nic, subnet: subnet.subnet };
          this.set({ ...labels, state: "free" }, subnet.free.length);
          this.set({ ...labels, state: "in_use" }, subnet.inUse.length);
          this.set({ ...labels, state: "gone_but_held" }, subnet.goneButHeld.length);
        }
      },
    });
    new Gauge({
      name: "azure_vnet_pool_size",
      help: "Secondary IPs configured on each NIC subnet",
      labelNames: ["nic", "subnet"],
      registers,
      collect() {
        this.reset();
        for (const subnet of usage())
          this.set({ nic: subnet.nic, subnet: subnet.subnet }, subnet.secondaries);
      },
    });
    this.azureGauges(azure, registers);
  }

  /** The Azure side: addresses grown and given back, failing growth, links by state. */
  private azureGauges(azure: () => AzureView, registers: Registry[]): void {
    new Gauge({
      name: "azure_vnet_pool_growth_addresses",
      help: "Addresses added to (added) or given back from (given_back) each NIC subnet through Azure since start",
      labelNames: ["nic", "subnet", "change"],
      registers,
      collect() {
        this.reset();
        for (const growth of azure().growth) {
          const labels = { nic: growth.nic, subnet: growth.subnet };
          this.set({ ...labels, change: "added" }, growth.added);
          this.set({ ...labels, change: "given_back" }, growth.removed);
        }
      },
    });
    new Gauge({
      name: "azure_vnet_pool_growth_failing",
      help: "1 while the last pool growth of a NIC subnet failed",
      labelNames: ["nic", "subnet"],
      registers,
      collect() {
        this.reset();
        for (const growth of azure().growth)
          this.set({ nic: growth.nic, subnet: growth.subnet }, growth.lastError ? 1 : 0);
      },
    });
    new Gauge({
      name: "azure_vnet_azure_links",
      help: "Endpoints with public IP or load-balancer links, by state (linking, linked, failed, unlinking)",
      labelNames: ["state"],
      registers,
      collect() {
        this.reset();
        for (const state of ["linking", "linked", "failed", "unlinking"]) this.set({ state }, 0);
        for (const state of azure().azureLinkStates) this.inc({ state });
      },
    });
  }

  /** Records one answered request. */
  observeRequest(call: string, status: number, durationMs: number, code: string | undefined): void {
    const outcome = status < 400 ? "ok" : "error";
    this.requests.inc({ call, outcome });
    this.duration.observe({ call }, durationMs / 1000);
    if (code) this.errors.inc({ code });
  }

  observeReconciliation(report: { networks: number; endpoints: number; addresses: number }): void {
    this.reconciled.inc({ kind: "network" }, report.networks);
    this.reconciled.inc({ kind: "endpoint" }, report.endpoints);
    this.reconciled.inc({ kind: "address" }, report.addresses);
  }

  /** Serves GET /metrics on `host:port`; resolves to the server once it listens. */
  async listen(address: string): Promise<http.Server> {
    const at = address.lastIndexOf(":");
    const host = address.slice(0, at);
    const port = Number(address.slice(at + 1));
    const server = http.createServer((req, res) => {
      if (req.method !== "GET" || req.url !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "Content-Type": this.registry.contentType }).end(text),
        (error: Error) => res.writeHead(500).end(error.message),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host.replace(/^\[|\]$/g, ""), () => resolve());
    });
    return server;
  }
}
