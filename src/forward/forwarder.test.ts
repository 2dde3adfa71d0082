// Real sockets on 127.0.0.1: the opener connects to real local TCP (or unix) servers, which stand
// in for SSH channels since both are Duplex streams.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { after, afterEach, describe, it } from 'node:test';
import { VmdeskError, isVmdeskError } from '../errors.js';
import { Forwarder } from './forwarder.js';
import type { ChannelOpener, ForwardConnectionSummary } from './forwarder.js';
import type { ForwardSpec, ForwardTarget } from './types.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A TCP server on 127.0.0.1:0 whose sockets are tracked and destroyed after each test. */
async function startServer(onSocket: (socket: net.Socket) => void): Promise<{ port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

/** Echoes everything and, on the client's EOF, ends after the echo is flushed. */
function startEcho(): Promise<{ port: number; sockets: Set<net.Socket> }> {
  return startServer((socket) => socket.pipe(socket));
}

/** A port nothing listens on: bind port 0, read it, close. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Holds `port` on 127.0.0.1 until the end of the test. */
async function occupy(port: number): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, resolve);
  });
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

/** Opens a real TCP (or unix) connection to the target, as an SSH channel would reach it from DEST. */
const tcpOpener: ChannelOpener = (target) =>
  new Promise<Duplex>((resolve, reject) => {
    const socket =
      target.kind === 'tcp'
        ? net.connect({ host: target.host, port: target.port, allowHalfOpen: true })
        : net.connect({ path: target.kind === 'unix' ? target.path : '/nonexistent', allowHalfOpen: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });

function tcpSpec(remotePort: number, localPort = 0): ForwardSpec {
  return { bindAddress: '127.0.0.1', localPort, target: { kind: 'tcp', host: '127.0.0.1', port: remotePort }, source: `${localPort}:127.0.0.1:${remotePort}` };
}

async function startForwarder(specs: ForwardSpec[], opener: ChannelOpener = tcpOpener, opts: ConstructorParameters<typeof Forwarder>[2] = {}): Promise<{ fwd: Forwarder; ports: number[] }> {
  const fwd = new Forwarder(specs, opener, opts);
  cleanups.push(() => fwd.close());
  const stats = await fwd.listen();
  return { fwd, ports: stats.map((s) => s.localPort) };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** Sends `data`, half-closes, and resolves with everything received until the peer's EOF. */
async function exchange(port: number, data: Buffer): Promise<Buffer> {
  const socket = await connect(port);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.end(data);
  });
}

/** Like exchange(), but hashes the reply as it arrives instead of keeping it. */
async function exchangeDigest(port: number, data: Buffer): Promise<{ length: number; sha256: string }> {
  const socket = await connect(port);
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let length = 0;
    socket.on('data', (chunk: Buffer) => {
      length += chunk.length;
      hash.update(chunk);
    });
    socket.on('error', reject);
    socket.on('end', () => {
      socket.end();
      resolve({ length, sha256: hash.digest('hex') });
    });
    socket.end(data);
  });
}

