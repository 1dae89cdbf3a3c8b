/**
 * The package's main entry (`import ... from "chimney"`): `net`-style sockets over our stack
 * (`NetStack`, `Server`, `Socket`, the drivers, `createSimNetwork`), the host stack itself, the
 * chimney (offload manager, software target, buffer ledger, the contract's types), errors, time
 * and the address helpers. The simulator's parts are in `chimney/sim`, the live link (TAP device
 * to the Linux kernel) in `chimney/live`, the packetdrill runner in `chimney/conformance`.
 */
export * from "./socket/index.js";
export {
  type ConnPhase,
  type HostConfig,
  HostConn,
  HostListener,
  type HostListenOptions,
  HostStack,
  type HostStats,
  type IfAddress,
  type InterfaceConfig,
  type OutFrame,
  type RandomSource,
  SocketError,
  type SocketErrorCode,
  type StackEvent,
  type StaticRoute,
} from "./host/stack.js";
export { DEFAULT_MAX_ESTABLISHED } from "./tcp/listener.js";
export {
  acceptAllKnobs,
  OffloadManager,
  type OffloadPolicy,
  type OffloadStats,
  type ReceiveKnobs,
} from "./host/offload-manager.js";
export type {
  CompletionStatus,
  OffloadHost,
  OffloadTarget,
  TcpOffloadEvent,
  TcpUploadReason,
} from "./chimney/contract.js";
export {
  SoftwareTarget,
  type SoftwareTargetOptions,
  TargetBusyError,
  type TargetLimits,
  type TargetStats,
} from "./offload-target/software-target.js";
export { BufferLedger, type LedgerOptions } from "./nbl/ledger.js";
export { DEFAULT_TCP_CONFIG, type TcpConfig, tcpConfig } from "./tcp/config.js";
export { Duration, Instant } from "./time/instant.js";
export {
  ConfigError,
  type ErrorCode,
  InvariantViolation,
  OwnershipError,
  type OwnershipReason,
  StackError,
  UsageError,
} from "./util/errors.js";
export { type IpAddr, ip, ipToString, parseIp } from "./wire/ip-addr.js";
export { type MacAddr, mac, macToString, parseMac } from "./wire/ethernet.js";
export { decodeFrame } from "./wire/packet.js";
export { formatPacket } from "./wire/pretty.js";
export { parsePcap, PcapWriter, type PcapWriterOptions } from "./wire/pcap.js";
