/** Waiting for a condition in the lab: real servers take real time to start and stop. */
import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Named in the timeout error. */
  what: string;
}

/** Thrown by a probe to stop polling at once (the thing waited for has failed for good). */
export class PollAbortError extends Error {
  override readonly name = 'PollAbortError';
}

/**
 * Calls `probe` until it returns a value other than undefined/false, and
 * returns that value. A probe that throws counts as "not yet"; the last
 * error is reported if time runs out. A PollAbortError ends the wait at once.
 */
export async function pollUntil<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, opts: PollOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      if (e instanceof PollAbortError) throw e;
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${why}`, { cause: lastError });
    }
    await sleep(opts.intervalMs ?? 100);
  }
}
