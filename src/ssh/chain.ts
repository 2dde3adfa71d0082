/**
 * A chain of SSH hops held as one multiplexed connection: hop N+1's transport
 * is a `direct-tcpip` channel (RFC 4254 s7.2) of hop N, so traffic is
 * encrypted end to end and nothing runs on the jump hosts. Every forward,
 * exec and console of a destination shares this one chain. When a hop drops,
 * only that hop and the ones behind it are rebuilt, with capped, jittered
 * exponential backoff; callers waiting for a channel meanwhile wait a bounded time.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { createRequire } from 'node:module';
import type { Duplex, Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client as ClientType, ClientChannel } from 'ssh2';
import { VmdeskError, isVmdeskError } from '../errors.js';
import type { ChannelTarget } from '../forward/types.js';
import { createAuth, newCredentialCache, type CredentialCache } from './auth.js';
import { verifyHostKey } from './host-key-policy.js';
import { knownKeyTypes } from './known-hosts.js';
import type { Prompter } from './prompter.js';
import { spawnProxyCommand } from './proxy-command.js';
import { REMOTE_SHELL_COMMAND, encodeRemoteScript } from './remote-script.js';
import type { HopSpec } from './types.js';

const { Client } = ssh2;
const require = createRequire(import.meta.url);
const { SUPPORTED_SERVER_HOST_KEY, SUPPORTED_CIPHER } = require('ssh2/lib/protocol/constants.js') as {
  SUPPORTED_SERVER_HOST_KEY: string[];
  SUPPORTED_CIPHER: string[];
};

/** aes128-gcm first: AEAD (no separate MAC pass) and hardware AES make it the cheapest cipher per byte. */
const PREFERRED_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'].filter((c) => SUPPORTED_CIPHER.includes(c));

/** `idle` only before the first connect and after close(); a tunnel shows the other three. */
export type HopStateName = 'idle' | 'connecting' | 'up' | 'down';

/** What `ps` shows for one hop. */
export interface HopState {
  label: string;
  state: HopStateName;
  /** When the hop entered this state (ms since the epoch). */
  since: number;
  error?: { code: string; message: string };
}

