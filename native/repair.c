/*
 * chimney_repair: the kernel's TCP_REPAIR calls, for handing a live TCP connection between
 * Chimney and the Linux kernel (Linux only). Thin wrappers: one JavaScript call is one system
 * call (or one short loop of them), and src/device/repair.ts composes them into export and import.
 * Every fd is a number; nothing here keeps state.
 *
 * socket(family 4|6) -> fd               a blocking SOCK_STREAM socket (close-on-exec)
 * bind(fd, address, port), connect(fd, address, port), listen(fd, backlog), accept(fd) -> fd
 * localAddress(fd), remoteAddress(fd) -> { address, port }
 * setNonBlocking(fd, on)
 * setInt(fd, level, name, value), getInt(fd, level, name) -> value      any int socket option
 * setRepairOptions(fd, codes, values)   TCP_REPAIR_OPTIONS, an array of { code, value } pairs
 * getRepairWindow(fd) -> { sndWl1, sndWnd, maxWindow, rcvWnd, rcvWup }   TCP_REPAIR_WINDOW
 * setRepairWindow(fd, sndWl1, sndWnd, maxWindow, rcvWnd, rcvWup)
 * tcpInfo(fd) -> { state, options, sndWscale, rcvWscale, rto, ato, sndMss, rcvMss, unacked,
 *                  retransmits, lost, rtt, rttvar, sndSsthresh, sndCwnd, advmss, rcvSpace }
 * ioctlInt(fd, request) -> value         SIOCINQ, SIOCOUTQ, SIOCOUTQNSD
 * peek(fd, length) -> Buffer             one recv(MSG_PEEK | MSG_DONTWAIT) of up to length bytes
 * peekInto(fd, buffer) -> count          the same into `buffer` (no copy on our side)
 * send(fd, buffer, offset) -> count      one send(MSG_DONTWAIT | MSG_NOSIGNAL) of buffer[offset..];
 *                                        0 when the kernel takes nothing now (EAGAIN)
 * close(fd)
 * socketIn(nsFd, family 4|6) -> fd      socket() inside the network namespace nsFd refers to
 * tcSteer(nsFd, outer, tap, pref, localAddress, localPort, remoteAddress, remotePort)
 * tcUnsteer(nsFd, outer, pref)           one connection's steering filter, over rtnetlink
 *                                        (steer.c; the namespace's calls, without running tc)
 * rawSocketIn(nsFd) -> fd, sendIp(fd, packet)   IPv4 packets into the namespace's own stack (steer.c)
 * tunIn, waitFds, readFd, writeFd, readTun, writeTun, sendNull, recvNull, epollCreate, epollCtl,
 * epollWait, recvFlags, sendFlags, sendIov, shutdown, setBytes, getBytes
 *                                        packetdrill scripts against the kernel (pdk.c)
 *
 * A failed system call throws an Error with `code` the errno name (EINVAL, EPERM, ...), `errno`
 * the number and `syscall` what was called (e.g. "setsockopt(TCP_REPAIR_WINDOW)").
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "repair.h"

#define CHECK(env, call)                                                \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error((env), "ERR_NAPI", "N-API call failed: " #call); \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

napi_value throw_errno(napi_env env, const char *syscall, int e) {
  const char *name = strerrorname_np(e);
  if (name == NULL) name = "EUNKNOWN";
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(e));
  napi_value code, text, error, num, call;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok) return NULL;
  if (napi_create_error(env, code, text, &error) != napi_ok) return NULL;
  if (napi_create_int32(env, e, &num) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &call) != napi_ok) return NULL;
  napi_set_named_property(env, error, "errno", num);
  napi_set_named_property(env, error, "syscall", call);
  napi_throw(env, error);
  return NULL;
}

napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  if (napi_create_int64(env, v, &out) != napi_ok) return NULL;
  return out;
}

static napi_value make_u32(napi_env env, uint32_t v) {
  napi_value out;
  if (napi_create_uint32(env, v, &out) != napi_ok) return NULL;
  return out;
}

static int set_u32(napi_env env, napi_value obj, const char *key, uint32_t v) {
  napi_value x = make_u32(env, v);
  if (x == NULL) return -1;
  return napi_set_named_property(env, obj, key, x) == napi_ok ? 0 : -1;
}

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < want) {
    napi_throw_type_error(env, "ERR_ARGS", "too few arguments");
    return -1;
  }
  return 0;
}

int get_i32(napi_env env, napi_value v, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "ERR_ARGS", "expected a number");
    return -1;
  }
  return 0;
}

int get_u32(napi_env env, napi_value v, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "ERR_ARGS", "expected a number");
    return -1;
  }
  return 0;
}

/* Parses an IPv4 or IPv6 address and port into `ss`; returns its length or 0 (and throws). */
socklen_t get_sockaddr(napi_env env, napi_value addr, napi_value port,
                              struct sockaddr_storage *ss) {
  char text[INET6_ADDRSTRLEN + 1];
  size_t len = 0;
  int32_t p = 0;
  if (napi_get_value_string_utf8(env, addr, text, sizeof text, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_ARGS", "expected an address string");
    return 0;
  }
  if (get_i32(env, port, &p) < 0) return 0;
  if (p < 0 || p > 65535) {
    napi_throw_range_error(env, "ERR_ARGS", "port out of range");
    return 0;
  }
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)p);
    return sizeof *in4;
  }
  if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)p);
    return sizeof *in6;
  }
  napi_throw_type_error(env, "ERR_ARGS", "not an IPv4 or IPv6 address");
  return 0;
}

