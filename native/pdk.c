/*
 * The packetdrill half of the chimney_repair addon: what running a packetdrill script against
 * the Linux kernel needs that Node cannot do (src/conformance/runner/kernel.ts). Thin wrappers,
 * one JavaScript call one system call; nothing here keeps state.
 *
 * tunIn(nsFd, name) -> fd        a TUN device set up as packetdrill's tun0 (IFF_TUN | IFF_NO_PI
 *                                | IFF_VNET_HDR: bare IP packets behind a virtio_net_hdr; checksum
 *                                and TSO offloads on, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 |
 *                                TUN_F_TSO_ECN, so the kernel hands over whole TSO bursts as the
 *                                scripts expect them) created inside the namespace nsFd refers
 *                                to; the fd is non-blocking and close-on-exec
 * readTun(fd, max) -> Buffer | null              one read(2) of a packet from such a device: the
 *                                IP packet, its checksum completed where the kernel left it
 *                                partial; null when nothing is ready
 * writeTun(fd, buffer, gsoSize) -> count         one writev(2) of an IP packet into it behind a
 *                                virtio_net_hdr; gsoSize > 0 marks it a GRO'd TCPv4 packet of
 *                                that MSS (packetdrill's `mss` on an inbound packet)
 * waitFds(fds, events, timeoutUs) -> revents[]   one ppoll(2); timeoutUs < 0 waits forever
 * readFd(fd, max) -> Buffer | null               one read(2); null when nothing is ready (EAGAIN)
 * writeFd(fd, buffer) -> count                   one write(2)
 * recvFlags(fd, length, flags) -> Buffer         one recv(2) with the script's flags
 * sendFlags(fd, buffer, flags) -> count          one send(2) with the script's flags | MSG_NOSIGNAL
 * sendIov(fd, lengths, flags) -> count           one sendmsg(2) of an iovec with an element of
 *                                each length (zeros, each in memory of its own, as packetdrill's)
 * sendNull(fd, length, flags) -> count          send(2) from a NULL buffer (a script's `NULL`:
 *                                the kernel answers EFAULT, as it does to packetdrill)
 * recvNull(fd, length, flags) -> count          recv(2) into a NULL buffer, the same way
 * epollCreate() -> fd                           epoll_create1(EPOLL_CLOEXEC)
 * epollCtl(epfd, op, fd, events, data)         epoll_ctl(2); data is what epollWait reports for fd
 * epollWait(epfd, max) -> [events, data, ...]  one epoll_wait(2) that does not wait
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "csum.h"
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
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
    memcpy(ifr.ifr_name, name, n);
    unsigned int offload = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      e = errno;
      call = "ioctl(TUNSETIFF)";
      close(fd);
      fd = -1;
    } else if (ioctl(fd, TUNSETOFFLOAD, offload) < 0) {
      e = errno;
      call = "ioctl(TUNSETOFFLOAD)";
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

/* One read of fd into a fresh Buffer; with `vnet`, behind a virtio_net_hdr that is stripped (a
 * checksum the kernel left partial is completed). null when nothing is ready. */
static napi_value read_common(napi_env env, napi_callback_info info, int vnet) {
  napi_value argv[2];
  int32_t fd = -1;
  uint32_t max = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_u32(env, argv[1], &max) < 0)
    return NULL;
  unsigned char *buf = malloc(max > 0 ? max : 1);
  if (buf == NULL) return throw_errno(env, "malloc", ENOMEM);
  struct virtio_net_hdr vh;
  memset(&vh, 0, sizeof vh);
  struct iovec iov[2] = {{&vh, sizeof vh}, {buf, max}};
  ssize_t n = vnet ? readv(fd, iov, 2) : read(fd, buf, max);
  if (n < 0) {
    int e = errno;
    free(buf);
    if (e == EAGAIN || e == EWOULDBLOCK) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return throw_errno(env, vnet ? "readv" : "read", e);
  }
  size_t len = (size_t)n;
  if (vnet) {
    len = n > (ssize_t)sizeof vh ? (size_t)n - sizeof vh : 0;
    if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) complete_csum(buf, len, &vh);
  }
  napi_value out = make_buffer(env, buf, len);
  free(buf);
  return out;
}

napi_value js_read_fd(napi_env env, napi_callback_info info) { return read_common(env, info, 0); }

napi_value js_read_tun(napi_env env, napi_callback_info info) { return read_common(env, info, 1); }

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

napi_value js_write_tun(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = -1;
  uint32_t gso = 0;
  void *data = NULL;
  size_t len = 0;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0 ||
      get_buffer(env, argv[1], &data, &len) < 0 || get_u32(env, argv[2], &gso) < 0)
    return NULL;
  struct virtio_net_hdr vh;
  memset(&vh, 0, sizeof vh);
  if (gso > 0) {
    vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    vh.gso_size = (uint16_t)gso;
  }
  struct iovec iov[2] = {{&vh, sizeof vh}, {data, len}};
  ssize_t n = writev(fd, iov, 2);
  if (n < 0) return throw_errno(env, "writev", errno);
  return make_int(env, n > (ssize_t)sizeof vh ? n - (ssize_t)sizeof vh : 0);
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

