/*
 * The namespace half of the chimney_repair addon: what a live hand-off does inside the network
 * namespace that owns the connection's address, from this process and without a child process
 * (each `ip netns exec ... tc` costs a process start, tens of milliseconds on a busy machine).
 *
 * socketIn(nsFd, family) -> fd: a TCP socket created inside the namespace `nsFd` refers to (an
 *   open /run/netns/<name>); the calling thread enters the namespace for the socket() call only
 *   (setns) and returns to its own. The socket stays in that namespace for life.
 * tcSteer(nsFd, outer, tap, pref, localAddress, localPort, remoteAddress, remotePort): adds, at
 *   `outer`'s clsact ingress, the u32 filter `pref` that redirects one IPv4 TCP connection's
 *   packets (remote -> local) to `tap`'s egress, as
 *   `tc filter add dev <outer> ingress pref <pref> protocol ip u32 match ip protocol 6 0xff
 *    match ip src <remote>/32 match ip dst <local>/32 match ip sport <remotePort> 0xffff
 *    match ip dport <localPort> 0xffff action mirred egress redirect dev <tap>` would.
 * tcUnsteer(nsFd, outer, pref): deletes that filter (`tc filter del dev <outer> ingress pref <pref>`).
 * Both talk rtnetlink from a socket opened inside the namespace and wait for the kernel's answer.
 * rawSocketIn(nsFd) -> fd: an IPv4 raw socket (IPPROTO_RAW: the caller writes whole IP packets)
 *   inside the namespace.
 * sendIp(fd, buffer): sends the IPv4 packet `buffer` as it is, to its own destination address: a
 *   packet for an address of the namespace is delivered to the namespace's own stack, as if it
 *   had arrived.
 * Errors throw as in repair.c (code = errno name, syscall = the call).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "repair.h"

/* Enters the namespace `nsfd` on this thread; *home is the thread's own (to return to). */
int enter_ns(int nsfd, int *home) {
  *home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*home < 0) return -1;
  if (setns(nsfd, CLONE_NEWNET) < 0) {
    int e = errno;
    close(*home);
    errno = e;
    return -1;
  }
  return 0;
}

/* Returns this thread to its own namespace. Staying in the other one would be silent havoc. */
void leave_ns(int home) {
  if (setns(home, CLONE_NEWNET) < 0) {
    perror("chimney_repair: setns back to the thread's own network namespace");
    abort();
  }
  close(home);
}

/* socket(domain, type, proto) inside the namespace nsfd; the fd, or throws and returns NULL. */
static napi_value socket_in(napi_env env, int32_t nsfd, int domain, int type, int proto, const char *call) {
  int home = -1;
  if (enter_ns(nsfd, &home) < 0) return throw_errno(env, "setns", errno);
  int fd = socket(domain, type | SOCK_CLOEXEC, proto);
  int e = errno;
  leave_ns(home);
  if (fd < 0) return throw_errno(env, call, e);
  return make_int(env, fd);
}

napi_value js_socket_in(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t nsfd = -1, family = 0;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &nsfd) < 0 || get_i32(env, argv[1], &family) < 0)
    return NULL;
  return socket_in(env, nsfd, family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM, IPPROTO_TCP, "socket");
}

napi_value js_raw_socket_in(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t nsfd = -1;
  if (get_args(env, info, 1, argv) < 0 || get_i32(env, argv[0], &nsfd) < 0) return NULL;
  return socket_in(env, nsfd, AF_INET, SOCK_RAW, IPPROTO_RAW, "socket(SOCK_RAW)");
}

napi_value js_send_ip(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = -1;
  if (get_args(env, info, 2, argv) < 0 || get_i32(env, argv[0], &fd) < 0) return NULL;
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || len < 20 || (((uint8_t *)data)[0] >> 4) != 4) {
    napi_throw_type_error(env, "ERR_ARGS", "expected an IPv4 packet in a Buffer");
    return NULL;
  }
  struct sockaddr_in dst = {.sin_family = AF_INET};
  memcpy(&dst.sin_addr, (uint8_t *)data + 16, 4);
  if (sendto(fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&dst, sizeof dst) < 0)
    return throw_errno(env, "sendto(SOCK_RAW)", errno);
  return NULL;
}