static napi_value sockaddr_value(napi_env env, const struct sockaddr_storage *ss) {
  char text[INET6_ADDRSTRLEN];
  uint16_t port = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &in4->sin_addr, text, sizeof text);
    port = ntohs(in4->sin_port);
  } else {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    port = ntohs(in6->sin6_port);
  }
  napi_value obj, a;
  CHECK(env, napi_create_object(env, &obj));
  CHECK(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &a));
  CHECK(env, napi_set_named_property(env, obj, "address", a));
  if (set_u32(env, obj, "port", port) < 0) return NULL;
  return obj;
}

static napi_value js_socket(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t family = 0;
  if (get_args(env, info, 1, argv) < 0 || get_i32(env, argv[0], &family) < 0) return NULL;
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) return throw_errno(env, "socket", errno);
  return make_int(env, fd);
}

static napi_value js_bind(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = -1;
  struct sockaddr_storage ss;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  socklen_t len = get_sockaddr(env, argv[1], argv[2], &ss);
  if (len == 0) return NULL;
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) return throw_errno(env, "bind", errno);
  return NULL;
}

static napi_value js_connect(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = -1;
  struct sockaddr_storage ss;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  socklen_t len = get_sockaddr(env, argv[1], argv[2], &ss);
  if (len == 0) return NULL;
  if (connect(fd, (struct sockaddr *)&ss, len) < 0) return throw_errno(env, "connect", errno);
  return NULL;
}

static napi_value js_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1, backlog = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0 ||
      get_i32(env, argv[1], &backlog) < 0)
    return NULL;
  if (listen(fd, backlog) < 0) return throw_errno(env, "listen", errno);
  return NULL;
}

