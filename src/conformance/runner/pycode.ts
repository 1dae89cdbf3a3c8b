/**
 * The `%{ ... }%` snippets of the suite are Python run after the script with the socket's
 * `tcp_info` in scope. They only assert on simple expressions over `tcpi_*` fields and
 * `TCPI_*` constants, so they are parsed and evaluated here (no Python is run):
 * `assert EXPR` and `assert EXPR, MESSAGE` statements and `NAME = EXPR` assignments, separated
 * by newlines or `;` (a trailing `\` continues a line), with EXPR made of integers, names,
 * parentheses, `not`, `and`, `or`, comparisons (`== != < <= > >=`, chained as in Python), `|`,
 * `&`, `+`, `-`, `*`, `//`.
 */
import { err, ok, type Result } from "../../util/errors.js";

/** FreeBSD's `tcpi_state` values (netinet/tcp_fsm.h) and `tcpi_options` bits (netinet/tcp.h). */
export const TCPI_CONSTANTS: Readonly<Record<string, number>> = {
  TCPI_CLOSED: 0,
  TCPI_LISTEN: 1,
  TCPI_SYN_SENT: 2,
  TCPI_SYN_RECEIVED: 3,
  TCPI_ESTABLISHED: 4,
  TCPI_CLOSE_WAIT: 5,
  TCPI_FIN_WAIT_1: 6,
  TCPI_CLOSING: 7,
  TCPI_LAST_ACK: 8,
  TCPI_FIN_WAIT_2: 9,
  TCPI_TIME_WAIT: 10,
  TCPI_OPT_TIMESTAMPS: 1,
  TCPI_OPT_SACK: 2,
  TCPI_OPT_WSCALE: 4,
  TCPI_OPT_ECN: 8,
  TCPI_OPT_TOE: 16,
};

type Tok =
  | { readonly k: "num"; readonly v: number }
  | { readonly k: "id"; readonly v: string }
  | { readonly k: "op"; readonly v: string };

function tokenize(src: string): Tok[] | string {
  const out: Tok[] = [];
  const re =
    /\s*(?:(0x[0-9a-fA-F]+|\d+)|([A-Za-z_][A-Za-z0-9_.]*)|(==|!=|<=|>=|<|>|\||&|\(|\)|\+|-|\*|\/\/))/y;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (m === null) return `cannot read '${src.slice(i).trim()}'`;
    if (m[1] !== undefined) out.push({ k: "num", v: Number(m[1]) });
    else if (m[2] !== undefined) out.push({ k: "id", v: m[2] });
    else if (m[3] !== undefined) out.push({ k: "op", v: m[3] });
    i = re.lastIndex;
  }
  return out;
}

/** A syntax or name error in a snippet. */
class PyError extends Error {}

/** A name the snippet reads that is not in scope (a `tcp_info` field the facade does not fill). */
class PyNameError extends PyError {
  readonly missing: string;
  constructor(missing: string) {
    super(`unknown name ${missing}`);
    this.missing = missing;
  }
}

