/**
 * The Node-style socket API over the host stack: drivers (simulated and real time), `NetStack`
 * with `Server` and `Socket`, Node-shaped errors, and `createSimNetwork` (the common simulator
 * set-up in one call).
 */
export {
  type DriverTimer,
  type FrameIo,
  RealTimeDriver,
  type RealTimeDriverOptions,
  SimDriver,
  type SimDriverOptions,
  type SimNode,
  SimStackDriver,
  type StackDriver,
  type StackEventHandler,
} from "./driver.js";
export { hasCode, type NetError, type NetErrorCode, type NetSyscall, netError } from "./errors.js";
export {
  type ListenOptions,
  NetStack,
  type NetStackOptions,
  Server,
  type ServerEvents,
  type ServerListener,
  type ServerOptions,
} from "./net-stack.js";
export {
  createSimNetwork,
  type RunUntilOptions,
  type SimLinkOptions,
  type SimNetwork,
  type SimNetworkHost,
  type SimNetworkOptions,
  type SimOffload,
  type SimOffloadOptions,
  SimTimeoutError,
} from "./sim-network.js";
export {
  type ConnectOptions,
  Socket,
  type SocketAddress,
  type SocketHost,
  type SocketOptions,
  type SocketReadyState,
} from "./socket.js";
