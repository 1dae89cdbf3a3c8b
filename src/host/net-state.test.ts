import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Duration, Instant } from "../time/instant.js";
import { ConfigError } from "../util/errors.js";
import { ip, ipToString } from "../wire/ip-addr.js";
import { DEFAULT_NEIGHBOR_CONFIG, NeighborCache } from "./neighbor.js";
import { PathMtuCache } from "./path.js";
import { RouteTable } from "./route.js";

const at = (ms: number) => Instant.fromMillis(ms);
const MAC_A = Uint8Array.of(2, 0, 0, 0, 0, 0xa);
const MAC_B = Uint8Array.of(2, 0, 0, 0, 0, 0xb);

void describe("RouteTable", () => {
  const table = () => {
    const t = new RouteTable();
    t.add({ prefix: ip("0.0.0.0"), prefixLen: 0, gateway: ip("192.0.2.254"), ifIndex: 1, metric: 10 });
    t.add({ prefix: ip("192.0.2.0"), prefixLen: 24, gateway: undefined, ifIndex: 1, metric: 0 });
    t.add({ prefix: ip("198.51.100.0"), prefixLen: 25, gateway: ip("192.0.2.1"), ifIndex: 2, metric: 0 });
    t.add({ prefix: ip("2001:db8::"), prefixLen: 64, gateway: undefined, ifIndex: 1, metric: 0 });
    return t;
  };
  void test("longest prefix wins; on-link routes resolve the destination itself", () => {
    const t = table();
    assert.equal(ipToString(t.lookup(ip("192.0.2.7"))!.via), "192.0.2.7");
    assert.equal(ipToString(t.lookup(ip("198.51.100.9"))!.via), "192.0.2.1");
    assert.equal(t.lookup(ip("198.51.100.9"))!.ifIndex, 2);
    assert.equal(ipToString(t.lookup(ip("198.51.100.200"))!.via), "192.0.2.254"); // /25 does not cover .200
    assert.equal(ipToString(t.lookup(ip("2001:db8::5"))!.via), "2001:db8::5");
    assert.equal(t.lookup(ip("2001:db9::5")), undefined); // no IPv6 default route
  });
  void test("remove takes a route out; bad routes are refused with ConfigError", () => {
    const t = table();
    assert.equal(t.remove(ip("192.0.2.0"), 24, 1), 1);
    assert.equal(ipToString(t.lookup(ip("192.0.2.7"))!.via), "192.0.2.254");
    assert.throws(
      () => t.add({ prefix: ip("10.0.0.0"), prefixLen: 33, gateway: undefined, ifIndex: 1, metric: 0 }),
      ConfigError,
    );
    assert.throws(
      () =>
        t.add({ prefix: ip("10.0.0.0"), prefixLen: 8, gateway: ip("2001:db8::1"), ifIndex: 1, metric: 0 }),
      (e: unknown) => e instanceof ConfigError && e.code === "ERR_CONFIG",
    );
  });
});

void describe("PathMtuCache (RFC 1191, RFC 8201)", () => {
  void test("a lower reported MTU is learned, a higher one ignored, a tiny one raised to the floor", () => {
    const c = new PathMtuCache(Duration.fromSeconds(600));
    const dst = ip("198.51.100.9");
    assert.equal(c.pmtu(dst, 1500), 1500);
    assert.equal(c.handleTooBig(at(0), dst, 1400, 1500), true);
    assert.deepEqual(c.pollChange(), { dst, pmtu: 1400 });
    assert.equal(c.handleTooBig(at(1), dst, 1450, 1500), false);
    assert.equal(c.pmtu(dst, 1500), 1400);
    assert.equal(c.handleTooBig(at(2), dst, 68, 1500), true);
    assert.equal(c.pmtu(dst, 1500), 552);
    const v6 = ip("2001:db8::9");
    c.handleTooBig(at(2), v6, 600, 1500);
    assert.equal(c.pmtu(v6, 1500), 1280);
  });
  void test("a learned PMTU ages out back to the link MTU and says so", () => {
    const c = new PathMtuCache(Duration.fromSeconds(600));
    const dst = ip("198.51.100.9");
    c.handleTooBig(at(0), dst, 1400, 1500);
    c.pollChange();
    assert.equal(c.pollTimeout(), at(600_000));
    c.handleTimeout(at(599_999), () => 1500);
    assert.equal(c.pmtu(dst, 1500), 1400);
    c.handleTimeout(at(600_000), () => 1500);
    assert.equal(c.pmtu(dst, 1500), 1500);
    assert.deepEqual(c.pollChange(), { dst, pmtu: 1500 });
    assert.equal(c.pollTimeout(), undefined);
  });
});

