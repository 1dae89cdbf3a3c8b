// IP reassembly (RFC 791 3.2, RFC 8200 4.5) with RFC 5722's overlap rule, bounded memory and
// the timeout: each rule of src/host/ip-reassembly.ts against a datagram cut by hand.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Instant } from "../time/instant.js";
import { FragmentReassembler, MAX_DATAGRAM_BYTES } from "./ip-reassembly.js";

const at = (ms: number): Instant => Instant.fromMicros(ms * 1000);
const datagram = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

/** `d` cut at `cuts` (offsets, multiples of 8) into fragments for `key`. */
function cut(key: string, d: Uint8Array, cuts: readonly number[]) {
  const edges = [0, ...cuts, d.length];
  return edges.slice(0, -1).map((from, i) => ({
    key,
    offset: from,
    more: i < edges.length - 2,
    data: d.subarray(from, edges[i + 1]),
  }));
}

void describe("IP fragment reassembly", () => {
  void test("RFC 791 3.2: fragments in any order make the datagram once, and nothing is held after", () => {
    const r = new FragmentReassembler();
    const d = datagram(3000);
    const [a, b, c] = cut("x", d, [1480, 2960]);
    assert.ok(a && b && c);
    assert.equal(r.add(at(0), c), undefined);
    assert.equal(r.add(at(1), a), undefined);
    assert.equal(r.heldBytes, c.data.length + a.data.length);
    assert.deepEqual(r.add(at(2), b), d);
    assert.equal(r.heldBytes, 0);
    assert.equal(r.datagrams, 0);
    assert.equal(r.stats.reassembled, 1);
  });

  void test("datagrams with different keys do not mix; an exact duplicate is ignored", () => {
    const r = new FragmentReassembler();
    const d1 = datagram(2000);
    const d2 = datagram(2000).map((x) => x ^ 0xff);
    const [a1, b1] = cut("one", d1, [1000]);
    const [a2, b2] = cut("two", d2, [1000]);
    assert.ok(a1 && b1 && a2 && b2);
    r.add(at(0), a1);
    r.add(at(0), a2);
    assert.equal(r.add(at(0), a1), undefined);
    assert.equal(r.stats.duplicates, 1);
    assert.deepEqual(r.add(at(1), b2), d2);
    assert.deepEqual(r.add(at(1), b1), d1);
  });

  void test("RFC 5722: an overlapping fragment discards the whole datagram, and its later fragments too", () => {
    const r = new FragmentReassembler({ timeoutUs: 1_000_000 });
    const d = datagram(3000);
    const [a, b, c] = cut("x", d, [1000, 2000]);
    assert.ok(a && b && c);
    r.add(at(0), a);
    // 992..1992 overlaps the first fragment's last 8 bytes.
    assert.equal(r.add(at(1), { key: "x", offset: 992, more: true, data: d.subarray(992, 1992) }), undefined);
    assert.equal(r.stats.overlaps, 1);
    assert.equal(r.heldBytes, 0, "the discarded datagram holds no memory");
    assert.equal(r.add(at(2), b), undefined, "the rest of it is discarded as it comes");
    assert.equal(r.add(at(3), c), undefined);
    assert.equal(r.stats.reassembled, 0);
    // Once the tombstone times out, the same key reassembles afresh.
    assert.equal(r.add(at(1100), a), undefined);
    assert.equal(r.add(at(1101), c), undefined);
    assert.deepEqual(r.add(at(1102), b), d);
  });

  void test("malformed: a ragged middle fragment, a datagram past 65,535 bytes, data past the last fragment's end", () => {
    const r = new FragmentReassembler();
    assert.equal(
      r.add(at(0), { key: "a", offset: 0, more: true, data: datagram(100) }),
      undefined,
      "100 is not a multiple of 8",
    );
    assert.equal(
      r.add(at(0), { key: "b", offset: MAX_DATAGRAM_BYTES - 8, more: false, data: datagram(16) }),
      undefined,
    );
    const d = datagram(2000);
    r.add(at(0), { key: "c", offset: 1000, more: false, data: d.subarray(1000) });
    assert.equal(r.add(at(1), { key: "c", offset: 1600, more: true, data: datagram(800) }), undefined);
    assert.equal(r.stats.malformed, 3);
    assert.equal(r.stats.reassembled, 0);
    assert.equal(r.heldBytes, 0);
  });

  void test("a datagram not complete within the timeout is dropped when the next fragment comes", () => {
    const r = new FragmentReassembler({ timeoutUs: 30_000_000 });
    const d = datagram(2000);
    const [a, b] = cut("x", d, [1000]);
    assert.ok(a && b);
    r.add(at(0), a);
    assert.equal(r.add(at(30_001), b), undefined, "the first half timed out");
    assert.equal(r.stats.timeouts, 1);
    assert.equal(r.datagrams, 1, "the late half waits as a new datagram");
  });

  void test("memory bounds: the oldest datagram is evicted to make room, the newest reassembles", () => {
    const r = new FragmentReassembler({ maxBytes: 65535, maxDatagrams: 3 });
    for (let i = 0; i < 5; i++) r.add(at(i), { key: `k${i}`, offset: 0, more: true, data: datagram(8000) });
    assert.equal(r.datagrams, 3, "at most maxDatagrams");
    assert.equal(r.stats.evicted, 2);
    for (let i = 5; i < 12; i++)
      r.add(at(i), { key: `big${i}`, offset: 0, more: true, data: datagram(16000) });
    assert.ok(r.heldBytes <= 65535, `held ${r.heldBytes}`);
    const d = datagram(30000);
    const parts = cut("last", d, [15000]);
    let out: Uint8Array | undefined;
    for (const f of parts) out = r.add(at(20), f);
    assert.deepEqual(out, d, "a flood of incomplete datagrams does not stop a complete one");
  });
});
