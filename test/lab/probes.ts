/** What lab tests ask of a forwarded port, seen from the client machine. */
import type { Lab } from './lab.js';
import { pollUntil } from './poll.js';
import { echoRoundTrip, hashedEcho, readLine, RelayConnectError, type HashedEcho } from './sockets.js';

/** Connects to 127.0.0.1:`port` in the client namespace and returns the first line the far side sends. */
export async function greetingAt(lab: Lab, port: number, timeoutMs = 10_000): Promise<string> {
  const sock = await lab.clientConnect('127.0.0.1', port);
  try {
    return await readLine(sock, timeoutMs);
  } finally {
    sock.destroy();
  }
}

/** Sends `text` to 127.0.0.1:`port` in the client namespace, half-closes, returns what came back. */
export async function echoAt(lab: Lab, port: number, text: string, timeoutMs = 10_000): Promise<string> {
  const sock = await lab.clientConnect('127.0.0.1', port);
  return (await echoRoundTrip(sock, text, timeoutMs)).toString('utf8');
}

/** Echoes `totalBytes` random bytes through 127.0.0.1:`port`, hashing both ways. */
export async function hashedEchoAt(lab: Lab, port: number, totalBytes: number, timeoutMs = 120_000): Promise<HashedEcho> {
  const sock = await lab.clientConnect('127.0.0.1', port, { timeoutMs: 30_000 });
  return hashedEcho(sock, totalBytes, timeoutMs);
}

/** True when something accepts TCP on 127.0.0.1:`port` in the client namespace. */
export async function isAccepting(lab: Lab, port: number): Promise<boolean> {
  try {
    (await lab.clientConnect('127.0.0.1', port)).destroy();
    return true;
  } catch (e) {
    // Only an answer from inside the namespace means "not accepting"; a broken relay must not pass for one.
    if (e instanceof RelayConnectError && e.code !== 'EPROTO') return false;
    throw e;
  }
}

/** Waits until 127.0.0.1:`port` accepts in the client namespace. */
export async function waitAccepting(lab: Lab, port: number, timeoutMs = 15_000): Promise<void> {
  await pollUntil(() => isAccepting(lab, port), { timeoutMs, what: `127.0.0.1:${port} to accept in the client namespace` });
}

/** Runs `fn` over `items` with at most `limit` in flight, keeping order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