/** Evaluates one expression with `env` for names; throws `PyError` on a syntax or name error. */
function evaluate(src: string, env: Readonly<Record<string, number>>): number {
  const toks = tokenize(src);
  if (typeof toks === "string") throw new PyError(toks);
  let p = 0;
  const peek = (): Tok | undefined => toks[p];
  const isOp = (v: string): boolean => {
    const t = peek();
    return t !== undefined && t.k !== "num" && t.v === v;
  };
  const atom = (): number => {
    const t = toks[p++];
    if (t === undefined) throw new PyError("unexpected end of expression");
    if (t.k === "num") return t.v;
    if (t.k === "id") {
      const v = env[t.v] ?? TCPI_CONSTANTS[t.v];
      if (v === undefined) throw new PyNameError(t.v);
      return v;
    }
    if (t.v === "-") return -atom();
    if (t.v === "(") {
      const v = orExpr();
      if (!isOp(")")) throw new PyError("expected )");
      p++;
      return v;
    }
    throw new PyError(`unexpected ${t.v}`);
  };
  const term = (): number => {
    let v = atom();
    while (isOp("*") || isOp("//")) {
      const op = toks[p++]?.v;
      const r = atom();
      if (op === "//" && r === 0) throw new PyError("division by zero");
      v = op === "*" ? v * r : Math.floor(v / r);
    }
    return v;
  };
  const sum = (): number => {
    let v = term();
    while (isOp("+") || isOp("-")) {
      const op = toks[p++]?.v;
      const r = term();
      v = op === "+" ? v + r : v - r;
    }
    return v;
  };
  const band = (): number => {
    let v = sum();
    while (isOp("&")) {
      p++;
      v &= sum();
    }
    return v;
  };
  const bor = (): number => {
    let v = band();
    while (isOp("|")) {
      p++;
      v |= band();
    }
    return v;
  };
  const cmp = (): number => {
    let left = bor();
    let all: boolean | undefined;
    // Python chains comparisons: a <= b <= c is a <= b and b <= c.
    for (let t = peek(); t?.k === "op" && ["==", "!=", "<", "<=", ">", ">="].includes(t.v); t = peek()) {
      p++;
      const right = bor();
      const r =
        t.v === "=="
          ? left === right
          : t.v === "!="
            ? left !== right
            : t.v === "<"
              ? left < right
              : t.v === "<="
                ? left <= right
                : t.v === ">"
                  ? left > right
                  : left >= right;
      all = (all ?? true) && r;
      left = right;
    }
    return all === undefined ? left : all ? 1 : 0;
  };
  const notExpr = (): number => {
    if (isOp("not")) {
      p++;
      return notExpr() === 0 ? 1 : 0;
    }
    return cmp();
  };
  const andExpr = (): number => {
    let v = notExpr();
    while (isOp("and")) {
      p++;
      const r = notExpr();
      v = v !== 0 ? r : v;
    }
    return v;
  };
  function orExpr(): number {
    let v = andExpr();
    while (isOp("or")) {
      p++;
      const r = andExpr();
      v = v !== 0 ? v : r;
    }
    return v;
  }
  const v = orExpr();
  if (p !== toks.length) throw new PyError(`unexpected ${String(toks[p]?.v)}`);
  return v;
}

/** Why a snippet did not pass. */
export interface PyFailure {
  readonly text: string;
  /** Set when it read a name not in scope: the `tcp_info` field (or constant) we lack. */
  readonly unknownName?: string | undefined;
}

/** Splits at the first comma outside parentheses (`assert EXPR, MESSAGE`). */
function beforeTopComma(src: string): string {
  let depth = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) return src.slice(0, i);
  }
  return src;
}

/**
 * Runs the statements of a snippet against `env` (the `tcpi_*` values) and the names earlier
 * snippets assigned (`globals`, updated). Returns ok, or the first failing assertion (or
 * unsupported statement) as text.
 */
export function runPyAsserts(
  code: string,
  env: Readonly<Record<string, number>>,
  globals: Record<string, number> = {},
): Result<void, PyFailure> {
  // Names a snippet assigns stay for the next ones (`globals`), as in one Python process.
  const scope: Record<string, number> = { ...globals, ...env };
  for (const raw of code.replace(/\\\r?\n/g, " ").split(/\r?\n|;/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const assign = /^([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)\s*(.*)$/.exec(line);
    const m = /^assert\s+(.*)$/.exec(line);
    const expr = assign?.[2] ?? (m?.[1] === undefined ? undefined : beforeTopComma(m[1]));
    if (expr === undefined) return err({ text: `unsupported python statement: ${line}` });
    let v: number;
    try {
      v = evaluate(expr, scope);
    } catch (e) {
      const text = `cannot evaluate '${line}': ${e instanceof Error ? e.message : String(e)}`;
      return err({ text, unknownName: e instanceof PyNameError ? e.missing : undefined });
    }
    if (assign?.[1] !== undefined) {
      scope[assign[1]] = v;
      globals[assign[1]] = v;
      continue;
    }
    if (v === 0) {
      const names = Object.keys(env)
        .filter((n) => expr.includes(n))
        .map((n) => `${n}=${String(env[n])}`);
      return err({ text: `'${line}' failed (${names.join(", ")})` });
    }
  }
  return ok(undefined);
}
