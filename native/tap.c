/*
 * chimney_tap: a TAP device for the live link (Linux only).
 *
 * open(name, nonBlocking) -> { fd, name }   opens /dev/net/tun with IFF_TAP | IFF_NO_PI
 * startReader(fd, maxFrames, cb) -> reader  a uv_poll on fd; at each wake-up reads frames until
 *                                           EAGAIN (or maxFrames), copies them into one
 *                                           ArrayBuffer and calls cb(buffer, ends) once, where
 *                                           ends[i] is the end offset of frame i
 * stopReader(reader)                        stops polling (the reader is freed on close)
 * writeFrames(fd, frames) -> count          one write(2) per frame, all in one call from JS;
 *                                           stops at the first EAGAIN and returns how many went
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
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#define SCRATCH_BYTES (1u << 20)
#define MAX_FRAME 65536u

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

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ] = {0};
  size_t len = 0;
  CHECK(env, napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));
  bool nonblock = false;
  if (argc > 1) CHECK(env, napi_get_value_bool(env, argv[1], &nonblock));
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));
  if (fd < 0) return throw_errno(env, "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  memcpy(ifr.ifr_name, name, len < IFNAMSIZ - 1 ? len : IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "TUNSETIFF", e);
  }
  napi_value out, vfd, vname;
  CHECK(env, napi_create_object(env, &out));
  CHECK(env, napi_create_int32(env, fd, &vfd));
  CHECK(env, napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &vname));
  CHECK(env, napi_set_named_property(env, out, "fd", vfd));
  CHECK(env, napi_set_named_property(env, out, "name", vname));
  return out;
}

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref cb;
  napi_ref self;
  napi_async_context ctx;
  int fd;
  uint32_t max_frames;
  int stopped;
  unsigned char *scratch;
  uint32_t ends[4096];
} reader_t;

static void on_poll_closed(uv_handle_t *h) {
  reader_t *r = (reader_t *)h->data;
  free(r->scratch);
  free(r);
}

static void reader_stop(reader_t *r) {
  if (r->stopped) return;
  r->stopped = 1;
  uv_poll_stop(&r->poll);
  napi_delete_reference(r->env, r->cb);
  napi_async_destroy(r->env, r->ctx);
  uv_close((uv_handle_t *)&r->poll, on_poll_closed);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  reader_t *r = (reader_t *)h->data;
  if (r->stopped) return;
  napi_env env = r->env;
  uint32_t n = 0, used = 0;
  int err = 0;
  if (status < 0) err = EIO;
  while (!err && n < r->max_frames && SCRATCH_BYTES - used >= MAX_FRAME) {
    ssize_t got = read(r->fd, r->scratch + used, MAX_FRAME);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) err = errno;
      break;
    }
    if (got == 0) break;
    used += (uint32_t)got;
    r->ends[n++] = used;
  }
  if (n == 0 && !err) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, args[3];
  void *data = NULL;
  napi_get_reference_value(env, r->cb, &cb);
  napi_get_global(env, &recv);
  napi_create_arraybuffer(env, used, &data, &args[0]);
  if (used > 0) memcpy(data, r->scratch, used);
  napi_value endsBuf;
  void *endsData = NULL;
  napi_create_arraybuffer(env, n * sizeof(uint32_t), &endsData, &endsBuf);
  if (n > 0) memcpy(endsData, r->ends, n * sizeof(uint32_t));
  napi_create_typedarray(env, napi_uint32_array, n, endsBuf, 0, &args[1]);
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
  }
  napi_close_handle_scope(env, scope);
  if (err) reader_stop(r);
}

static napi_value js_start_reader(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  uint32_t max_frames = 256;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK(env, napi_get_value_uint32(env, argv[1], &max_frames));
  if (max_frames == 0 || max_frames > 4096) max_frames = 4096;
  reader_t *r = calloc(1, sizeof *r);
  if (r == NULL) return throw_errno(env, "startReader", ENOMEM);
  r->scratch = malloc(SCRATCH_BYTES);
  if (r->scratch == NULL) {
    free(r);
    return throw_errno(env, "startReader", ENOMEM);
  }
  r->env = env;
  r->fd = fd;
  r->max_frames = max_frames;
  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  int e = uv_poll_init(loop, &r->poll, fd);
  if (e < 0) {
    free(r->scratch);
    free(r);
    return throw_errno(env, "uv_poll_init", -e);
  }
  r->poll.data = r;
  CHECK(env, napi_create_reference(env, argv[2], 1, &r->cb));
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

static napi_value js_stop_reader(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  CHECK(env, napi_get_value_external(env, argv[0], &data));
  reader_stop((reader_t *)data);
  return NULL;
}

static napi_value js_write_frames(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  uint32_t n = 0;
  CHECK(env, napi_get_array_length(env, argv[1], &n));
  uint32_t sent = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    CHECK(env, napi_get_element(env, argv[1], i, &el));
    napi_typedarray_type type;
    size_t length = 0, offset = 0;
    void *data = NULL;
    napi_value ab;
    CHECK(env, napi_get_typedarray_info(env, el, &type, &length, &data, &ab, &offset));
    ssize_t w;
    do {
      w = write(fd, data, length);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
      if (errno == EAGAIN || errno == ENOBUFS) break;
      return throw_errno(env, "write", errno);
    }
    sent++;
  }
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
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"startReader", NULL, js_start_reader, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stopReader", NULL, js_stop_reader, NULL, NULL, NULL, napi_enumerable, NULL},
      {"writeFrames", NULL, js_write_frames, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
