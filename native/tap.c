/*
 * chimney_tap: a TAP device for the live link (Linux only).
 *
 * open(name, nonBlocking, offload, multiQueue) -> { fd, name, vnetHdr }
 *     opens /dev/net/tun with IFF_TAP | IFF_NO_PI (and IFF_MULTI_QUEUE: each open of the same
 *     name attaches one more queue, and the kernel sends a flow's frames to the queue that last
 *     wrote one of the flow's frames). offload 0: plain frames. offload 1: also
 *     IFF_VNET_HDR (every frame crossing the fd carries a struct virtio_net_hdr first), so we
 *     may write GSO frames. offload 2: also TUNSETOFFLOAD(CSUM | TSO4 | TSO6), so the kernel
 *     may hand us checksum-partial frames and TSO frames of up to 64 KiB.
 * startReader(fd, maxFrames, vnetHdr, counters, cb, slab, ends) -> reader
 *     a uv_poll on fd; at each wake-up reads frames until EAGAIN (or maxFrames, or until the
 *     landing slab has less than MAX_FRAME bytes left) straight into the slab, a Uint8Array
 *     JavaScript gave (over an ArrayBuffer or a SharedArrayBuffer: no copy is made here, so a
 *     reader on a worker thread lands frames in shared memory). It then calls cb(start, n, error)
 *     once: frame i ends at ends[i] & 0x7fffffff in the slab (ends, a Uint32Array of at least
 *     maxFrames, is written here and kept referenced), and starts where frame i - 1 ended (frame
 *     0 at start). Bit 31 of ends[i] says the frame's IP header checksum and TCP checksum were
 *     verified good here (an Ethernet frame, at most one 802.1Q tag, IPv4 not a fragment or IPv6
 *     with TCP as its first next header), as a NIC's receive checksum offload does; frames
 *     without it are for JavaScript to verify. When cb returns a Uint8Array, that becomes the
 *     slab from the next frame on; the slab must keep maxFrameBytes (MAX_FRAME) free (the reader reads
 *     nothing until it does). Memory of frames handed up is never written again by the reader.
 *     With vnetHdr the header is consumed here: a checksum the kernel left partial
 *     (VIRTIO_NET_HDR_F_NEEDS_CSUM) is completed, so JavaScript only sees frames with valid
 *     checksums; a TSO frame arrives whole, as one TCP segment of many MSS (like GRO output).
 *     counters (a Float64Array of 2, kept referenced): [0] += TSO frames read, [1] += partial
 *     checksums completed.
 * maxFrameBytes
 *     the room one read needs in the slab (MAX_FRAME).
 * tcpChecksumOk(frame) -> boolean
 *     the check behind bit 31 above, on one frame (for tests).
 * stopReader(reader)                        stops polling (the reader is freed on close)
 * writeFrames(fd, frames, vnetHdr, counters) -> count
 *     writes the frames in one call from JS; stops at the first EAGAIN and returns how many
 *     frames went. Without vnetHdr: one write(2) per frame. With vnetHdr: runs of consecutive
 *     TCP segments of one connection that a GSO engine could have cut from one segment (same
 *     headers but sequence number, checksums and lengths; contiguous sequence numbers; every
 *     segment but the last of the run's first segment's size) leave as one GSO frame
 *     (gso_size = that size) with its IP and TCP checksums computed in full, by one writev(2).
 *     The kernel receives it as one large segment, as if its GRO had merged the run.
 *     counters (a Float64Array of 2): [0] += write calls made, [1] += GSO frames among them.
 * close(fd)
 *
 * Errors are thrown as Error objects whose `code` is the errno name (EPERM, EBUSY, ...).
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_net.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>
#include "csum.h"

/* The largest frame: a 64 KiB IP packet (a TSO frame) in an Ethernet frame, with room to spare. */
#define MAX_FRAME (65535u + 14u + 64u)
#define VNET_HDR_LEN ((uint32_t)sizeof(struct virtio_net_hdr))
/* Segments merged into one GSO frame at most. */
#define MAX_RUN 64u

#define CHECK(env, call)                                                     \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      napi_throw_error((env), "ERR_NAPI", "N-API call failed: " #call);      \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

static const char *errno_code(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case EIO: return "EIO";
    case ENOMEM: return "ENOMEM";
    case ENODEV: return "ENODEV";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_throw_error(env, errno_code(e), msg);
  return NULL;
}

static uint16_t swap16(uint16_t v) { return (uint16_t)((v << 8) | (v >> 8)); }

static uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint32_t be32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}

/* *out = the data of `v` when it is a Float64Array of at least 2 elements. */
static int float64_pair(napi_env env, napi_value v, double **out) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void *data = NULL;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok) return 0;
  if (type != napi_float64_array || length < 2) return 0;
  *out = data;
  return 1;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ] = {0};
  size_t len = 0;
  CHECK(env, napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  bool nonblock = false;
  if (argc > 1) CHECK(env, napi_get_value_bool(env, argv[1], &nonblock));
  uint32_t offload = 0;
  if (argc > 2) CHECK(env, napi_get_value_uint32(env, argv[2], &offload));
  bool multi = false;
  if (argc > 3) CHECK(env, napi_get_value_bool(env, argv[3], &multi));
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (offload > 0 ? IFF_VNET_HDR : 0) | (multi ? IFF_MULTI_QUEUE : 0);
  memcpy(ifr.ifr_name, name, len < IFNAMSIZ - 1 ? len : IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "TUNSETIFF", e);
  }
  if (offload > 0) {
    int hdrsz = (int)VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
      int e = errno;
      close(fd);
      return throw_errno(env, "TUNSETVNETHDRSZ", e);
    }
  }
  if (offload > 1 && ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "TUNSETOFFLOAD", e);
  }
  napi_value out, vfd, vname, vvnet;
  CHECK(env, napi_create_object(env, &out));
  CHECK(env, napi_create_int32(env, fd, &vfd));
  CHECK(env, napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &vname));
  CHECK(env, napi_get_boolean(env, offload > 0, &vvnet));
  CHECK(env, napi_set_named_property(env, out, "fd", vfd));
  CHECK(env, napi_set_named_property(env, out, "name", vname));
  CHECK(env, napi_set_named_property(env, out, "vnetHdr", vvnet));
  return out;
}

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb;
  napi_ref counters_ref;
  double *counters;
  napi_async_context ctx;
  int fd;
  int vnet;
  uint32_t max_frames;
  int stopped;
  napi_ref slab_ref;
  unsigned char *slab;
  size_t slab_len;
  size_t slab_used;
  napi_ref ends_ref;
  uint32_t *ends;
} reader_t;

static void on_poll_closed(uv_handle_t *h) {
  reader_t *r = (reader_t *)h->data;
  free(r);
}

static void reader_stop(reader_t *r) {
  if (r->stopped) return;
  r->stopped = 1;
  uv_poll_stop(&r->poll);
  napi_delete_reference(r->env, r->cb);
  napi_delete_reference(r->env, r->counters_ref);
  napi_delete_reference(r->env, r->slab_ref);
  napi_delete_reference(r->env, r->ends_ref);
  napi_async_destroy(r->env, r->ctx);
  uv_close((uv_handle_t *)&r->poll, on_poll_closed);
}

/* 1 when `frame` is an Ethernet frame (at most one 802.1Q tag) carrying IPv4 (not a fragment,
 * header checksum good) or IPv6 (TCP the first next header) and a TCP segment whose checksum,
 * pseudo-header included, verifies. Sums run in memory order (RFC 1071), so the pseudo-header's
 * 16-bit fields are added as they would lie in memory: big-endian bytes read natively.
 * `completed`: the offset of a TCP header whose checksum was just completed here (0: none); that
 * segment's checksum is right by construction and is not summed a second time. */
static uint64_t mem16(uint16_t host_order) {
  unsigned char b[2] = {(unsigned char)(host_order >> 8), (unsigned char)host_order};
  uint16_t w;
  memcpy(&w, b, 2);
  return w;
}

static int tcp_checksum_ok(const unsigned char *f, size_t len, size_t completed) {
  if (len < 14) return 0;
  size_t off = 14;
  uint16_t et = be16(f + 12);
  if (et == 0x8100) {
    if (len < 18) return 0;
    et = be16(f + 16);
    off = 18;
  }
  const unsigned char *ip = f + off;
  size_t room = len - off;
  if (et == 0x0800) {
    if (room < 20 || (ip[0] >> 4) != 4) return 0;
    size_t ihl = (size_t)(ip[0] & 15) * 4, total = be16(ip + 2);
    if (ihl < 20 || total < ihl + 20 || total > room) return 0;
    if (fold(sum_bytes(ip, ihl)) != 0xffff) return 0;
    if ((be16(ip + 6) & 0x3fff) != 0 || ip[9] != 6) return 0; /* MF or an offset; not TCP */
    if (completed != 0 && completed == off + ihl) return 1;
    size_t tl = total - ihl;
    uint64_t s = sum_bytes(ip + 12, 8) + mem16(6) + mem16((uint16_t)tl) + sum_bytes(ip + ihl, tl);
    return fold(s) == 0xffff;
  }
  if (et == 0x86dd) {
    if (room < 40 || (ip[0] >> 4) != 6 || ip[6] != 6) return 0;
    size_t tl = be16(ip + 4);
    if (tl < 20 || 40 + tl > room) return 0;
    if (completed != 0 && completed == off + 40) return 1;
    uint64_t s = sum_bytes(ip + 8, 32) + mem16(6) + mem16((uint16_t)tl) + sum_bytes(ip + 40, tl);
    return fold(s) == 0xffff;
  }
  return 0;
}

