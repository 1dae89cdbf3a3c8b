/**
 * `chimney/sim`: the deterministic simulator. `createSimNetwork` (two hosts with `net`-style
 * sockets on one seeded link, offload optional) is the usual start; below it are the pieces it
 * is made of (scheduler, seeded PRNG, link stages, the simulator nodes and driver) and the
 * two-host chimney world the scenarios use. This entry is Node-side (the socket driver runs in
 * Node's event loop); the modules it re-exports from src/sim stay pure.
 */
export {
  createSimNetwork,
  type RunUntilOptions,
  SimDriver,
  type SimDriverOptions,
  type SimLinkOptions,
  type SimNetwork,
  type SimNetworkHost,
  type SimNetworkOptions,
  type SimNode,
  type SimOffload,
  type SimOffloadOptions,
  SimStackDriver,
  SimTimeoutError,
} from "./socket/index.js";
export {
  buildChimneyWorld,
  type ChimneyWorld,
  type WorldHost,
  type WorldHostOptions,
  type WorldOptions,
} from "./sim/chimney-world.js";
export type { FrameSink, StageStats } from "./sim/frame-sink.js";
export { SimHost } from "./sim/host-node.js";
export {
  buildDuplexLink,
  buildLinkChain,
  type DuplexLink,
  type DuplexLinkOptions,
  type FaultProfile,
  type LinkChain,
  type LinkChainOptions,
  type LinkTapOptions,
  type TapPoint,
} from "./sim/link.js";
export { type NicTarget, ChimneyNode, createChimney } from "./node/chimney-node.js";
export { Prng } from "./sim/prng.js";
export { LivelockError, Scheduler, type SchedulerOptions, type SimTimer } from "./sim/scheduler.js";
export { type RunScenarioOptions, runScenario, type ScenarioResult } from "./scenario/run.js";
export { type Scenario, validateScenario } from "./scenario/schema.js";
