/**
 * The services behind the KVM host's loopback, run inside `vmd-host`:
 *   - 127.0.0.1:7000          pure TCP echo (the load test checks what comes back);
 *   - 127.0.0.1:5900..6000    "VNC-like": greets with `port N\n`, then echoes;
 *   - <run dir>/vnc.sock      unix socket: greets with `unix <path>\n`, then echoes.
 * The greeting proves which listener a forward really reached.
 *
 * Usage: node --import tsx test/lab/services.ts <run dir> <ready file>
 */
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ECHO_PORT, UNIX_SOCKET_NAME, VNC_FIRST_PORT, VNC_LAST_PORT } from './ports.js';

function echo(sock: Socket, greeting?: string): void {
  sock.on('error', () => sock.destroy());
  if (greeting !== undefined) sock.write(greeting);
  // allowHalfOpen: after the peer's FIN we still send back everything it sent, then end.
  sock.pipe(sock);
}

function listen(server: Server, where: number | string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (typeof where === 'number') server.listen({ host: '127.0.0.1', port: where, backlog: 1024 }, done);
    else server.listen({ path: where, backlog: 1024 }, done);
  });
}

async function main(): Promise<void> {
  const [runDir, readyFile] = process.argv.slice(2);
  if (!runDir || !readyFile) {
    console.error('usage: services.ts <run dir> <ready file>');
    process.exit(2);
  }
  const servers: Server[] = [];
  const echoServer = createServer({ allowHalfOpen: true }, (s) => echo(s));
  servers.push(echoServer);
  await listen(echoServer, ECHO_PORT);
  for (let port = VNC_FIRST_PORT; port <= VNC_LAST_PORT; port++) {
    const server = createServer({ allowHalfOpen: true }, (s) => echo(s, `port ${port}\n`));
    servers.push(server);
    await listen(server, port);
  }
  const socketPath = join(runDir, UNIX_SOCKET_NAME);
  rmSync(socketPath, { force: true });
  const unixServer = createServer({ allowHalfOpen: true }, (s) => echo(s, `unix ${socketPath}\n`));
  servers.push(unixServer);
  await listen(unixServer, socketPath);
  // sshd opens streamlocal forwards as the logged-in user, who needs write permission on the socket.
  chmodSync(socketPath, 0o666);

  const stop = (): void => {
    rmSync(socketPath, { force: true });
    rmSync(readyFile, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  writeFileSync(readyFile, `${process.pid}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
