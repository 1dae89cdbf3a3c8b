/**
 * The Node-style socket API over the host stack: drivers (simulated and real time), `NetStack`
 * with `Server` and `Socket`, and Node-shaped errors.
 */
export {
  type DriverTimer,
  type FrameIo,
  RealTimeDriver,
  type RealTimeDriverOptions,
  SimDriver,
  type SimDriverOptions,
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
  type ServerOptions,
} from "./net-stack.js";
export {
  type ConnectOptions,
  Socket,
  type SocketAddress,
  type SocketHost,
  type SocketOptions,
  type SocketReadyState,
} from "./socket.js";
