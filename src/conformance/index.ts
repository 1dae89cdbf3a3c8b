/**
 * `chimney/conformance`: runs packetdrill scripts (a peer test suite's directory) against our
 * stack, in host or offloaded mode, and compares the outcome with a known-failures list.
 */
export * from "./runner/index.js";
