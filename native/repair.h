/*
 * Shared by the chimney_repair addon's sources (repair.c, steer.c, pdk.c): argument parsing and
 * errno errors (defined in repair.c), and the calls steer.c adds.
 */
#ifndef CHIMNEY_REPAIR_H
#define CHIMNEY_REPAIR_H

#include <node_api.h>
#include <stdint.h>
#include <sys/socket.h>

napi_value throw_errno(napi_env env, const char *syscall, int e);
napi_value make_int(napi_env env, int64_t v);
int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
int get_i32(napi_env env, napi_value v, int32_t *out);
int get_u32(napi_env env, napi_value v, uint32_t *out);
socklen_t get_sockaddr(napi_env env, napi_value addr, napi_value port, struct sockaddr_storage *ss);

/* Enters the network namespace nsfd on this thread (*home: the thread's own); leave_ns returns. */
int enter_ns(int nsfd, int *home);
void leave_ns(int home);

napi_value js_socket_in(napi_env env, napi_callback_info info);
napi_value js_tc_steer(napi_env env, napi_callback_info info);
napi_value js_tc_unsteer(napi_env env, napi_callback_info info);
napi_value js_raw_socket_in(napi_env env, napi_callback_info info);
napi_value js_send_ip(napi_env env, napi_callback_info info);

/* pdk.c: the packetdrill runner's kernel calls. */
napi_value js_tun_in(napi_env env, napi_callback_info info);
napi_value js_wait_fds(napi_env env, napi_callback_info info);
napi_value js_read_fd(napi_env env, napi_callback_info info);
napi_value js_write_fd(napi_env env, napi_callback_info info);
napi_value js_read_tun(napi_env env, napi_callback_info info);
napi_value js_send_null(napi_env env, napi_callback_info info);
napi_value js_epoll_create(napi_env env, napi_callback_info info);
napi_value js_epoll_ctl(napi_env env, napi_callback_info info);
napi_value js_epoll_wait(napi_env env, napi_callback_info info);
napi_value js_recv_null(napi_env env, napi_callback_info info);
napi_value js_write_tun(napi_env env, napi_callback_info info);
napi_value js_recv_flags(napi_env env, napi_callback_info info);
napi_value js_send_flags(napi_env env, napi_callback_info info);
napi_value js_send_iov(napi_env env, napi_callback_info info);
napi_value js_shutdown(napi_env env, napi_callback_info info);
napi_value js_set_bytes(napi_env env, napi_callback_info info);
napi_value js_get_bytes(napi_env env, napi_callback_info info);

#endif
