/**
 * keepGoing: every step runs whatever fails before it, and the failures come back together with a
 * status that says whether trying again may help.
 */
import { expect } from "chai";
import { InternalError, UnavailableError } from "../../lib/errors.js";
import { keepGoing } from "../../lib/keep-going.js";

describe("keepGoing", () => {
  const failing = (error: Error) => () => Promise.reject(error);

  it("runs every step after a failure, and rethrows a single failure as it was", async () => {
    const ran: number[] = [];
    const only = new InternalError("refusing a value");
    const error = await keepGoing("removing x", [
      () => Promise.resolve(ran.push(1)),
      failing(only),
      () => Promise.resolve(ran.push(3)),
    ]).catch((e: unknown) => e);
    expect(ran).to.deep.equal([1, 3]);
    expect(error).to.equal(only);
  });

  it("reports several failures as 503 when one of them may pass on a retry", async () => {
    const error = await keepGoing("removing x", [
      failing(new InternalError("refusing a value")),
      failing(new UnavailableError("iptables is busy")),
    ]).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(UnavailableError);
    expect((error as Error).message).to.equal(
      "removing x: 2 steps failed: refusing a value; iptables is busy",
    );
  });

  it("reports several failures as 500 when none of them would pass on a retry", async () => {
    const error = await keepGoing("removing x", [
      failing(new InternalError("refusing a value")),
      failing(new Error("a bug")),
    ]).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(InternalError);
    expect((error as Error).message).to.equal("removing x: 2 steps failed: refusing a value; a bug");
  });
});
