import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** The sans-I/O core: no clock, no randomness, no Node, no console. */
const CORE = [
  "src/{util,time,wire,storage,tcp,nbl,chimney,host,offload-target,node,sim,scenario,report}/**/*.ts",
];

export default tseslint.config(
  {
    ignores: [
      "dist/**",
      "node_modules/**",
      "eslint.config.js",
      "stryker.config.mjs",
      "scripts/**",
      "reports/**",
      ".stryker-tmp/**",
      ".mutants-tmp/**",
    ],
  },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { considerDefaultExhaustiveForUnions: true },
      ],
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true },
      ],
      "@typescript-eslint/no-unnecessary-condition": "off",
      "@typescript-eslint/no-confusing-void-expression": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
      "@typescript-eslint/no-unnecessary-type-parameters": "off",
      "no-restricted-syntax": [
        "error",
        { selector: "TSEnumDeclaration", message: "Use a string-literal union or an `as const` object." },
        { selector: "TSModuleDeclaration[kind='namespace']", message: "Use ES modules." },
      ],
    },
  },
  {
    files: CORE,
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["node:*"], message: "The core does no I/O." }] },
      ],
      "no-restricted-globals": [
        "error",
        { name: "setTimeout", message: "Arm a TimerTable deadline; the driver calls handleTimeout(now)." },
        { name: "setInterval", message: "Arm a TimerTable deadline." },
        { name: "performance", message: "Time arrives as `now: Instant`." },
        { name: "process", message: "Configuration arrives as arguments." },
        { name: "console", message: "Emit a trace event." },
      ],
      "no-restricted-properties": [
        "error",
        { object: "Date", property: "now", message: "Time arrives as `now: Instant`." },
        { object: "Math", property: "random", message: "Use the Prng you were given." },
      ],
    },
  },
);