/* One rtnetlink request being built. */
struct nlreq {
  union {
    struct nlmsghdr h;
    char bytes[1024];
  } u;
};

static struct rtattr *nl_put(struct nlreq *r, unsigned short type, const void *data, size_t len) {
  size_t at = NLMSG_ALIGN(r->u.h.nlmsg_len);
  if (at + RTA_SPACE(len) > sizeof r->u.bytes) abort(); /* fixed messages: cannot happen */
  struct rtattr *a = (struct rtattr *)(r->u.bytes + at);
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  if (len > 0) memcpy(RTA_DATA(a), data, len);
  r->u.h.nlmsg_len = (uint32_t)(at + RTA_SPACE(len));
  return a;
}

static struct rtattr *nl_nest(struct nlreq *r, unsigned short type) { return nl_put(r, type, NULL, 0); }

static void nl_end(struct nlreq *r, struct rtattr *nest) {
  nest->rta_len = (unsigned short)(r->u.bytes + r->u.h.nlmsg_len - (char *)nest);
}

/* Sends `r` on a NETLINK_ROUTE socket of the current namespace and waits for its ack; 0 or errno. */
static int nl_talk(struct nlreq *r) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return errno;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  r->u.h.nlmsg_seq = 1;
  int rc = 0;
  if (sendto(s, r->u.bytes, r->u.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    rc = errno;
  } else {
    char buf[4096];
    for (;;) {
      ssize_t n = recv(s, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        rc = errno;
        break;
      }
      struct nlmsghdr *h = (struct nlmsghdr *)buf;
      int done = 0;
      for (size_t left = (size_t)n; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
          const struct nlmsgerr *err = (const struct nlmsgerr *)NLMSG_DATA(h);
          rc = -err->error;
          done = 1;
          break;
        }
      }
      if (done) break;
    }
  }
  close(s);
  return rc;
}

static void tc_header(struct nlreq *r, uint16_t type, uint16_t flags, int ifindex, uint32_t pref) {
  memset(r, 0, sizeof *r);
  r->u.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct tcmsg));
  r->u.h.nlmsg_type = type;
  r->u.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  struct tcmsg *t = (struct tcmsg *)NLMSG_DATA(&r->u.h);
  t->tcm_family = AF_UNSPEC;
  t->tcm_ifindex = ifindex;
  t->tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
  t->tcm_info = TC_H_MAKE(pref << 16, htons(ETH_P_IP));
}

static int get_name(napi_env env, napi_value v, char *out) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, out, IF_NAMESIZE, &len) != napi_ok || len == 0 ||
      len >= IF_NAMESIZE - 1) {
    napi_throw_type_error(env, "ERR_ARGS", "expected an interface name");
    return -1;
  }
  return 0;
}

static int get_pref(napi_env env, napi_value v, uint32_t *pref) {
  if (get_u32(env, v, pref) < 0) return -1;
  if (*pref < 1 || *pref > 0xffff) {
    napi_throw_range_error(env, "ERR_ARGS", "pref out of range (1..65535)");
    return -1;
  }
  return 0;
}

