/** The three source document parsers, on good documents and on every way they can be broken. */
import { expect } from "chai";
import { createFileSource, parsePoolFile } from "../../ipam-driver/sources/file.js";
import { parseImdsNetwork } from "../../ipam-driver/sources/imds.js";
import { parseWireserverInterfaces } from "../../ipam-driver/sources/wireserver.js";

const IMDS = JSON.stringify({
  interface: [
    {
      ipv4: {
        ipAddress: [
          { privateIpAddress: "10.1.0.4", publicIpAddress: "20.1.2.3" },
          { privateIpAddress: "10.1.0.5", publicIpAddress: "" },
          { privateIpAddress: "10.1.0.6", publicIpAddress: "" },
        ],
        subnet: [{ address: "10.1.0.0", prefix: "24" }],
      },
      ipv6: { ipAddress: [{ privateIpAddress: "fd00:1::4" }, { privateIpAddress: "fd00:1::5" }] },
      macAddress: "000D3AF806EC",
    },
    { ipv4: { ipAddress: [], subnet: [] }, ipv6: { ipAddress: [] }, macAddress: "000D3AF806ED" },
  ],
});

describe("pool source parsers", () => {
  describe("IMDS", () => {
    it("takes the first address as primary and the rest as the pool, IPv6 as /64", () => {
      expect(parseImdsNetwork(IMDS)).to.deep.equal([
        {
          macAddress: "000D3AF806EC",
          subnets: [
            { prefix: "10.1.0.0/24", primary: "10.1.0.4", secondaries: ["10.1.0.5", "10.1.0.6"] },
            { prefix: "fd00:1::/64", primary: "fd00:1::4", secondaries: ["fd00:1::5"] },
          ],
        },
        { macAddress: "000D3AF806ED", subnets: [] },
      ]);
    });
    const broken: [string, string][] = [
      ["{", "IMDS network document is malformed: not JSON"],
      ["null", 'no "interface" array'],
      ['{"interface":{}}', 'no "interface" array'],
      ['{"interface":[{}]}', "interface #1 has no macAddress"],
      [
        '{"interface":[{"macAddress":"A","ipv4":{"ipAddress":{}}}]}',
        "interface #1 ipv4.ipAddress is not an array",
      ],
      [
        '{"interface":[{"macAddress":"A","ipv4":{"ipAddress":[{}]}}]}',
        "interface #1 has an ipAddress without privateIpAddress",
      ],
      [
        '{"interface":[{"macAddress":"A","ipv4":{"ipAddress":[{"privateIpAddress":"10.1.0.300"}]}}]}',
        'invalid IPv4 address "10.1.0.300"',
      ],
      [
        '{"interface":[{"macAddress":"A","ipv4":{"ipAddress":[{"privateIpAddress":"10.1.0.4"}]}}]}',
        "interface #1 has no ipv4 subnet",
      ],
      [
        '{"interface":[{"macAddress":"A","ipv4":{"ipAddress":[{"privateIpAddress":"10.1.0.4"}],"subnet":[{"address":"10.1.0.0","prefix":"99"}]}}]}',
        "invalid subnet 10.1.0.0/99",
      ],
    ];
    for (const [body, message] of broken) {
      it(`refuses ${body.slice(0, 60)}`, () => expect(() => parseImdsNetwork(body)).to.throw(message));
    }
  });

  describe("wireserver", () => {
    it("reads NICs, primary flags and subnets from attributes", () => {
      const xml = `<?xml version="1.0" encoding="utf-8"?>
        <Interfaces>
          <Interface MacAddress="000D3AF9DCA6" IsPrimary="true">
            <IPSubnet Prefix="10.240.0.0/16">
              <IPAddress Address="10.240.0.5" IsPrimary="true"/>
              <IPAddress Address="10.240.0.6" IsPrimary="false"/>
            </IPSubnet>
          </Interface>
          <Interface MacAddress="000D3AF9DCA7" IsPrimary="false"/>
        </Interfaces>`;
      expect(parseWireserverInterfaces(xml)).to.deep.equal([
        {
          macAddress: "000D3AF9DCA6",
          isPrimary: true,
          subnets: [{ prefix: "10.240.0.0/16", primary: "10.240.0.5", secondaries: ["10.240.0.6"] }],
        },
        { macAddress: "000D3AF9DCA7", isPrimary: false, subnets: [] },
      ]);
      expect(parseWireserverInterfaces("<Interfaces></Interfaces>")).to.deep.equal([]);
    });
    const broken: [string, string][] = [
      ["", "not XML"],
      ["<Interfaces><Interface", "not XML"],
      ["<Other/>", "no <Interfaces> element"],
      ["<Interfaces><Interface/></Interfaces>", "Interface #1 has no MacAddress"],
      [
        '<Interfaces><Interface MacAddress="A"><IPSubnet/></Interface></Interfaces>',
        "IPSubnet without Prefix",
      ],
      [
        '<Interfaces><Interface MacAddress="A"><IPSubnet Prefix="10.0.0.0/8"><IPAddress/></IPSubnet></Interface></Interfaces>',
        "IPAddress without Address",
      ],
    ];
    for (const [body, message] of broken) {
      it(`refuses ${JSON.stringify(body.slice(0, 50))}`, () =>
        expect(() => parseWireserverInterfaces(body))
          .to.throw(message)
          .with.property("message")
          .that.match(/^wireserver interface document is malformed: /));
    }
  });

  describe("pool file", () => {
    it("names a pool file it cannot read", async () => {
      const error = await createFileSource("/nonexistent/pool.json")
        .fetchNics()
        .then(
          () => undefined,
          (e: Error) => e,
        );
      expect(error?.message).to.match(/^cannot read pool file \/nonexistent\/pool\.json: ENOENT/);
    });

    it("reads NICs by MAC or by name", () => {
      const body = JSON.stringify({
        interfaces: [
          {
            interfaceName: "eth0",
            primary: true,
            subnets: [
              { prefix: "10.1.0.0/24", primaryAddress: "10.1.0.4", secondaryAddresses: ["10.1.0.5"] },
            ],
          },
          { macAddress: "00:0d:3a:00:00:02", subnets: [{ prefix: "10.2.0.0/24" }] },
        ],
      });
      expect(parsePoolFile(body)).to.deep.equal([
        {
          interfaceName: "eth0",
          isPrimary: true,
          subnets: [{ prefix: "10.1.0.0/24", primary: "10.1.0.4", secondaries: ["10.1.0.5"] }],
        },
        {
          macAddress: "00:0d:3a:00:00:02",
          isPrimary: false,
          subnets: [{ prefix: "10.2.0.0/24", secondaries: [] }],
        },
      ]);
    });
    const broken: [string, string][] = [
      ["[", "not JSON"],
      ["{}", 'it needs an "interfaces" array'],
      ['{"interfaces":[1]}', "interfaces[0] is not an object"],
      ['{"interfaces":[{"subnets":[]}]}', 'interfaces[0] needs "macAddress" or "interfaceName"'],
      ['{"interfaces":[{"macAddress":5,"subnets":[]}]}', "interfaces[0].macAddress is not a string"],
      ['{"interfaces":[{"interfaceName":"eth0"}]}', "interfaces[0].subnets is not an array"],
      [
        '{"interfaces":[{"interfaceName":"eth0","subnets":[{}]}]}',
        "interfaces[0].subnets[0].prefix is missing",
      ],
      [
        '{"interfaces":[{"interfaceName":"eth0","subnets":[{"prefix":"10.1.0.0/24","secondaryAddresses":[1]}]}]}',
        "interfaces[0].subnets[0].secondaryAddresses must be an array of strings",
      ],
    ];
    for (const [body, message] of broken) {
      it(`refuses ${body.slice(0, 60)}`, () =>
        expect(() => parsePoolFile(body, "pool.json")).to.throw(
          `pool.json is not a valid pool file: ${message}`,
        ));
    }
  });
});