void describe("PathMtuCache bounds", () => {
  void test("a full cache evicts the entry learned longest ago and reports it back at its link MTU", () => {
    const c = new PathMtuCache(Duration.fromSeconds(600), 2);
    const d = [ip("198.51.100.1"), ip("198.51.100.2"), ip("198.51.100.3")] as const;
    c.handleTooBig(at(0), d[0], 1400, 1500);
    c.handleTooBig(at(1), d[1], 1400, 1500);
    c.handleTooBig(at(2), d[0], 1300, 1500); // an update makes d[0] the newest
    c.handleTooBig(at(3), d[2], 1400, 1500);
    assert.equal(c.size, 2);
    assert.equal(c.pmtu(d[1], 1500), 1500, "d[1] evicted");
    assert.equal(c.pmtu(d[0], 1500), 1300);
    assert.equal(c.pmtu(d[2], 1500), 1400);
    // Pending changes: the latest per destination, in order.
    assert.deepEqual(
      [c.pollChange(), c.pollChange(), c.pollChange(), c.pollChange()],
      [{ dst: d[0], pmtu: 1300 }, { dst: d[1], pmtu: 1500 }, { dst: d[2], pmtu: 1400 }, undefined],
    );
  });
  void test("expiry follows learning order and pollTimeout is the oldest entry's", () => {
    const c = new PathMtuCache(Duration.fromSeconds(10), 100);
    for (let i = 0; i < 50; i++) c.handleTooBig(at(i * 100), ip(`198.51.100.${i}`), 1400, 1500);
    assert.equal(c.pollTimeout(), at(10_000));
    c.handleTimeout(at(12_450), () => 1500);
    assert.equal(c.size, 25);
    assert.equal(c.pollTimeout(), at(12_500));
    assert.equal(c.pmtu(ip("198.51.100.24"), 1500), 1500);
    assert.equal(c.pmtu(ip("198.51.100.25"), 1500), 1400);
  });
  void test("pending changes stay bounded when nobody drains them", () => {
    const c = new PathMtuCache(Duration.fromSeconds(600), 4);
    for (let i = 0; i < 100; i++) c.handleTooBig(at(i), ip(`198.51.100.${i}`), 1400, 1500);
    let n = 0;
    while (c.pollChange() !== undefined) n++;
    assert.equal(n, 8, "at most twice the capacity");
  });
});

void describe("NeighborCache (RFC 4861 7.3)", () => {
  const peer = ip("192.0.2.2");
  void test("INCOMPLETE queues packets, solicits, and releases them in order on a reply", () => {
    const c = new NeighborCache();
    const p1 = Uint8Array.of(1);
    const p2 = Uint8Array.of(2);
    assert.equal(c.resolve(at(0), 1, peer, p1), undefined);
    assert.equal(c.resolve(at(1), 1, peer, p2), undefined);
    assert.deepEqual(c.pollSolicit(), { ifIndex: 1, ip: peer, unicastTo: undefined });
    assert.equal(c.pollSolicit(), undefined, "one solicitation per retrans interval");
    c.confirm(at(2), 1, peer, MAC_A, true);
    assert.equal(c.get(1, peer)!.state, "REACHABLE");
    assert.deepEqual(c.pollRelease()?.packet, p1);
    assert.deepEqual(c.pollRelease()?.packet, p2);
    assert.equal(c.pollRelease(), undefined);
    assert.deepEqual(c.resolve(at(3), 1, peer), MAC_A);
  });
  void test("the queue is bounded: the oldest packet is dropped and counted", () => {
    const c = new NeighborCache();
    for (let i = 0; i < DEFAULT_NEIGHBOR_CONFIG.queueLimit + 2; i++)
      c.resolve(at(0), 1, peer, Uint8Array.of(i));
    assert.equal(c.stats.queueDrops, 2);
    c.confirm(at(1), 1, peer, MAC_A, true);
    assert.deepEqual(c.pollRelease()?.packet, Uint8Array.of(2));
  });
  void test("unanswered solicitations give up after MAX_MULTICAST_SOLICIT and drop the queue", () => {
    const c = new NeighborCache();
    c.resolve(at(0), 1, peer, Uint8Array.of(1));
    let sent = 0;
    for (let t = 0; t <= 5000; t += 100) {
      c.handleTimeout(at(t));
      while (c.pollSolicit()) sent++;
    }
    assert.equal(sent, 3);
    assert.equal(c.get(1, peer), undefined);
    assert.equal(c.stats.resolutionFailures, 1);
    assert.equal(c.stats.queueDrops, 1);
  });
  void test("REACHABLE goes STALE after ReachableTime, DELAY on use, then PROBE with unicast solicits", () => {
    const c = new NeighborCache();
    c.confirm(at(0), 1, peer, MAC_A, true);
    c.resolve(at(30_001), 1, peer);
    assert.equal(c.get(1, peer)!.state, "DELAY");
    c.handleTimeout(at(35_001));
    assert.equal(c.get(1, peer)!.state, "PROBE");
    assert.deepEqual(c.pollSolicit(), { ifIndex: 1, ip: peer, unicastTo: MAC_A });
    c.confirmReachable(at(35_500), 1, peer); // TCP forward progress
    assert.equal(c.get(1, peer)!.state, "REACHABLE");
    assert.equal(c.get(1, peer)!.confirmedAt, at(35_500));
  });
  void test("a lost neighbor and a changed MAC are reported for offloaded connections", () => {
    const c = new NeighborCache();
    c.confirm(at(0), 1, peer, MAC_A, true);
    assert.equal(c.pollChange(), undefined, "first learning is not a change");
    c.confirm(at(1), 1, peer, MAC_B, false);
    assert.equal(c.get(1, peer)!.state, "STALE");
    assert.deepEqual(c.pollChange(), { ifIndex: 1, ip: peer, mac: MAC_B });
    c.resolve(at(2), 1, peer);
    for (let t = 2; t < 20_000; t += 500) c.handleTimeout(at(t));
    assert.equal(c.get(1, peer), undefined);
    assert.deepEqual(c.pollChange(), { ifIndex: 1, ip: peer, mac: undefined });
  });
});
