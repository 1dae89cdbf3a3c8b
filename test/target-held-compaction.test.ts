// Receive compaction at the target: data an offloaded connection holds (the host refuses every
// indication and posts nothing) is copied into whole chunks of the target's pool as it arrives;
// at terminate the BufferedData carries those chunks, the host reads every byte in order, the
// chunks come back to the target's pool with the NBLs and are reused, and the ledger ends
// quiescent. Data the host takes promptly is never copied.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { acceptAllKnobs, OffloadManager, type ReceiveKnobs } from "../src/host/offload-manager.js";
import { type HostConn, HostStack, type StackEvent } from "../src/host/stack.js";
import { BufferLedger } from "../src/nbl/ledger.js";
import { Prng } from "../src/sim/prng.js";
import { HELD_CHUNK_BYTES, SoftwareTarget } from "../src/target/software-target.js";
import { tcpConfig } from "../src/tcp/config.js";
import { Instant } from "../src/time/instant.js";
import { ChecksumCapabilities } from "../src/wire/checksum.js";
import { mac } from "../src/wire/ethernet.js";
import { ip } from "../src/wire/ip-addr.js";

const NOW = Instant.ZERO;
const val = (i: number): number => (i * 29 + 11) & 0xff;

interface World {
  readonly a: HostStack;
  readonly b: HostStack;
  readonly manager: OffloadManager;
  readonly target: SoftwareTarget;
  readonly ledger: BufferLedger;
  readonly c: HostConn;
  readonly peer: HostConn;
  /** Bytes the peer has sent so far. */
  sent: number;
}

/** Indications refused, nothing posted: received data stays at the target until the upload. */
function refuseAll(): ReceiveKnobs {
  return { ...acceptAllKnobs({ nextU32: () => 0 }), acceptAll: 0, refuse: 1, queueLimit: 0 };
}

function settle(w: Pick<World, "a" | "b" | "target">, onA: (e: StackEvent) => void = () => undefined): void {
  for (let round = 0; round < 100_000; round++) {
    let moved = false;
    w.target.process(NOW);
    for (let f = w.a.pollTransmit(NOW); f !== undefined; f = w.a.pollTransmit(NOW)) {
      w.target.sendFrame(f.frame);
      moved = true;
    }
    for (let e = w.a.pollEvent(); e !== undefined; e = w.a.pollEvent()) {
      onA(e);
      moved = true;
    }
    for (let f = w.target.pollTransmit(NOW); f !== undefined; f = w.target.pollTransmit(NOW)) {
      w.b.handleFrame(NOW, 0, f);
      moved = true;
    }
    for (let f = w.b.pollTransmit(NOW); f !== undefined; f = w.b.pollTransmit(NOW)) {
      w.target.handleFrame(NOW, f.frame);
      moved = true;
    }
    while (w.b.pollEvent() !== undefined) moved = true;
    if (!moved && !w.target.hasWork()) return;
  }
  assert.fail("the world did not settle");
}

function world(knobs: ReceiveKnobs, compactHeldData: boolean): World {
  const tcp = tcpConfig({ recvBufferSize: 1 << 20, sendBufferSize: 1 << 20, delayedAck: 0 as never });
  const stack = (n: number) =>
    new HostStack({
      interfaces: [
        {
          name: "eth0",
          link: "ethernet",
          mac: mac(`02:00:00:00:00:0${n}`),
          mtu: 1500,
          addresses: [{ addr: ip(`192.0.2.${n}`), prefixLen: 24 }],
          checksum: ChecksumCapabilities.NONE,
        },
      ],
      tcp,
      random: new Prng(n),
    });
  const a = stack(1);
  const b = stack(2);
  const ledger = new BufferLedger();
  const manager = new OffloadManager(a, ledger, {}, knobs);
  const target = new SoftwareTarget({
    host: manager,
    ledger,
    mac: mac("02:00:00:00:00:01"),
    tcpConfig: tcp,
    compactHeldData,
  });
  manager.attachTarget(target);
  a.listen(80);
  const peer = b.connect(NOW, ip("192.0.2.1"), 80);
  let c: HostConn | undefined;
  settle({ a, b, target }, (e) => {
    if (e.kind === "accept") c ??= a.accept(e.listener);
  });
  assert.ok(c !== undefined, "accepted");
  return { a, b, manager, target, ledger, c, peer, sent: 0 };
}

/** The peer sends `n` more bytes of the pattern. */
function peerSends(w: World, n: number): void {
  const bytes = Uint8Array.from({ length: n }, (_, k) => val(w.sent + k));
  let at = 0;
  for (let i = 0; at < n && i < 10_000; i++) {
    at += w.b.send(NOW, w.peer, bytes.subarray(at));
    settle(w);
  }
  assert.equal(at, n, "the peer sent everything");
  w.sent += n;
}

function offload(w: World): void {
  assert.ok(w.manager.offload(w.c));
  settle(w);
  assert.equal(w.c.phase, "offloaded");
}

function upload(w: World): void {
  assert.ok(w.manager.terminate(w.c));
  settle(w);
  assert.equal(w.c.phase, "host");
  assert.equal(w.target.outstandingReturns, 0, "BufferedData NBLs returned");
}

/** Reads everything by copy into a reused application buffer; checks the bytes from `from`. */
function readByCopy(w: World, from: number): number {
  const app = new Uint8Array(5000);
  let at = from;
  w.a.configure(NOW, w.c, (tcp) => {
    for (let k = tcp.recvInto(app); k > 0; k = tcp.recvInto(app)) {
      for (let i = 0; i < k; i++) if (app[i] !== val(at + i)) assert.fail(`byte ${at + i} differs`);
      at += k;
    }
  });
  settle(w);
  return at;
}

void describe("held receive data compaction at the target", () => {
  void test("held data is compacted into whole chunks once; BufferedData brings it up in order; chunks are reused", () => {
    const w = world(refuseAll(), true);
    let read = 0;
    for (let round = 0; round < 3; round++) {
      offload(w);
      peerSends(w, 300_000);
      const st = w.target.heldPoolStats;
      assert.ok(st !== undefined);
      // 300,000 bytes = 4 whole chunks; the remainder stays as segment views.
      assert.equal(st.allocated + st.reused, 4 * (round + 1), `round ${round}: 4 chunks filled`);
      assert.equal(st.allocated, 4, `round ${round}: chunks allocated once, then reused`);
      upload(w);
      assert.equal(w.a.readable(w.c), w.sent - read);
      read = readByCopy(w, read);
      assert.equal(read, w.sent);
    }
    w.ledger.assertQuiescent();
  });
  void test("without compaction the same bytes arrive and no chunk is used", () => {
    const w = world(refuseAll(), false);
    offload(w);
    peerSends(w, 300_000);
    assert.equal(w.target.heldPoolStats, undefined);
    upload(w);
    assert.equal(readByCopy(w, 0), w.sent);
    w.ledger.assertQuiescent();
  });
  void test("data the host takes promptly is never copied into chunks", () => {
    const w = world(acceptAllKnobs({ nextU32: () => 0 }), true);
    offload(w);
    peerSends(w, 4 * HELD_CHUNK_BYTES);
    const st = w.target.heldPoolStats;
    assert.equal(st?.allocated, 0);
    assert.equal(st.reused, 0);
    upload(w);
    assert.equal(readByCopy(w, 0), w.sent);
    w.ledger.assertQuiescent();
  });
});
