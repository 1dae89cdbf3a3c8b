// Spec coverage table: which chimney rules the code cites and which asserting tests cite them.
//
// Usage: node scripts/spec-coverage.mjs [--catalogue <path>] [--out <path>] [--reasons <path>] [--check]
//        node scripts/spec-coverage.mjs --cross-check [--spec <path>] [--catalogue <path>]
//
// Rules come from the project's rule catalogue, docs/spec-rules.md: a `## ` heading per section
// and a table `| id | level | rule |` under it (level = the strength tag, rule = a one-line
// statement). The script searches src/**/*.ts (non-test: "enforced in") for each id as a whole
// word (an explicit range "TM-14..TM-16" cites the ids between too), and the names of the tests
// and suites in src/**/*.test.ts + test/**/*.ts ("tested in": the first argument of each
// `test(`, `it(` or `describe(` call, a string or template literal; a suite's name is part of
// the name of every test in it) the same way: an id cited only in a comment, an assertion
// message or a helper does not make its rule tested. It writes docs/spec-coverage.md. With --check it writes nothing and
// exits 1 when the file on disk differs from what would be generated. Plain Node ESM, no
// dependencies but the TypeScript parser (a development dependency).
//
// Reasons: docs/spec-reasons.md holds one line `ID: reason` for every rule that is not enforced +
// tested (why not: a FACT with nothing to enforce, a host guarantee kept elsewhere, out of scope...).
// Other lines (headings, blank lines, prose) are ignored, so several people can add lines without
// conflicts. The reason shows in the table. Both modes exit 1 when a rule that is not enforced +
// tested has no reason, when a rule that is enforced + tested still has one, when an id is not in
// the catalogue, when an id has two lines, or when the catalogue itself is malformed.
//
// Cross-check: --cross-check (implied by --spec) compares the catalogue with the chimney spec
// digest instead (--spec, else env CHIMNEY_SPEC_DIGEST, else ../shared/spec/chimney.md from the
// repo root): every rule of the digest must be in the catalogue with the same level (the digest's
// tag, verbatim) and section, no other id may be, and no statement may copy the digest's text.
// It writes nothing; exit 0 when they match, 1 when they differ, 2 when the digest is missing.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { readTests } from "./test-assertions.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function argValue(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i === -1) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined) {
    console.error(`missing value for ${name}`);
    process.exit(2);
  }
  return resolve(v);
}

const cataloguePath = argValue("--catalogue", join(root, "docs", "spec-rules.md"));
const specArg = argValue("--spec", undefined);
const outPath = argValue("--out", join(root, "docs", "spec-coverage.md"));
const reasonsPath = argValue("--reasons", join(root, "docs", "spec-reasons.md"));
const checkOnly = process.argv.includes("--check");
const crossCheckOnly = process.argv.includes("--cross-check") || specArg !== undefined;
const specEnv = process.env.CHIMNEY_SPEC_DIGEST;
const specPath =
  specArg ??
  (specEnv !== undefined && specEnv !== ""
    ? resolve(specEnv)
    : resolve(root, "..", "shared", "spec", "chimney.md"));
const catalogueName = relative(root, cataloguePath).split(sep).join("/");

/** Strength classes in report order. */
const CLASSES = ["MUST", "SHOULD", "MAY", "HOST-GUARANTEE", "FACT"];

/**
 * Maps a raw strength annotation ("MUST NOT, OT", "SHOULD/MUST, OT", "FACT / HOST-GUARANTEE",
 * "HOST-GUARANTEE (OT must cope)") to one class. Mixed annotations take the strongest
 * normative keyword written in capitals: MUST > SHOULD > MAY > HOST-GUARANTEE > FACT.
 */
function classify(raw) {
  if (/\bMUST\b/.test(raw)) return "MUST";
  if (/\bSHOULD\b/.test(raw)) return "SHOULD";
  if (/\bMAY\b/.test(raw)) return "MAY";
  if (/\bHOST-GUARANTEE\b/.test(raw)) return "HOST-GUARANTEE";
  return "FACT";
}

/** A level tag starts with one of the classes. */
const levelRe = /^(?:MUST|SHOULD|MAY|HOST-GUARANTEE|FACT)\b/;

/** One space between words, no space at the ends. */
const squash = (s) => s.replace(/\s+/g, " ").trim();

/** Reads a file the script needs; a missing one ends the run with `hint` instead of a stack trace. */
function readOrExit(path, what, hint) {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = e instanceof Error && "code" in e ? e.code : undefined;
    console.error(
      code === "ENOENT" ? `${what} not found: ${path}` : `cannot read ${what} ${path}: ${String(e)}`,
    );
    console.error(hint);
    process.exit(2);
  }
}

