/**
 * The host-networking module refuses names and values that could change what a host tool does, before
 * running anything; and a teardown reports every failed step, not only the first.
 */
import { expect } from "chai";
import { ensureBridgeJump, setBridgeChainRules } from "../../lib/host-net/ebtables.js";
import { setChainRules } from "../../lib/host-net/iptables.js";
import { deleteRule, flushTable, setTableRoutes } from "../../lib/host-net/policy-routing.js";
import { createVethPair, writeSysctl } from "../../lib/host-net/interfaces.js";
import { checkComment, checkInterfaceName } from "../../lib/host-net/names.js";
import { chainRestoreText } from "../../lib/host-net/run-tool.js";
import { keepGoing } from "../../lib/keep-going.js";
import { InternalError } from "../../lib/errors.js";

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: Error) => error.message,
  );

describe("host-net guards", () => {
  it("refuses interface names, chain names and comments a tool could misread", async () => {
    expect(() => checkInterfaceName("-eth0")).to.throw('refusing interface name "-eth0"');
    expect(() => checkInterfaceName("a".repeat(16))).to.throw("refusing interface name");
    expect(() => checkComment('x" -j ACCEPT')).to.throw("refusing rule comment");
    expect(await failure(setChainRules("filter", "FORWARD; reboot", []))).to.equal(
      'refusing iptables chain name "FORWARD; reboot"',
    );
  });

  it("refuses routing tables, addresses and prefixes an ip command could misread", async () => {
    expect(await failure(flushTable(255))).to.equal("refusing routing table 255");
    expect(await failure(deleteRule({ priority: 30001, table: 30001, from: "all" }))).to.equal(
      'refusing routing address "all"',
    );
    expect(await failure(setTableRoutes(30001, [{ dst: "10.1.1.0/24 dev lo", device: "eth1" }]))).to.equal(
      'refusing routing prefix "10.1.1.0/24 dev lo"',
    );
  });

  it("refuses ebtables chains and jumps that are not ours", async () => {
    expect(await failure(setBridgeChainRules("PREROUTING", []))).to.equal(
      'refusing ebtables chain name "PREROUTING"',
    );
    expect(await failure(ensureBridgeJump("PREROUTING", ["-j", "ACCEPT"], "AZV-BR-IN-eth0"))).to.equal(
      'refusing ebtables jump match ["-j","ACCEPT"]',
    );
  });

  it("refuses rule words with spaces or quotes, which restore files would split", () => {
    expect(() => chainRestoreText("nat", "AZV-X", "RETURN", [["-s", "10.0.0.0/8 -j ACCEPT"]])).to.throw(
      "refusing a rule word for AZV-X",
    );
  });

  it("refuses sysctls outside net/ipv4|6 and malformed MACs, and names a sysctl it cannot set", async () => {
    expect(await failure(writeSysctl("kernel/core_pattern", "|/bin/sh"))).to.equal(
      "refusing sysctl kernel/core_pattern",
    );
    expect(await failure(writeSysctl("net/ipv4/../../kernel/x", "1"))).to.equal(
      "refusing sysctl net/ipv4/../../kernel/x",
    );
    expect(await failure(writeSysctl("net/ipv4/conf/nosuchlink0/proxy_arp", "1"))).to.match(
      /^cannot set net\/ipv4\/conf\/nosuchlink0\/proxy_arp=1: /,
    );
    expect(await failure(createVethPair("azt0", "act0", 1500, "00:11:22:33:44"))).to.equal(
      'refusing MAC address "00:11:22:33:44"',
    );
  });

  it("answers every refusal with the same error: InternalError, 500 (a bug, not a busy kernel)", async () => {
    const thrown = (act: () => unknown) =>
      Promise.resolve()
        .then(act)
        .then(
          () => undefined,
          (error: unknown) => error,
        );
    const refusals = await Promise.all([
      thrown(() => checkInterfaceName("-eth0")),
      thrown(() => checkComment('x" -j ACCEPT')),
      thrown(() => setChainRules("filter", "FORWARD; reboot", [])),
      thrown(() => setBridgeChainRules("PREROUTING", [])),
      thrown(() => ensureBridgeJump("PREROUTING", ["-j", "ACCEPT"], "AZV-BR-IN-eth0")),
      thrown(() => chainRestoreText("nat", "AZV-X", "RETURN", [["a b"]])),
      thrown(() => writeSysctl("kernel/core_pattern", "|/bin/sh")),
      thrown(() => createVethPair("azt0", "act0", 1500, "00:11:22:33:44")),
    ]);
    for (const error of refusals) {
      expect(error, String(error)).to.be.instanceOf(InternalError);
      expect((error as InternalError).status).to.equal(500);
    }
  });

  it("keepGoing runs every step and reports all failures", async () => {
    const ran: number[] = [];
    const message = await failure(
      keepGoing("removing things", [
        () => Promise.reject(new Error("first")),
        () => {
          ran.push(2);
          return Promise.resolve();
        },
        () => Promise.reject(new Error("third")),
      ]),
    );
    expect(ran).to.deep.equal([2]);
    expect(message).to.equal("removing things: 2 steps failed: first; third");
  });
});
