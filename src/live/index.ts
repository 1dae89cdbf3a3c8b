/**
 * `chimney/live`: our stack on real time against the real Linux kernel, through a TAP device
 * whose kernel side sits in a new network namespace (needs root, and the TAP addon: see
 * `NativeAddonMissingError`). `startLiveHost` gives `net`-style sockets there;
 * `startLiveChimneyHost` adds the offload manager and the software target.
 */
export {
  type LiveChimneyHost,
  type LiveChimneyHostOptions,
  startLiveChimneyHost,
} from "./chimney-host.js";
export { liveHttpHandler, patternSha256, serveHttpOn } from "./http-app.js";
export {
  type FrameCapture,
  type LiveHost,
  type LiveHostOptions,
  type LiveStats,
  startLiveHost,
} from "./live-host.js";
export { addonPath, NativeAddonMissingError } from "../device/native.js";
export {
  createTapNamespace,
  killTree,
  LIVE_ADDRS,
  type TapNamespace,
  type TapNamespaceOptions,
} from "./netns.js";
export type { TapMode, TapOffload, TapStats } from "../device/tap.js";
