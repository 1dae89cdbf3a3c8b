import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { assertStatusWritten, type OffloadBlockList, roleOf, visitTree } from "./block-list.js";
import {
  capabilities,
  droppedFamilies,
  FULL_CAPABILITIES,
  NDIS_TCP_CHIMNEY_OFFLOAD,
  offloadParameters,
  scaleTicks,
} from "./capabilities.js";
import { INDICATION_PENDING, MANDATORY_UPLOAD_REASONS, type OffloadHost } from "./contract.js";
import { ChimneyRegistry, type ProviderChimneyTcpCharacteristics } from "./registration.js";

void describe("capabilities (spec 3.3)", () => {
  void test("the full record offers both families and SACK, not IPv6 extension headers", () => {
    assert.equal(FULL_CAPABILITIES.supportSack, true);
    assert.equal(FULL_CAPABILITIES.supportIPv6ExtensionHeaders, false);
    assert.deepEqual(capabilities(), FULL_CAPABILITIES);
  });

  void test("a capacity must be a non-negative integer; the message names the value", () => {
    assert.equal(capabilities({ tcpConnectionOffloadCapacity: 0 }).tcpConnectionOffloadCapacity, 0);
    for (const bad of [-1, 1.5])
      assert.throws(() => capabilities({ tcpConnectionOffloadCapacity: bad }), {
        message: `bad TcpConnectionOffloadCapacity ${bad}`,
      });
    assert.throws(() => capabilities({ encapsulation: [] }), {
      message: "a chimney target reports an IEEE 802.3 or LLC/SNAP-routed encapsulation",
    });
  });

  void test("CFG-1: droppedFamilies lists exactly the families that went away", () => {
    const both = capabilities();
    const v4 = capabilities({ supportIPv6: false });
    const v6 = capabilities({ supportIPv4: false });
    assert.deepEqual(droppedFamilies(both, both), []);
    assert.deepEqual(droppedFamilies(both, v4), [6]);
    assert.deepEqual(droppedFamilies(both, v6), [4]);
    assert.deepEqual(droppedFamilies(v4, v6), [4]);
    assert.deepEqual(droppedFamilies(v6, v4), [6]);
    assert.deepEqual(droppedFamilies(v4, both), []);
  });
});

void describe("offload parameters and ticks (CFG-6)", () => {
  void test("parameters are non-negative integers at a documented tick rate", () => {
    assert.equal(offloadParameters({ tcpPushTicks: 0 }).tcpPushTicks, 0);
    assert.throws(() => offloadParameters({ tcpPushTicks: -1 }), {
      message: "bad offload parameter tcpPushTicks = -1",
    });
    assert.throws(() => offloadParameters({ tcpPushTicks: 0.5 }), {
      message: "bad offload parameter tcpPushTicks = 0.5",
    });
    assert.throws(() => offloadParameters({ ticksPerSecond: 60 }), {
      message: "TicksPerSecond 60 is not one of 10, 100, 1000",
    });
  });

  void test("scaleTicks rounds up and refuses bad counts and rates", () => {
    assert.equal(scaleTicks(0, 1000, 10), 0);
    assert.equal(scaleTicks(1, 1000, 10), 1, "a timer never fires earlier than asked");
    assert.equal(scaleTicks(3, 10, 1000), 300);
    assert.throws(() => scaleTicks(-1, 10, 10), { message: "bad tick count -1" });
    assert.throws(() => scaleTicks(0.5, 10, 10), { message: "bad tick count 0.5" });
    assert.throws(() => scaleTicks(1, 0, 10), { message: "ticks per second must be > 0" });
    assert.throws(() => scaleTicks(1, 10, 0), { message: "ticks per second must be > 0" });
  });
});

void describe("the contract's constant lists", () => {
  void test("EV-1: the mandatory upload reasons are the five the spec names", () => {
    assert.deepEqual([...MANDATORY_UPLOAD_REASONS].sort(), [
      "HardwareFailure",
      "InvalidState",
      "ReceivedUrgentData",
      "TimeoutExpiration",
      "UploadRequested",
    ]);
  });

  void test("a pending indication answer consumed nothing", () => {
    assert.deepEqual({ ...INDICATION_PENDING }, { status: "NDIS_STATUS_PENDING", bytesConsumed: 0 });
  });
});

