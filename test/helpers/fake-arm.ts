/**
 * A stand-in for the part of Azure Resource Manager the plugin changes: network interfaces (list, GET,
 * PUT), public IP addresses (PUT, GET, DELETE, list), load balancer backend pools (GET) and the
 * asynchronous operations ARM answers changes with. It speaks the REST shapes @azure/arm-network 39.0.0
 * sends and expects (api-version 2026-01-01), over HTTPS with a test CA because the SDK refuses to send
 * a bearer token over plain HTTP. A NIC PUT is validated as Azure validates it and takes effect only
 * when its operation is polled to completion, so a client that does not wait cannot pass. ARM's faults
 * (403, 429, failed operations, ...) can be injected per request. A VM may have several NICs, each in a
 * subnet of its own (FakeArmNic.subnet); Azure's limits of 256 IP configurations per NIC and 256
 * private addresses per VM hold.
 *
 * The code is in fake-arm/, one job a file:
 * - start.ts: startFakeArm and the handle it returns; context.ts: the state every handler shares,
 *   the subnets
 * - server.ts: the HTTPS server; routes.ts: token, api-version and scope checks, the route table
 * - auth.ts: the bearer token; faults.ts: injected faults; operations.ts: long-running operations
 * - store.ts: the committed resources; in-play.ts: what unfinished operations are about to take
 * - nics.ts, nic-plan.ts, nic-addresses.ts: NIC handlers, PUT validation, private addresses
 * - public-ips.ts, load-balancers.ts: the other resources' handlers
 * - json.ts: resources as ARM writes them; request-body.ts: bodies as ARM reads them
 * - ids.ts: resource ids and operation URLs; ipv4.ts: addresses and a subnet's usable range
 * - errors.ts: ARM's error answers; types.ts: the exported types and constants
 */
export { startFakeArm } from "./fake-arm/start.js";
export * from "./fake-arm/types.js";
