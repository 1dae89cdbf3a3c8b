/** `chimney report TIMELINE.json -o FILE.html`: renders a saved timeline as the HTML report. */
import { readFileSync, writeFileSync } from "node:fs";
import { renderTimelineHtml } from "../../report/html.js";
import { describeShapeError, parseTimeline } from "../../report/parse.js";
import type { Timeline } from "../../report/timeline.js";
import { CliUsageError } from "../errors.js";

/** Reads and checks a timeline JSON file. Throws `CliUsageError` (one line, naming the file). */
export function readTimelineFile(path: string): Timeline {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new CliUsageError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CliUsageError(`${path}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const r = parseTimeline(json);
  if (!r.ok) throw new CliUsageError(`${path}: not a timeline: ${describeShapeError(r.error)}`);
  return r.value;
}

/** Renders `input` (timeline JSON) to `output` (HTML); returns the number of bytes written. */
export function renderReport(input: string, output: string): number {
  const html = renderTimelineHtml(readTimelineFile(input));
  try {
    writeFileSync(output, html);
  } catch (e) {
    throw new CliUsageError(`${output}: cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return Buffer.byteLength(html);
}
