/**
 * Runs inside vmd-client: one connection to an echo service, then COUNT
 * sequential 1-byte round trips (send one byte, wait for it to come back),
 * after WARMUP untimed ones. Reports the distribution in microseconds.
 *
 * Usage: node echo-rtt.js --port P --count 2000 [--warmup 200] [--timeout-ms T]
 */
import { connect, type Socket } from 'node:net';
import { intArg, parseArgs, runMain } from './client-args.js';

function quantile(sorted: readonly number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[i] ?? Number.NaN;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, noDelay: true });
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const port = intArg(args, 'port');
  const count = intArg(args, 'count', 2000);
  const warmup = intArg(args, 'warmup', 200);
  const timeoutMs = intArg(args, 'timeout-ms', 120_000);
  const sock = await open(port);
  const samplesUs: number[] = [];
  const timer = setTimeout(() => {
    process.stderr.write(`echo-rtt: not done after ${timeoutMs} ms (${samplesUs.length} samples)\n`);
    process.exit(1);
  }, timeoutMs);
  const byte = Buffer.from([0x2a]);
  await new Promise<void>((resolve, reject) => {
    let i = 0;
    let sentAt = 0n;
    sock.once('error', reject);
    sock.once('end', () => reject(new Error(`echo closed after ${i} round trips`)));
    const send = (): void => {
      sentAt = process.hrtime.bigint();
      sock.write(byte);
    };
    sock.on('data', (b: Buffer) => {
      // One byte out, one byte back: anything else means the stream is not doing what we think.
      if (b.length !== 1 || b[0] !== 0x2a) return reject(new Error(`expected the echoed byte back, got ${b.length} bytes`));
      const us = Number(process.hrtime.bigint() - sentAt) / 1000;
      if (i >= warmup) samplesUs.push(us);
      i++;
      if (i < warmup + count) send();
      else resolve();
    });
    send();
  });
  clearTimeout(timer);
  sock.destroy();
  const sorted = [...samplesUs].sort((a, b) => a - b);
  return {
    count: sorted.length,
    warmup,
    medianUs: quantile(sorted, 0.5),
    p10Us: quantile(sorted, 0.1),
    p90Us: quantile(sorted, 0.9),
    p99Us: quantile(sorted, 0.99),
    minUs: sorted[0],
    maxUs: sorted[sorted.length - 1],
    meanUs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
});
