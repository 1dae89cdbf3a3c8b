#!/usr/bin/env node
// The chimney command. Until the demo lands it says so honestly and exits non-zero.
console.log("chimney: the demo is not built yet; run `npm test` to see what is.");
process.exitCode = 1;
