/**
 * How a host tool's failure becomes a typed error: the one classifier knows each tool's wording for
 * "not there", and the deletions and checks that tolerate absence catch that type, not the text.
 */
import { expect } from "chai";
import { linkExists } from "../../lib/host-net/interfaces.js";
import {
  HostObjectMissingError,
  HostToolError,
  ignoreMissing,
  missingObject,
  runTool,
} from "../../lib/host-net/run-tool.js";
import { UnavailableError } from "../../lib/errors.js";

describe("host tool errors", () => {
  it("reads each tool's wording for a missing device, route, address, chain or rule", () => {
    expect(missingObject("ip", 'Device "azt0" does not exist.')).to.equal("device");
    expect(missingObject("ip", 'Cannot find device "azt0"')).to.equal("device");
    expect(missingObject("ip", "RTNETLINK answers: No such process")).to.equal("route");
    expect(missingObject("ip", "RTNETLINK answers: Cannot assign requested address")).to.equal("address");
    expect(missingObject("iptables", "iptables: No chain/target/match by that name.")).to.equal("chain");
    expect(missingObject("iptables", "iptables v1.8.9 (nf_tables): Chain 'AZV-X' does not exist")).to.equal(
      "chain",
    );
    expect(
      missingObject("iptables", "iptables: Bad rule (does a matching rule exist in that chain?)."),
    ).to.equal("rule");
    expect(missingObject("ebtables", "ebtables: No chain/target/match by that name")).to.equal("chain");
    expect(missingObject("ip", "RTNETLINK answers: File exists")).to.equal(undefined);
    expect(missingObject("ip", "RTNETLINK answers: Operation not permitted")).to.equal(undefined);
  });

  it("throws a typed, still-503 error that names the command and carries the tool's words", async () => {
    const error = await runTool("ip", ["-j", "link", "show", "dev", "nosuchlink0"]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(HostObjectMissingError);
    expect(error).to.be.instanceOf(UnavailableError);
    expect((error as HostObjectMissingError).missing).to.equal("device");
    expect((error as HostObjectMissingError).status).to.equal(503);
    expect((error as Error).message).to.equal(
      'ip -j link show dev nosuchlink0 failed: Device "nosuchlink0" does not exist.',
    );
    expect(await linkExists("nosuchlink0")).to.equal(false);
  });

  it("tolerates only the kinds of absence it is told to", () => {
    const missingChain = new HostObjectMissingError("x failed", "No chain", "chain");
    expect(ignoreMissing("chain")(missingChain)).to.equal(undefined);
    expect(() => ignoreMissing("rule")(missingChain)).to.throw("x failed");
    expect(() => ignoreMissing("chain")(new HostToolError("y failed", "Permission denied"))).to.throw(
      "y failed",
    );
  });
});