const ID = String.raw`[A-Z][A-Z0-9]*-\d+[a-z]?`;

// The rule catalogue: `## <section>` headings, each followed by a table `| id | level | rule |`.
const catalogueRow = new RegExp(String.raw`^\|\s*${ID}\s*\|`);

/** The catalogue's rules in file order, and what is wrong with it (empty when nothing). */
function parseCatalogue(md) {
  const rules = [];
  const problems = [];
  const seen = new Set();
  let section;
  md.split("\n").forEach((line, i) => {
    const where = `line ${i + 1} of ${catalogueName}`;
    const h = /^## (.+)$/.exec(line);
    if (h?.[1] !== undefined) {
      section = h[1].trim();
      return;
    }
    if (!catalogueRow.test(line)) return;
    const cells = line.trim().slice(1, -1).split("|").map(squash);
    const [id = "", level = "", statement = ""] = cells;
    if (cells.length !== 3 || !line.trim().endsWith("|")) {
      problems.push(`${id}: a rule row has three cells, | id | level | rule | (${where})`);
      return;
    }
    if (section === undefined) problems.push(`${id}: before the first section heading (${where})`);
    if (seen.has(id)) problems.push(`${id}: listed twice (${where})`);
    if (!levelRe.test(level))
      problems.push(`${id}: level "${level}" does not start with one of ${CLASSES.join(", ")} (${where})`);
    if (statement === "") problems.push(`${id}: no statement (${where})`);
    seen.add(id);
    rules.push({ id, section: section ?? "", level, cls: classify(level), statement });
  });
  if (rules.length === 0) problems.push(`${catalogueName}: no rule rows found`);
  return { rules, problems };
}

// The spec digest, read only by the cross-check: a rule is `**ID** (STRENGTH) text` in a bullet
// or a table row `| ID | text | STRENGTH | ... |`; `## N. Title` headings name the sections.
const boldRule = new RegExp(String.raw`\*\*(${ID})\*\*\s*\(([^)]*)\)`, "g");
const tableRule = new RegExp(String.raw`^\|\s*(${ID})\s*\|([^|]*)\|([^|]*)\|`);
const srcNote = /\*\(src:[^)]*\)\*/g;

function parseSpec(md) {
  const rules = [];
  const seen = new Set();
  let section = "Preamble";
  let inFence = false;
  for (const line of md.split("\n")) {
    if (line.startsWith("```")) inFence = !inFence;
    if (inFence) continue;
    const h = /^## (\d+\..*)$/.exec(line);
    if (h?.[1] !== undefined) {
      section = h[1].replace(srcNote, "").trim();
      continue;
    }
    const add = (id, raw, text) => {
      if (seen.has(id)) return;
      seen.add(id);
      rules.push({ id, section, raw: squash(raw), text: text.replace(srcNote, "") });
    };
    const t = tableRule.exec(line);
    if (t?.[1] !== undefined) {
      add(t[1], t[3] ?? "", t[2] ?? "");
      continue;
    }
    const ms = [...line.matchAll(boldRule)];
    ms.forEach((m, i) => {
      // The rule text runs to the next rule id on the line (or the end of a table cell).
      const end = ms[i + 1]?.index ?? line.length;
      const text = line.slice(m.index + m[0].length, end).split("|")[0] ?? "";
      add(m[1], m[2], text);
    });
  }
  return rules;
}

/** Lower-case words (letters, digits, `_`), so that markup and punctuation do not count. */
const words = (s) => s.toLowerCase().match(/[a-z0-9_]+/g) ?? [];

/** Runs of this many words that a statement shares with the digest's text count as copied. */
const COPY_RUN = 8;

/** The first run of COPY_RUN words of `statement` that also occurs in `source`, if any. */
function copiedRun(statement, source) {
  const src = words(source);
  const runs = new Set();
  for (let i = 0; i + COPY_RUN <= src.length; i++) runs.add(src.slice(i, i + COPY_RUN).join(" "));
  const own = words(statement);
  for (let i = 0; i + COPY_RUN <= own.length; i++) {
    const run = own.slice(i, i + COPY_RUN).join(" ");
    if (runs.has(run)) return run;
  }
  return undefined;
}

