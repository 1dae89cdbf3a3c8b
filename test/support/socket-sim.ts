/**
 * Two `NetStack`s (hosts a = 192.0.2.1 / 2001:db8::1 and b = 192.0.2.2 / 2001:db8::2) on one
 * simulated Ethernet link, run by a `SimDriver` inside Node's event loop. The link can be cut
 * (`blackhole`) to make every frame vanish in both directions.
 */
import { segmentHost } from "../../src/sim/segment-host.js";
import type { FrameSink } from "../../src/sim/frame-sink.js";
import { buildDuplexLink, type DuplexLink, type FaultProfile } from "../../src/sim/link.js";
import { Prng } from "../../src/sim/prng.js";
import { SimDriver, type SimStackDriver } from "../../src/socket/driver.js";
import { NetStack } from "../../src/socket/net-stack.js";
import { tcpConfig, type TcpConfig } from "../../src/tcp/config.js";
import type { Instant } from "../../src/time/instant.js";

/** Parameters of a simulated pair. */
export interface SocketSimOptions {
  readonly seed: number;
  readonly profile?: FaultProfile | undefined;
  readonly tcp?: Partial<TcpConfig> | undefined;
  readonly mtu?: number | undefined;
}

/** A running pair; call `stop()` when done. */
export interface SocketSim {
  readonly seed: number;
  readonly sim: SimDriver;
  readonly a: NetStack;
  readonly b: NetStack;
  readonly hostA: SimStackDriver;
  readonly hostB: SimStackDriver;
  readonly link: DuplexLink;
  /** While true, every frame on the link is dropped (both directions). */
  blackhole: boolean;
  /** Frames dropped by the blackhole. */
  readonly blackholed: number;
  stop(): void;
}

/** Builds the pair. Host names `a` and `b` resolve to the hosts' IPv4 addresses. */
export function socketSim(o: SocketSimOptions): SocketSim {
  const sim = new SimDriver();
  const root = new Prng(o.seed);
  const linkRng = root.fork();
  const mtu = o.mtu ?? 1500;
  const tcp = tcpConfig({ ...o.tcp });
  const mk = (name: string, n: number, rng: Prng): SimStackDriver =>
    sim.addHost(name, segmentHost(n, { tcp, random: rng, mtu, ipv6: true }));
  const hostA = mk("a", 1, root.fork());
  const hostB = mk("b", 2, root.fork());
  let dropped = 0;
  const state = { blackhole: false };
  const gate = (next: FrameSink): FrameSink => ({
    deliver(now: Instant, frame: Uint8Array) {
      if (state.blackhole) {
        dropped++;
        return;
      }
      next.deliver(now, frame);
    },
  });
  const link = buildDuplexLink(gate(hostA.port(0)), gate(hostB.port(0)), {
    scheduler: sim.scheduler,
    prng: linkRng,
    profile: { delayUs: 500, ...o.profile, mtu, linkHeaderBytes: 14 },
  });
  hostA.attach(0, link.aToB);
  hostB.attach(0, link.bToA);
  const hosts = { a: "192.0.2.1", b: "192.0.2.2" };
  const a = new NetStack(hostA, { hosts });
  const b = new NetStack(hostB, { hosts });
  return {
    seed: o.seed,
    sim,
    a,
    b,
    hostA,
    hostB,
    link,
    get blackhole() {
      return state.blackhole;
    },
    set blackhole(v: boolean) {
      state.blackhole = v;
    },
    get blackholed() {
      return dropped;
    },
    stop() {
      sim.stop();
    },
  };
}
