/**
 * Pool source `wireserver`: the NMAgent interface document the original Azure plugin read
 * (`getinterfaceinfov1`). XML, every value in attributes; `IsPrimary` marks both the primary NIC and
 * each NIC's primary address.
 */
import { XMLParser } from "fast-xml-parser";
import { UnavailableError } from "../../lib/errors.js";
import type { SourceNic } from "../inventory.js";
import { httpGet } from "../../lib/http-get.js";
import type { PoolSource } from "./source.js";

export const WIRESERVER_INTERFACES_PATH = "/machine/plugins?comp=nmagent&type=getinterfaceinfov1";

export function createWireserverSource(baseUrl: string, timeoutMs: number): PoolSource {
  const url = new URL(WIRESERVER_INTERFACES_PATH, baseUrl).toString();
  return {
    name: "wireserver",
    location: url,
    async fetchNics() {
      return parseWireserverInterfaces(await httpGet(url, { timeoutMs }));
    },
  };
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseAttributeValue: false,
  isArray: (name) => ["Interface", "IPSubnet", "IPAddress"].includes(name),
  processEntities: false,
});

type XmlAddress = { Address?: unknown; IsPrimary?: unknown };
type XmlSubnet = { Prefix?: unknown; IPAddress?: XmlAddress[] };
type XmlInterface = { MacAddress?: unknown; IsPrimary?: unknown; IPSubnet?: XmlSubnet[] };

/**
 * Turns the wireserver XML into NICs. Throws UnavailableError for a malformed document.
 * @example parseWireserverInterfaces('<Interfaces><Interface MacAddress="000D3AF9DCA6" IsPrimary="true"><IPSubnet Prefix="10.240.0.0/16"><IPAddress Address="10.240.0.5" IsPrimary="true"/></IPSubnet></Interface></Interfaces>')
 */
export function parseWireserverInterfaces(body: string): SourceNic[] {
  let document: { Interfaces?: { Interface?: XmlInterface[] } | "" };
  try {
    document = parser.parse(body, true) as typeof document;
  } catch (error) {
    throw malformed(`not XML (${(error as Error).message})`);
  }
  if (document?.Interfaces === undefined) throw malformed("no <Interfaces> element");
  const interfaces = document.Interfaces === "" ? [] : (document.Interfaces.Interface ?? []);
  return interfaces.map((entry, index) => {
    if (typeof entry.MacAddress !== "string") throw malformed(`Interface #${index + 1} has no MacAddress`);
    return {
      macAddress: entry.MacAddress,
      isPrimary: entry.IsPrimary === "true",
      subnets: (entry.IPSubnet ?? []).map((subnet) => {
        const prefix = subnet.Prefix;
        if (typeof prefix !== "string")
          throw malformed(`Interface #${index + 1} has an IPSubnet without Prefix`);
        const addresses = (subnet.IPAddress ?? []).map((address) => {
          if (typeof address.Address !== "string")
            throw malformed(`IPSubnet ${prefix} has an IPAddress without Address`);
          return { text: address.Address, isPrimary: address.IsPrimary === "true" };
        });
        const primary = addresses.find((address) => address.isPrimary)?.text;
        return {
          prefix,
          ...(primary !== undefined ? { primary } : {}),
          secondaries: addresses.filter((address) => !address.isPrimary).map((address) => address.text),
        };
      }),
    };
  });
}

function malformed(detail: string): UnavailableError {
  return new UnavailableError(`wireserver interface document is malformed: ${detail}`);
}
