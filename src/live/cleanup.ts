/**
 * Process-wide cleanup for what the live link creates outside the process (namespaces, TAP
 * devices, child processes): every registered action runs exactly once, on `release`, on
 * process exit, or on SIGINT/SIGTERM (then the process exits with 128 + signal number, unless
 * another listener handles the signal: that listener must then release what it owns).
 * Actions must be synchronous: an exiting process runs no more event-loop turns.
 */

type Action = () => void;

const actions = new Map<number, { readonly label: string; readonly run: Action }>();
let nextId = 1;
let hooked = false;

function runAll(): void {
  // Newest first: a namespace's children and devices go before the namespace.
  const ids = [...actions.keys()].sort((a, b) => b - a);
  for (const id of ids) {
    const a = actions.get(id);
    actions.delete(id);
    try {
      a?.run();
    } catch {
      // best effort: the rest still runs
    }
  }
}

const SIGNALS = { SIGINT: 2, SIGTERM: 15 } as const;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", runAll);
  for (const [sig, num] of Object.entries(SIGNALS)) {
    const signal = sig as NodeJS.Signals;
    process.on(signal, () => {
      // Someone else handles this signal (e.g. `chimney serve` stopping cleanly): let them.
      if (process.listenerCount(signal) > 1) return;
      runAll();
      process.exit(128 + num);
    });
  }
}

/** A registered cleanup: `release()` runs it now (once) and unregisters it. */
export interface Cleanup {
  release(): void;
}

/** Registers `run` to happen on release, exit or SIGINT/SIGTERM, whichever comes first. */
export function registerCleanup(label: string, run: Action): Cleanup {
  hook();
  const id = nextId++;
  actions.set(id, { label, run });
  return {
    release() {
      const a = actions.get(id);
      if (a === undefined) return;
      actions.delete(id);
      a.run();
    },
  };
}

/** Labels of the actions still pending (for diagnostics and tests). */
export function pendingCleanups(): string[] {
  return [...actions.values()].map((a) => a.label);
}
