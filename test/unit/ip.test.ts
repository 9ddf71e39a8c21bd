/** Address and prefix parsing: what is accepted, how it is canonicalised, what is refused. */
import { expect } from "chai";
import { firstHost, parseIp, parsePrefix, prefixContains, prefixCovers } from "../../lib/ip.js";

describe("ip", () => {
  it("parses and canonicalises host addresses", () => {
    expect(parseIp("10.1.0.4")).to.deep.equal({ family: 4, text: "10.1.0.4", value: 167837700n });
    expect(parseIp("fd00:0:0::1")?.text).to.equal("fd00::1");
  });
  it("refuses what is not a plain host address", () => {
    for (const text of [
      "",
      "10.1.0",
      "10.1.0.256",
      "010.1.0.4",
      "10.1.0.4/24",
      "fe80::1%eth0",
      "::ffff:1.2.3.4",
      "x",
      " 10.1.0.4",
    ]) {
      expect(parseIp(text), text).to.equal(undefined);
    }
    expect(parseIp(42 as unknown as string)).to.equal(undefined);
  });
  it("parses prefixes strictly or clears host bits", () => {
    expect(parsePrefix("10.1.0.0/24")).to.include({ text: "10.1.0.0/24", length: 24 });
    expect(parsePrefix("10.1.0.7/24")).to.equal(undefined);
    expect(parsePrefix("10.1.0.7/24", false)?.text).to.equal("10.1.0.0/24");
    expect(parsePrefix("fd00:1::/64")?.text).to.equal("fd00:1::/64");
    for (const text of ["10.1.0.0", "10.1.0.0/33", "10.1.0.0/-1", "10.1.0.0/24/1", "10.1.0.0/ 24", "/24"]) {
      expect(parsePrefix(text), text).to.equal(undefined);
    }
  });
  it("answers containment and the first host", () => {
    const subnet = parsePrefix("10.1.0.0/24")!;
    expect(prefixContains(subnet, parseIp("10.1.0.255")!)).to.equal(true);
    expect(prefixContains(subnet, parseIp("10.1.1.0")!)).to.equal(false);
    expect(prefixCovers(subnet, parsePrefix("10.1.0.16/28")!)).to.equal(true);
    expect(prefixCovers(subnet, parsePrefix("10.0.0.0/8")!)).to.equal(false);
    expect(firstHost(subnet).text).to.equal("10.1.0.1");
  });
});