/** What differs between the catalogue and the digest (empty when they match). */
function crossCheck(catalogue, spec) {
  const problems = [];
  const byId = new Map(catalogue.map((r) => [r.id, r]));
  const specIds = new Set(spec.map((r) => r.id));
  for (const s of spec) {
    const c = byId.get(s.id);
    if (c === undefined) {
      problems.push(`${s.id} (${s.raw}; ${s.section}): a rule of the digest missing from ${catalogueName}`);
      continue;
    }
    if (c.level !== s.raw) problems.push(`${s.id}: level "${c.level}" here, "${s.raw}" in the digest`);
    if (c.section !== s.section)
      problems.push(`${s.id}: in section "${c.section}" here, "${s.section}" in the digest`);
    const copied = copiedRun(c.statement, s.text);
    if (copied !== undefined)
      problems.push(`${s.id}: the statement copies the digest's words ("${copied}"); restate it in our own`);
  }
  for (const c of catalogue) {
    if (!specIds.has(c.id)) problems.push(`${c.id}: in ${catalogueName} but not a rule of the digest`);
  }
  return problems;
}

const catalogue = parseCatalogue(
  readOrExit(
    cataloguePath,
    "rule catalogue",
    "The rule catalogue (docs/spec-rules.md) is part of the repository; pass --catalogue <path> for another one.",
  ),
);
for (const p of catalogue.problems) console.error(`spec rules: ${p}`);

if (crossCheckOnly) {
  const spec = parseSpec(
    readOrExit(
      specPath,
      "spec digest",
      `The cross-check compares ${catalogueName} with the chimney spec digest, which is not part of the repository: it is read from ../shared/spec/chimney.md beside it, or from --spec <path> or env CHIMNEY_SPEC_DIGEST. Coverage (without --cross-check) needs only ${catalogueName}.`,
    ),
  );
  const diff = crossCheck(catalogue.rules, spec);
  for (const p of diff) console.error(`spec rules vs digest: ${p}`);
  if (catalogue.problems.length > 0 || diff.length > 0) {
    console.error(
      `${catalogueName} does not match the spec digest ${specPath}: ${catalogue.problems.length + diff.length} problem(s)`,
    );
    process.exit(1);
  }
  console.log(
    `${catalogueName} matches the spec digest ${specPath}: ${spec.length} rules, same ids, levels and sections`,
  );
  process.exit(0);
}

function walk(dir, out) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

const tokenRe = new RegExp(String.raw`(?<![A-Za-z0-9_-])(${ID})(?![A-Za-z0-9_])`, "g");

const rangeRe =
  /(?<![A-Za-z0-9_-])([A-Z][A-Z0-9]*)-(\d+)\s*(?:\.\.|–)\s*([A-Z][A-Z0-9]*)-(\d+)(?![A-Za-z0-9_])/g;

/** The whole text of a file. */
const wholeText = (f) => readFileSync(f, "utf8");

/** id -> sorted list of repo-relative files citing it in `textOf(file)`. */
function citations(files, textOf = wholeText) {
  const map = new Map();
  for (const f of files) {
    const rel = relative(root, f).split(sep).join("/");
    const text = textOf(f);
    const cite = (id) => {
      let set = map.get(id);
      if (set === undefined) {
        set = new Set();
        map.set(id, set);
      }
      set.add(rel);
    };
    for (const m of text.matchAll(tokenRe)) cite(m[1]);
    // An explicit range such as "TM-14..TM-16" cites every id in it (same prefix, plain numbers).
    for (const m of text.matchAll(rangeRe)) {
      const from = Number(m[2]);
      const to = Number(m[4]);
      if (m[1] !== m[3] || to <= from || to - from > 20) continue;
      for (let n = from + 1; n < to; n++) cite(`${m[1]}-${n}`);
    }
  }
  return map;
}

const isTest = (p) => p.endsWith(".test.ts");
const srcFiles = walk(join(root, "src"), []);
const enforcedMap = citations(srcFiles.filter((p) => !isTest(p)));
const testFiles = [...srcFiles.filter(isTest), ...walk(join(root, "test"), [])];
// Tests, read with the TypeScript parser (scripts/test-assertions.mjs): a rule is tested when the
// full name of a test that asserts cites it; a name on a test that checks nothing does not count.
const testsByFile = new Map(readTests(testFiles).map((t) => [t.file, t]));
const testNameText = (asserting) => (f) =>
  (testsByFile.get(f)?.tests ?? [])
    .filter((t) => t.asserts === asserting)
    .map((t) => t.name)
    .join("\n");