/** Resolves once the socket is closed from the other end (error or not). */
function closedByPeer(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.on('error', () => {});
    socket.on('end', () => socket.end());
    socket.resume();
    if (socket.closed) resolve();
    else socket.on('close', () => resolve());
  });
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Waits until `read()` has held the same non-zero value for `stillMs`, and returns it. */
async function waitForPlateau(read: () => number, what: string, stillMs = 100): Promise<number> {
  let value = read();
  let since = Date.now();
  await waitFor(
    () => {
      const now = read();
      if (now !== value || now === 0) {
        value = now;
        since = Date.now();
      }
      return Date.now() - since >= stillMs;
    },
    what,
    5000,
  );
  return value;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const totalActive = (fwd: Forwarder): number => fwd.stats().reduce((n, s) => n + s.active, 0);

describe('Forwarder: data path', () => {
  it('opens a channel only when a local client connects', async () => {
    const echo = await startEcho();
    const targets: ForwardTarget[] = [];
    const { fwd, ports } = await startForwarder([tcpSpec(echo.port)], (target, origin) => {
      targets.push(target);
      assert.equal(origin.address, '127.0.0.1');
      assert.ok(origin.port > 0);
      return tcpOpener(target, origin);
    });
    await sleep(20);
    assert.equal(targets.length, 0);
    assert.equal(echo.sockets.size, 0);
    const reply = await exchange(ports[0] ?? 0, Buffer.from('hello'));
    assert.equal(reply.toString(), 'hello');
    assert.deepEqual(targets, [{ kind: 'tcp', host: '127.0.0.1', port: echo.port }]);
    await waitFor(() => totalActive(fwd) === 0, 'the connection to close');
  });

  it('echoes 10 MiB intact and counts bytes both ways', async () => {
    const echo = await startEcho();
    const { fwd, ports } = await startForwarder([tcpSpec(echo.port)]);
    const closed: ForwardConnectionSummary[] = [];
    fwd.on('connection-closed', (summary) => closed.push(summary));
    const data = randomBytes(10 * 1024 * 1024);
    const reply = await exchange(ports[0] ?? 0, data);
    assert.equal(reply.length, data.length);
    assert.equal(sha256(reply), sha256(data));
    await waitFor(() => closed.length === 1, 'connection-closed');
    const [stats] = fwd.stats();
    assert.equal(stats?.bytesOut, data.length);
    assert.equal(stats?.bytesIn, data.length);
    assert.equal(stats?.total, 1);
    assert.equal(stats?.active, 0);
    assert.equal(stats?.failed, 0);
    assert.equal(closed[0]?.bytesIn, data.length);
    assert.equal(closed[0]?.bytesOut, data.length);
    assert.equal(closed[0]?.error, undefined);
  });

  it('carries 200 concurrent connections of 1 MiB each intact', async () => {
    const echo = await startEcho();
    const { fwd, ports } = await startForwarder([tcpSpec(echo.port)]);
    const base = randomBytes(1024 * 1024);
    const runs = Array.from({ length: 200 }, async (_, i) => {
      const data = Buffer.from(base);
      data.writeUInt32BE(i, 0);
      const reply = await exchangeDigest(ports[0] ?? 0, data);
      assert.deepEqual(reply, { length: data.length, sha256: sha256(data) }, `connection ${i}`);
    });
    await Promise.all(runs);
    await waitFor(() => totalActive(fwd) === 0, 'all connections to close');
    const [stats] = fwd.stats();
    assert.equal(stats?.total, 200);
    assert.equal(stats?.bytesOut, 200 * base.length);
    assert.equal(stats?.bytesIn, 200 * base.length);
  });

  it('keeps the reply direction open after the client half-closes', async () => {
    // The server answers only after the client's EOF, like `nc -N` or an HTTP/1.0 upload.
    const remote = await startServer((socket) => {
      let received = 0;
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      socket.on('end', () => setTimeout(() => socket.end(`got ${received} bytes`), 20));
    });
    const { fwd, ports } = await startForwarder([tcpSpec(remote.port)]);
    const reply = await exchange(ports[0] ?? 0, Buffer.alloc(100_000, 7));
    assert.equal(reply.toString(), 'got 100000 bytes');
    await waitFor(() => totalActive(fwd) === 0, 'the connection to close');
    assert.equal(fwd.stats()[0]?.bytesIn, 'got 100000 bytes'.length);
  });

  it('delivers everything the remote sent before its channel closed, to a client that reads late', async () => {
    // Like an ssh2 channel on CHANNEL_CLOSE: end of data, then 'close' at once, while the
    // local socket still holds unsent bytes because the client is not reading yet.
    const data = randomBytes(32 * 1024 * 1024);
    const { fwd, ports } = await startForwarder([tcpSpec(1)], async () => {
      const channel = new Duplex({ read() {}, write(_chunk, _encoding, callback) { callback(); } });
      // Big chunks, so the last one is still in the local socket's queue when the channel closes.
      for (let offset = 0; offset < data.length; offset += 8 * 1024 * 1024) channel.push(data.subarray(offset, offset + 8 * 1024 * 1024));
      channel.push(null);
      channel.once('end', () => channel.destroy());
      return channel;
    });
    const closed: ForwardConnectionSummary[] = [];
    fwd.on('connection-closed', (summary) => closed.push(summary));
    const client = await connect(ports[0] ?? 0);
    client.pause();
    await sleep(100);
    const received = createHash('sha256');
    let length = 0;
    const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
    client.on('data', (chunk: Buffer) => {
      length += chunk.length;
      received.update(chunk);
    });
    client.resume();
    await ended;
    client.end();
    assert.equal(length, data.length);
    assert.equal(received.digest('hex'), sha256(data));
    await waitFor(() => closed.length === 1, 'connection-closed');
    assert.equal(closed[0]?.bytesIn, data.length);
    assert.equal(closed[0]?.error, undefined);
  });

  it('counts bytesIn (remote to local) and bytesOut (local to remote) separately', async () => {
    const remote = await startServer((socket) => {
      socket.write(Buffer.alloc(5000, 1));
      socket.resume();
      socket.on('end', () => socket.end());
    });
    const { fwd, ports } = await startForwarder([tcpSpec(remote.port)]);
    const reply = await exchange(ports[0] ?? 0, Buffer.alloc(1234, 2));
    assert.equal(reply.length, 5000);
    await waitFor(() => totalActive(fwd) === 0, 'the connection to close');
    const [stats] = fwd.stats();
    assert.equal(stats?.bytesIn, 5000);
    assert.equal(stats?.bytesOut, 1234);
  });

  it('forwards to a unix socket target', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'vmdesk-fwd-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'echo.sock');
    const server = net.createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { ports } = await startForwarder([{ bindAddress: '127.0.0.1', localPort: 0, target: { kind: 'unix', path }, source: `0:${path}` }]);
    assert.equal((await exchange(ports[0] ?? 0, Buffer.from('via unix'))).toString(), 'via unix');
  });

  it('bounds buffering when the remote does not read (local to remote)', async () => {
    const remote = await startServer((socket) => socket.pause());
    const channels: net.Socket[] = [];
    const { fwd, ports } = await startForwarder([tcpSpec(remote.port)], async (target, origin) => {
      const channel = (await tcpOpener(target, origin)) as net.Socket;
      channels.push(channel);
      return channel;
    });
    const client = await connect(ports[0] ?? 0);
    client.on('error', () => {});
    const offered = 64 * 1024 * 1024;
    client.write(Buffer.alloc(offered, 1));
    const read = await waitForPlateau(() => fwd.stats()[0]?.bytesOut ?? 0, 'bytesOut to stop growing');
    // What was read is what the kernel buffers took plus about a highWaterMark: far from the 64 MiB offered.
    assert.ok(read < 16 * 1024 * 1024, `forwarder read ${read} bytes while the remote read nothing`);
    assert.ok(client.writableLength > offered / 2, 'the client must still hold most of its data');
    // Bytes held in this process for the connection stay near the highWaterMark (the rest sits in kernel buffers).
    assert.ok((channels[0]?.writableLength ?? Infinity) <= 2 * 64 * 1024, `channel holds ${channels[0]?.writableLength} bytes`);
    // The client's bytes are still owed to the remote, so only the remote going away ends the forward.
    const clientClosed = closedByPeer(client);
    for (const socket of remote.sockets) socket.destroy();
    await clientClosed;
    await waitFor(() => totalActive(fwd) === 0, 'the connection to close');
  });

  it('bounds buffering when the local client does not read (remote to local)', async () => {
    const offered = 64 * 1024 * 1024;
    let remoteSocket: net.Socket | undefined;
    const remote = await startServer((socket) => {
      remoteSocket = socket;
      socket.write(Buffer.alloc(offered, 3));
    });
    const { fwd, ports } = await startForwarder([tcpSpec(remote.port)]);
    const client = await connect(ports[0] ?? 0);
    client.on('error', () => {});
    client.pause();
    const read = await waitForPlateau(() => fwd.stats()[0]?.bytesIn ?? 0, 'bytesIn to stop growing');
    assert.ok(read < 16 * 1024 * 1024, `forwarder read ${read} bytes while the client read nothing`);
    assert.ok((remoteSocket?.writableLength ?? 0) > offered / 2, 'the remote must still hold most of its data');
    client.destroy();
    await waitFor(() => totalActive(fwd) === 0, 'the connection to close');
  });

  it('destroys the local side when the remote resets, and reports the error', async () => {
    const remote = await startServer((socket) => {
      socket.once('data', () => socket.resetAndDestroy());
    });
    const { fwd, ports } = await startForwarder([tcpSpec(remote.port)]);
    const closed: ForwardConnectionSummary[] = [];
    fwd.on('connection-closed', (summary) => closed.push(summary));
    const client = await connect(ports[0] ?? 0);
    client.write('trigger');
    await closedByPeer(client);
    await waitFor(() => closed.length === 1, 'connection-closed');
    assert.equal((closed[0]?.error as NodeJS.ErrnoException | undefined)?.code, 'ECONNRESET');
    assert.equal(totalActive(fwd), 0);
  });

  it('destroys the channel when the local client resets', async () => {
    const remote = await startServer((socket) => {
      socket.resume();
      socket.on('end', () => socket.end());
    });
    const { fwd, ports } = await startForwarder([tcpSpec(remote.port)]);
    const client = await connect(ports[0] ?? 0);
    client.write('x');
    await waitFor(() => remote.sockets.size === 1 && (fwd.stats()[0]?.bytesOut ?? 0) === 1, 'the channel to open');
    client.resetAndDestroy();
    await waitFor(() => remote.sockets.size === 0, 'the remote end to be closed');
    await waitFor(() => totalActive(fwd) === 0, 'the connection to close');
  });

  it('emits connection then exactly one connection-closed per connection', async () => {
    const echo = await startEcho();
    const { fwd, ports } = await startForwarder([tcpSpec(echo.port)]);
    const events: string[] = [];
    fwd.on('connection', (c) => events.push(`open ${c.id}`));
    fwd.on('connection-closed', (c) => events.push(`closed ${c.id}`));
    await exchange(ports[0] ?? 0, Buffer.from('a'));
    await exchange(ports[0] ?? 0, Buffer.from('b'));
    await waitFor(() => events.length === 4, 'four events');
    assert.deepEqual(events, ['open 1', 'closed 1', 'open 2', 'closed 2']);
  });
});

