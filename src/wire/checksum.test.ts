import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  addSums,
  checksumBackend,
  checksumOfSum,
  internetChecksum,
  ipv4PseudoHeaderSum,
  ipv6PseudoHeaderSum,
  mustCompute,
  mustVerify,
  pseudoHeaderSum,
  sumBytes,
  sumBytesJs,
  swapSum,
  updateChecksum16,
  updateChecksum32,
  verifyChecksum,
} from "./checksum.js";
import { hex } from "./hex.js";
import { ip } from "./ip-addr.js";
import { LINUX_SAMPLES } from "./samples.js";

const SEED = process.env["FC_SEED"] === "random" ? Date.now() : Number(process.env["FC_SEED"] ?? 0x5eed);
fc.configureGlobal({ seed: SEED, numRuns: 200 });

/** RFC 1071 by the book: 16-bit big-endian words, odd byte padded, carries folded at the end. */
function naiveSum(b: Uint8Array, start = 0, end = b.length): number {
  let s = 0;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

/** Random bytes with a random sub-range, lengths spanning both implementations and chunking. */
const rangeArb = fc
  .tuple(fc.integer({ min: 0, max: 2048 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }))
  .map(([len, a, b, seed]) => {
    const bytes = new Uint8Array(len + 8);
    let x = seed | 1;
    for (let i = 0; i < bytes.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      bytes[i] = x & 0xff;
    }
    const start = a % 8;
    const end = start + (len === 0 ? 0 : b % (len + 1));
    return { bytes, start, end };
  });

void describe("sums", () => {
  void test("RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2", () => {
    const b = hex("0001f203f4f5f6f7");
    assert.equal(sumBytes(b), 0xddf2);
    assert.equal(internetChecksum(b), 0x220d);
  });

  void test("a known IPv4 header checksum (c0a8:0001 -> c0a8:00c7, UDP) is 0xb861", () => {
    const h = hex("450000730000400040110000c0a80001c0a800c7");
    assert.equal(internetChecksum(h), 0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    assert.ok(verifyChecksum(h));
    h[11] = 0x62;
    assert.ok(!verifyChecksum(h));
  });

  void test("the Linux SYN's TCP checksum is 0x2345 over the IPv4 pseudo-header", () => {
    const frame = hex(LINUX_SAMPLES.syn4);
    const seg = frame.subarray(34);
    const pseudo = ipv4PseudoHeaderSum(ip("192.0.2.1"), ip("192.0.2.2"), 6, seg.length);
    assert.ok(verifyChecksum(seg, 0, seg.length, pseudo));
    const copy = seg.slice();
    copy[16] = 0;
    copy[17] = 0;
    assert.equal(internetChecksum(copy, 0, copy.length, pseudo), 0x2345);
  });

  void test("the Linux IPv6 SYN verifies with the IPv6 pseudo-header", () => {
    const seg = hex(LINUX_SAMPLES.syn6).subarray(54);
    const pseudo = ipv6PseudoHeaderSum(ip("2001:db8::1"), ip("2001:db8::2"), 6, seg.length);
    assert.ok(verifyChecksum(seg, 0, seg.length, pseudo));
    assert.equal(pseudoHeaderSum(ip("2001:db8::1"), ip("2001:db8::2"), 6, seg.length), pseudo);
  });

  void test("an all-zero range sums to 0 and empty ranges to 0", () => {
    assert.equal(sumBytes(new Uint8Array(1000)), 0);
    assert.equal(sumBytes(new Uint8Array(3), 1, 1), 0);
  });

  void test(`the backend is reported (${checksumBackend()}) and long inputs cross chunk boundaries`, () => {
    const big = new Uint8Array(300_001);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    assert.equal(sumBytes(big), naiveSum(big));
    assert.equal(sumBytes(big, 3, 299_998), naiveSum(big, 3, 299_998));
    assert.equal(sumBytesJs(big, 1, 200_001), naiveSum(big, 1, 200_001));
    // A short range deep inside a larger buffer (copied as a subarray, not with the whole buffer).
    const mid = big.subarray(0, 10_000);
    assert.equal(sumBytes(mid, 5001, 6500), naiveSum(mid, 5001, 6500));
  });

  void test("property: sumBytes (both paths) equals the naive reference at any offset and length", () => {
    fc.assert(
      fc.property(rangeArb, ({ bytes, start, end }) => {
        const want = naiveSum(bytes, start, end);
        assert.equal(sumBytes(bytes, start, end), want);
        assert.equal(sumBytesJs(bytes, start, end), want);
        // An unaligned view of the same bytes (odd byteOffset) gives the same sum.
        const shifted = new Uint8Array(bytes.length + 1);
        shifted.set(bytes, 1);
        assert.equal(sumBytes(shifted.subarray(1), start, end), want);
      }),
    );
  });

  void test("property: sums of consecutive ranges combine (even split directly, odd split swapped)", () => {
    fc.assert(
      fc.property(rangeArb, fc.nat(), ({ bytes, start, end }, k) => {
        const mid = start + (end === start ? 0 : k % (end - start));
        const head = sumBytes(bytes, start, mid);
        const tail = sumBytes(bytes, mid, end);
        const whole = naiveSum(bytes, start, end);
        const combined = addSums(head, (mid - start) % 2 === 0 ? tail : swapSum(tail));
        // 0 and 0xffff are the same number in one's complement; the sums differ only there.
        assert.equal(combined % 0xffff, whole % 0xffff);
      }),
    );
  });
});

void describe("incremental update (RFC 1624)", () => {
  void test("property: updating one 16-bit word equals recomputing the checksum", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 64 }),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff }),
        (data, pick, newWord) => {
          const b = data.length % 2 === 0 ? data.slice() : Uint8Array.from([...data, 0]);
          b[0] = 0;
          b[1] = 0; // the checksum field
          const c = internetChecksum(b);
          const i = 2 + 2 * (pick % ((b.length - 2) / 2));
          const old = (b[i]! << 8) | b[i + 1]!;
          b[i] = newWord >>> 8;
          b[i + 1] = newWord & 0xff;
          assert.equal(updateChecksum16(c, old, newWord), internetChecksum(b));
        },
      ),
    );
  });

  void test("property: updating a 32-bit field (a sequence number) equals recomputing", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 60 }), fc.nat({ max: 0xffffffff }), (data, v) => {
        const b = data.slice(0, data.length & ~1);
        b[16] = 0;
        b[17] = 0;
        const c = internetChecksum(b);
        const old = ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
        b[4] = v >>> 24;
        b[5] = (v >>> 16) & 0xff;
        b[6] = (v >>> 8) & 0xff;
        b[7] = v & 0xff;
        assert.equal(updateChecksum32(c, old, v), internetChecksum(b));
      }),
    );
  });

  void test("the RFC 1624 section 4 corner: a header whose sum becomes 0xffff gets checksum 0x0000", () => {
    // The words 0x0000 + 0xff00 + 0x00ff sum to exactly 0xffff.
    const b = hex("0000ff00 00ff");
    const c = internetChecksum(b);
    assert.equal(c, 0x0000);
    b[2] = 0xfe;
    const c2 = internetChecksum(b);
    assert.equal(updateChecksum16(c2, 0xfe00, 0xff00), c);
  });
});

void describe("capabilities", () => {
  void test("modes say who computes and who verifies", () => {
    assert.deepEqual(
      (["both", "tx", "rx", "none"] as const).map((m) => [mustCompute(m), mustVerify(m)]),
      [
        [true, true],
        [true, false],
        [false, true],
        [false, false],
      ],
    );
    assert.equal(checksumOfSum(0xffff), 0);
  });
});
