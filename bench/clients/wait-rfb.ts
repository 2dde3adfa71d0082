/**
 * Runs inside vmd-client: connects to 127.0.0.1:PORT again and again until a
 * connection delivers the start of an RFB ProtocolVersion message (`RFB `,
 * RFC 6143 section 7.1.1), and reports when the first bytes arrived (epoch
 * ms, the same clock as the bench process) and when the port first accepted.
 * Prints `ready` first so the bench starts the command under test only once
 * the poller runs. A connection that is accepted but closed without bytes
 * (a forward whose channel failed) is retried.
 *
 * Usage: node wait-rfb.js --port 5901 [--interval-ms 5] [--timeout-ms 60000]
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { intArg, parseArgs, runMain } from './client-args.js';

type Attempt = { kind: 'refused' } | { kind: 'closed'; acceptedAtMs: number } | { kind: 'rfb'; acceptedAtMs: number; firstByteAtMs: number; greeting: string };

function attempt(port: number, deadline: number): Promise<Attempt> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    let acceptedAtMs = 0;
    let got = '';
    let firstByteAtMs = 0;
    const done = (a: Attempt) => {
      sock.destroy();
      clearTimeout(timer);
      resolve(a);
    };
    const timer = setTimeout(() => done(acceptedAtMs ? { kind: 'closed', acceptedAtMs } : { kind: 'refused' }), Math.max(1, deadline - Date.now()));
    sock.once('connect', () => (acceptedAtMs = Date.now()));
    sock.on('data', (b: Buffer) => {
      if (!firstByteAtMs) firstByteAtMs = Date.now();
      got += b.toString('latin1');
      if (got.length >= 4) done(got.startsWith('RFB ') ? { kind: 'rfb', acceptedAtMs, firstByteAtMs, greeting: got.slice(0, 12) } : { kind: 'closed', acceptedAtMs });
    });
    sock.once('error', () => done(acceptedAtMs ? { kind: 'closed', acceptedAtMs } : { kind: 'refused' }));
    sock.once('close', () => done(acceptedAtMs ? { kind: 'closed', acceptedAtMs } : { kind: 'refused' }));
  });
}

runMain(async () => {
  const args = parseArgs(process.argv.slice(2));
  const port = intArg(args, 'port');
  const intervalMs = intArg(args, 'interval-ms', 5);
  const deadline = Date.now() + intArg(args, 'timeout-ms', 60_000);
  let firstAcceptedAtMs: number | undefined;
  let attempts = 0;
  process.stdout.write('ready\n');
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no RFB greeting on 127.0.0.1:${port} before the timeout (${attempts} attempts)`);
    attempts++;
    const a = await attempt(port, deadline);
    if (a.kind !== 'refused') firstAcceptedAtMs ??= a.acceptedAtMs;
    if (a.kind === 'rfb') return { firstByteAtMs: a.firstByteAtMs, acceptedAtMs: firstAcceptedAtMs, greeting: a.greeting, attempts };
    await sleep(intervalMs);
  }
});