export interface ChainOptions {
  prompter?: Prompter;
  acceptNewHostKey?: boolean;
  /** Agent socket; defaults to SSH_AUTH_SOCK, and a hop's IdentityAgent wins. */
  agentSocket?: string;
  /** Rebuild the chain after a drop (default true). */
  reconnect?: boolean;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** How long openChannel waits for a chain that is down before failing (default 10 s). */
  channelWaitMs?: number;
  /** Connect timeout for a hop when ssh_config sets none (default 15 s). */
  defaultConnectTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface ExecResult {
  code: number | null;
  signal: string | undefined;
  stdout: Buffer;
  stderr: Buffer;
}

const EXEC_OUTPUT_LIMIT_BYTES = 64 * 1024 * 1024;

/**
 * Bytes a hop's transport may hold in user space before channel writers are
 * told to wait. ssh2 writes packets to its socket without looking at
 * write()'s result, so without this gate 64 busy channels each push their
 * whole remote window (2 MiB) into the outer hop's buffers.
 */
const TRANSPORT_BUFFER_LIMIT_BYTES = 4 * 1024 * 1024;
/**
 * Bytes an SSH packet adds around a CHANNEL_DATA payload with AES-GCM:
 * length 4, padding length 1, message header 9, padding up to 19, tag 16
 * (RFC 4253 s6, RFC 5647), rounded up.
 */
const PACKET_OVERHEAD_BYTES = 64;
/** A channel's own write buffer (ssh2 sets 2 MiB); data beyond the remote window waits here. */
const CHANNEL_WRITE_BUFFER_BYTES = 256 * 1024;

/**
 * A channel whose packets travel inside another hop's channel must keep each
 * packet within that carrier channel's maximum packet size (sshd: 32 KiB),
 * or every full packet is split in two on the outer hop, a full one and an
 * 84-byte runt, doubling the outer hop's per-packet work.
 */
function fitPackets(channel: unknown, carrier: unknown): void {
  const out = (channel as { outgoing?: { packetSize?: number } }).outgoing;
  const carrierOut = (carrier as { outgoing?: { packetSize?: number } } | undefined)?.outgoing;
  if (!out?.packetSize || !carrierOut?.packetSize) return;
  out.packetSize = Math.min(out.packetSize, carrierOut.packetSize - PACKET_OVERHEAD_BYTES);
}

/** A script still running on the destination (SshChain.execStream). */
export interface RemoteProcess {
  stdout: Readable;
  stderr: Readable;
  /** Settles when the channel closes, with the exit status if the host sent one. */
  closed: Promise<{ code: number | null; signal: string | undefined }>;
  /** Send more input to the script's /bin/sh (read once the script is done). */
  write(data: string): void;
  /** Close the channel: the script's /bin/sh reads EOF and exits. */
  close(): void;
}

/** One multiplexed connection through a list of hops. */
export class SshChain extends EventEmitter {
  readonly hops: readonly HopSpec[];
  private readonly opts: Required<Pick<ChainOptions, 'reconnect' | 'backoffInitialMs' | 'backoffMaxMs' | 'channelWaitMs' | 'defaultConnectTimeoutMs'>> & ChainOptions;
  private readonly clients: (ClientType | undefined)[];
  /** The byte stream under each hop's SSH session (TCP socket, ProxyCommand pipe, or the previous hop's channel). */
  private readonly transports: (Duplex | undefined)[];
  /** Channels told to wait for a congested transport; released on its 'drain'. */
  private readonly blockedWriters = new Set<Duplex>();
  private readonly states: HopState[];
  private readonly caches: CredentialCache[];
  private building: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private lastKickMs = 0;
  private everUp = false;
  private closed = false;

  constructor(hops: HopSpec[], opts: ChainOptions = {}) {
    super();
    if (hops.length === 0) throw new VmdeskError('USAGE', 'a chain needs at least one hop');
    this.hops = hops;
    this.opts = { reconnect: true, backoffInitialMs: 500, backoffMaxMs: 10_000, channelWaitMs: 10_000, defaultConnectTimeoutMs: 15_000, ...opts };
    this.clients = hops.map(() => undefined);
    this.transports = hops.map(() => undefined);
    this.caches = hops.map(() => newCredentialCache());
    const now = Date.now();
    this.states = hops.map((h) => ({ label: h.label, state: 'idle', since: now }));
  }

  /** A label like `jump -> kvmhost`. */
  get label(): string {
    return this.hops.map((h) => h.label).join(' -> ');
  }

  /** Per-hop state, for status displays. */
  hopStates(): HopState[] {
    return this.states.map((s) => ({ ...s, ...(s.error ? { error: { ...s.error } } : {}) }));
  }

  /** True once close() was called: the chain never reconnects again. */
  isClosed(): boolean {
    return this.closed;
  }

  /** True when every hop is up. */
  isUp(): boolean {
    return this.states.every((s) => s.state === 'up');
  }

  /** Connect every hop once; rejects with the first hop's typed error (no retries). */
  async connect(): Promise<void> {
    try {
      await this.build(0);
    } catch (err) {
      await this.close();
      throw err;
    }
    this.everUp = true;
  }

  /** Swap the prompter: a request with a terminal attached lends one; background reconnects run without. */
  setPrompter(prompter: Prompter | undefined): void {
    this.opts.prompter = prompter;
  }

