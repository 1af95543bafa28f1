/**
 * One cancellation signal for a whole command: the first SIGINT/SIGTERM
 * aborts it (long steps stop at their next boundary and clean up: `up`
 * tears down what it built, `bench` finishes the trial it is in and restores
 * the core pattern); a second one ends the process the default way.
 */
export interface Cancellation {
  readonly signal: AbortSignal;
  /** The signal that cancelled, if one did. */
  readonly reason: NodeJS.Signals | undefined;
  /** Removes the process handlers (the command is over). */
  dispose(): void;
}

export function cancelOnSignals(onFirst?: (sig: NodeJS.Signals) => void): Cancellation {
  const controller = new AbortController();
  let reason: NodeJS.Signals | undefined;
  const handlers: [NodeJS.Signals, () => void][] = [];
  const dispose = () => {
    for (const [sig, h] of handlers) process.off(sig, h);
    handlers.length = 0;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as NodeJS.Signals[]) {
    const h = () => {
      if (reason === undefined) {
        reason = sig;
        onFirst?.(sig);
        controller.abort(sig);
        return;
      }
      dispose();
      process.kill(process.pid, sig);
    };
    process.on(sig, h);
    handlers.push([sig, h]);
  }
  return {
    signal: controller.signal,
    get reason() {
      return reason;
    },
    dispose,
  };
}

/** The signal's reason as a signal name, when it was one of ours. */
export function abortedBy(signal: AbortSignal | undefined): NodeJS.Signals | undefined {
  if (!signal?.aborted) return undefined;
  return typeof signal.reason === 'string' ? (signal.reason as NodeJS.Signals) : 'SIGINT';
}