/* UIO_MAXIOV: the kernel refuses longer vectors with EMSGSIZE, and so does this call. */
#define SEND_IOV_MAX 1024

napi_value js_send_iov(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = -1, flags = 0;
  uint32_t count = 0;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_i32(env, argv[2], &flags) < 0)
    return NULL;
  if (napi_get_array_length(env, argv[1], &count) != napi_ok) {
    napi_throw_type_error(env, "ERR_ARGS", "expected an array of lengths");
    return NULL;
  }
  if (count > SEND_IOV_MAX) return throw_errno(env, "sendmsg", EMSGSIZE);
  struct iovec *iov = calloc(count > 0 ? count : 1, sizeof(struct iovec));
  if (iov == NULL) return throw_errno(env, "calloc", ENOMEM);
  napi_value result = NULL;
  uint32_t made = 0;
  for (; made < count; made++) {
    napi_value v;
    uint32_t len = 0;
    if (napi_get_element(env, argv[1], made, &v) != napi_ok || get_u32(env, v, &len) < 0) goto out;
    /* Each element in memory of its own, as packetdrill's iovec_new makes them: with
       MSG_ZEROCOPY each becomes a fragment of its own (zerocopy/maxfrags.pkt). */
    iov[made].iov_base = calloc(len > 0 ? len : 1, 1);
    iov[made].iov_len = len;
    if (iov[made].iov_base == NULL) {
      result = throw_errno(env, "calloc", ENOMEM);
      goto out;
    }
  }
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  ssize_t n = sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
  result = n < 0 ? throw_errno(env, "sendmsg", errno) : make_int(env, n);
out:
  /* The kernel holds its own references to pages it pinned (MSG_ZEROCOPY): freeing is safe. */
  for (uint32_t i = 0; i < made; i++) free(iov[i].iov_base);
  free(iov);
  return result;
}

/* A script's NULL buffer goes to the kernel as NULL: what it answers (EFAULT) is the result. */
static napi_value null_call(napi_env env, napi_callback_info info, int sending) {
  napi_value argv[3];
  int32_t fd = -1, flags = 0;
  uint32_t len = 0;
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &fd) < 0 || get_u32(env, argv[1], &len) < 0 ||
      get_i32(env, argv[2], &flags) < 0)
    return NULL;
  ssize_t n = sending ? send(fd, NULL, len, flags | MSG_NOSIGNAL) : recv(fd, NULL, len, flags);
  if (n < 0) return throw_errno(env, sending ? "send" : "recv", errno);
  return make_int(env, n);
}

napi_value js_send_null(napi_env env, napi_callback_info info) { return null_call(env, info, 1); }

napi_value js_recv_null(napi_env env, napi_callback_info info) { return null_call(env, info, 0); }

napi_value js_epoll_create(napi_env env, napi_callback_info info) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return throw_errno(env, "epoll_create1", errno);
  return make_int(env, fd);
}

napi_value js_epoll_ctl(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t epfd = -1, op = 0, fd = -1;
  uint32_t events = 0, data = 0;
  if (get_args(env, info, 5, argv) < 0 || get_i32(env, argv[0], &epfd) < 0 || get_i32(env, argv[1], &op) < 0 ||
      get_i32(env, argv[2], &fd) < 0 || get_u32(env, argv[3], &events) < 0 || get_u32(env, argv[4], &data) < 0)
    return NULL;
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.u64 = data;
  if (epoll_ctl(epfd, op, fd, &ev) < 0) return throw_errno(env, "epoll_ctl", errno);
  return NULL;
}

napi_value js_epoll_wait(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t epfd = -1;
  uint32_t max = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &epfd) < 0 || get_u32(env, argv[1], &max) < 0)
    return NULL;
  struct epoll_event evs[64];
  if (max == 0 || max > 64) max = max == 0 ? 1 : 64;
  int n = epoll_wait(epfd, evs, (int)max, 0);
  if (n < 0) return throw_errno(env, "epoll_wait", errno);
  napi_value out;
  if (napi_create_array_with_length(env, (size_t)n * 2, &out) != napi_ok) return NULL;
  for (int i = 0; i < n; i++) {
    napi_value e = make_int(env, evs[i].events), d = make_int(env, (int64_t)evs[i].data.u64);
    if (e == NULL || d == NULL || napi_set_element(env, out, (uint32_t)i * 2, e) != napi_ok ||
        napi_set_element(env, out, (uint32_t)i * 2 + 1, d) != napi_ok)
      return NULL;
  }
  return out;
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
