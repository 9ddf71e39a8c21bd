// Lint rules for the whole repository: typescript-eslint's type-aware recommended set.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * Forbids files matching `files` to import from the named top-level folders (relative imports only).
 * @param {string} files
 * @param {string[]} forbiddenFolders
 * @param {string[]} [extraPatterns]
 */
function layer(files, forbiddenFolders, extraPatterns = []) {
  const group = [...forbiddenFolders.map((folder) => `**/${folder}/**`), ...extraPatterns];
  const message = "breaks the layering (see eslint.config.js and docs/architecture.md)";
  return {
    files: [files],
    rules: { "no-restricted-imports": ["error", { patterns: [{ group, message }] }] },
  };
}

export default tseslint.config(
  { ignores: ["dist/", "node_modules/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["eslint.config.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-floating-promises": "error",
      eqeqeq: "error",
    },
  },
  {
    // supertest types response bodies as any; tests assert on their shape instead.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-expressions": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
    },
  },
  // The layering: lib/ is the shared library and imports no other folder of the product; the IPAM
  // driver builds on lib/ only; the network driver on lib/ and the IPAM's inventory types; plugin/
  // (entry, wiring, HTTP server, CLI) may use everything. Tests, benchmarks and the demo are free.
  layer("lib/**/*.ts", ["driver", "ipam-driver", "plugin"]),
  layer("ipam-driver/**/*.ts", ["driver", "plugin"]),
  layer("driver/**/*.ts", ["plugin"], ["**/ipam-driver/*", "!**/ipam-driver/inventory.js"]),
);
