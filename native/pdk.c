/*
 * The packetdrill half of the chimney_repair addon: what running a packetdrill script against
 * the Linux kernel needs that Node cannot do (src/conformance/runner/kernel.ts). Thin wrappers,
 * one JavaScript call one system call; nothing here keeps state.
 *
 * tunIn(nsFd, name) -> fd        a TUN device (IFF_TUN | IFF_NO_PI: bare IP packets, as
 *                                packetdrill's tun0) created inside the namespace nsFd refers to;
 *                                the fd is non-blocking and close-on-exec
 * waitFds(fds, events, timeoutUs) -> revents[]   one ppoll(2); timeoutUs < 0 waits forever
 * readFd(fd, max) -> Buffer | null               one read(2); null when nothing is ready (EAGAIN)
 * writeFd(fd, buffer) -> count                   one write(2)
 * recvFlags(fd, length, flags) -> Buffer         one recv(2) with the script's flags
 * sendFlags(fd, buffer, flags) -> count          one send(2) with the script's flags | MSG_NOSIGNAL
 * shutdown(fd, how)
 * setBytes(fd, level, name, buffer)              setsockopt(2) with any option value
 * getBytes(fd, level, name, length) -> Buffer    getsockopt(2) of up to length bytes
 *
 * Errors throw as in repair.c (code = errno name, errno = number, syscall = the call), EAGAIN
 * included except where noted: the script's `= -1 EAGAIN` is compared with it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "repair.h"

static int get_buffer(napi_env env, napi_value v, void **data, size_t *len) {
  bool is = false;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is || napi_get_buffer_info(env, v, data, len) != napi_ok) {
    napi_throw_type_error(env, "ERR_ARGS", "expected a Buffer");
    return -1;
  }
  return 0;
}

static napi_value make_buffer(napi_env env, const void *data, size_t len) {
  napi_value out;
  void *copy = NULL;
  if (napi_create_buffer_copy(env, len, len > 0 ? data : "", &copy, &out) != napi_ok) {
    napi_throw_error(env, "ERR_NAPI", "napi_create_buffer_copy failed");
    return NULL;
  }
  return out;
}

napi_value js_tun_in(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t nsfd = -1;
  char name[IFNAMSIZ];
  size_t n = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &nsfd) < 0) return NULL;
  if (napi_get_value_string_utf8(env, argv[1], name, sizeof name, &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_ARGS", "expected an interface name");
    return NULL;
  }
  int home = -1;
  if (enter_ns(nsfd, &home) < 0) return throw_errno(env, "setns", errno);
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  int e = errno;
  const char *call = "open(/dev/net/tun)";
  if (fd >= 0) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    memcpy(ifr.ifr_name, name, n);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      e = errno;
      call = "ioctl(TUNSETIFF)";
      close(fd);
      fd = -1;
    }
  }
  leave_ns(home);
  if (fd < 0) return throw_errno(env, call, e);
  return make_int(env, fd);
}

napi_value js_wait_fds(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (get_args(env, info, 3, argv) < 0) return NULL;
  uint32_t count = 0, count2 = 0;
  if (napi_get_array_length(env, argv[0], &count) != napi_ok ||
      napi_get_array_length(env, argv[1], &count2) != napi_ok || count != count2 || count > 64) {
    napi_throw_type_error(env, "ERR_ARGS", "expected two arrays of the same length (at most 64)");
    return NULL;
  }
  double timeout = 0;
  if (napi_get_value_double(env, argv[2], &timeout) != napi_ok) {
    napi_throw_type_error(env, "ERR_ARGS", "expected a number");
    return NULL;
  }
  struct pollfd pfds[64];
  for (uint32_t i = 0; i < count; i++) {
    napi_value a, b;
    int32_t fd = -1, ev = 0;
    if (napi_get_element(env, argv[0], i, &a) != napi_ok || napi_get_element(env, argv[1], i, &b) != napi_ok ||
        get_i32(env, a, &fd) < 0 || get_i32(env, b, &ev) < 0)
      return NULL;
    pfds[i].fd = fd;
    pfds[i].events = (short)ev;
    pfds[i].revents = 0;
  }
  struct timespec ts, *tp = NULL;
  if (timeout >= 0) {
    int64_t us = (int64_t)timeout;
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    tp = &ts;
  }
  int r = ppoll(pfds, count, tp, NULL);
  if (r < 0 && errno != EINTR) return throw_errno(env, "ppoll", errno);
  napi_value out;
  if (napi_create_array_with_length(env, count, &out) != napi_ok) return NULL;
  for (uint32_t i = 0; i < count; i++) {
    napi_value v = make_int(env, r < 0 ? 0 : pfds[i].revents);
    if (v == NULL || napi_set_element(env, out, i, v) != napi_ok) return NULL;
  }
  return out;
}

napi_value js_read_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1;
  uint32_t max = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_u32(env, argv[1], &max) < 0)
    return NULL;
  char *buf = malloc(max > 0 ? max : 1);
  if (buf == NULL) return throw_errno(env, "malloc", ENOMEM);
  ssize_t n = read(fd, buf, max);
  if (n < 0) {
    int e = errno;
    free(buf);
    if (e == EAGAIN || e == EWOULDBLOCK) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return throw_errno(env, "read", e);
  }
  napi_value out = make_buffer(env, buf, (size_t)n);
  free(buf);
  return out;
}

napi_value js_write_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1;
  void *data = NULL;
  size_t len = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_buffer(env, argv[1], &data, &len) < 0)
    return NULL;
  ssize_t n = write(fd, data, len);
  if (n < 0) return throw_errno(env, "write", errno);
  return make_int(env, n);
}

napi_value js_recv_flags(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = -1, flags = 0;
  uint32_t want = 0;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_u32(env, argv[1], &want) < 0 ||
      get_i32(env, argv[2], &flags) < 0)
    return NULL;
  char *buf = malloc(want > 0 ? want : 1);
  if (buf == NULL) return throw_errno(env, "malloc", ENOMEM);
  ssize_t n = recv(fd, buf, want, flags);
  if (n < 0) {
    int e = errno;
    free(buf);
    return throw_errno(env, "recv", e);
  }
  napi_value out = make_buffer(env, buf, (size_t)n);
  free(buf);
  return out;
}

napi_value js_send_flags(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = -1, flags = 0;
  void *data = NULL;
  size_t len = 0;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0 ||
      get_buffer(env, argv[1], &data, &len) < 0 || get_i32(env, argv[2], &flags) < 0)
    return NULL;
  ssize_t n = send(fd, data, len, flags | MSG_NOSIGNAL);
  if (n < 0) return throw_errno(env, "send", errno);
  return make_int(env, n);
}

napi_value js_shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1, how = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_i32(env, argv[1], &how) < 0)
    return NULL;
  if (shutdown(fd, how) < 0) return throw_errno(env, "shutdown", errno);
  return NULL;
}

napi_value js_set_bytes(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd = -1, level = 0, name = 0;
  void *data = NULL;
  size_t len = 0;
  if (get_args(env, info, 4, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_i32(env, argv[1], &level) < 0 ||
      get_i32(env, argv[2], &name) < 0 || get_buffer(env, argv[3], &data, &len) < 0)
    return NULL;
  if (setsockopt(fd, level, name, data, (socklen_t)len) < 0) return throw_errno(env, "setsockopt", errno);
  return NULL;
}

napi_value js_get_bytes(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd = -1, level = 0, name = 0;
  uint32_t want = 0;
  if (get_args(env, info, 4, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_i32(env, argv[1], &level) < 0 ||
      get_i32(env, argv[2], &name) < 0 || get_u32(env, argv[3], &want) < 0)
    return NULL;
  if (want > 4096) want = 4096;
  char buf[4096];
  socklen_t len = want;
  if (getsockopt(fd, level, name, buf, &len) < 0) return throw_errno(env, "getsockopt", errno);
  return make_buffer(env, buf, len);
}
