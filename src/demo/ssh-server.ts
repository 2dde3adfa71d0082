/**
 * A small in-process SSH server on ssh2: password and public-key auth,
 * direct-tcpip and direct-streamlocal forwarding to what it can reach, and
 * exec through a handler, which gets vmdesk's scripts back from their fixed
 * `/bin/sh -s` exec (ssh/remote-script.ts). The demo site runs two of them (jump host and
 * hypervisor); the integration tests use them as fast stand-ins. Never used
 * by a real code path.
 */
import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import ssh2 from 'ssh2';
import type { Connection, ParsedKey, ServerChannel } from 'ssh2';
import { REMOTE_SHELL_COMMAND, decodeRemoteScript } from '../ssh/remote-script.js';

const { Server, utils } = ssh2;

export interface ExecContext {
  /** The exec request's command; for REMOTE_SHELL_COMMAND, the script vmdesk sent on stdin. */
  command: string;
  user: string;
  stdout: (data: string | Buffer) => void;
  stderr: (data: string | Buffer) => void;
  /**
   * The command's standard input: everything the client sends until its EOF
   * (RFC 4254 s5.3, SSH_MSG_CHANNEL_EOF), or until the channel closes. Like a
   * real command, only a handler that reads stdin waits for it: a client that
   * never sends EOF blocks only that one. For REMOTE_SHELL_COMMAND, the
   * script's standard input.
   */
  stdin: () => Promise<Buffer>;
  /** Settles when the client closes the channel: a long-running command (virsh event --loop) ends then. */
  closed: Promise<void>;
  /** Input that arrives after a REMOTE_SHELL_COMMAND script (what /bin/sh would read as its next commands). */
  onInput: (listener: (data: Buffer) => void) => void;
}
export type ExecHandler = (ctx: ExecContext) => Promise<number> | number;

export interface DemoSshServerOptions {
  host?: string;
  port?: number;
  user: string;
  password?: string;
  /** Public keys (OpenSSH text or parsed) allowed to log in as `user`. */
  authorizedKeys?: (string | Buffer)[];
  /** Host private key (OpenSSH PEM); a fresh ed25519 key when omitted. */
  hostKey?: string;
  allowForwarding?: boolean;
  exec?: ExecHandler;
  /** Refuse direct-tcpip to anything but these hosts (undefined = anything). */
  forwardHosts?: string[];
  /**
   * Where a direct-tcpip request (RFC 4254 s7.2) really goes, so a demo host
   * can serve made-up addresses from in-process listeners; undefined refuses
   * it. Without this option the server connects to the address asked for.
   */
  routeTcp?: (host: string, port: number) => ForwardEndpoint | undefined;
  /**
   * The same for OpenSSH's direct-streamlocal: a TCP endpoint or a real
   * socket path for the requested path; undefined refuses it. Without this
   * option the server connects to the path asked for.
   */
  routeUnix?: (path: string) => ForwardEndpoint | string | undefined;
}

/** The most a demo command reads from stdin (a domain XML is a few KiB). */
const STDIN_LIMIT_BYTES = 1 << 20;

/** Reads a channel's data until the client's EOF (or the channel's close), once; later calls get the same bytes. */
function stdinReader(ch: ServerChannel): () => Promise<Buffer> {
  let read: Promise<Buffer> | undefined;
  return () =>
    (read ??= new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = () => resolve(Buffer.concat(chunks));
      ch.on('data', (d: Buffer) => {
        size += d.length;
        if (size > STDIN_LIMIT_BYTES) {
          ch.removeAllListeners('data');
          reject(new Error(`stdin exceeds ${STDIN_LIMIT_BYTES} bytes`));
          return;
        }
        chunks.push(d);
      });
      ch.once('end', done);
      ch.once('close', done);
    }));
}

/** The framed script on a REMOTE_SHELL_COMMAND channel: as soon as it is complete (as /bin/sh runs a group once read), or all input at EOF. */
function scriptReader(ch: ServerChannel): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = () => {
      ch.removeListener('data', onData);
      resolve(Buffer.concat(chunks));
    };
    const onData = (d: Buffer) => {
      size += d.length;
      if (size > STDIN_LIMIT_BYTES) {
        ch.removeListener('data', onData);
        reject(new Error(`stdin exceeds ${STDIN_LIMIT_BYTES} bytes`));
        return;
      }
      chunks.push(d);
      if (decodeRemoteScript(Buffer.concat(chunks))) finish();
    };
    ch.on('data', onData);
    ch.once('end', finish);
    ch.once('close', finish);
  });
}

/** A TCP endpoint a forwarded channel is connected to. */
export interface ForwardEndpoint {
  host: string;
  port: number;
}

/**
 * Generate an ed25519 key pair in OpenSSH formats (optionally encrypted).
 * ssh2 1.17's generator emits a private key its own parser rejects about
 * once in 400 tries ("Malformed OpenSSH private key"), so each key is parsed
 * back before it is used, and made again if it does not parse.
 */
export function generateEd25519(comment = 'vmdesk', passphrase?: string): { privateKey: string; publicKey: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const kp = utils.generateKeyPairSync('ed25519', passphrase ? { comment, passphrase, cipher: 'aes256-ctr', rounds: 16 } : { comment });
    if (!(utils.parseKey(kp.private, passphrase) instanceof Error)) return { privateKey: kp.private, publicKey: kp.public };
  }
  throw new Error('could not generate a usable ed25519 key');
}

