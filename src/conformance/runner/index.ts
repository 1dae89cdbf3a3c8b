/** The packetdrill conformance runner: run a peer's TCP test suite against our host stack. */
export type { DutDevice, DutMode, OffloadDeviceOptions } from "./device.js";
export {
  DUT_MAC,
  frameIp,
  GATEWAY_MAC,
  HostDevice,
  OffloadDevice,
  PINNED_NEIGHBOR_CONFIG,
  unframeIp,
} from "./device.js";
export type { CapturedFrame, OffloadActivity, RunScriptOptions, ScriptResult } from "./dut.js";
export { chooseDefines, PACKETDRILL_DEFAULTS, runScript } from "./dut.js";
export type { KnownFailure, KnownFailureCheck } from "./known-failures.js";
export { checkKnownFailures, parseKnownFailures } from "./known-failures.js";
export type { DutSettings, LenientRule, LenientRuleName, SysctlRule } from "./policy.js";
export { applySysctl, defaultSettings, LENIENT_RULES, SYSCTL_TABLE, SYSCTLS_WITHOUT_KNOB } from "./policy.js";
export { runPyAsserts, TCPI_CONSTANTS } from "./pycode.js";
export type { ConformanceOptions, ConformanceResult, ConformanceRun, FolderSummary, Verdict } from "./run.js";
export { formatSummary, listScripts, runConformance } from "./run.js";
