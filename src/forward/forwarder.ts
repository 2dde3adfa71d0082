/**
 * Local listeners that turn each accepted TCP connection into a channel opened
 * lazily through an injected opener (an SSH direct-tcpip or
 * direct-streamlocal channel in production, any Duplex in tests).
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { VmdeskError, isVmdeskError } from '../errors.js';
import { formatForwardTarget, formatHostPort } from './port-spec.js';
import type { ForwardSpec, ForwardTarget } from './types.js';

/** Opens one channel to `target` on behalf of the local client at `origin` (RFC 4254 section 7.2 "originator"). */
export type ChannelOpener = (target: ForwardTarget, origin: { address: string; port: number }) => Promise<Duplex>;

/** Counters of one listener; a range spec has one entry per port. */
export interface ForwardStats {
  bindAddress: string;
  /** The port actually bound (differs from the spec's with autoPort, or when the spec asked for 0). */
  localPort: number;
  target: ForwardTarget;
  source: string;
  /** Connections accepted and not yet fully closed. */
  active: number;
  total: number;
  /** Connections whose channel could not be opened (refused, chain down, timed out). */
  failed: number;
  /** Bytes received from the remote side and written to local clients. */
  bytesIn: number;
  /** Bytes read from local clients and written to the remote side. */
  bytesOut: number;
}

export interface ForwarderOptions {
  /** Move a forward whose port is taken to the next free port instead of failing. */
  autoPort?: boolean;
  /** Max wait for the opener, then the local socket is closed; default 10 000. */
  openTimeoutMs?: number;
  /** Per-direction buffer of each local socket, in bytes; default 64 KiB. */
  highWaterMark?: number;
  log?: (line: string) => void;
}

/** One accepted local connection, as reported in events. */
export interface ForwardConnection {
  id: number;
  bindAddress: string;
  localPort: number;
  target: ForwardTarget;
  source: string;
  origin: { address: string; port: number };
}

/** A finished connection: what it carried and the first error that ended it, if any. */
export interface ForwardConnectionSummary extends ForwardConnection {
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  error: Error | undefined;
}

/** Every 'connection' is followed by exactly one 'connection-closed'; 'open-failed' comes between them when the channel cannot be opened. */
export interface ForwarderEvents {
  connection: [ForwardConnection];
  'connection-closed': [ForwardConnectionSummary];
  'open-failed': [VmdeskError, ForwardConnection];
}

const DEFAULT_OPEN_TIMEOUT_MS = 10_000;
/** Node 20 sockets default to 16 KiB; 64 KiB matches an SSH packet-sized read and Node 22's default. */
const DEFAULT_HIGH_WATER_MARK = 64 * 1024;
/** How long close() waits for destroyed channels to report 'close' (an SSH channel needs a round trip). */
const CLOSE_GRACE_MS = 2_000;

interface Listener {
  spec: ForwardSpec;
  server: net.Server | undefined;
  stats: ForwardStats;
}

interface Connection {
  info: ForwardConnection;
  listener: Listener;
  local: net.Socket;
  channel: Duplex | undefined;
  countOut: (chunk: Buffer) => void;
  isLocalClosed: boolean;
  isChannelClosed: boolean;
  isDone: boolean;
  startedAtMs: number;
  bytesIn: number;
  bytesOut: number;
  error: Error | undefined;
}

type State = 'new' | 'binding' | 'listening' | 'closed';

/** Listens on every spec's local port (0 picks a free one) and forwards each connection through its own lazily opened channel. */
export class Forwarder extends EventEmitter<ForwarderEvents> {
  readonly #listeners: Listener[];
  readonly #opener: ChannelOpener;
  readonly #isAutoPort: boolean;
  readonly #openTimeoutMs: number;
  readonly #highWaterMark: number;
  readonly #log: (line: string) => void;
  readonly #connections = new Set<Connection>();
  #state: State = 'new';
  #nextConnectionId = 1;
  #closing: Promise<void> | undefined;
  #onDrained: (() => void) | undefined;

