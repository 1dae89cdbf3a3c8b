/*
 * Internet checksums shared by the addons (tap.c, pdk.c): the ones' complement sum (RFC 1071)
 * and the completion of a checksum the kernel left partial in a frame it handed over with a
 * virtio_net_hdr (VIRTIO_NET_HDR_F_NEEDS_CSUM).
 */
#ifndef CHIMNEY_CSUM_H
#define CHIMNEY_CSUM_H

#include <linux/virtio_net.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Ones' complement sum of n bytes in memory order (RFC 1071: byte order independent). */
static inline uint64_t sum_bytes(const unsigned char *p, size_t n) {
  uint64_t s = 0;
  while (n >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    s += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    s += w;
    p += 2;
    n -= 2;
  }
  if (n > 0) {
    uint16_t w = 0;
    memcpy(&w, p, 1);
    s += w;
  }
  return s;
}

static inline uint16_t fold(uint64_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

/* Completes a checksum the kernel left partial: the sum from csum_start to the end, stored at
 * csum_start + csum_offset (whose field holds the pseudo-header sum), as skb_checksum_help does. */
static inline int complete_csum(unsigned char *frame, size_t len, const struct virtio_net_hdr *vh) {
  size_t start = vh->csum_start, field = start + vh->csum_offset;
  if (field + 2 > len || start >= len) return 0;
  uint16_t c = (uint16_t)~fold(sum_bytes(frame + start, len - start));
  memcpy(frame + field, &c, 2);
  return 1;
}

#endif
