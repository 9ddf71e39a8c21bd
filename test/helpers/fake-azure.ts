/**
 * A stand-in for the Azure endpoints the IPAM reads: IMDS (`/metadata/instance/network`, JSON) and the
 * wireserver (`getinterfaceinfov1`, XML), in their exact wire formats, generated from a pool-file style
 * NIC description; also IMDS's compute metadata and managed-identity tokens, which the Azure Resource
 * Manager client uses. Faults (status codes, timeouts, malformed bodies) can be injected per request.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { PoolFile } from "../../ipam-driver/sources/file.js";
import { FAKE_MI_TOKEN } from "./fake-arm.js";

export type Fault =
  | { kind: "status"; status: number; retryAfter?: string }
  | { kind: "hang" }
  | { kind: "body"; body: string };

export type FakeAzure = {
  /** Base URL of the first listener, e.g. http://127.0.0.1:41234. */
  url: string;
  /** Requests served so far, by path without query. */
  requests: { path: string; headers: http.IncomingHttpHeaders }[];
  /** The next `count` requests get `fault` instead of the document. */
  injectFault(fault: Fault, count?: number): void;
  close(): Promise<void>;
};

/** A pool file plus what only the stand-in needs: public IPs by private IP, as IMDS reports them. */
export type FakeAzureNics = PoolFile & { publicIps?: Record<string, string> };

/** Who the VM is, as IMDS compute metadata says (and as the ARM stand-in must agree). */
export const FAKE_COMPUTE = {
  name: "vm1",
  subscriptionId: "00000000-0000-0000-0000-000000000000",
  resourceGroupName: "rg",
  location: "westeurope",
};

export type FakeAzureOptions = {
  /**
   * Called per request, so tests (or a file) can change the NICs at any time. `source` is the client's
   * address (IPv4-mapped form stripped): IMDS and the wireserver answer each VM about its own NICs, so
   * one stand-in can serve several VMs.
   */
  nics: (source: string) => FakeAzureNics;
  listen?: { host: string; port: number }[];
};

export const IMDS_NEWEST_VERSIONS = ["2023-07-01", "2021-02-01", "2020-09-01"];