  constructor(specs: ForwardSpec[], opener: ChannelOpener, opts: ForwarderOptions = {}) {
    super();
    this.#opener = opener;
    this.#isAutoPort = opts.autoPort ?? false;
    this.#openTimeoutMs = opts.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    this.#highWaterMark = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.#log = opts.log ?? (() => {});
    this.#listeners = specs.map((spec) => ({
      spec,
      server: undefined,
      stats: {
        bindAddress: spec.bindAddress,
        localPort: spec.localPort,
        target: spec.target,
        source: spec.source,
        active: 0,
        total: 0,
        failed: 0,
        bytesIn: 0,
        bytesOut: 0,
      },
    }));
  }

  /** Binds every listener in parallel, all or nothing (like ExitOnForwardFailure); throws PORT_IN_USE or LISTEN_FAILED. */
  async listen(): Promise<ForwardStats[]> {
    if (this.#state !== 'new') throw new VmdeskError('INTERNAL', `Forwarder.listen() may be called once, on a new forwarder (this one is ${this.#state})`);
    this.#state = 'binding';
    // Ports other specs asked for: autoPort never moves a forward onto one of them.
    const reserved = new Set(this.#listeners.map((l) => l.spec.localPort).filter((port) => port !== 0));
    const results = await Promise.allSettled(this.#listeners.map((l) => this.#bind(l, reserved)));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // close() may have run while the binds were in flight.
    const wasClosed = this.#isClosed();
    if (failure !== undefined || wasClosed) {
      // Also ends connections an early-bound listener may have accepted meanwhile; the second
      // sweep catches servers whose bind completed after a concurrent close() had run.
      await this.close();
      await Promise.all(this.#listeners.map((l) => closeServer(l.server)));
      if (failure !== undefined) throw failure.reason;
      throw new VmdeskError('INTERRUPTED', 'the forwarder was closed while its listeners were being bound');
    }
    this.#state = 'listening';
    return this.stats();
  }

  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** A snapshot of every listener's counters, in spec order. */
  stats(): ForwardStats[] {
    return this.#listeners.map((l) => ({ ...l.stats, target: { ...l.stats.target } }));
  }

  /** Stop listening and destroy every active connection. */
  close(): Promise<void> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  async #closeAll(): Promise<void> {
    this.#state = 'closed';
    const serversClosed = Promise.all(this.#listeners.map((l) => closeServer(l.server)));
    for (const conn of this.#connections) {
      conn.local.destroy();
      conn.channel?.destroy();
    }
    await serversClosed;
    if (this.#connections.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_GRACE_MS);
        this.#onDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#onDrained = undefined;
    }
    // A channel that never reported 'close' within the grace period is given up on, so close() always ends.
    for (const conn of [...this.#connections]) {
      conn.isLocalClosed = true;
      conn.isChannelClosed = true;
      this.#finish(conn);
    }
  }

  async #bind(l: Listener, reserved: Set<number>): Promise<void> {
    const { bindAddress, localPort } = l.spec;
    const server = net.createServer(
      // pauseOnConnect: nothing is read from the client until its channel exists, so a slow open buffers in the kernel, not here.
      // noDelay: consoles (VNC, RDP) send small interactive messages, as OpenSSH sets TCP_NODELAY on forwarded sockets.
      { allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: this.#highWaterMark },
      (socket) => this.#accept(l, socket),
    );
    l.server = server;
    try {
      await listenOnce(server, bindAddress, localPort);
    } catch (err) {
      if (!this.#isAutoPort || errnoCode(err) !== 'EADDRINUSE' || localPort === 0) throw toListenError(err, l.spec, localPort);
      await this.#bindNextFree(l, server, reserved);
    }
    l.stats.localPort = (server.address() as AddressInfo).port;
    server.on('error', (err) => this.#log(`forward ${formatHostPort(bindAddress, l.stats.localPort)}: listener error: ${err.message}`));
  }

  async #bindNextFree(l: Listener, server: net.Server, reserved: Set<number>): Promise<void> {
    const { bindAddress, localPort } = l.spec;
    let port = localPort;
    for (;;) {
      do port++;
      while (port <= 65535 && reserved.has(port));
      if (port > 65535) {
        throw new VmdeskError('PORT_IN_USE', `no free local port at or above ${formatHostPort(bindAddress, localPort)} for forward "${l.spec.source}"`, {
          context: { host: bindAddress, port: localPort, spec: l.spec.source },
        });
      }
      // Claimed before the await, so forwards moving in parallel never try the same port.
      reserved.add(port);
      try {
        await listenOnce(server, bindAddress, port);
        this.#log(`forward "${l.spec.source}": ${formatHostPort(bindAddress, localPort)} is in use, listening on port ${port} instead`);
        return;
      } catch (err) {
        if (errnoCode(err) !== 'EADDRINUSE') throw toListenError(err, l.spec, port);
      }
    }
  }

  #accept(l: Listener, local: net.Socket): void {
    if (this.#state === 'closed') {
      local.destroy();
      return;
    }
    const info: ForwardConnection = {
      id: this.#nextConnectionId++,
      bindAddress: l.stats.bindAddress,
      localPort: l.stats.localPort,
      target: l.stats.target,
      source: l.stats.source,
      origin: { address: local.remoteAddress ?? '127.0.0.1', port: local.remotePort ?? 0 },
    };
    const conn: Connection = {
      info,
      listener: l,
      local,
      channel: undefined,
      countOut: (chunk) => {
        conn.bytesOut += chunk.length;
        l.stats.bytesOut += chunk.length;
      },
      isLocalClosed: false,
      isChannelClosed: false,
      isDone: false,
      startedAtMs: Date.now(),
      bytesIn: 0,
      bytesOut: 0,
      error: undefined,
    };
    this.#connections.add(conn);
    l.stats.active++;
    l.stats.total++;
    local.on('error', (err) => this.#fail(conn, err));
    local.on('close', () => this.#onLocalClose(conn));
    this.emit('connection', info);
    this.#open(conn);
  }

  #open(conn: Connection): void {
    const { target, origin } = conn.info;
    let isSettled = false;
    const timer = setTimeout(() => {
      if (isSettled) return;
      isSettled = true;
      if (this.#state === 'closed' || conn.isLocalClosed) return;
      this.#openFailed(
        conn,
        new VmdeskError('SSH_HOP_TIMEOUT', `no channel to ${formatForwardTarget(target)} within ${this.#openTimeoutMs} ms`, {
          context: channelContext(conn.info, { timeoutMs: this.#openTimeoutMs }),
          hint: 'the SSH chain may be down or too slow to answer',
        }),
      );
    }, this.#openTimeoutMs);
    timer.unref();

    let opening: Promise<Duplex>;
    try {
      opening = this.#opener(target, origin);
    } catch (err) {
      opening = Promise.reject(err);
    }
    opening.then(
      (channel) => {
        // Too late (timed out, client gone, forwarder closed): the channel has no one to serve.
        const isTooLate = isSettled || conn.isLocalClosed || this.#state === 'closed';
        isSettled = true;
        clearTimeout(timer);
        if (isTooLate) {
          channel.on('error', () => {});
          channel.destroy();
          return;
        }
        this.#attach(conn, channel);
      },
      (err: unknown) => {
        if (isSettled) return;
        isSettled = true;
        clearTimeout(timer);
        // The forwarder is shutting down or the client is already gone: nobody to report the failure to.
        if (this.#state === 'closed' || conn.isLocalClosed) {
          conn.local.destroy();
          return;
        }
        this.#openFailed(conn, toChannelError(err, conn.info));
      },
    );
  }

  #openFailed(conn: Connection, err: VmdeskError): void {
    conn.listener.stats.failed++;
    conn.error ??= err;
    const { bindAddress, localPort, target } = conn.info;
    this.#log(`forward ${formatHostPort(bindAddress, localPort)} -> ${formatForwardTarget(target)}: ${err.code}: ${err.message}`);
    this.emit('open-failed', err, conn.info);
    conn.local.destroy();
  }

  #attach(conn: Connection, channel: Duplex): void {
    const { local, listener } = conn;
    conn.channel = channel;
    channel.on('error', (err) => this.#fail(conn, err));
    channel.on('close', () => this.#onChannelClose(conn));
    // Counting in 'data' listeners sees the same Buffer the pipe writes: no copy, one addition per chunk.
    local.on('data', conn.countOut);
    channel.on('data', (chunk: Buffer) => {
      conn.bytesIn += chunk.length;
      listener.stats.bytesIn += chunk.length;
    });
    // pipe() gives backpressure both ways (a full writable pauses its source) and, on 'end',
    // ends the other side's writable only: a half-close travels as EOF (RFC 4254 section 5.3).
    channel.pipe(local);
    local.pipe(channel);
    if (channel.closed) this.#onChannelClose(conn);
  }

  /** An error on either side ends both: a half-broken forward is worse than a closed one. */
  #fail(conn: Connection, err: Error): void {
    conn.error ??= err;
    conn.local.destroy();
    conn.channel?.destroy();
  }

  #onLocalClose(conn: Connection): void {
    conn.isLocalClosed = true;
    const { local, channel } = conn;
    if (channel !== undefined && !conn.isChannelClosed) {
      // A clean close (both directions ended) leaves the channel to flush what the client sent;
      // anything else (reset, destroyed) means nobody is left to talk to.
      const isClean = local.readableEnded && local.writableFinished && conn.error === undefined;
      if (!isClean) channel.destroy();
    }
    this.#finish(conn);
  }

  #onChannelClose(conn: Connection): void {
    if (conn.isChannelClosed) return;
    conn.isChannelClosed = true;
    const { local, channel } = conn;
    if (!conn.isLocalClosed && channel !== undefined) {
      local.unpipe(channel);
      if (conn.error !== undefined) {
        local.destroy();
      } else {
        // Deliver what the remote already sent before closing the client, as OpenSSH drains a
        // channel's output buffer before closing its socket; the client's further input is discarded.
        local.off('data', conn.countOut);
        local.resume();
        if (local.writableFinished) local.destroy();
        else {
          local.once('finish', () => local.destroy());
          if (!local.writableEnded) local.end();
        }
      }
    }
    this.#finish(conn);
  }

  #finish(conn: Connection): void {
    if (conn.isDone || !conn.isLocalClosed || (conn.channel !== undefined && !conn.isChannelClosed)) return;
    conn.isDone = true;
    this.#connections.delete(conn);
    conn.listener.stats.active--;
    this.emit('connection-closed', {
      ...conn.info,
      bytesIn: conn.bytesIn,
      bytesOut: conn.bytesOut,
      durationMs: Date.now() - conn.startedAtMs,
      error: conn.error,
    });
    if (this.#connections.size === 0) this.#onDrained?.();
  }
}

function listenOnce(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    try {
      // exclusive: never share the handle with cluster workers; the port is this process's alone.
      server.listen({ host, port, exclusive: true });
    } catch (err) {
      server.off('error', onError);
      server.off('listening', onListening);
      reject(err);
    }
  });
}

function closeServer(server: net.Server | undefined): Promise<void> {
  if (server === undefined || !server.listening) return Promise.resolve();
  return new Promise((resolve) => server.close(() => resolve()));
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function toListenError(err: unknown, spec: ForwardSpec, port: number): VmdeskError {
  const host = spec.bindAddress;
  const where = formatHostPort(host, port);
  const context = { host, port, spec: spec.source };
  const code = errnoCode(err);
  const head = `cannot listen on ${where} for forward "${spec.source}"`;
  switch (code) {
    case 'EADDRINUSE':
      return new VmdeskError('PORT_IN_USE', `${head}: the port is already in use`, {
        cause: err,
        context,
        hint: 'stop what holds the port, choose another local port, or allow moving to the next free port',
      });
    case 'EACCES':
      return new VmdeskError('LISTEN_FAILED', `${head}: permission denied`, {
        cause: err,
        context,
        hint: 'ports below 1024 need privileges; use a local port of 1024 or more',
      });
    case 'EADDRNOTAVAIL':
      return new VmdeskError('LISTEN_FAILED', `${head}: the address is not available on this machine`, {
        cause: err,
        context,
        hint: 'bind to 127.0.0.1 or to an address one of this machine\'s interfaces has',
      });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new VmdeskError('LISTEN_FAILED', `${head}: cannot resolve the bind address`, { cause: err, context });
    default:
      return new VmdeskError('LISTEN_FAILED', `${head}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, context });
  }
}

function channelContext(info: ForwardConnection, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const t = info.target;
  const target = t.kind === 'tcp' ? { host: t.host, port: t.port } : t.kind === 'unix' ? { path: t.path } : { vm: t.vm, service: t.service };
  return { ...target, localPort: info.localPort, bindAddress: info.bindAddress, ...extra };
}

function toChannelError(err: unknown, info: ForwardConnection): VmdeskError {
  if (isVmdeskError(err)) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new VmdeskError('SSH_CHANNEL_REFUSED', `cannot open a channel to ${formatForwardTarget(info.target)}: ${detail}`, {
    cause: err,
    context: channelContext(info),
  });
}
