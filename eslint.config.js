import js from "@eslint/js";
import tseslint from "typescript-eslint";
import ts from "typescript";

/**
 * A number field declared without an initializer starts as `undefined` (ES2022 class fields),
 * so V8 gives it a tagged representation, and every number stored in it that is not a small
 * integer (a uint32 sequence number above 2^30, a Duration in microseconds) is a new heap
 * object: an allocation per store. With `= 0` the field holds small integers in place and
 * turns into an unboxed double field the first time it needs one. (On the TCP engine this was
 * a third of what a terminate storm promoted on the host.)
 */
const numberFieldInit = {
  meta: {
    type: "problem",
    messages: {
      init: "Give number field '{{name}}' an initializer (`{{init}}`): declared without one it starts as undefined, and V8 then allocates a heap number for each store of a value that is not a small integer.",
    },
    schema: [],
  },
  create(context) {
    const services = context.sourceCode.parserServices;
    const isNumber = (t) =>
      (t.flags & ts.TypeFlags.Union) === 0 &&
      ((t.flags & ts.TypeFlags.NumberLike) !== 0 ||
        ((t.flags & ts.TypeFlags.Intersection) !== 0 &&
          t.types.some((x) => (x.flags & ts.TypeFlags.Number) !== 0)));
    return {
      PropertyDefinition(node) {
        if (node.value !== null || node.static || node.declare || node.optional) return;
        if (node.typeAnnotation === undefined) return;
        const type = services.getTypeAtLocation(node);
        if (!isNumber(type)) return;
        const typeText = context.sourceCode.getText(node.typeAnnotation.typeAnnotation);
        context.report({
          node,
          messageId: "init",
          data: {
            name: context.sourceCode.getText(node.key),
            init: typeText === "number" ? "= 0" : `= 0 as ${typeText}`,
          },
        });
      },
    };
  },
};

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
    plugins: { chimney: { rules: { "number-field-init": numberFieldInit } } },
    rules: {
      "chimney/number-field-init": "error",
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
