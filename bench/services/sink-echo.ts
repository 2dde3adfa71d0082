/**
 * The bench's services on the KVM host's loopback, run inside vmd-host:
 *   - sink: counts every byte of a connection and, at the client's EOF,
 *     answers with the count (`N\n`) and closes; nothing is stored;
 *   - echo: sends every byte straight back, TCP_NODELAY on, for round trips.
 * Prints `ready` once both listen.
 *
 * Usage: node --import tsx bench/services/sink-echo.ts <sink port> <echo port>
 */
import { createServer, type Server } from 'node:net';

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, backlog: 1024 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const sinkPort = Number(process.argv[2]);
  const echoPort = Number(process.argv[3]);
  if (!Number.isInteger(sinkPort) || !Number.isInteger(echoPort)) {
    console.error('usage: sink-echo.ts <sink port> <echo port>');
    process.exit(2);
  }
  const sink = createServer({ allowHalfOpen: true }, (sock) => {
    let bytes = 0;
    sock.on('error', () => sock.destroy());
    sock.on('data', (b: Buffer) => (bytes += b.length));
    sock.on('end', () => sock.end(`${bytes}\n`));
  });
  const echo = createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
    sock.on('error', () => sock.destroy());
    sock.pipe(sock);
  });
  await listen(sink, sinkPort);
  await listen(echo, echoPort);
  process.on('SIGTERM', () => process.exit(0));
  process.stdout.write('ready\n');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