const testedMap = citations(testFiles, testNameText(true));
const idleNamedMap = citations(testFiles, testNameText(false));
const compilerMap = citations(testFiles, (f) => (testsByFile.get(f)?.directives ?? []).join("\n"));

const STATUS = [
  "enforced + tested",
  "enforced, compiler-checked",
  "enforced, untested",
  "tested only",
  "not implemented",
];

const rules = catalogue.rules;
for (const r of rules) {
  r.enforced = [...(enforcedMap.get(r.id) ?? [])].sort();
  r.tested = [...(testedMap.get(r.id) ?? [])].sort();
  r.compiler = [...(compilerMap.get(r.id) ?? [])].sort();
  r.idleNamed = [...(idleNamedMap.get(r.id) ?? [])].filter((f) => !r.tested.includes(f)).sort();
  r.status =
    r.enforced.length > 0
      ? r.tested.length > 0
        ? STATUS[0]
        : r.compiler.length > 0
          ? STATUS[1]
          : STATUS[2]
      : r.tested.length > 0
        ? STATUS[3]
        : STATUS[4];
}

/** Reasons file: `ID: reason` lines; returns id -> reason and the problems found while reading. */
function readReasons(path) {
  const map = new Map();
  const problems = [];
  if (!existsSync(path)) return { map, problems };
  const lineRe = new RegExp(String.raw`^(${ID}):\s+(\S.*)$`);
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((line, i) => {
      const m = lineRe.exec(line.trim());
      if (m?.[1] === undefined || m[2] === undefined) return;
      if (map.has(m[1])) problems.push(`${m[1]}: two reasons (line ${i + 1} of ${relative(root, path)})`);
      map.set(m[1], m[2].trim());
    });
  return { map, problems };
}

const reasons = readReasons(reasonsPath);
const problems = [...reasons.problems];
{
  const known = new Set(rules.map((r) => r.id));
  for (const id of reasons.map.keys()) {
    if (!known.has(id)) problems.push(`${id}: has a reason but is not a rule of ${catalogueName}`);
  }
  for (const r of rules) {
    r.reason = reasons.map.get(r.id);
    if (r.status === STATUS[0] && r.reason !== undefined)
      problems.push(`${r.id}: enforced + tested now; delete its line from ${relative(root, reasonsPath)}`);
    if (r.status !== STATUS[0] && r.reason === undefined)
      problems.push(`${r.id}: ${r.status}, and no reason in ${relative(root, reasonsPath)}`);
  }
}

const cell = (s) => s.replace(/\|/g, "\\|");
const files = (list) => (list.length === 0 ? "—" : list.map((f) => `\`${f}\``).join("<br>"));

const lines = [];
lines.push("# Spec coverage");
lines.push("");
lines.push(
  `Generated by \`node scripts/spec-coverage.mjs\` from the rule catalogue \`${catalogueName}\` (one line per rule, in the project's words); do not edit by hand.`,
);
lines.push(
  "A rule counts as *enforced* when a non-test file under `src/` cites its id (as a whole word, or inside an explicit range such as `TM-14..TM-16`), and as *tested* when the full name of a test that asserts cites it: the first argument of a `test(` or `it(` call in `src/**/*.test.ts` or `test/**/*.ts`, after the names of the `describe(` suites around it. A test asserts when its body calls an `assert…` or `expect…` function or method, throws, or calls a helper of the test code that does (followed to a fixpoint; `scripts/test-assertions.mjs` reads the tests with the TypeScript parser). An id in a comment, an assertion message, a helper, or the name of a test that checks nothing does not count.",
);
lines.push(
  "A rule the compiler checks is its own category, *enforced, compiler-checked*: a test file cites its id in a `// @ts-expect-error` directive, so the build fails if the violating line after it compiles.",
);
lines.push(
  "Mixed levels (for example `SHOULD/MUST` or `FACT/MUST`) are counted under the strongest capitalised keyword: MUST > SHOULD > MAY > HOST-GUARANTEE > FACT.",
);
lines.push(
  "Every rule that is not enforced + tested has a reason in `docs/spec-reasons.md` (one `ID: reason` line each), shown in the *reason* column; `--check` fails when one is missing or when a reason is left on a rule that is now enforced + tested.",
);
lines.push("");
lines.push("## Summary");
lines.push("");
lines.push(`| level | rules | ${STATUS.join(" | ")} |`);
lines.push(`|---|---:|${STATUS.map(() => "---:").join("|")}|`);
const totals = STATUS.map(() => 0);
for (const cls of CLASSES) {
  const of = rules.filter((r) => r.cls === cls);
  const counts = STATUS.map((s) => of.filter((r) => r.status === s).length);
  counts.forEach((c, i) => {
    totals[i] += c;
  });
  lines.push(`| ${cls} | ${of.length} | ${counts.join(" | ")} |`);
}
lines.push(`| **total** | **${rules.length}** | ${totals.map((c) => `**${c}**`).join(" | ")} |`);
lines.push("");

