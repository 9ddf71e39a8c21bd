/**
 * The doctor without a running plugin or Docker: every host read goes through HostNetwork (here the
 * recording fake), the checks report in their fixed order, and a check that cannot read the host says
 * so without stopping the others.
 */
import { expect } from "chai";
import { runDoctor } from "../../plugin/cli/doctor.js";
import { createFakeHost } from "../helpers/fake-host.js";

const NOWHERE = { socket: "/nonexistent/azure.sock", dockerSocket: "/nonexistent/docker.sock" };

describe("doctor", () => {
  it("reads the host only through HostNetwork and lists the checks in order", async () => {
    const host = createFakeHost();
    const findings = await runDoctor({ ...NOWHERE, imdsUrl: "http://127.0.0.1:9", host });
    expect(findings.map((f) => `${f.check} ${f.result}`)).to.deep.equal([
      "plugin fail",
      "pool source fail",
      "forwarding ok",
      "firewall ok",
      "docker warn",
    ]);
    expect(findings[2]!.message).to.equal("IPv4 forwarding is off; the first azure network turns it on");
    expect(findings[3]!.message).to.equal(
      "iptables v1.8.9 (nf_tables) (the plugin and dockerd use the same iptables)",
    );
    expect(host.calls.map((c) => [c.name, ...c.args])).to.deep.equal([
      ["readSysctl", "net/ipv4/ip_forward"],
      ["iptablesVersion"],
      ["listChainRules", "filter", "FORWARD"],
      ["listChainRules", "nat", "POSTROUTING"],
    ]);
  });

  it("a check that cannot read the host fails with the reason, and the next checks still run", async () => {
    const host = createFakeHost();
    host.failOn("iptablesVersion");
    const findings = await runDoctor({ ...NOWHERE, imdsUrl: "http://127.0.0.1:9", host });
    expect(findings.find((f) => f.check === "firewall")).to.deep.equal({
      check: "firewall",
      result: "fail",
      message: "could not be checked: injected failure of iptablesVersion",
    });
    expect(findings.at(-1)!.check).to.equal("docker");
  });
});
