/**
 * Runs inside vmd-client: waits until every port of a range accepts a TCP
 * connection on 127.0.0.1 and reports when (epoch ms, the same clock as the
 * bench process). Prints `ready` first so the bench can start the command
 * under test only once the poller itself runs.
 *
 * While nothing new listens it probes one port (the lowest still pending)
 * every interval, so a slow, sequential setup is not slowed down by
 * thousands of refused connects; as soon as that port accepts, every other
 * pending port is probed at once, so a setup that binds all ports together
 * is seen within one round.
 *
 * Usage: node wait-ports.js --first 5900 --last 6000 [--interval-ms 5] [--timeout-ms 180000]
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { intArg, parseArgs, runMain } from './client-args.js';

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const first = intArg(args, 'first');
  const last = intArg(args, 'last');
  const intervalMs = intArg(args, 'interval-ms', 5);
  const deadline = Date.now() + intArg(args, 'timeout-ms', 180_000);
  const pending = new Set<number>();
  for (let p = first; p <= last; p++) pending.add(p);
  const acceptedAtMs: Record<number, number> = {};
  let probes = 0;
  process.stdout.write('ready\n');
  while (pending.size > 0) {
    if (Date.now() > deadline) throw new Error(`ports still not accepting after the timeout: ${[...pending].join(' ')}`);
    const lowest = Math.min(...pending);
    probes++;
    if (await accepts(lowest)) {
      acceptedAtMs[lowest] = Date.now();
      pending.delete(lowest);
      const rest = [...pending];
      probes += rest.length;
      const results = await Promise.all(rest.map((p) => accepts(p)));
      const now = Date.now();
      rest.forEach((p, i) => {
        if (results[i]) {
          acceptedAtMs[p] = now;
          pending.delete(p);
        }
      });
      continue;
    }
    await sleep(intervalMs);
  }
  return { allAcceptedAtMs: Math.max(...Object.values(acceptedAtMs)), acceptedAtMs, probes };
});