static napi_value js_accept(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd = -1;
  if (get_args(env, info, 1, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return throw_errno(env, "accept", errno);
  return make_int(env, c);
}

static napi_value address_of(napi_env env, napi_callback_info info, int peer) {
  napi_value argv[1];
  int32_t fd = -1;
  if (get_args(env, info, 1, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
               : getsockname(fd, (struct sockaddr *)&ss, &len);
  if (r < 0) return throw_errno(env, peer ? "getpeername" : "getsockname", errno);
  return sockaddr_value(env, &ss);
}

static napi_value js_local_address(napi_env env, napi_callback_info info) {
  return address_of(env, info, 0);
}

static napi_value js_remote_address(napi_env env, napi_callback_info info) {
  return address_of(env, info, 1);
}

static napi_value js_set_non_blocking(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1;
  bool on = false;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  CHECK(env, napi_get_value_bool(env, argv[1], &on));
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return throw_errno(env, "fcntl(F_GETFL)", errno);
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (fcntl(fd, F_SETFL, flags) < 0) return throw_errno(env, "fcntl(F_SETFL)", errno);
  return NULL;
}

static const char *option_name(int level, int name) {
  if (level == IPPROTO_TCP) {
    switch (name) {
      case TCP_REPAIR: return "setsockopt(TCP_REPAIR)";
      case TCP_REPAIR_QUEUE: return "setsockopt(TCP_REPAIR_QUEUE)";
      case TCP_QUEUE_SEQ: return "setsockopt(TCP_QUEUE_SEQ)";
      case TCP_TIMESTAMP: return "setsockopt(TCP_TIMESTAMP)";
      case TCP_MAXSEG: return "setsockopt(TCP_MAXSEG)";
      case TCP_NODELAY: return "setsockopt(TCP_NODELAY)";
      default: return "setsockopt(IPPROTO_TCP)";
    }
  }
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_RCVBUF: return "setsockopt(SO_RCVBUF)";
      case SO_SNDBUF: return "setsockopt(SO_SNDBUF)";
      case SO_RCVBUFFORCE: return "setsockopt(SO_RCVBUFFORCE)";
      case SO_SNDBUFFORCE: return "setsockopt(SO_SNDBUFFORCE)";
      case SO_REUSEADDR: return "setsockopt(SO_REUSEADDR)";
      default: return "setsockopt(SOL_SOCKET)";
    }
  }
  return "setsockopt";
}

static napi_value js_set_int(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd = -1, level = 0, name = 0, value = 0;
  if (get_args(env, info, 4, argv) < 0 || get_i32(env, argv[0], &fd) < 0 ||
      get_i32(env, argv[1], &level) < 0 || get_i32(env, argv[2], &name) < 0)
    return NULL;
  /* Sequence numbers and timestamps are u32, TCP_REPAIR takes -1: keep the low 32 bits. */
  double d = 0;
  if (napi_get_value_double(env, argv[3], &d) != napi_ok) {
    napi_throw_type_error(env, "ERR_ARGS", "expected a number");
    return NULL;
  }
  value = (int32_t)(uint32_t)(int64_t)d;
  if (setsockopt(fd, level, name, &value, sizeof value) < 0)
    return throw_errno(env, option_name(level, name), errno);
  return NULL;
}

static napi_value js_get_int(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = -1, level = 0, name = 0;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0 ||
      get_i32(env, argv[1], &level) < 0 || get_i32(env, argv[2], &name) < 0)
    return NULL;
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) < 0) {
    char what[64];
    snprintf(what, sizeof what, "get%s", option_name(level, name) + 3);
    return throw_errno(env, what, errno);
  }
  return make_int(env, value);
}

static napi_value js_set_repair_options(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = -1;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  uint32_t n = 0, m = 0;
  CHECK(env, napi_get_array_length(env, argv[1], &n));
  CHECK(env, napi_get_array_length(env, argv[2], &m));
  if (n != m || n > 8) {
    napi_throw_range_error(env, "ERR_ARGS", "codes and values: arrays of one length, at most 8");
    return NULL;
  }
  struct tcp_repair_opt opts[8];
  for (uint32_t i = 0; i < n; i++) {
    napi_value c, v;
    CHECK(env, napi_get_element(env, argv[1], i, &c));
    CHECK(env, napi_get_element(env, argv[2], i, &v));
    if (get_u32(env, c, &opts[i].opt_code) < 0 || get_u32(env, v, &opts[i].opt_val) < 0) return NULL;
  }
  if (n > 0 && setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, n * sizeof opts[0]) < 0)
    return throw_errno(env, "setsockopt(TCP_REPAIR_OPTIONS)", errno);
  return NULL;
}