export async function startFakeAzure(options: FakeAzureOptions): Promise<FakeAzure> {
  const faults: Fault[] = [];
  const requests: FakeAzure["requests"] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://fake");
    requests.push({ path: url.pathname, headers: req.headers });
    const fault = faults.shift();
    if (fault?.kind === "hang") return; // the client's timeout must fire
    if (fault?.kind === "status") {
      res.writeHead(fault.status, fault.retryAfter ? { "Retry-After": fault.retryAfter } : {});
      res.end(JSON.stringify({ error: `injected ${fault.status}` }));
      return;
    }
    if (fault?.kind === "body") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(fault.body);
      return;
    }
    const source = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    let nics: FakeAzureNics;
    try {
      nics = options.nics(source);
    } catch (error) {
      // A stand-in that knows no VM at this address: say so rather than describe somebody else's NIC.
      res.writeHead(500, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
      return;
    }
    if (url.pathname.startsWith("/metadata/")) serveImds(req, res, url, nics);
    else if (url.pathname === "/machine/plugins" && url.searchParams.get("type") === "getinterfaceinfov1") {
      res.writeHead(200, { "Content-Type": "text/xml; charset=utf-8" });
      res.end(wireserverDocument(nics));
    } else {
      res.writeHead(404);
      res.end();
    }
  };
  const servers = await Promise.all(
    (options.listen ?? [{ host: "127.0.0.1", port: 0 }]).map(
      ({ host, port }) =>
        new Promise<http.Server>((resolve, reject) => {
          const server = http.createServer(handler);
          server.once("error", reject);
          server.listen(port, host, () => resolve(server));
        }),
    ),
  );
  const first = servers[0]!.address() as AddressInfo;
  return {
    url: `http://${first.address}:${first.port}`,
    requests,
    injectFault(fault, count = 1) {
      for (let i = 0; i < count; i++) faults.push(fault);
    },
    async close() {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}

function serveImds(req: http.IncomingMessage, res: http.ServerResponse, url: URL, nics: FakeAzureNics): void {
  const json = (status: number, body: unknown) => {
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
    res.end(JSON.stringify(body));
  };
  if (req.headers.metadata !== "true") {
    json(400, { error: "Bad request. Required metadata header not specified" });
    return;
  }
  if (!url.searchParams.get("api-version")) {
    json(400, {
      error: "Bad request. api-version was not specified in the request",
      "newest-versions": IMDS_NEWEST_VERSIONS,
    });
    return;
  }
  if (url.pathname === "/metadata/instance/network") json(200, imdsNetworkDocument(nics));
  else if (url.pathname === "/metadata/instance/compute") {
    const { subscriptionId, resourceGroupName, name } = FAKE_COMPUTE;
    json(200, {
      ...FAKE_COMPUTE,
      vmId: "0f4a6c1e-1b2c-4d5e-8f90-123456789abc",
      resourceId: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroupName}/providers/Microsoft.Compute/virtualMachines/${name}`,
    });
  } else if (url.pathname.replace(/\/$/, "") === "/metadata/identity/oauth2/token") {
    const expiresIn = 3600;
    json(200, {
      access_token: FAKE_MI_TOKEN,
      refresh_token: "",
      expires_in: String(expiresIn),
      expires_on: String(Math.floor(Date.now() / 1000) + expiresIn),
      not_before: String(Math.floor(Date.now() / 1000)),
      resource: url.searchParams.get("resource") ?? "",
      token_type: "Bearer",
    });
  } else json(404, { error: "Not found" });
}

/** The IMDS network document: MACs as 12 upper-case hex digits, all values strings, the primary first. */
export function imdsNetworkDocument(nics: FakeAzureNics): unknown {
  return {
    interface: nics.interfaces.map((nic) => {
      const v4 = nic.subnets.filter((s) => !s.prefix.includes(":"));
      const v6 = nic.subnets.filter((s) => s.prefix.includes(":"));
      const addresses = (subnets: typeof v4) =>
        subnets.flatMap((s) => [
          ...(s.primaryAddress ? [s.primaryAddress] : []),
          ...(s.secondaryAddresses ?? []),
        ]);
      return {
        ipv4: {
          ipAddress: addresses(v4).map((privateIpAddress) => ({
            privateIpAddress,
            publicIpAddress: nics.publicIps?.[privateIpAddress] ?? "",
          })),
          subnet: v4.map((s) => ({ address: s.prefix.split("/")[0], prefix: s.prefix.split("/")[1] })),
        },
        ipv6: { ipAddress: addresses(v6).map((privateIpAddress) => ({ privateIpAddress })) },
        macAddress: (nic.macAddress ?? "").replace(/:/g, "").toUpperCase(),
      };
    }),
  };
}

/** The wireserver's getinterfaceinfov1 XML. */
export function wireserverDocument(nics: PoolFile): string {
  const interfaces = nics.interfaces.map((nic) => {
    const subnets = nic.subnets.map((s) => {
      const addresses = [
        ...(s.primaryAddress ? [`<IPAddress Address="${s.primaryAddress}" IsPrimary="true"/>`] : []),
        ...(s.secondaryAddresses ?? []).map((a) => `<IPAddress Address="${a}" IsPrimary="false"/>`),
      ];
      return `<IPSubnet Prefix="${s.prefix}">${addresses.join("")}</IPSubnet>`;
    });
    const mac = (nic.macAddress ?? "").replace(/:/g, "").toUpperCase();
    return `<Interface MacAddress="${mac}" IsPrimary="${nic.primary === true}">${subnets.join("")}</Interface>`;
  });
  return `<?xml version="1.0" encoding="utf-8"?><Interfaces>${interfaces.join("")}</Interfaces>`;
}
