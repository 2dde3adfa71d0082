/**
 * Runs inside vmd-client: opens N connections to 127.0.0.1:PORT at once,
 * sends BYTES on each (honouring backpressure), half-closes, and waits for
 * the sink on the KVM host to answer with the byte count it received. The
 * clock runs from the first connect to the last answer, so every byte has
 * crossed both hops.
 *
 * Usage: node stream-to-sink.js --port P --connections N --bytes-each B [--timeout-ms T]
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { intArg, parseArgs, runMain } from './client-args.js';

const CHUNK_BYTES = 256 * 1024;

interface ConnectionResult {
  connectMs: number;
  doneMs: number;
  bytesSent: number;
}

function streamOne(port: number, bytes: number, chunk: Buffer, t0: number): Promise<ConnectionResult> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let sent = 0;
    let answer = '';
    let connectMs = 0;
    const fail = (e: Error): void => {
      sock.destroy();
      reject(e);
    };
    sock.once('error', fail);
    const pump = (): void => {
      while (sent < bytes) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end();
    };
    sock.once('connect', () => {
      connectMs = performance.now() - t0;
      pump();
    });
    sock.setEncoding('utf8');
    sock.on('data', (s: string) => (answer += s));
    sock.once('end', () => {
      const received = Number.parseInt(answer, 10);
      if (received !== bytes) return fail(new Error(`sent ${bytes} bytes on port ${port}, the sink counted ${JSON.stringify(answer.trim())}`));
      resolve({ connectMs, doneMs: performance.now() - t0, bytesSent: sent });
      sock.destroy();
    });
  });
}

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const port = intArg(args, 'port');
  const connections = intArg(args, 'connections', 1);
  const bytesEach = intArg(args, 'bytes-each');
  const timeoutMs = intArg(args, 'timeout-ms', 600_000);
  // Random, so nothing on the way could shortcut the bytes; one buffer reused for every write.
  const chunk = randomBytes(CHUNK_BYTES);
  const timer = setTimeout(() => {
    process.stderr.write(`stream-to-sink: not done after ${timeoutMs} ms\n`);
    process.exit(1);
  }, timeoutMs);
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: connections }, () => streamOne(port, bytesEach, chunk, t0)));
  clearTimeout(timer);
  const elapsedMs = Math.max(...results.map((r) => r.doneMs));
  const totalBytes = bytesEach * connections;
  const doneMs = results.map((r) => r.doneMs).sort((a, b) => a - b);
  return {
    connections,
    bytesEach,
    totalBytes,
    elapsedMs,
    mibPerS: totalBytes / 1048576 / (elapsedMs / 1000),
    slowestConnectMs: Math.max(...results.map((r) => r.connectMs)),
    firstDoneMs: doneMs[0],
    lastDoneMs: doneMs[doneMs.length - 1],
    cpuS: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  };
});
