/** Configuration from flags and environment. */
import { expect } from "chai";
import { allowedValues, loadConfig, OPTION_DEFINITIONS, OPTIONS, usageText } from "../../plugin/config.js";

describe("config", () => {
  it("has production defaults", () => {
    expect(loadConfig([], {})).to.deep.equal({
      socketPath: "/run/docker/plugins/azure.sock",
      stateDir: "/var/lib/azure-vnet",
      poolSource: "imds",
      poolFile: undefined,
      imdsUrl: "http://169.254.169.254",
      wireserverUrl: "http://168.63.129.16",
      refreshIntervalMs: 30_000,
      sourceTimeoutMs: 2_000,
      logLevel: "info",
      dockerSocket: "/var/run/docker.sock",
      reconcileIntervalMs: 60_000,
      reconcileGraceMs: 60_000,
      metricsAddress: undefined,
      armEndpoint: "https://management.azure.com",
      armCaFile: undefined,
      identityClientId: undefined,
      poolMinFree: 0,
      poolGrowStep: 4,
      poolGrowWaitMs: 20_000,
      poolMaxFree: 0,
      poolShrinkAfterMs: 600_000,
      maxIpConfigurations: 256,
    });
  });
  it("reads the environment, and flags win over it", () => {
    const env = {
      AZURE_VNET_POOL_SOURCE: "wireserver",
      AZURE_VNET_REFRESH_INTERVAL: "10",
      AZURE_VNET_LOG_LEVEL: "debug",
    };
    expect(loadConfig([], env)).to.include({
      poolSource: "wireserver",
      refreshIntervalMs: 10_000,
      logLevel: "debug",
    });
    expect(loadConfig(["--pool-source", "imds", "--source-timeout", "0.5"], env)).to.include({
      poolSource: "imds",
      sourceTimeoutMs: 500,
    });
  });
  const refusals: [string[], Record<string, string>, string][] = [
    [["--pool-source", "file"], {}, "--pool-source file needs --pool-file (AZURE_VNET_POOL_FILE)"],
    [
      [],
      { AZURE_VNET_REFRESH_INTERVAL: "soon" },
      '--refresh-interval (AZURE_VNET_REFRESH_INTERVAL) is "soon"',
    ],
    [["--log-level", "loud"], {}, '--log-level (AZURE_VNET_LOG_LEVEL) is "loud"'],
    [["--imds-url", "169.254.169.254"], {}, '--imds-url (AZURE_VNET_IMDS_URL) is "169.254.169.254"'],
    [["--socket", "azure.sock"], {}, "--socket (AZURE_VNET_SOCKET) must be an absolute path"],
    [["--colour"], {}, "Unknown option '--colour'"],
    [
      ["--arm-endpoint", "http://127.0.0.1:8443"],
      {},
      "--arm-endpoint (AZURE_VNET_ARM_ENDPOINT) must be an https:// URL",
    ],
    [["--pool-min-free", "two"], {}, '--pool-min-free (AZURE_VNET_POOL_MIN_FREE) is "two"'],
    [
      ["--max-ip-configurations", "300"],
      {},
      '--max-ip-configurations (AZURE_VNET_MAX_IP_CONFIGURATIONS) is "300"',
    ],
    [
      ["--pool-min-free", "4", "--pool-grow-step", "4", "--pool-max-free", "6"],
      {},
      "--pool-max-free (AZURE_VNET_POOL_MAX_FREE) 6 is below --pool-min-free plus --pool-grow-step (8)",
    ],
    [["--arm-ca-file", "ca.pem"], {}, "--arm-ca-file (AZURE_VNET_ARM_CA_FILE) must be an absolute path"],
  ];
  for (const [argv, env, message] of refusals) {
    it(`refuses ${[...argv, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(" ")}`, () => {
      expect(() => loadConfig(argv, env)).to.throw(message);
    });
  }
  it("keeps --pool-grow-wait inside dockerd's 30 s wait for the plugin's answer", () => {
    expect(loadConfig(["--pool-grow-wait", "25"], {}).poolGrowWaitMs).to.equal(25_000);
    expect(() => loadConfig(["--pool-grow-wait", "60"], {}))
      .to.throw('--pool-grow-wait (AZURE_VNET_POOL_GROW_WAIT) is "60"')
      .with.property(
        "hint",
        "give a number of seconds above 0, at most 25: dockerd gives up on a plugin's answer after 30 s, and the container start fails",
      );
  });

  it("allows turning reconciliation off with 0, but no negative or zero refresh", () => {
    expect(loadConfig(["--reconcile-interval", "0"], {}).reconcileIntervalMs).to.equal(0);
    expect(() => loadConfig(["--refresh-interval", "0"], {}))
      .to.throw('--refresh-interval (AZURE_VNET_REFRESH_INTERVAL) is "0"')
      .with.property("hint", "give a number of seconds above 0, at most 86400");
    expect(() => loadConfig(["--reconcile-grace=-1"], {}))
      .to.throw('--reconcile-grace (AZURE_VNET_RECONCILE_GRACE) is "-1"')
      .with.property("hint", "give a number of seconds, at most 86400");
  });
  it("documents every option with its variable", () => {
    expect(usageText()).to.contain("--pool-file").and.contain("AZURE_VNET_POOL_FILE");
  });
});

describe("option definitions", () => {
  it("--help lists every option's flag, variable, description and default, in order", () => {
    const lines = usageText()
      .split("\n")
      .filter((line) => line.startsWith("  --"));
    expect(lines).to.have.length(OPTION_DEFINITIONS.length);
    OPTION_DEFINITIONS.forEach((option, index) => {
      expect(lines[index])
        .to.contain(`--${option.flag} `)
        .and.contain(option.env)
        .and.contain(option.description);
      if (option.default) expect(lines[index]).to.contain(`(default ${option.default})`);
    });
  });

  it("names each option once, and says in words which values it allows", () => {
    for (const key of ["name", "flag", "env"] as const) {
      expect(new Set(OPTION_DEFINITIONS.map((option) => option[key])).size, key).to.equal(
        OPTION_DEFINITIONS.length,
      );
    }
    expect(allowedValues(OPTIONS.poolSource)).to.equal("imds, wireserver, file");
    expect(allowedValues(OPTIONS.poolGrowWaitMs)).to.equal("seconds above 0, at most 25");
    expect(allowedValues(OPTIONS.reconcileIntervalMs)).to.equal("seconds from 0 to 86400");
    expect(allowedValues(OPTIONS.maxIpConfigurations)).to.equal("a whole number from 2 to 256");
    expect(allowedValues(OPTIONS.armCaFile)).to.equal("an absolute path; empty for none");
  });
});
