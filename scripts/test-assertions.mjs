// Which tests assert: the tests and suites of a set of TypeScript test files, read with the
// TypeScript compiler's parser, each with its full name (the names of the suites around it, then
// its own) and whether its body checks anything.
//
// A body *asserts* when it (or a function it defines) contains
// - a call whose callee names `assert…` or `expect…` anywhere in its chain (`assert.equal`,
//   `t.assert.ok`, `fc.assert`, `ledger.assertQuiescent`, `expectStream`), or
// - a `throw` statement, or
// - a call of a helper that asserts: a function or method declared in one of the files (test
//   files and their support code) whose body asserts by these same rules, followed to a fixpoint.
//   Helpers are matched by name, across files.
// A test with no function (a `todo`), or whose function does none of this, does not assert.
//
// Also reports the ids a `// @ts-expect-error <ID…>` directive cites: the compiler checks that the
// line after it does not compile, so such a directive is a test the build runs.
import { readFileSync } from "node:fs";
import ts from "typescript";

const ASSERTING_NAME = /^(?:assert|expect)(?:[A-Z0-9_]\w*)?$/;
const TEST_CALLS = new Set(["test", "it"]);
const SUITE_CALLS = new Set(["describe", "suite"]);

/** The identifiers and property names of a callee, outermost last: `a.b.c` -> [a, b, c]. */
function calleeNames(expr) {
  const out = [];
  for (let e = expr; e !== undefined; ) {
    if (ts.isIdentifier(e)) {
      out.unshift(e.text);
      break;
    }
    if (ts.isPropertyAccessExpression(e)) {
      out.unshift(e.name.text);
      e = e.expression;
    } else if (ts.isCallExpression(e) || ts.isNonNullExpression(e) || ts.isParenthesizedExpression(e)) {
      e = e.expression;
    } else if (ts.isElementAccessExpression(e)) {
      e = e.expression;
    } else break;
  }
  return out;
}

/** What a function body does that matters here: direct checks, and the names it calls. */
function scan(body) {
  let direct = false;
  const calls = new Set();
  const visit = (n) => {
    if (ts.isThrowStatement(n)) direct = true;
    else if (ts.isCallExpression(n)) {
      const names = calleeNames(n.expression);
      if (names.some((x) => ASSERTING_NAME.test(x))) direct = true;
      const last = names[names.length - 1];
      if (last !== undefined) calls.add(last);
    }
    ts.forEachChild(n, visit);
  };
  visit(body);
  return { direct, calls };
}

/** The name a declaration gives its function, if it declares one. */
function declaredFunction(n) {
  if (
    (ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) &&
    n.name !== undefined &&
    n.body !== undefined
  )
    return { name: n.name.getText(), body: n.body };
  if (
    (ts.isVariableDeclaration(n) || ts.isPropertyDeclaration(n) || ts.isPropertyAssignment(n)) &&
    n.initializer !== undefined &&
    (ts.isArrowFunction(n.initializer) || ts.isFunctionExpression(n.initializer)) &&
    n.name !== undefined
  )
    return { name: n.name.getText(), body: n.initializer.body };
  return undefined;
}

/** A test or suite name as written: the literal's text without its quotes, spaces squashed. */
function literalName(arg) {
  if (arg === undefined) return undefined;
  if (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg) || ts.isTemplateExpression(arg))
    return arg.getText().slice(1, -1).replace(/\s+/g, " ");
  return undefined;
}

/** The function argument of a test or suite call (the last argument that is one). */
function callback(call) {
  for (let i = call.arguments.length - 1; i >= 1; i--) {
    const a = call.arguments[i];
    if (ts.isArrowFunction(a) || ts.isFunctionExpression(a)) return a;
  }
  return undefined;
}

const DIRECTIVE = /\/\/\s*@ts-expect-error\b(.*)$/gm;

/**
 * Reads `files` (absolute paths). Returns, per file, its tests (`{ name, asserts }`, `name` with
 * the names of its suites before its own, one space apart) and the text after each
 * `@ts-expect-error` directive.
 */
export function readTests(files) {
  const parsed = files.map((f) => ({
    file: f,
    sf: ts.createSourceFile(f, readFileSync(f, "utf8"), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS),
  }));
  // Helpers: every named function of every file, by name.
  const helpers = new Map();
  for (const { sf } of parsed) {
    const visit = (n) => {
      const d = declaredFunction(n);
      if (d !== undefined) {
        const list = helpers.get(d.name) ?? [];
        list.push(scan(d.body));
        helpers.set(d.name, list);
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  const asserting = new Set();
  for (const [name, bodies] of helpers) if (bodies.some((b) => b.direct)) asserting.add(name);
  for (let changed = true; changed; ) {
    changed = false;
    for (const [name, bodies] of helpers) {
      if (asserting.has(name)) continue;
      if (bodies.some((b) => [...b.calls].some((c) => asserting.has(c)))) {
        asserting.add(name);
        changed = true;
      }
    }
  }
  const asserts = (fn) => {
    const s = scan(fn.body);
    return s.direct || [...s.calls].some((c) => asserting.has(c));
  };

  return parsed.map(({ file, sf }) => {
    const tests = [];
    const visit = (n, suites) => {
      if (ts.isCallExpression(n)) {
        const names = calleeNames(n.expression);
        const last = names[names.length - 1];
        const name = literalName(n.arguments[0]);
        if (name !== undefined && last !== undefined && (TEST_CALLS.has(last) || SUITE_CALLS.has(last))) {
          const fn = callback(n);
          if (SUITE_CALLS.has(last)) {
            if (fn !== undefined) ts.forEachChild(fn.body, (c) => visit(c, [...suites, name]));
            return;
          }
          tests.push({ name: [...suites, name].join(" "), asserts: fn !== undefined && asserts(fn) });
          if (fn !== undefined) ts.forEachChild(fn.body, (c) => visit(c, [...suites, name])); // subtests
          return;
        }
      }
      ts.forEachChild(n, (c) => visit(c, suites));
    };
    visit(sf, []);
    const directives = [...sf.text.matchAll(DIRECTIVE)].map((m) => m[1] ?? "");
    return { file, tests, directives };
  });
}