  /** Close every hop and stop reconnecting. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (let i = this.clients.length - 1; i >= 0; i--) {
      const c = this.clients[i];
      this.clients[i] = undefined;
      this.transports[i] = undefined;
      c?.end();
    }
    const now = Date.now();
    for (const s of this.states) {
      s.state = 'idle';
      s.since = now;
    }
  }

  /** Open a channel from the last hop to a TCP target or a unix socket (RFC 4254 s7.2; OpenSSH's direct-streamlocal). */
  async openChannel(target: ChannelTarget, origin: { address: string; port: number } = { address: '127.0.0.1', port: 0 }): Promise<Duplex> {
    const client = await this.lastClient();
    const where = target.kind === 'tcp' ? `${target.host}:${target.port}` : `unix:${target.path}`;
    const dest = this.hops[this.hops.length - 1]!.label;
    return new Promise<Duplex>((resolve, reject) => {
      const done = (err: Error | undefined, stream: ClientChannel) => {
        if (err) {
          return reject(
            new VmdeskError('SSH_CHANNEL_REFUSED', `${dest} could not open ${where}: ${err.message.replace(/^\(SSH\) /, '')}`, {
              cause: err,
              context: { hop: dest, target: where },
              hint: target.kind === 'tcp' ? `is anything listening on ${where} as seen from ${dest}?` : `does ${target.path} exist on ${dest}, and may the SSH user open it?`,
            }),
          );
        }
        resolve(this.gateWrites(stream));
      };
      try {
        if (target.kind === 'tcp') client.forwardOut(origin.address, origin.port, target.host, target.port, done);
        else client.openssh_forwardOutStreamLocal(target.path, done);
      } catch (err) {
        reject(new VmdeskError('SSH_CONNECTION_LOST', `connection to ${dest} is not usable: ${(err as Error).message}`, { cause: err, context: { hop: dest } }));
      }
    });
  }

  /** True when any hop's transport holds more than its share of unsent bytes. */
  private isCongested(): boolean {
    for (const t of this.transports) {
      if (t && t.writableLength > Math.max(TRANSPORT_BUFFER_LIMIT_BYTES, t.writableHighWaterMark)) return true;
    }
    return false;
  }

  private releaseWriters = (): void => {
    if (this.blockedWriters.size === 0 || this.isCongested()) return;
    const waiting = [...this.blockedWriters];
    this.blockedWriters.clear();
    for (const w of waiting) if (!w.destroyed) w.emit('drain');
  };

  /**
   * Make a channel's write() also report the chain's congestion, so a pipe
   * into it pauses while the shared transport is full (bounded memory per
   * chain, whatever the number of channels) and resumes on 'drain'.
   */
  private gateWrites(channel: ClientChannel): Duplex {
    fitPackets(channel, this.transports[this.hops.length - 1]);
    const state = (channel as unknown as { _writableState?: { highWaterMark: number } })._writableState;
    if (state && state.highWaterMark > CHANNEL_WRITE_BUFFER_BYTES) state.highWaterMark = CHANNEL_WRITE_BUFFER_BYTES;
    const write = channel.write.bind(channel) as (...args: unknown[]) => boolean;
    (channel as unknown as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]) => {
      const ok = write(...args);
      if (ok && this.isCongested()) {
        this.blockedWriters.add(channel);
        return false;
      }
      return ok;
    };
    channel.once('close', () => this.blockedWriters.delete(channel));
    return channel;
  }