static napi_value js_get_repair_window(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd = -1;
  if (get_args(env, info, 1, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  struct tcp_repair_window w;
  socklen_t len = sizeof w;
  if (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) < 0)
    return throw_errno(env, "getsockopt(TCP_REPAIR_WINDOW)", errno);
  napi_value obj;
  CHECK(env, napi_create_object(env, &obj));
  if (set_u32(env, obj, "sndWl1", w.snd_wl1) < 0 || set_u32(env, obj, "sndWnd", w.snd_wnd) < 0 ||
      set_u32(env, obj, "maxWindow", w.max_window) < 0 ||
      set_u32(env, obj, "rcvWnd", w.rcv_wnd) < 0 || set_u32(env, obj, "rcvWup", w.rcv_wup) < 0)
    return NULL;
  return obj;
}

static napi_value js_set_repair_window(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int32_t fd = -1;
  if (get_args(env, info, 6, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  struct tcp_repair_window w;
  if (get_u32(env, argv[1], &w.snd_wl1) < 0 || get_u32(env, argv[2], &w.snd_wnd) < 0 ||
      get_u32(env, argv[3], &w.max_window) < 0 || get_u32(env, argv[4], &w.rcv_wnd) < 0 ||
      get_u32(env, argv[5], &w.rcv_wup) < 0)
    return NULL;
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof w) < 0)
    return throw_errno(env, "setsockopt(TCP_REPAIR_WINDOW)", errno);
  return NULL;
}

static napi_value js_tcp_info(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd = -1;
  if (get_args(env, info, 1, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  struct tcp_info ti;
  memset(&ti, 0, sizeof ti);
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
    return throw_errno(env, "getsockopt(TCP_INFO)", errno);
  napi_value obj;
  CHECK(env, napi_create_object(env, &obj));
  if (set_u32(env, obj, "state", ti.tcpi_state) < 0 || set_u32(env, obj, "options", ti.tcpi_options) < 0 ||
      set_u32(env, obj, "sndWscale", ti.tcpi_snd_wscale) < 0 ||
      set_u32(env, obj, "rcvWscale", ti.tcpi_rcv_wscale) < 0 || set_u32(env, obj, "rto", ti.tcpi_rto) < 0 ||
      set_u32(env, obj, "ato", ti.tcpi_ato) < 0 || set_u32(env, obj, "sndMss", ti.tcpi_snd_mss) < 0 ||
      set_u32(env, obj, "rcvMss", ti.tcpi_rcv_mss) < 0 || set_u32(env, obj, "unacked", ti.tcpi_unacked) < 0 ||
      set_u32(env, obj, "retransmits", ti.tcpi_retransmits) < 0 || set_u32(env, obj, "lost", ti.tcpi_lost) < 0 ||
      set_u32(env, obj, "rtt", ti.tcpi_rtt) < 0 || set_u32(env, obj, "rttvar", ti.tcpi_rttvar) < 0 ||
      set_u32(env, obj, "sndSsthresh", ti.tcpi_snd_ssthresh) < 0 ||
      set_u32(env, obj, "sndCwnd", ti.tcpi_snd_cwnd) < 0 || set_u32(env, obj, "advmss", ti.tcpi_advmss) < 0 ||
      set_u32(env, obj, "rcvSpace", ti.tcpi_rcv_space) < 0)
    return NULL;
  /* Bytes of data transmitted, retransmissions included, and of those the retransmitted ones
   * (u64, exact in a double below 2^53): what really left, as repair mode's "sends" do not count. */
  napi_value sent, retrans;
  CHECK(env, napi_create_double(env, (double)ti.tcpi_bytes_sent, &sent));
  CHECK(env, napi_create_double(env, (double)ti.tcpi_bytes_retrans, &retrans));
  CHECK(env, napi_set_named_property(env, obj, "bytesSent", sent));
  CHECK(env, napi_set_named_property(env, obj, "bytesRetrans", retrans));
  return obj;
}

static napi_value js_ioctl_int(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1;
  uint32_t request = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0 ||
      get_u32(env, argv[1], &request) < 0)
    return NULL;
  int value = 0;
  if (ioctl(fd, (unsigned long)request, &value) < 0) {
    const char *what = request == SIOCINQ      ? "ioctl(SIOCINQ)"
                       : request == SIOCOUTQ    ? "ioctl(SIOCOUTQ)"
                       : request == SIOCOUTQNSD ? "ioctl(SIOCOUTQNSD)"
                                                : "ioctl";
    return throw_errno(env, what, errno);
  }
  return make_int(env, value);
}

static napi_value js_peek(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1;
  uint32_t want = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_u32(env, argv[1], &want) < 0)
    return NULL;
  char *buf = malloc(want > 0 ? want : 1);
  if (buf == NULL) return throw_errno(env, "malloc", ENOMEM);
  ssize_t n = recv(fd, buf, want, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) {
    int e = errno;
    free(buf);
    if (e == EAGAIN || e == EWOULDBLOCK) n = 0;
    else return throw_errno(env, "recv(MSG_PEEK)", e);
    buf = NULL;
  }
  napi_value out;
  void *data = NULL;
  if (napi_create_buffer_copy(env, (size_t)n, buf != NULL ? buf : "", &data, &out) != napi_ok) {
    free(buf);
    napi_throw_error(env, "ERR_NAPI", "napi_create_buffer_copy failed");
    return NULL;
  }
  free(buf);
  return out;
}

static napi_value js_peek_into(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  void *data = NULL;
  size_t len = 0;
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &len));
  ssize_t n = recv(fd, data, len, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) n = 0;
    else return throw_errno(env, "recv(MSG_PEEK)", errno);
  }
  return make_int(env, n);
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = -1;
  uint32_t offset = 0;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_u32(env, argv[2], &offset) < 0)
    return NULL;
  void *data = NULL;
  size_t len = 0;
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &len));
  if (offset > len) {
    napi_throw_range_error(env, "ERR_ARGS", "offset beyond the buffer");
    return NULL;
  }
  ssize_t n = send(fd, (char *)data + offset, len - offset, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) n = 0;
    else return throw_errno(env, "send", errno);
  }
  return make_int(env, n);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd = -1;
  if (get_args(env, info, 1, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  if (close(fd) < 0) return throw_errno(env, "close", errno);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"socket", NULL, js_socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bind", NULL, js_bind, NULL, NULL, NULL, napi_enumerable, NULL},
      {"connect", NULL, js_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listen", NULL, js_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"accept", NULL, js_accept, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localAddress", NULL, js_local_address, NULL, NULL, NULL, napi_enumerable, NULL},
      {"remoteAddress", NULL, js_remote_address, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setNonBlocking", NULL, js_set_non_blocking, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setInt", NULL, js_set_int, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getInt", NULL, js_get_int, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setRepairOptions", NULL, js_set_repair_options, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getRepairWindow", NULL, js_get_repair_window, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setRepairWindow", NULL, js_set_repair_window, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tcpInfo", NULL, js_tcp_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ioctlInt", NULL, js_ioctl_int, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peek", NULL, js_peek, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peekInto", NULL, js_peek_into, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketIn", NULL, js_socket_in, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tcSteer", NULL, js_tc_steer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tcUnsteer", NULL, js_tc_unsteer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rawSocketIn", NULL, js_raw_socket_in, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendIp", NULL, js_send_ip, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tunIn", NULL, js_tun_in, NULL, NULL, NULL, napi_enumerable, NULL},
      {"waitFds", NULL, js_wait_fds, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readFd", NULL, js_read_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeFd", NULL, js_write_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readTun", NULL, js_read_tun, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeTun", NULL, js_write_tun, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendNull", NULL, js_send_null, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvNull", NULL, js_recv_null, NULL, NULL, NULL, napi_enumerable, NULL},
      {"epollCreate", NULL, js_epoll_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"epollCtl", NULL, js_epoll_ctl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"epollWait", NULL, js_epoll_wait, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvFlags", NULL, js_recv_flags, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendFlags", NULL, js_send_flags, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendIov", NULL, js_send_iov, NULL, NULL, NULL, napi_enumerable, NULL},
      {"shutdown", NULL, js_shutdown, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setBytes", NULL, js_set_bytes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getBytes", NULL, js_get_bytes, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