/* Makes `v` (a Uint8Array, or anything else: an error) the reader's landing slab. */
static int take_slab(napi_env env, reader_t *r, napi_value v) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array || data == NULL || length < MAX_FRAME || length > 0x7fffffffu) return 0;
  napi_ref ref;
  if (napi_create_reference(env, v, 1, &ref) != napi_ok) return 0;
  if (r->slab_ref != NULL) napi_delete_reference(env, r->slab_ref);
  r->slab_ref = ref;
  r->slab = data;
  r->slab_len = length;
  r->slab_used = 0;
  return 1;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  reader_t *r = (reader_t *)h->data;
  if (r->stopped) return;
  napi_env env = r->env;
  uint32_t n = 0;
  size_t start = r->slab_used;
  int err = 0;
  if (status < 0) err = EIO;
  while (!err && n < r->max_frames && r->slab_len - r->slab_used >= MAX_FRAME) {
    unsigned char *dst = r->slab + r->slab_used;
    ssize_t got;
    struct virtio_net_hdr vh;
    if (r->vnet) {
      struct iovec iov[2] = {{&vh, VNET_HDR_LEN}, {dst, MAX_FRAME}};
      got = readv(r->fd, iov, 2);
    } else {
      got = read(r->fd, dst, MAX_FRAME);
    }
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) err = errno;
      break;
    }
    if (got == 0) break;
    size_t completed = 0;
    if (r->vnet) {
      if (got <= (ssize_t)VNET_HDR_LEN) continue;
      got -= VNET_HDR_LEN;
      if (vh.gso_type != VIRTIO_NET_HDR_GSO_NONE) r->counters[0] += 1;
      if (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM && complete_csum(dst, (size_t)got, &vh)) {
        r->counters[1] += 1;
        completed = vh.csum_start;
      }
    }
    uint32_t ok = tcp_checksum_ok(dst, (size_t)got, completed) ? 0x80000000u : 0;
    r->slab_used += (size_t)got;
    r->ends[n++] = (uint32_t)r->slab_used | ok;
  }
  if (n == 0 && !err) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, args[3];
  napi_get_reference_value(env, r->cb, &cb);
  napi_get_global(env, &recv);
  napi_create_uint32(env, (uint32_t)start, &args[0]);
  napi_create_uint32(env, n, &args[1]);
  if (err) {
    napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &args[2]);
  } else {
    napi_get_undefined(env, &args[2]);
  }
  napi_value result;
  napi_status st = napi_make_callback(env, r->ctx, recv, cb, 3, args, &result);
  if (st == napi_pending_exception) {
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
    napi_fatal_exception(env, ex);
  } else if (st == napi_ok && !r->stopped) {
    napi_valuetype t;
    if (napi_typeof(env, result, &t) == napi_ok && t == napi_object) take_slab(env, r, result);
  }
  napi_close_handle_scope(env, scope);
  if (err) reader_stop(r);
}

