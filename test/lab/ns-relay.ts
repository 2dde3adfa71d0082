/**
 * A connection relay living inside a network namespace. The test process (in
 * the root namespace) cannot open sockets inside `vmd-client`, but unix
 * sockets are files, visible from every network namespace. So the test
 * connects here, sends one JSON line naming a target, and this process opens
 * the TCP (or unix) connection from inside its namespace, answers `OK\n` or
 * `ERR <code> <message>\n`, then copies bytes both ways, half-closes included.
 *
 * Usage: node --import tsx test/lab/ns-relay.ts <listen socket path>
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { chmodSync, rmSync } from 'node:fs';

export interface RelayRequest {
  host?: string;
  port?: number;
  path?: string;
  /** Give up connecting after this long and answer `ERR ETIMEDOUT`. */
  timeoutMs?: number;
}

const MAX_REQUEST_BYTES = 4096;

function relay(client: Socket): void {
  let head = Buffer.alloc(0);
  client.on('error', () => client.destroy());
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(10);
    if (nl < 0) {
      if (head.length > MAX_REQUEST_BYTES) client.end('ERR EPROTO request too long\n');
      return;
    }
    client.off('data', onData);
    client.pause();
    const rest = head.subarray(nl + 1);
    let req: RelayRequest;
    try {
      req = JSON.parse(head.subarray(0, nl).toString('utf8')) as RelayRequest;
    } catch {
      client.end('ERR EPROTO bad request\n');
      return;
    }
    open(client, req, rest);
  };
  client.on('data', onData);
}

function open(client: Socket, req: RelayRequest, rest: Buffer): void {
  const target =
    typeof req.path === 'string'
      ? createConnection({ path: req.path, allowHalfOpen: true })
      : createConnection({ host: req.host ?? '127.0.0.1', port: req.port ?? 0, allowHalfOpen: true });
  const timer = setTimeout(() => {
    target.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
  }, req.timeoutMs ?? 10_000);
  const onConnectError = (e: NodeJS.ErrnoException): void => {
    clearTimeout(timer);
    client.end(`ERR ${e.code ?? 'EIO'} ${e.message.replace(/\n/g, ' ')}\n`);
  };
  target.once('error', onConnectError);
  target.once('connect', () => {
    clearTimeout(timer);
    target.off('error', onConnectError);
    // A reset from the far side ends the test's stream (unix sockets have no RST), never relay text in it.
    // Orderly ends travel through pipe() as half-closes; never destroy on 'close', which would drop
    // bytes still queued for the other side.
    target.on('error', () => client.destroy());
    client.on('error', () => target.destroy());
    client.write('OK\n');
    if (rest.length > 0) target.write(rest);
    client.pipe(target);
    target.pipe(client);
    client.resume();
  });
}

function main(): void {
  const socketPath = process.argv[2];
  if (!socketPath) {
    console.error('usage: ns-relay.ts <listen socket path>');
    process.exit(2);
  }
  rmSync(socketPath, { force: true });
  const server = createServer({ allowHalfOpen: true }, relay);
  server.listen({ path: socketPath, backlog: 1024 }, () => chmodSync(socketPath, 0o600));
  const stop = (): void => {
    rmSync(socketPath, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
