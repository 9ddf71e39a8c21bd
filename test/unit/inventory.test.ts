/** Joining a source's NIC list with the local interfaces. */
import { expect } from "chai";
import { resolveInventory } from "../../ipam-driver/inventory.js";
import type { LocalInterface } from "../../lib/host-net/host-network.js";
import { normalizeMac } from "../../lib/mac.js";

const locals: LocalInterface[] = [
  { name: "eth0", macAddress: "00:0d:3a:00:00:01", mtu: 1500, hasDefaultRoute: false },
  { name: "eth1", macAddress: "00:0d:3a:00:00:02", mtu: 9000, hasDefaultRoute: true },
];

describe("inventory", () => {
  it("normalises MACs from IMDS, ARM and Linux", () => {
    for (const text of ["000D3A000001", "00-0D-3A-00-00-01", "00:0d:3a:00:00:01"])
      expect(normalizeMac(text)).to.equal("00:0d:3a:00:00:01");
    for (const text of ["000D3A00000", "zz0D3A000001", ""])
      expect(normalizeMac(text), text).to.equal(undefined);
  });
  it("matches NICs to interfaces by MAC and makes the default-route NIC primary", () => {
    const inventory = resolveInventory(
      [
        {
          macAddress: "000D3A000001",
          subnets: [{ prefix: "10.1.0.0/24", primary: "10.1.0.4", secondaries: ["10.1.0.6", "10.1.0.5"] }],
        },
        {
          macAddress: "000D3A000002",
          subnets: [{ prefix: "10.2.0.0/24", primary: "10.2.0.4", secondaries: [] }],
        },
      ],
      locals,
    );
    expect(inventory.nics.map((n) => [n.interfaceName, n.isPrimary, n.mtu])).to.deep.equal([
      ["eth0", false, 1500],
      ["eth1", true, 9000],
    ]);
    expect(inventory.nics[0]!.subnets[0]).to.deep.equal({
      family: 4,
      prefix: "10.1.0.0/24",
      gateway: "10.1.0.1",
      primary: "10.1.0.4",
      secondaries: ["10.1.0.5", "10.1.0.6"],
    });
  });
  it("keeps the primary, the gateway, the broadcast address and duplicates out of the pool", () => {
    const inventory = resolveInventory(
      [
        {
          interfaceName: "eth0",
          subnets: [
            {
              prefix: "10.1.0.0/24",
              primary: "10.1.0.4",
              secondaries: ["10.1.0.4", "10.1.0.1", "10.1.0.255", "10.1.0.9", "10.1.0.9"],
            },
          ],
        },
      ],
      locals,
    );
    expect(inventory.nics[0]!.subnets[0]!.secondaries).to.deep.equal(["10.1.0.9"]);
    expect(inventory.nics[0]!.macAddress).to.equal("00:0d:3a:00:00:01");
  });
  it("trusts a source's primary flag and falls back to the first NIC", () => {
    const flagged = resolveInventory(
      [
        { macAddress: "000D3A000001", isPrimary: true, subnets: [] },
        { macAddress: "000D3A000002", subnets: [] },
      ],
      locals,
    );
    expect(flagged.nics.map((n) => n.isPrimary)).to.deep.equal([true, false]);
    const unmatched = resolveInventory(
      [
        { macAddress: "000D3A0000AA", subnets: [] },
        { macAddress: "000D3A0000BB", subnets: [] },
      ],
      [],
    );
    expect(unmatched.nics.map((n) => [n.interfaceName, n.isPrimary])).to.deep.equal([
      [undefined, true],
      [undefined, false],
    ]);
  });
  it("refuses malformed entries, naming them", () => {
    const cases: [Parameters<typeof resolveInventory>[0], string][] = [
      [[{ macAddress: "nope", subnets: [] }], 'NIC #1 has an invalid MAC address "nope"'],
      [[{ subnets: [] }], "NIC #1 has neither a MAC address nor an interface name"],
      [[{ interfaceName: "eth9", subnets: [] }], "NIC #1: no local interface is named eth9"],
      [
        [{ macAddress: "000D3A000001", subnets: [{ prefix: "10.1.0.0/40", secondaries: [] }] }],
        'eth0: subnet "10.1.0.0/40" is not a valid prefix',
      ],
      [
        [{ macAddress: "000D3A000001", subnets: [{ prefix: "10.1.0.0/24", secondaries: ["10.2.0.5"] }] }],
        'eth0: address "10.2.0.5" is not a valid address in 10.1.0.0/24',
      ],
      [
        [
          { macAddress: "000D3A000001", subnets: [] },
          { macAddress: "00:0d:3a:00:00:01", subnets: [] },
        ],
        "NIC 00:0d:3a:00:00:01 is listed twice",
      ],
    ];
    for (const [nics, message] of cases)
      expect(() => resolveInventory(nics, locals), message).to.throw(message);
  });
});
