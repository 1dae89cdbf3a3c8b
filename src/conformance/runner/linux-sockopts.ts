/**
 * Linux's numbers for the socket levels and options the kernel mode passes to the kernel as the
 * script names them (asm-generic/socket.h, linux/tcp.h, linux/in.h). `sockopts.ts` says what each
 * option means to our stack; these are only the kernel's numbers.
 */

export const LEVELS: Readonly<Record<string, number>> = {
  SOL_SOCKET: 1,
  IPPROTO_IP: 0,
  SOL_IP: 0,
  IPPROTO_TCP: 6,
  SOL_TCP: 6,
  IPPROTO_IPV6: 41,
  SOL_IPV6: 41,
};
export const OPTIONS: Readonly<Record<string, number>> = {
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_KEEPALIVE: 9,
  SO_LINGER: 13,
  SO_REUSEPORT: 15,
  SO_RCVLOWAT: 18,
  SO_SNDLOWAT: 19,
  SO_MAX_PACING_RATE: 47,
  SO_ZEROCOPY: 60,
  IP_TOS: 1,
  IPV6_TCLASS: 67,
  TCP_NODELAY: 1,
  TCP_MAXSEG: 2,
  TCP_CORK: 3,
  TCP_KEEPIDLE: 4,
  TCP_KEEPINTVL: 5,
  TCP_KEEPCNT: 6,
  TCP_SYNCNT: 7,
  TCP_LINGER2: 8,
  TCP_DEFER_ACCEPT: 9,
  TCP_WINDOW_CLAMP: 10,
  TCP_QUICKACK: 12,
  TCP_CONGESTION: 13,
  TCP_USER_TIMEOUT: 18,
  TCP_FASTOPEN: 23,
  TCP_TIMESTAMP: 24,
  TCP_NOTSENT_LOWAT: 25,
  TCP_FASTOPEN_CONNECT: 30,
  TCP_INQ: 36,
  TCP_TX_DELAY: 37,
};