  /**
   * Run a POSIX sh script on the destination, with `stdin` as its standard
   * input. The exec request is always REMOTE_SHELL_COMMAND and the script
   * travels on the channel (remote-script.ts), so the SSH user's login shell
   * never parses anything from the caller, and nothing a caller passes can
   * become the exec string.
   */
  async exec(script: string, opts: { stdin?: string | Buffer } = {}): Promise<ExecResult> {
    const input = encodeRemoteScript(script, opts.stdin);
    const client = await this.lastClient();
    const dest = this.hops[this.hops.length - 1]!.label;
    return new Promise<ExecResult>((resolve, reject) => {
      client.exec(REMOTE_SHELL_COMMAND, (err, stream) => {
        if (err) {
          reject(new VmdeskError('SSH_CHANNEL_REFUSED', `${dest} refused to run a command: ${err.message}`, { cause: err, context: { hop: dest } }));
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let size = 0;
        let code: number | null = null;
        let signal: string | undefined;
        const collect = (into: Buffer[]) => (b: Buffer) => {
          size += b.length;
          if (size > EXEC_OUTPUT_LIMIT_BYTES) {
            stream.destroy();
            reject(new VmdeskError('INTERNAL', `output of a command on ${dest} exceeded ${EXEC_OUTPUT_LIMIT_BYTES} bytes`, { context: { hop: dest } }));
            return;
          }
          into.push(b);
        };
        stream.on('data', collect(out));
        stream.stderr.on('data', collect(errOut));
        stream.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s ?? undefined;
        });
        stream.on('close', () => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(errOut) }));
        // Secrets (a domain XML with its VNC password) go inside the script on stdin, never on a command line the host's `ps` shows.
        stream.end(input);
      });
    });
  }

  /**
   * Run a long-lived POSIX sh script on the destination and hand back its
   * output as it comes. Same exec string and framing as exec(), but the
   * channel's stdin stays open: after the script, /bin/sh waits for more input,
   * and close() (or the chain dropping) gives it EOF, so it exits and its EXIT
   * trap can stop what the script started in the background.
   */
  async execStream(script: string): Promise<RemoteProcess> {
    const input = encodeRemoteScript(script);
    const client = await this.lastClient();
    const dest = this.hops[this.hops.length - 1]!.label;
    return new Promise<RemoteProcess>((resolve, reject) => {
      client.exec(REMOTE_SHELL_COMMAND, (err, stream) => {
        if (err) {
          reject(new VmdeskError('SSH_CHANNEL_REFUSED', `${dest} refused to run a command: ${err.message}`, { cause: err, context: { hop: dest } }));
          return;
        }
        let code: number | null = null;
        let signal: string | undefined;
        stream.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s ?? undefined;
        });
        const closed = new Promise<{ code: number | null; signal: string | undefined }>((done) => stream.on('close', () => done({ code, signal })));
        stream.write(input);
        resolve({ stdout: stream, stderr: stream.stderr, closed, write: (data) => void stream.write(data), close: () => void stream.close() });
      });
    });
  }

  /** The destination's client, waiting a bounded time for a reconnect when the chain is down. */
  private async lastClient(): Promise<ClientType> {
    const n = this.hops.length;
    if (this.closed) throw new VmdeskError('SSH_CONNECTION_LOST', `the chain ${this.label} is closed`);
    if (!this.isUp()) {
      if (!this.everUp) await this.connect();
      else await this.waitUp();
    }
    const c = this.clients[n - 1];
    if (!c) throw this.downError();
    return c;
  }

  private downError(): VmdeskError {
    const failed = this.states.findIndex((s) => s.state !== 'up');
    const s = this.states[failed] ?? this.states[0]!;
    return new VmdeskError('SSH_CONNECTION_LOST', `chain ${this.label} is down at ${s.label}${s.error ? `: ${s.error.message}` : ''}`, {
      context: { hop: s.label, hopIndex: failed },
      hint: 'vmdesk keeps retrying in the background; see `vmdesk ps`',
    });
  }

  private waitUp(): Promise<void> {
    this.kick();
    return new Promise<void>((resolve, reject) => {
      const onUp = () => {
        clearTimeout(timer);
        this.off('closed', onClosed);
        resolve();
      };
      const onClosed = () => {
        clearTimeout(timer);
        this.off('up', onUp);
        reject(this.downError());
      };
      const timer = setTimeout(() => {
        this.off('up', onUp);
        this.off('closed', onClosed);
        reject(this.downError());
      }, this.opts.channelWaitMs);
      this.once('up', onUp);
      this.once('closed', onClosed);
    });
  }

  /** Someone needs the chain now: retry at once instead of waiting out the backoff. */
  private kick(): void {
    if (this.closed || this.building || !this.opts.reconnect) return;
    const now = Date.now();
    if (now - this.lastKickMs < 250) return;
    this.lastKickMs = now;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    void this.reconnectNow();
  }

  private setState(i: number, state: HopStateName, error?: unknown): void {
    const s = this.states[i]!;
    const changed = s.state !== state;
    s.state = state;
    if (changed) s.since = Date.now();
    if (error !== undefined) {
      const e = isVmdeskError(error) ? error : null;
      s.error = { code: e ? e.code : 'SSH_CONNECTION_LOST', message: error instanceof Error ? error.message : String(error) };
    } else if (state === 'up') {
      delete s.error;
    }
    if (changed) this.emit('state', this.hopStates());
  }

  /** Hop j is down because hop `cause` (before it) is: say so, so `ps` points at the real failure. */
  private setWaiting(j: number, cause: number): void {
    const label = this.hops[cause]!.label;
    this.setState(j, 'down', new VmdeskError('SSH_CONNECTION_LOST', `waiting for ${label}`, { context: { hop: this.hops[j]!.label, hopIndex: j } }));
  }

  /** (Re)connect hops from index `from` onward; hops before it must be up. */
  private build(from: number): Promise<void> {
    if (this.building) return this.building;
    this.building = (async () => {
      try {
        for (let i = from; i < this.hops.length; i++) {
          if (this.closed) throw new VmdeskError('INTERRUPTED', 'chain closed while connecting');
          this.setState(i, 'connecting');
          let client: ClientType;
          try {
            client = await this.connectHop(i);
          } catch (err) {
            this.transports[i] = undefined;
            this.setState(i, 'down', err);
            for (let j = i + 1; j < this.hops.length; j++) this.setWaiting(j, i);
            // Hops before i stay up: a later retry starts from the first hop that is down.
            throw err;
          }
          if (this.closed) {
            client.end();
            throw new VmdeskError('INTERRUPTED', 'chain closed while connecting');
          }
          this.clients[i] = client;
          this.setState(i, 'up');
        }
        this.attempt = 0;
        this.emit('up');
      } finally {
        this.building = undefined;
      }
    })();
    return this.building;
  }

  private onHopClosed(i: number, client: ClientType, lastError: unknown): void {
    if (this.clients[i] !== client || this.closed) return;
    this.clients[i] = undefined;
    this.transports[i] = undefined;
    // Hops behind a dropped hop ride on its channels: they are gone too.
    for (let j = this.hops.length - 1; j > i; j--) {
      const c = this.clients[j];
      this.clients[j] = undefined;
      this.transports[j] = undefined;
      c?.end();
      this.setWaiting(j, i);
    }
    const err =
      lastError instanceof Error
        ? new VmdeskError('SSH_CONNECTION_LOST', `lost ${this.hops[i]!.label}: ${lastError.message}`, { cause: lastError, context: { hop: this.hops[i]!.label, hopIndex: i } })
        : new VmdeskError('SSH_CONNECTION_LOST', `lost ${this.hops[i]!.label}: connection closed`, { context: { hop: this.hops[i]!.label, hopIndex: i } });
    this.setState(i, 'down', err);
    this.opts.log?.(`hop ${this.hops[i]!.label} dropped (${err.message}); reconnecting`);
    this.emit('down', { hopIndex: i, error: err });
    if (this.opts.reconnect) this.scheduleReconnect();
    else this.emit('closed');
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer || this.building) return;
    const base = Math.min(this.opts.backoffMaxMs, this.opts.backoffInitialMs * 2 ** this.attempt);
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    this.attempt++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.reconnectNow();
    }, delay);
    this.retryTimer.unref?.();
  }

  private async reconnectNow(): Promise<void> {
    if (this.closed) return;
    const from = this.states.findIndex((s) => s.state !== 'up');
    if (from === -1) return;
    try {
      await this.build(from);
      this.opts.log?.(`chain ${this.label} is up again`);
    } catch (err) {
      if (this.closed) return;
      this.opts.log?.(`reconnect of ${this.label} failed: ${(err as Error).message}`);
      this.scheduleReconnect();
    }
  }

  private hopContext(i: number) {
    const h = this.hops[i]!;
    return { hop: h.label, hopIndex: i, host: h.host.hostName, port: h.host.port };
  }

  /** The byte stream that carries hop i's SSH session. */
  private async transportFor(i: number): Promise<Duplex> {
    const hop = this.hops[i]!;
    const h = hop.host;
    const ctx = this.hopContext(i);
    const timeoutMs = h.connectTimeoutMs ?? this.opts.defaultConnectTimeoutMs;
    if (hop.transport.kind === 'proxy-command') {
      // planHops already expanded %h %p %r in the command.
      return spawnProxyCommand(hop.transport.command, { hop: hop.label }).stream;
    }
    if (hop.transport.kind === 'via-previous-hop') {
      const prev = this.clients[i - 1];
      const prevLabel = this.hops[i - 1]!.label;
      if (!prev) throw new VmdeskError('SSH_CONNECTION_LOST', `${prevLabel} is not connected`, { context: ctx });
      return new Promise<Duplex>((resolve, reject) => {
        const timer = setTimeout(() => reject(new VmdeskError('SSH_HOP_TIMEOUT', `${prevLabel} did not reach ${hop.label} (${h.hostName}:${h.port}) within ${timeoutMs} ms`, { context: ctx })), timeoutMs);
        prev.forwardOut('127.0.0.1', 0, h.hostName, h.port, (err, stream) => {
          clearTimeout(timer);
          if (err) {
            reject(
              new VmdeskError('SSH_HOP_UNREACHABLE', `${prevLabel} cannot reach ${hop.label} (${h.hostName}:${h.port}): ${err.message.replace(/^\(SSH\) /, '')}`, {
                cause: err,
                context: ctx,
                hint: `check that ${hop.label} is up and that ${prevLabel} allows TCP forwarding (AllowTcpForwarding)`,
              }),
            );
            return;
          }
          fitPackets(stream, this.transports[i - 1]);
          resolve(stream);
        });
      });
    }
    return new Promise<Duplex>((resolve, reject) => {
      const sock = net.connect({ host: h.hostName, port: h.port });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new VmdeskError('SSH_HOP_TIMEOUT', `cannot reach ${hop.label} (${h.hostName}:${h.port}): no answer within ${timeoutMs} ms`, { context: ctx, hint: 'check the address, the network and any firewall (ConnectTimeout sets this limit)' }));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.setNoDelay(true);
        sock.removeAllListeners('error');
        resolve(sock);
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new VmdeskError('SSH_HOP_UNREACHABLE', `cannot reach ${hop.label} (${h.hostName}:${h.port}): ${err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'ENOTFOUND' ? 'unknown host name' : err.message}`, {
            cause: err,
            context: ctx,
            hint: err.code === 'ECONNREFUSED' ? `is sshd running on ${h.hostName}:${h.port}?` : 'check the host name, the network and any firewall',
          }),
        );
      });
    });
  }

  private async algorithmsFor(i: number): Promise<Record<string, unknown>> {
    const h = this.hops[i]!.host;
    const name = h.hostKeyAlias ?? h.hostName;
    // Like OpenSSH, ask first for key types known_hosts already has for this host, so a
    // host with several keys is checked against the one we know instead of looking unknown.
    const known = await knownKeyTypes({ host: name, port: h.hostKeyAlias ? 22 : h.port, files: [...h.userKnownHostsFiles, ...h.globalKnownHostsFiles] }).catch(() => [] as string[]);
    const hostKeyAlgos = known.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t])).filter((t) => SUPPORTED_SERVER_HOST_KEY.includes(t));
    const algorithms: Record<string, unknown> = { cipher: { remove: PREFERRED_CIPHERS, prepend: PREFERRED_CIPHERS } };
    if (hostKeyAlgos.length > 0) algorithms.serverHostKey = { remove: hostKeyAlgos, prepend: [...new Set(hostKeyAlgos)] };
    return algorithms;
  }

  private async connectHop(i: number): Promise<ClientType> {
    const hop = this.hops[i]!;
    const h = hop.host;
    const ctx = this.hopContext(i);
    const sock = await this.transportFor(i);
    const algorithms = await this.algorithmsFor(i);
    this.transports[i] = sock;
    sock.on('drain', this.releaseWriters);
    const agentSocket = h.identityAgent && h.identityAgent !== 'SSH_AUTH_SOCK' ? h.identityAgent : (this.opts.agentSocket ?? process.env.SSH_AUTH_SOCK);
    const prompter = h.batchMode ? undefined : this.opts.prompter;
    const auth = createAuth({ hop, hopIndex: i, hopCount: this.hops.length, prompter, cache: this.caches[i]!, agentSocket });
    const client = new Client();
    return new Promise<ClientType>((resolve, reject) => {
      let hostKeyError: VmdeskError | undefined;
      let lastError: Error | undefined;
      let authStarted = false;
      let ready = false;
      client.on('error', (err: Error) => {
        lastError = err;
      });
      sock.on('error', (err: Error) => {
        lastError = err;
      });
      client.once('ready', () => {
        ready = true;
        auth.succeeded();
        resolve(client);
      });
      client.on('close', () => {
        if (ready) {
          this.onHopClosed(i, client, lastError);
          return;
        }
        sock.destroy();
        if (hostKeyError) return reject(hostKeyError);
        if (isVmdeskError(lastError)) return reject(lastError);
        const level = (lastError as { level?: string } | undefined)?.level;
        if (authStarted && (level === 'client-authentication' || level === 'protocol' || !lastError)) return reject(auth.failure());
        if (level === 'client-timeout') {
          return reject(new VmdeskError('SSH_HOP_TIMEOUT', `SSH handshake with ${hop.label} (${h.hostName}:${h.port}) timed out`, { cause: lastError, context: ctx }));
        }
        reject(
          new VmdeskError('SSH_HOP_UNREACHABLE', `SSH connection to ${hop.label} (${h.hostName}:${h.port}) failed: ${lastError?.message ?? 'closed before the handshake'}`, {
            cause: lastError,
            context: ctx,
          }),
        );
      });
      const interactive = prompter !== undefined;
      client.connect({
        sock: sock as unknown as import('node:stream').Readable,
        username: h.user,
        // RFC 4253 s8: the key is checked during key exchange, before any auth request is sent.
        hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
          // CheckHostIP needs the address a direct TCP hop reached; other transports have none (as in ssh(1)).
          const remoteAddress = hop.transport.kind === 'tcp' ? (sock as net.Socket).remoteAddress : undefined;
          verifyHostKey(key, { hop, hopIndex: i, prompter, acceptNew: this.opts.acceptNewHostKey ?? false, remoteAddress }).then(
            (err) => {
              if (err) hostKeyError = err;
              verify(err === null);
            },
            (err: unknown) => {
              hostKeyError = isVmdeskError(err) ? err : new VmdeskError('SSH_HOST_KEY_UNKNOWN', `cannot verify the host key of ${hop.label}: ${(err as Error).message}`, { cause: err, context: ctx });
              verify(false);
            },
          );
        },
        authHandler: (methodsLeft, partial, next) => {
          authStarted = true;
          auth.handler(methodsLeft, partial, next);
        },
        algorithms: algorithms as never,
        keepaliveInterval: h.serverAliveIntervalMs,
        keepaliveCountMax: h.serverAliveCountMax,
        // A person typing a passphrase must not race a timer; without one, bound the handshake.
        readyTimeout: interactive ? 0 : (h.connectTimeoutMs ?? this.opts.defaultConnectTimeoutMs) + 15_000,
      });
    });
  }
}
