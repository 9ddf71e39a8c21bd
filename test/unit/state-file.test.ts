/** The state file on a real temporary directory: bytes on disk, rollback, corruption, atomicity. */
import { expect } from "chai";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StateError } from "../../lib/errors.js";
import { pluginStateCodec } from "../../plugin/plugin-state.js";
import { StateFile } from "../../lib/state-file.js";

describe("state file", () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "azure-vnet-state-"));
    path = join(dir, "state", "state.json");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("starts empty, writes each change as JSON with mode 0600 and leaves no temporary file", async () => {
    const file = await StateFile.open(path, pluginStateCodec);
    expect(file.current).to.deep.equal({
      version: 1,
      ipam: { pools: {}, reservations: {} },
      driver: { networks: {}, endpoints: {}, unlinks: {} },
    });
    await file.update((draft) => {
      draft.ipam.reservations["10.1.0.5"] = {
        address: "10.1.0.5",
        poolId: "p",
        macAddress: "m",
        reservedAt: "t",
      };
    });
    const text = await readFile(path, "utf8");
    expect(JSON.parse(text)).to.deep.equal(file.current);
    expect(text.endsWith("}\n")).to.equal(true);
    expect((await stat(path)).mode & 0o777).to.equal(0o600);
    expect(await readdir(join(dir, "state"))).to.deep.equal(["state.json"]);
    const reopened = await StateFile.open(path, pluginStateCodec);
    expect(reopened.current).to.deep.equal(file.current);
  });

  it("does not write when nothing changed", async () => {
    const file = await StateFile.open(path, pluginStateCodec);
    await file.update(() => undefined);
    expect(await readdir(join(dir, "state"))).to.deep.equal([]);
  });

  it("keeps the old document when the mutation throws", async () => {
    const file = await StateFile.open(path, pluginStateCodec);
    const failing = file.update((draft) => {
      draft.ipam.pools.x = {
        id: "x",
        macAddress: "m",
        family: 4,
        subnet: "s",
        range: undefined,
        requested: "",
        refCount: 1,
        lastAllocated: undefined,
      };
      throw new Error("refused");
    });
    const error = await failing.then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).to.equal("refused");
    expect(file.current.ipam.pools).to.deep.equal({});
  });

  it("keeps the old document in memory when the write fails", async () => {
    const file = await StateFile.open(path, pluginStateCodec);
    await rm(join(dir, "state"), { recursive: true });
    const error = await file
      .update((draft) => {
        draft.ipam.pools.x = {
          id: "x",
          macAddress: "m",
          family: 4,
          subnet: "s",
          range: undefined,
          requested: "",
          refCount: 1,
          lastAllocated: undefined,
        };
      })
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(error?.message).to.match(/ENOENT/);
    expect(file.current.ipam.pools).to.deep.equal({});
  });

  it("serialises concurrent updates so none is lost", async () => {
    const file = await StateFile.open(path, pluginStateCodec);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        file.update((draft) => {
          draft.ipam.reservations[`a${i}`] = {
            address: `a${i}`,
            poolId: "p",
            macAddress: "m",
            reservedAt: "t",
          };
        }),
      ),
    );
    const onDisk = JSON.parse(await readFile(path, "utf8")) as { ipam: { reservations: object } };
    expect(Object.keys(onDisk.ipam.reservations)).to.have.length(50);
  });

  it("says which state file it cannot read", async () => {
    const { mkdir } = await import("node:fs/promises");
    await mkdir(path, { recursive: true });
    const error = await StateFile.open(path, pluginStateCodec).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error).to.be.instanceOf(StateError);
    expect(error?.message).to.match(/^cannot read state file .*state\.json: EISDIR/);
  });

  for (const [what, content, message] of [
    ["truncated JSON", '{"version":1,', "is corrupt: "],
    ["an unknown version", '{"version":9,"ipam":{}}', "version 9 is not 1"],
    ["a missing ipam section", '{"version":1}', '"ipam" is not an object'],
    [
      "a malformed reservation",
      '{"version":1,"ipam":{"pools":{},"reservations":{"10.1.0.5":{"address":"10.1.0.6"}}}}',
      'reservation of "10.1.0.5" is malformed',
    ],
  ] as const) {
    it(`refuses ${what} with a StateError that says what to do`, async () => {
      await StateFile.open(path, pluginStateCodec);
      await writeFile(path, content);
      const error = await StateFile.open(path, pluginStateCodec).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(error).to.be.instanceOf(StateError);
      expect(error?.message).to.contain(message);
      expect((error as StateError).hint).to.match(/never replaced automatically/);
      expect(await readFile(path, "utf8")).to.equal(content);
    });
  }
});