const gaps = rules.filter((r) => r.cls === "MUST" && r.status !== STATUS[0]);
lines.push(`## MUST rules not enforced + tested (${gaps.length})`);
lines.push("");
if (gaps.length === 0) lines.push("None.");
let lastSection = "";
for (const r of gaps) {
  if (r.section !== lastSection) {
    if (lastSection !== "") lines.push("");
    lines.push(`**${r.section}**`);
    lines.push("");
    lastSection = r.section;
  }
  lines.push(`- **${r.id}** (${r.level}; ${r.status}) — ${r.statement}`);
  if (r.reason !== undefined) lines.push(`  *Reason:* ${r.reason}`);
}
lines.push("");

// Rules named by tests that assert nothing (and by no test that does, in that file).
const idle = rules.filter((r) => r.idleNamed.length > 0);
if (idle.length > 0) {
  lines.push(`## Rules named by tests that assert nothing (${idle.length})`);
  lines.push("");
  lines.push("These names do not count: the test checks nothing, so it cannot fail.");
  lines.push("");
  for (const r of idle) lines.push(`- ${r.id}: ${r.idleNamed.map((f) => `\`${f}\``).join(", ")}`);
  lines.push("");
}

// Ids cited in the code with a known rule prefix but absent from the catalogue (typos, stale ids).
const known = new Set(rules.map((r) => r.id));
const prefixes = new Set(rules.map((r) => r.id.replace(/-\d+[a-z]?$/, "")));
const unknown = new Map();
// (Test files count with their whole text here, comments included: a stale id anywhere is reported.)
for (const map of [enforcedMap, citations(testFiles)]) {
  for (const [id, set] of map) {
    if (known.has(id) || !prefixes.has(id.replace(/-\d+[a-z]?$/, ""))) continue;
    const all = unknown.get(id) ?? new Set();
    for (const f of set) all.add(f);
    unknown.set(id, all);
  }
}
if (unknown.size > 0) {
  lines.push(`## Cited ids not in the catalogue (${unknown.size})`);
  lines.push("");
  for (const id of [...unknown.keys()].sort()) {
    lines.push(
      `- ${id}: ${[...(unknown.get(id) ?? [])]
        .sort()
        .map((f) => `\`${f}\``)
        .join(", ")}`,
    );
  }
  lines.push("");
}

lines.push("## Rules by section");
const sections = [...new Set(rules.map((r) => r.section))];
for (const s of sections) {
  lines.push("");
  lines.push(`### ${s}`);
  lines.push("");
  lines.push("| rule | level | statement | enforced in | tested in | status | reason |");
  lines.push("|---|---|---|---|---|---|---|");
  for (const r of rules.filter((x) => x.section === s)) {
    lines.push(
      `| ${r.id} | ${cell(r.level)} | ${cell(r.statement)} | ${files(r.enforced)} | ${files(r.tested)} | ${r.status} | ${cell(r.reason ?? "")} |`,
    );
  }
}
lines.push("");
const out = lines.join("\n");

const summaryLine = CLASSES.map((c) => {
  const of = rules.filter((r) => r.cls === c);
  return `${c} ${of.filter((r) => r.status === STATUS[0]).length}/${of.length}`;
}).join(", ");

for (const p of problems) console.error(`spec reasons: ${p}`);
const problemCount = catalogue.problems.length + problems.length;

if (checkOnly) {
  if (problemCount > 0) {
    console.error(`${problemCount} problem(s) in ${catalogueName} or ${relative(root, reasonsPath)}`);
    process.exit(1);
  }
  const current = existsSync(outPath) ? readFileSync(outPath, "utf8") : "";
  if (current !== out) {
    console.error(`${relative(root, outPath)} is stale; run node scripts/spec-coverage.mjs`);
    process.exit(1);
  }
  console.log(`${relative(root, outPath)} is up to date (${summaryLine} enforced + tested)`);
} else {
  writeFileSync(outPath, out);
  console.log(
    `wrote ${relative(root, outPath)}: ${rules.length} rules; enforced + tested: ${summaryLine}; MUST gaps: ${gaps.length}`,
  );
  if (problemCount > 0) process.exit(1);
}