void describe("ChimneyRegistry (INIT-1, INIT-2)", () => {
  const calls: string[] = [];
  const handler =
    (name: string) =>
    (...args: unknown[]): void => {
      calls.push(`${name}(${args.length})`);
    };
  const host = {
    tcpOffloadEvent: handler("event"),
    tcpOffloadReceiveIndicate: handler("indicate"),
    tcpOffloadSendComplete: handler("sendComplete"),
    tcpOffloadReceiveComplete: handler("receiveComplete"),
    tcpOffloadDisconnectComplete: handler("disconnectComplete"),
    tcpOffloadForwardComplete: handler("forwardComplete"),
  } as unknown as OffloadHost;
  const generic = {
    kind: "generic" as const,
    initiateOffloadHandler: () => "initiate",
    terminateOffloadHandler: () => "terminate",
    updateOffloadHandler: () => "update",
    invalidateOffloadHandler: () => "invalidate",
    queryOffloadHandler: () => "query",
  };
  const tcp = {
    kind: "tcp" as const,
    offloadType: NDIS_TCP_CHIMNEY_OFFLOAD,
    tcpOffloadSendHandler: () => "NDIS_STATUS_PENDING",
    tcpOffloadReceiveHandler: () => "NDIS_STATUS_PENDING",
    tcpOffloadDisconnectHandler: () => "NDIS_STATUS_PENDING",
    tcpOffloadForwardHandler: () => "NDIS_STATUS_PENDING",
    tcpOffloadReceiveReturnHandler: () => "NDIS_STATUS_SUCCESS",
  } as unknown as ProviderChimneyTcpCharacteristics;

  void test("the target is reachable only once both tables are registered, each once", () => {
    const reg = new ChimneyRegistry(host);
    assert.equal(reg.complete, false);
    assert.throws(() => reg.offloadTarget(), {
      message: "INIT-1: the target has not registered both chimney handler tables",
    });
    assert.equal(reg.setOptionalHandlers(generic), "NDIS_STATUS_SUCCESS");
    assert.equal(reg.complete, false, "the TCP table is still missing");
    assert.throws(() => reg.offloadTarget(), /INIT-1/);
    assert.throws(() => reg.setOptionalHandlers(generic), {
      message: "INIT-1: generic chimney handlers registered twice",
    });
    const tcpOnly = new ChimneyRegistry(host);
    assert.equal(tcpOnly.setOptionalHandlers(tcp), "NDIS_STATUS_SUCCESS");
    assert.equal(tcpOnly.complete, false, "the generic table is still missing");
    assert.throws(() => tcpOnly.offloadTarget(), /INIT-1/);
    assert.equal(reg.setOptionalHandlers(tcp), "NDIS_STATUS_SUCCESS");
    assert.equal(reg.complete, true);
    const target = reg.offloadTarget() as unknown as Record<string, () => unknown>;
    assert.deepEqual(
      ["initiateOffload", "terminateOffload", "queryOffload", "tcpOffloadReceiveReturn"].map((k) =>
        target[k]!(),
      ),
      ["initiate", "terminate", "query", "NDIS_STATUS_SUCCESS"],
    );
  });

  void test("INIT-2: the event handlers of the TCP chimney reach the host", () => {
    const reg = new ChimneyRegistry(host);
    assert.deepEqual(reg.getOffloadHandlers(NDIS_TCP_CHIMNEY_OFFLOAD + 1), {
      status: "STATUS_NOT_SUPPORTED",
    });
    const r = reg.getOffloadHandlers(NDIS_TCP_CHIMNEY_OFFLOAD);
    assert.equal(r.status, "STATUS_SUCCESS");
    assert.ok(r.status === "STATUS_SUCCESS");
    calls.length = 0;
    const h = r.handlers as unknown as Record<string, (...a: unknown[]) => void>;
    for (const name of [
      "tcpOffloadEvent",
      "tcpOffloadReceiveIndicate",
      "tcpOffloadSendComplete",
      "tcpOffloadReceiveComplete",
      "tcpOffloadDisconnectComplete",
      "tcpOffloadForwardComplete",
    ])
      h[name]!(1, 2);
    assert.deepEqual(calls, [
      "event(2)",
      "indicate(2)",
      "sendComplete(2)",
      "receiveComplete(2)",
      "disconnectComplete(2)",
      "forwardComplete(2)",
    ]);
    assert.deepEqual(reg.calls, [
      `NdisMGetOffloadHandlers(${NDIS_TCP_CHIMNEY_OFFLOAD + 1})`,
      `NdisMGetOffloadHandlers(${NDIS_TCP_CHIMNEY_OFFLOAD})`,
    ]);
  });
});

void describe("block trees (TR-8, IO-11, IO-12)", () => {
  type Named = OffloadBlockList & { readonly name: string };
  const block = (
    name: string,
    dependents: Named[] = [],
    slot: { context: number | null } | null = null,
  ): Named => {
    for (let i = 0; i + 1 < dependents.length; i++)
      (dependents[i] as { nextBlock: unknown }).nextBlock = dependents[i + 1];
    return {
      name,
      miniportOffloadContext: slot,
      nextBlock: null,
      dependentBlockList: dependents[0] ?? null,
      netBufferListChain: null,
      status: undefined,
    } as unknown as Named;
  };
  /** root { a { a1 }, b } then its sibling c; `failing` names the blocks whose process fails. */
  const run = (failing: string[], stopOnRootFailure: boolean): { done: string[]; skipped: string[] } => {
    const root = block("root", [block("a", [block("a1")]), block("b")]);
    (root as { nextBlock: unknown }).nextBlock = block("c");
    const done: string[] = [];
    const skipped: string[] = [];
    visitTree(
      root,
      (b) => {
        done.push((b as Named).name);
        return !failing.includes((b as Named).name);
      },
      (b) => skipped.push((b as Named).name),
      stopOnRootFailure,
    );
    return { done, skipped };
  };

  void test("a block, then its dependents, then its next sibling", () => {
    assert.deepEqual(run([], true), { done: ["root", "a", "a1", "b", "c"], skipped: [] });
  });

  void test("IO-11: a failed block's dependents are skipped, its siblings still run", () => {
    assert.deepEqual(run(["a"], true), { done: ["root", "a", "b", "c"], skipped: ["a1"] });
    assert.deepEqual(run(["root"], false), { done: ["root", "c"], skipped: ["a", "a1", "b"] });
  });

  void test("IO-12: a failed root stops the tree when asked; every other block is skipped", () => {
    assert.deepEqual(run(["root"], true), { done: ["root"], skipped: ["a", "a1", "b", "c"] });
  });

  void test("roles and the status check", () => {
    assert.equal(roleOf(block("p")), "placeholder");
    assert.equal(roleOf(block("n", [], { context: null })), "new-offload");
    assert.equal(roleOf(block("l", [], { context: 7 })), "linker");
    assert.throws(() => assertStatusWritten(block("x"), "TerminateOffload"), {
      message: "OP-2: TerminateOffload completing with a block without status",
    });
  });
});
