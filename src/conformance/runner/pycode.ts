/**
 * The `%{ ... }%` snippets of the suite are Python run after the script with the socket's
 * `tcp_info` in scope. They only assert on simple expressions over `tcpi_*` fields and
 * `TCPI_*` constants, so they are parsed and evaluated here (no Python is run):
 * `assert EXPR` lines, with EXPR made of integers, names, parentheses, `not`, `and`, `or`,
 * comparisons (`== != < <= > >=`), `|`, `&`.
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
  const re = /\s*(?:(0x[0-9a-fA-F]+|\d+)|([A-Za-z_][A-Za-z0-9_.]*)|(==|!=|<=|>=|<|>|\||&|\(|\)))/y;
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
      if (v === undefined) throw new PyError(`unknown name ${t.v}`);
      return v;
    }
    if (t.v === "(") {
      const v = orExpr();
      if (!isOp(")")) throw new PyError("expected )");
      p++;
      return v;
    }
    throw new PyError(`unexpected ${t.v}`);
  };
  const band = (): number => {
    let v = atom();
    while (isOp("&")) {
      p++;
      v &= atom();
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
    const left = bor();
    const t = peek();
    if (t?.k === "op" && ["==", "!=", "<", "<=", ">", ">="].includes(t.v)) {
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
      return r ? 1 : 0;
    }
    return left;
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

/**
 * Runs the `assert` lines of a snippet against `env` (the `tcpi_*` values). Returns ok, or the
 * first failing assertion (or unsupported statement) as text.
 */
export function runPyAsserts(code: string, env: Readonly<Record<string, number>>): Result<void, string> {
  for (const raw of code.split(/\r?\n|;/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^assert\s+(.*)$/.exec(line);
    if (m?.[1] === undefined) return err(`unsupported python statement: ${line}`);
    let v: number;
    try {
      v = evaluate(m[1], env);
    } catch (e) {
      return err(`cannot evaluate '${line}': ${e instanceof Error ? e.message : String(e)}`);
    }
    if (v === 0) {
      const names = Object.keys(env)
        .filter((n) => m[1]?.includes(n))
        .map((n) => `${n}=${String(env[n])}`);
      return err(`'${line}' failed (${names.join(", ")})`);
    }
  }
  return ok(undefined);
}
