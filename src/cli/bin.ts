#!/usr/bin/env node
/**
 * The `chimney` executable (package.json `bin`, `npm start`): runs the CLI with the process's
 * arguments, unconditionally, and sets the exit code. All logic lives in main.ts.
 */
import { reportError } from "./errors.js";
import { main } from "./main.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.exitCode = reportError(e, true);
  },
);
