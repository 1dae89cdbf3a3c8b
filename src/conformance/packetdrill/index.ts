/** The packetdrill script parser: parse, inspect and print scripts. */
export type * from "./ast.js";
export { allEvents, optionValue, runEvents, selectEvents, structField, TCP_FLAG_LETTERS } from "./ast.js";
export type { PdErrorCode } from "./errors.js";
export { PacketdrillParseError } from "./errors.js";
export type { ParseOptions } from "./parser.js";
export { parsePacketdrill } from "./parser.js";
export { printEvent, printExpr, printPacket, printScript, printSeconds, printTime } from "./print.js";