function parsedPublic(key: string | Buffer): ParsedKey {
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) throw parsed;
  return Array.isArray(parsed) ? parsed[0]! : parsed;
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/** An SSH server running in this process. */
export class DemoSshServer {
  readonly hostKey: string;
  /** The host public key in SSH wire format (as known_hosts stores it, base64-decoded). */
  readonly hostPublicKey: Buffer;
  private server: InstanceType<typeof Server> | undefined;
  private readonly connections = new Set<Connection>();
  private readonly sockets = new Set<net.Socket>();
  private readonly allowed: ParsedKey[];
  private boundPort = 0;
  /** Counters for tests: authentication attempts and channels opened. */
  readonly counters = { authAttempts: 0, channels: 0, activeChannels: 0 };

  constructor(private readonly opts: DemoSshServerOptions) {
    this.hostKey = opts.hostKey ?? generateEd25519('host').privateKey;
    const parsed = utils.parseKey(this.hostKey);
    if (parsed instanceof Error) throw parsed;
    this.hostPublicKey = (Array.isArray(parsed) ? parsed[0]! : parsed).getPublicSSH();
    this.allowed = (opts.authorizedKeys ?? []).map(parsedPublic);
  }

  get port(): number {
    return this.boundPort;
  }

  /** SSH connections currently open to this server. */
  get connectionCount(): number {
    return this.connections.size;
  }

  get host(): string {
    return this.opts.host ?? '127.0.0.1';
  }

  /** Start listening (again, on the same port after stop()). */
  async start(): Promise<number> {
    const server = new Server({ hostKeys: [this.hostKey] }, (client) => this.onClient(client));
    this.server = server;
    const port = this.boundPort || this.opts.port || 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.host, () => resolve());
    });
    this.boundPort = (server.address() as net.AddressInfo).port;
    return this.boundPort;
  }

  /** Stop listening and drop every connection (as if sshd died). */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const c of this.connections) c.end();
    this.connections.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private onClient(client: Connection): void {
    this.connections.add(client);
    client.on('close', () => this.connections.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      this.counters.authAttempts++;
      if (ctx.username !== this.opts.user) return ctx.reject();
      if (ctx.method === 'password' && this.opts.password !== undefined) {
        return safeEqual(ctx.password, this.opts.password) ? ctx.accept() : ctx.reject();
      }
      if (ctx.method === 'publickey') {
        const match = this.allowed.find((k) => k.type === ctx.key.algo && k.getPublicSSH().equals(ctx.key.data));
        if (!match) return ctx.reject();
        if (!ctx.signature) return ctx.accept(); // RFC 4252 s7: the "would you accept this key" query
        return match.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true ? ctx.accept() : ctx.reject();
      }
      const methods: ('password' | 'publickey')[] = [];
      if (this.opts.password !== undefined) methods.push('password');
      if (this.allowed.length) methods.push('publickey');
      return ctx.reject(methods);
    });
    client.on('ready', () => {
      client.on('tcpip', (accept, reject, info) => {
        if (this.opts.allowForwarding === false) return reject();
        if (this.opts.forwardHosts && !this.opts.forwardHosts.includes(info.destIP)) return reject();
        const to = this.opts.routeTcp ? this.opts.routeTcp(info.destIP, info.destPort) : { host: info.destIP, port: info.destPort };
        if (!to) return reject();
        const sock = net.connect(to.port, to.host);
        this.pipeChannel(sock, accept, reject);
      });
      client.on('openssh.streamlocal', (accept, reject, info) => {
        if (this.opts.allowForwarding === false) return reject();
        const to = this.opts.routeUnix ? this.opts.routeUnix(info.socketPath) : info.socketPath;
        if (to === undefined) return reject();
        const sock = typeof to === 'string' ? net.connect(to) : net.connect(to.port, to.host);
        this.pipeChannel(sock, accept, reject);
      });
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (acceptExec, rejectExec, info) => {
          if (!this.opts.exec) return rejectExec?.();
          const ch = acceptExec();
          const handler = this.opts.exec;
          const run = async (): Promise<number> => {
            const closed = new Promise<void>((resolve) => ch.once('close', () => resolve()));
            const ctx: ExecContext = { command: info.command, user: this.opts.user, stdout: (d) => ch.write(d), stderr: (d) => ch.stderr.write(d), stdin: stdinReader(ch), closed, onInput: (listener) => void ch.on('data', listener) };
            if (info.command === REMOTE_SHELL_COMMAND) {
              // What /bin/sh would do with the script on stdin: read the framed group whole (no need to wait for EOF), then run it with its own stdin.
              const decoded = decodeRemoteScript(await scriptReader(ch));
              if (!decoded) {
                ctx.stderr('sh: 1: Syntax error: not a vmdesk script\n');
                return 2;
              }
              const data = decoded.stdin ?? Buffer.alloc(0);
              return handler({ ...ctx, command: decoded.script, stdin: async () => data });
            }
            return handler(ctx);
          };
          run().then(
            (code) => {
              ch.exit(code);
              ch.end();
            },
            (err: Error) => {
              ch.stderr.write(`${err.message}\n`);
              ch.exit(1);
              ch.end();
            },
          );
        });
      });
    });
  }

  private pipeChannel(sock: net.Socket, accept: () => ServerChannel, reject: () => void): void {
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
    sock.once('error', () => reject());
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      const ch = accept();
      this.counters.channels++;
      this.counters.activeChannels++;
      let done = false;
      const closed = () => {
        if (done) return;
        done = true;
        this.counters.activeChannels--;
      };
      const fail = () => {
        sock.destroy();
        ch.destroy();
      };
      // pipe() carries each side's EOF to the other (half-close), so buffered bytes are not lost.
      sock.pipe(ch).pipe(sock);
      sock.on('error', fail);
      ch.on('error', fail);
      ch.on('close', () => {
        sock.destroy();
        closed();
      });
    });
  }
}