describe('Forwarder: failed opens', () => {
  it('closes the client, counts failed and logs when the opener rejects', async () => {
    const deadPort = await freePort();
    const lines: string[] = [];
    const failures: VmdeskError[] = [];
    const { fwd, ports } = await startForwarder([tcpSpec(deadPort)], tcpOpener, { log: (line) => lines.push(line) });
    fwd.on('open-failed', (err) => failures.push(err));
    const client = await connect(ports[0] ?? 0);
    await closedByPeer(client);
    await waitFor(() => totalActive(fwd) === 0, 'the connection to close');
    const [stats] = fwd.stats();
    assert.equal(stats?.failed, 1);
    assert.equal(stats?.total, 1);
    assert.equal(failures[0]?.code, 'SSH_CHANNEL_REFUSED');
    assert.equal((failures[0]?.cause as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', new RegExp(`127\\.0\\.0\\.1:${ports[0]}\\b.*127\\.0\\.0\\.1:${deadPort}\\b.*SSH_CHANNEL_REFUSED`));
  });

  it('passes a VmdeskError from the opener through unchanged', async () => {
    const refusal = new VmdeskError('SSH_CONNECTION_LOST', 'the chain is down');
    const failures: VmdeskError[] = [];
    const { fwd, ports } = await startForwarder([tcpSpec(1)], () => Promise.reject(refusal));
    fwd.on('open-failed', (err) => failures.push(err));
    await closedByPeer(await connect(ports[0] ?? 0));
    await waitFor(() => failures.length === 1, 'open-failed');
    assert.equal(failures[0], refusal);
  });

  it('treats an opener that throws synchronously as a failed open', async () => {
    const { fwd, ports } = await startForwarder([tcpSpec(1)], () => {
      throw new Error('boom');
    });
    await closedByPeer(await connect(ports[0] ?? 0));
    await waitFor(() => fwd.stats()[0]?.failed === 1 && totalActive(fwd) === 0, 'the failure to be counted');
  });

  it('gives up after openTimeoutMs and destroys a channel that arrives late', async () => {
    const echo = await startEcho();
    const failures: VmdeskError[] = [];
    const { fwd, ports } = await startForwarder(
      [tcpSpec(echo.port)],
      async (target, origin) => {
        await sleep(150);
        return tcpOpener(target, origin);
      },
      { openTimeoutMs: 50 },
    );
    fwd.on('open-failed', (err) => failures.push(err));
    await closedByPeer(await connect(ports[0] ?? 0));
    assert.equal(failures[0]?.code, 'SSH_HOP_TIMEOUT');
    await waitFor(() => totalActive(fwd) === 0, 'the connection to close');
    await sleep(200);
    await waitFor(() => echo.sockets.size === 0, 'the late channel to be destroyed');
    assert.equal(fwd.stats()[0]?.failed, 1);
  });
});

describe('Forwarder: listening', () => {
  it('binds 101 listeners in parallel and reports each real port', async () => {
    const echo = await startEcho();
    const specs = Array.from({ length: 101 }, () => tcpSpec(echo.port));
    const { ports } = await startForwarder(specs);
    assert.equal(new Set(ports).size, 101);
    assert.ok(ports.every((p) => p > 0));
    assert.equal((await exchange(ports[100] ?? 0, Buffer.from('last'))).toString(), 'last');
  });

  it('fails with PORT_IN_USE and leaves nothing listening (all or nothing)', async () => {
    const taken = await freePort();
    await occupy(taken);
    const before = await freePort();
    const afterPort = await freePort();
    const fwd = new Forwarder([tcpSpec(1, before), tcpSpec(1, taken), tcpSpec(1, afterPort)], tcpOpener);
    await assert.rejects(fwd.listen(), (err: unknown) => {
      assert.ok(isVmdeskError(err, 'PORT_IN_USE'));
      assert.equal(err.context.port, taken);
      assert.equal(err.context.host, '127.0.0.1');
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${taken}`));
      return true;
    });
    // The ports that did bind were released: binding them again succeeds.
    for (const port of [before, afterPort]) {
      const server = await occupy(port);
      assert.ok(server.listening);
    }
  });

  it('fails with LISTEN_FAILED when the address is not on this machine', async () => {
    const fwd = new Forwarder([{ ...tcpSpec(1), bindAddress: '192.0.2.1' }], tcpOpener);
    await assert.rejects(fwd.listen(), (err: unknown) => isVmdeskError(err, 'LISTEN_FAILED'));
  });

  it('moves a taken port to the next free one with autoPort, skipping ports other specs asked for', async () => {
    const echo = await startEcho();
    const first = await freeRun(3);
    await occupy(first);
    const lines: string[] = [];
    const { ports } = await startForwarder([tcpSpec(echo.port, first), tcpSpec(echo.port, first + 1)], tcpOpener, {
      autoPort: true,
      log: (line) => lines.push(line),
    });
    assert.deepEqual(ports, [first + 2, first + 1]);
    assert.equal(lines.length, 1);
    assert.equal((await exchange(ports[0] ?? 0, Buffer.from('moved'))).toString(), 'moved');
  });

  it('ends with INTERRUPTED and nothing listening when close() runs during listen()', async () => {
    const port = await freePort();
    const fwd = new Forwarder([tcpSpec(1, port), ...Array.from({ length: 20 }, () => tcpSpec(1))], tcpOpener);
    const listening = fwd.listen();
    await fwd.close();
    await assert.rejects(listening, (err: unknown) => isVmdeskError(err, 'INTERRUPTED'));
    assert.ok((await occupy(port)).listening);
  });

  it('refuses a second listen()', async () => {
    const { fwd } = await startForwarder([tcpSpec(1)]);
    await assert.rejects(fwd.listen(), (err: unknown) => isVmdeskError(err, 'INTERNAL'));
  });
});

describe('Forwarder: close', () => {
  it('destroys active connections, stops listening and returns active to 0', async () => {
    const echo = await startEcho();
    const { fwd, ports } = await startForwarder([tcpSpec(echo.port)]);
    const clients = await Promise.all(Array.from({ length: 5 }, () => connect(ports[0] ?? 0)));
    for (const client of clients) client.write('ping');
    await waitFor(() => echo.sockets.size === 5 && fwd.stats()[0]?.bytesIn === 20, 'five open channels');
    assert.equal(fwd.stats()[0]?.active, 5);
    const allClosed = Promise.all(clients.map(closedByPeer));
    await fwd.close();
    assert.equal(fwd.stats()[0]?.active, 0);
    await allClosed;
    await waitFor(() => echo.sockets.size === 0, 'the remote ends to close');
    await assert.rejects(connect(ports[0] ?? 0), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
    await fwd.close();
  });

  it('destroys a channel that arrives after close()', async () => {
    const echo = await startEcho();
    let opened = false;
    const { fwd, ports } = await startForwarder([tcpSpec(echo.port)], async (target, origin) => {
      await sleep(80);
      opened = true;
      return tcpOpener(target, origin);
    });
    const client = await connect(ports[0] ?? 0);
    await waitFor(() => fwd.stats()[0]?.active === 1, 'the connection to be accepted');
    await fwd.close();
    await closedByPeer(client);
    await waitFor(() => opened, 'the opener to finish');
    await waitFor(() => echo.sockets.size === 0, 'the late channel to be destroyed');
    assert.equal(fwd.stats()[0]?.active, 0);
    assert.equal(fwd.stats()[0]?.failed, 0);
  });
});

/** A first port such that it and the next n-1 ports are free right now. */
async function freeRun(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await freePort();
    if (first + n - 1 > 65535) continue;
    const held: net.Server[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const server = net.createServer();
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: '127.0.0.1', port: first + i }, resolve);
        });
        held.push(server);
      }
      return first;
    } catch {
      continue;
    } finally {
      await Promise.all(held.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    }
  }
  throw new Error(`no run of ${n} free ports found`);
}

after(() => {
  assert.equal(cleanups.length, 0);
});