napi_value js_tc_steer(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  int32_t nsfd = -1;
  uint32_t pref = 0;
  char outer[IF_NAMESIZE], tap[IF_NAMESIZE];
  struct sockaddr_storage local, remote;
  if (get_args(env, info, 8, argv) < 0 || get_i32(env, argv[0], &nsfd) < 0 || get_name(env, argv[1], outer) < 0 ||
      get_name(env, argv[2], tap) < 0 || get_pref(env, argv[3], &pref) < 0 ||
      get_sockaddr(env, argv[4], argv[5], &local) == 0 || get_sockaddr(env, argv[6], argv[7], &remote) == 0)
    return NULL;
  if (local.ss_family != AF_INET || remote.ss_family != AF_INET) {
    napi_throw_type_error(env, "ERR_ARGS", "steering matches IPv4 connections only");
    return NULL;
  }
  const struct sockaddr_in *l4 = (const struct sockaddr_in *)&local;
  const struct sockaddr_in *r4 = (const struct sockaddr_in *)&remote;
  struct {
    struct tc_u32_sel sel;
    struct tc_u32_key keys[4];
  } sel;
  memset(&sel, 0, sizeof sel);
  sel.sel.flags = TC_U32_TERMINAL;
  sel.sel.nkeys = 4;
  /* Offsets into the IPv4 header (no options, as tc's `match ip sport/dport`). */
  sel.keys[0] = (struct tc_u32_key){.mask = htonl(0x00ff0000), .val = htonl(6 << 16), .off = 8};
  sel.keys[1] = (struct tc_u32_key){.mask = 0xffffffff, .val = r4->sin_addr.s_addr, .off = 12};
  sel.keys[2] = (struct tc_u32_key){.mask = 0xffffffff, .val = l4->sin_addr.s_addr, .off = 16};
  sel.keys[3] = (struct tc_u32_key){
      .mask = 0xffffffff,
      .val = htonl(((uint32_t)ntohs(r4->sin_port) << 16) | ntohs(l4->sin_port)),
      .off = 20,
  };
  int home = -1;
  if (enter_ns(nsfd, &home) < 0) return throw_errno(env, "setns", errno);
  const char *call = "if_nametoindex";
  int e = 0;
  unsigned outer_ix = if_nametoindex(outer), tap_ix = if_nametoindex(tap);
  if (outer_ix == 0 || tap_ix == 0) {
    e = ENODEV;
  } else {
    struct nlreq r;
    tc_header(&r, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, (int)outer_ix, pref);
    nl_put(&r, TCA_KIND, "u32", 4);
    struct rtattr *opts = nl_nest(&r, TCA_OPTIONS);
    nl_put(&r, TCA_U32_SEL, &sel, sizeof sel);
    struct rtattr *acts = nl_nest(&r, TCA_U32_ACT);
    struct rtattr *act = nl_nest(&r, 1); /* the first action */
    nl_put(&r, TCA_ACT_KIND, "mirred", 7);
    struct rtattr *aopts = nl_nest(&r, TCA_ACT_OPTIONS);
    struct tc_mirred m;
    memset(&m, 0, sizeof m);
    m.action = TC_ACT_STOLEN;
    m.eaction = TCA_EGRESS_REDIR;
    m.ifindex = tap_ix;
    nl_put(&r, TCA_MIRRED_PARMS, &m, sizeof m);
    nl_end(&r, aopts);
    nl_end(&r, act);
    nl_end(&r, acts);
    nl_end(&r, opts);
    call = "rtnetlink(RTM_NEWTFILTER)";
    e = nl_talk(&r);
  }
  leave_ns(home);
  if (e != 0) return throw_errno(env, call, e);
  return NULL;
}

napi_value js_tc_unsteer(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t nsfd = -1;
  uint32_t pref = 0;
  char outer[IF_NAMESIZE];
  if (get_args(env, info, 3, argv) < 0 || get_i32(env, argv[0], &nsfd) < 0 || get_name(env, argv[1], outer) < 0 ||
      get_pref(env, argv[2], &pref) < 0)
    return NULL;
  int home = -1;
  if (enter_ns(nsfd, &home) < 0) return throw_errno(env, "setns", errno);
  const char *call = "if_nametoindex";
  int e = 0;
  unsigned outer_ix = if_nametoindex(outer);
  if (outer_ix == 0) {
    e = ENODEV;
  } else {
    struct nlreq r;
    tc_header(&r, RTM_DELTFILTER, 0, (int)outer_ix, pref);
    /* tc's `del ... pref N` names no protocol: the whole priority goes. */
    ((struct tcmsg *)NLMSG_DATA(&r.u.h))->tcm_info = TC_H_MAKE(pref << 16, 0);
    call = "rtnetlink(RTM_DELTFILTER)";
    e = nl_talk(&r);
  }
  leave_ns(home);
  if (e != 0) return throw_errno(env, call, e);
  return NULL;
}
