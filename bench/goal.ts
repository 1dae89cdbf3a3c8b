/**
 * The one line every benchmark target is printed as:
 * `goal <topic>/<name>: <measured> (target <target>) OK|BELOW`.
 * A figure an issue asks to report without a target prints `(target report)` and `OK`.
 */
export function goal(topic: string, name: string, measured: string, target: string, ok: boolean): void {
  console.log(`goal ${topic}/${name}: ${measured} (target ${target}) ${ok ? "OK" : "BELOW"}`);
}

/** The `q`-quantile (0..1) of `xs` (sorted copy; nearest rank). */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
}