static napi_value js_start_reader(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  uint32_t max_frames = 256;
  bool vnet = false;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK(env, napi_get_value_uint32(env, argv[1], &max_frames));
  CHECK(env, napi_get_value_bool(env, argv[2], &vnet));
  double *counters = NULL;
  if (!float64_pair(env, argv[3], &counters)) {
    napi_throw_error(env, "ERR_INVALID_ARG_TYPE", "startReader: counters must be a Float64Array of 2");
    return NULL;
  }
  if (max_frames == 0 || max_frames > 4096) max_frames = 4096;
  bool is = false;
  napi_typedarray_type type;
  size_t ends_len = 0;
  void *ends = NULL;
  if (napi_is_typedarray(env, argv[6], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[6], &type, &ends_len, &ends, NULL, NULL) != napi_ok ||
      type != napi_uint32_array || ends_len < max_frames) {
    napi_throw_error(env, "ERR_INVALID_ARG_TYPE", "startReader: ends must be a Uint32Array of at least maxFrames");
    return NULL;
  }
  reader_t *r = calloc(1, sizeof *r);
  if (r == NULL) return throw_errno(env, "startReader", ENOMEM);
  r->env = env;
  if (!take_slab(env, r, argv[5])) {
    free(r);
    napi_throw_error(env, "ERR_INVALID_ARG_TYPE", "startReader: slab must be a Uint8Array of at least maxFrameBytes");
    return NULL;
  }
  r->fd = fd;
  r->counters = counters;
  r->vnet = vnet ? 1 : 0;
  r->max_frames = max_frames;
  r->ends = ends;
  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  int e = uv_poll_init(loop, &r->poll, fd);
  if (e < 0) {
    napi_delete_reference(env, r->slab_ref);
    free(r);
    return throw_errno(env, "uv_poll_init", -e);
  }
  r->poll.data = r;
  CHECK(env, napi_create_reference(env, argv[4], 1, &r->cb));
  CHECK(env, napi_create_reference(env, argv[3], 1, &r->counters_ref));
  CHECK(env, napi_create_reference(env, argv[6], 1, &r->ends_ref));
  napi_value name;
  CHECK(env, napi_create_string_utf8(env, "chimney:tap", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_async_init(env, NULL, name, &r->ctx));
  e = uv_poll_start(&r->poll, UV_READABLE, on_readable);
  if (e < 0) {
    reader_stop(r);
    return throw_errno(env, "uv_poll_start", -e);
  }
  napi_value handle;
  CHECK(env, napi_create_external(env, r, NULL, NULL, &handle));
  return handle;
}

static napi_value js_tcp_checksum_ok(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is = false;
  napi_typedarray_type type;
  size_t len = 0;
  void *data = NULL;
  if (argc < 1 || napi_is_typedarray(env, argv[0], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[0], &type, &len, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_error(env, "ERR_INVALID_ARG_TYPE", "tcpChecksumOk: frame must be a Uint8Array");
    return NULL;
  }
  napi_value out;
  CHECK(env, napi_get_boolean(env, len > 0 && tcp_checksum_ok(data, len, 0), &out));
  return out;
}

static napi_value js_stop_reader(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  CHECK(env, napi_get_value_external(env, argv[0], &data));
  reader_stop((reader_t *)data);
  return NULL;
}

/* A frame to write, and what the merger needs of it when it is a TCP segment. */
typedef struct {
  unsigned char *p;
  size_t len;
  int tcp;          /* a TCP segment that may be merged (see seg_parse) */
  int v6;
  uint32_t l4;      /* offset of the TCP header */
  uint32_t hdr;     /* Ethernet + IP + TCP header bytes */
  uint32_t seq;
  uint32_t paylen;
  uint16_t paysum;  /* folded ones' complement sum of the payload */
} frame_t;

/* The folded TCP pseudo-header sum of the IP header at p (+14), for a TCP length of tcplen. */
static uint16_t pseudo_sum(const unsigned char *p, int v6, uint32_t tcplen) {
  unsigned char ph[40];
  size_t n;
  if (v6) {
    memcpy(ph, p + 22, 32);
    memset(ph + 32, 0, 8);
    put16(ph + 36, (uint16_t)tcplen);
    ph[39] = 6;
    n = 40;
  } else {
    memcpy(ph, p + 26, 8);
    ph[8] = 0;
    ph[9] = 6;
    put16(ph + 10, (uint16_t)tcplen);
    n = 12;
  }
  return fold(sum_bytes(ph, n));
}

/*
 * Fills in the TCP fields of f when it is a segment a GSO engine could have produced: Ethernet
 * without VLAN; IPv4 without options or fragmentation, or IPv6 with TCP as next header; lengths
 * that match the frame exactly; ACK set, no SYN/FIN/RST/URG/ECE/CWR; a non-empty payload;
 * valid IPv4 header and TCP checksums. A segment with a bad checksum (a fault stage corrupted
 * it) is written alone, as it is: merging would recompute its checksum and launder the damage.
 */
static void seg_parse(frame_t *f) {
  const unsigned char *p = f->p;
  size_t len = f->len;
  f->tcp = 0;
  if (len < 14 + 20 + 20) return;
  uint16_t type = be16(p + 12);
  uint32_t l4;
  if (type == 0x0800) {
    if (p[14] != 0x45 || p[23] != 6 || (be16(p + 20) & 0x3fff) != 0) return;
    if ((size_t)be16(p + 16) + 14 != len) return;
    l4 = 34;
    f->v6 = 0;
  } else if (type == 0x86dd) {
    if ((p[14] >> 4) != 6 || p[20] != 6 || (size_t)be16(p + 18) + 54 != len) return;
    l4 = 54;
    f->v6 = 1;
  } else {
    return;
  }
  if (len < l4 + 20) return;
  uint32_t doff = (uint32_t)(p[l4 + 12] >> 4) * 4;
  uint8_t flags = p[l4 + 13];
  if (doff < 20 || l4 + doff >= len) return;
  if ((flags & 0x10) == 0 || (flags & (0x01 | 0x02 | 0x04 | 0x20 | 0x40 | 0x80)) != 0) return;
  if (!f->v6 && fold(sum_bytes(p + 14, 20)) != 0xffff) return;
  f->l4 = l4;
  f->hdr = l4 + doff;
  f->seq = be32(p + l4 + 4);
  f->paylen = (uint32_t)(len - f->hdr);
  f->paysum = fold(sum_bytes(p + f->hdr, f->paylen));
  uint64_t sum = (uint64_t)pseudo_sum(p, f->v6, (uint32_t)(len - l4)) + sum_bytes(p + l4, doff) + f->paysum;
  if (fold(sum) != 0xffff) return;
  f->tcp = 1;
}

/* True when b's headers equal a's except IP length/id/checksum and TCP seq/PSH/checksum. */
static int same_headers(const frame_t *a, const frame_t *b) {
  if (!b->tcp || a->hdr != b->hdr || a->v6 != b->v6) return 0;
  const unsigned char *x = a->p, *y = b->p;
  uint32_t l4 = a->l4;
  if (memcmp(x, y, 14) != 0) return 0;
  if (a->v6) {
    if (memcmp(x + 14, y + 14, 4) != 0 || memcmp(x + 20, y + 20, 34) != 0) return 0;
  } else {
    if (x[15] != y[15] || memcmp(x + 20, y + 20, 4) != 0 || memcmp(x + 26, y + 26, 8) != 0) return 0;
  }
  if (memcmp(x + l4, y + l4, 4) != 0 || memcmp(x + l4 + 8, y + l4 + 8, 5) != 0) return 0;
  if ((x[l4 + 13] & ~0x08) != (y[l4 + 13] & ~0x08)) return 0;
  if (memcmp(x + l4 + 14, y + l4 + 14, 2) != 0) return 0;
  return memcmp(x + l4 + 18, y + l4 + 18, a->hdr - l4 - 18) == 0;
}

static ssize_t writev_retry(int fd, struct iovec *iov, int cnt) {
  ssize_t w;
  do {
    w = writev(fd, iov, cnt);
  } while (w < 0 && errno == EINTR);
  return w;
}

/*
 * Writes frames[i .. i+run) as one GSO frame: the first frame's headers with the total length,
 * the IPv4 header checksum, PSH (when any segment had it) and the TCP checksum over the whole
 * payload set, and a virtio header naming the segment size. Returns writev's result.
 */
static ssize_t write_gso(int fd, const frame_t *fr, uint32_t run) {
  const frame_t *h = &fr[0];
  unsigned char hdr[14 + 40 + 60];
  memcpy(hdr, h->p, h->hdr);
  uint32_t l4 = h->l4, total = 0;
  uint8_t psh = 0;
  for (uint32_t k = 0; k < run; k++) {
    total += fr[k].paylen;
    psh |= fr[k].p[l4 + 13] & 0x08;
  }
  uint32_t tcplen = h->hdr - l4 + total;
  if (h->v6) {
    put16(hdr + 18, (uint16_t)tcplen);
  } else {
    put16(hdr + 16, (uint16_t)(20 + tcplen));
    hdr[24] = 0;
    hdr[25] = 0;
    uint16_t ipc = (uint16_t)~fold(sum_bytes(hdr + 14, 20));
    memcpy(hdr + 24, &ipc, 2);
  }
  hdr[l4 + 13] |= psh;
  hdr[l4 + 16] = 0;
  hdr[l4 + 17] = 0;
  uint64_t sum = (uint64_t)pseudo_sum(hdr, h->v6, tcplen) + sum_bytes(hdr + l4, h->hdr - l4);
  uint32_t off = h->hdr - l4; /* bytes summed so far past the pseudo header */
  struct virtio_net_hdr vh;
  memset(&vh, 0, sizeof vh);
  vh.gso_type = h->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
  vh.gso_size = (uint16_t)h->paylen;
  vh.hdr_len = (uint16_t)h->hdr;
  vh.csum_start = (uint16_t)l4;
  vh.csum_offset = 16;
  struct iovec iov[MAX_RUN + 2];
  iov[0].iov_base = &vh;
  iov[0].iov_len = VNET_HDR_LEN;
  iov[1].iov_base = hdr;
  iov[1].iov_len = h->hdr;
  for (uint32_t k = 0; k < run; k++) {
    unsigned char *pay = fr[k].p + fr[k].hdr;
    uint16_t part = fr[k].paysum;
    sum += (off & 1) ? swap16(part) : part;
    off += fr[k].paylen;
    iov[k + 2].iov_base = pay;
    iov[k + 2].iov_len = fr[k].paylen;
  }
  uint16_t c = (uint16_t)~fold(sum);
  memcpy(hdr + l4 + 16, &c, 2);
  return writev_retry(fd, iov, (int)run + 2);
}

static napi_value js_write_frames(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  uint32_t n = 0;
  CHECK(env, napi_get_array_length(env, argv[1], &n));
  bool vnet = false;
  CHECK(env, napi_get_value_bool(env, argv[2], &vnet));
  double *counters = NULL;
  if (!float64_pair(env, argv[3], &counters)) {
    napi_throw_error(env, "ERR_INVALID_ARG_TYPE", "writeFrames: counters must be a Float64Array of 2");
    return NULL;
  }
  frame_t *fr = malloc((n > 0 ? n : 1) * sizeof *fr);
  if (fr == NULL) return throw_errno(env, "writeFrames", ENOMEM);
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    napi_typedarray_type type;
    size_t length = 0, offset = 0;
    void *data = NULL;
    napi_value ab;
    if (napi_get_element(env, argv[1], i, &el) != napi_ok ||
        napi_get_typedarray_info(env, el, &type, &length, &data, &ab, &offset) != napi_ok) {
      free(fr);
      napi_throw_error(env, "ERR_NAPI", "writeFrames: frames must be typed arrays");
      return NULL;
    }
    fr[i].p = data;
    fr[i].len = length;
    fr[i].tcp = 0;
    if (vnet) seg_parse(&fr[i]);
  }
  uint32_t sent = 0;
  int fail = 0;
  while (sent < n) {
    ssize_t w;
    uint32_t run = 1;
    if (!vnet) {
      do {
        w = write(fd, fr[sent].p, fr[sent].len);
      } while (w < 0 && errno == EINTR);
    } else {
      const frame_t *h = &fr[sent];
      if (h->tcp) {
        uint32_t room = (h->v6 ? 65535u : 65535u - 20u) - (h->hdr - h->l4) - h->paylen;
        while (sent + run < n && run < MAX_RUN) {
          const frame_t *prev = &fr[sent + run - 1], *next = &fr[sent + run];
          if (prev->paylen != h->paylen || !same_headers(h, next)) break;
          if (next->seq != prev->seq + prev->paylen || next->paylen > h->paylen || next->paylen > room) break;
          room -= next->paylen;
          run++;
        }
      }
      if (run > 1) {
        w = write_gso(fd, h, run);
      } else {
        struct virtio_net_hdr vh;
        memset(&vh, 0, sizeof vh);
        struct iovec iov[2] = {{&vh, VNET_HDR_LEN}, {h->p, h->len}};
        w = writev_retry(fd, iov, 2);
      }
    }
    if (w < 0) {
      if (errno != EAGAIN && errno != ENOBUFS) fail = errno;
      break;
    }
    counters[0] += 1;
    if (run > 1) counters[1] += 1;
    sent += run;
  }
  free(fr);
  if (fail) return throw_errno(env, "write", fail);
  napi_value out;
  CHECK(env, napi_create_uint32(env, sent, &out));
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  if (close(fd) < 0) return throw_errno(env, "close", errno);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value max_frame;
  if (napi_create_uint32(env, MAX_FRAME, &max_frame) != napi_ok) return NULL;
  napi_property_descriptor props[] = {
      {"maxFrameBytes", NULL, NULL, NULL, NULL, max_frame, napi_enumerable, NULL},
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"startReader", NULL, js_start_reader, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stopReader", NULL, js_stop_reader, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tcpChecksumOk", NULL, js_tcp_checksum_ok, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeFrames", NULL, js_write_frames, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
