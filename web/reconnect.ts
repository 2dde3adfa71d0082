// When the console page tries again (pure: unit-tested under Node).

/** Errors a retry can cure: the chain or a hop is down, or the VM is (re)starting. */
const CURABLE = /^(SSH_(HOP_UNREACHABLE|HOP_TIMEOUT|CONNECTION_LOST|CHANNEL_REFUSED|PROXY_COMMAND_FAILED)|VM_NOT_RUNNING|NETWORK|INTERRUPTED|LIBVIRT_UNAVAILABLE)$/;

export const FIRST_DELAY_MS = 1000;
export const MAX_DELAY_MS = 15_000;
/** Errors a retry is unlikely to cure (auth, config, no VNC) are still retried, this slowly. */
export const SLOW_DELAY_MS = 30_000;
/** A connection that lasted longer than this was a success: the next drop starts from the first delay again. */
export const STABLE_AFTER_MS = 10_000;

export function isCurable(code: string): boolean {
  return CURABLE.test(code);
}

/** Exponential backoff: 1 s, 2 s, 4 s, ... capped at 15 s; reset by a stable connection. */
export class Backoff {
  private failures = 0;

  /** The delay before the next attempt, given how long the last connection was up (0: never connected). */
  next(connectedForMs: number): number {
    if (connectedForMs > STABLE_AFTER_MS) this.failures = 0;
    const delay = Math.min(FIRST_DELAY_MS * 2 ** this.failures, MAX_DELAY_MS);
    this.failures++;
    return delay;
  }

  reset(): void {
    this.failures = 0;
  }
}

/** Parses a WebSocket close reason `CODE: message` (docs/ui.md, close code 4000). */
export function parseCloseReason(reason: string): { code: string; message: string } | null {
  const m = /^([A-Z][A-Z0-9_]*): ?(.*)$/s.exec(reason);
  return m === null ? null : { code: m[1] ?? '', message: m[2] ?? '' };
}
