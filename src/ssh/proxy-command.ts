/**
 * ProxyCommand: token expansion as in OpenSSH's sshconnect.c expand_proxy_command(), and the child
 * process run through `/bin/sh -c "exec ..."` whose stdin/stdout become the hop's byte stream.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { VmdeskError } from '../errors.js';
import { currentLocalIdentity, expandPercentTokens, expandTilde, type LocalIdentity } from './ssh-config.js';

const debug = debuglog('vmdesk:proxy-command');

/** How much of the child's stderr is kept for the error message. */
const STDERR_TAIL_BYTES = 4096;

/** What ProxyCommand tokens stand for: the hop's resolved host name, port, remote user and the alias as written. */
export interface ProxyCommandTarget {
  host: string;
  port: number;
  user: string;
  alias: string;
  /** HostKeyAlias, for %k (OpenSSH falls back to the alias). */
  hostKeyAlias?: string | undefined;
}

/**
 * Expands a leading `~` or `~user` of each unquoted word, as /bin/sh would; done here so the
 * command shown in messages is the one that runs.
 */
function expandWordTildes(command: string, local: LocalIdentity): string {
  let out = '';
  let quote: '"' | "'" | undefined;
  let atWordStart = true;
  for (let i = 0; i < command.length; i++) {
    const c = command[i] ?? '';
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') {
        out += c + (command[i + 1] ?? '');
        i++;
        continue;
      }
      out += c;
      continue;
    }
    if (c === '~' && atWordStart) {
      const m = /^~[A-Za-z0-9._-]*(?=\/|\s|$)/.exec(command.slice(i));
      if (m) {
        try {
          out += expandTilde(m[0], local);
          i += m[0].length - 1;
          atWordStart = false;
          continue;
        } catch {
          // Unknown ~user: leave it for the shell, which leaves it verbatim too.
        }
      }
    }
    if (c === '"' || c === "'") quote = c;
    if (c === '\\') {
      out += c + (command[i + 1] ?? '');
      i++;
      atWordStart = false;
      continue;
    }
    out += c;
    atWordStart = /\s/.test(c) || c === ';' || c === '|' || c === '&' || c === '(';
  }
  return out;
}

/**
 * Expands ProxyCommand tokens `%h %p %r %n %k %%` and word-leading `~`; any other `%x` is an error,
 * as in OpenSSH (ssh_config(5) TOKENS).
 */
export function expandProxyCommand(template: string, t: ProxyCommandTarget, local: LocalIdentity = currentLocalIdentity()): string {
  const expanded = expandPercentTokens(
    template,
    { h: t.host, k: t.hostKeyAlias ?? t.alias, n: t.alias, p: String(t.port), r: t.user },
    'ProxyCommand',
  );
  return expandWordTildes(expanded, local);
}

/** Options for {@link spawnProxyCommand}. */
export interface SpawnProxyCommandOptions {
  env?: NodeJS.ProcessEnv;
  /** The hop the command leads to, for error context. */
  hop?: string;
}

/**
 * The byte stream of a ProxyCommand child: writes go to its stdin, reads come from its stdout.
 * Ending the writable side closes stdin; destroying the stream kills the child.
 */
class ProxyCommandStream extends Duplex {
  private readonly child: ChildProcess;
  private stderrTail = '';
  private hasData = false;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private stdoutEnded = false;

  constructor(child: ChildProcess, private readonly command: string, private readonly hop: string | undefined) {
    super({ allowHalfOpen: true });
    this.child = child;
    const { stdin, stdout, stderr } = child;
    if (!stdin || !stdout || !stderr) throw new Error('proxy command spawned without pipes');

    stderr.setEncoding('utf8');
    stderr.on('data', (text: string) => {
      debug('%s stderr: %s', this.command, text.trimEnd());
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_BYTES);
    });
    stdout.on('data', (chunk: Buffer) => {
      this.hasData = true;
      if (!this.push(chunk)) stdout.pause();
    });
    stdout.on('end', () => {
      this.stdoutEnded = true;
      this.settle();
    });
    // A child that exits while we write gives EPIPE; the exit status reports the real failure.
    stdin.on('error', (err: NodeJS.ErrnoException) => debug('%s stdin: %s', this.command, err.code ?? err.message));
    child.on('error', (err) => this.destroy(this.failure(`cannot run proxy command: ${err.message}`, err)));
    child.on('close', (code, signal) => {
      this.exitInfo = { code, signal };
      this.settle();
    });
  }

  /** Ends the readable side once stdout ended; a non-zero exit before any byte is an error. */
  private settle(): void {
    if (this.destroyed || !this.stdoutEnded) return;
    if (this.hasData) {
      this.push(null);
      return;
    }
    if (!this.exitInfo) return;
    const { code, signal } = this.exitInfo;
    if (code === 0) this.push(null);
    else this.destroy(this.failure(`proxy command ${signal ? `killed by ${signal}` : `exited with status ${code}`} before sending any data`));
  }

  private failure(message: string, cause?: unknown): VmdeskError {
    const tail = this.stderrTail.trim();
    return new VmdeskError('SSH_PROXY_COMMAND_FAILED', tail ? `${message}: ${tail.split('\n').slice(-3).join(' | ')}` : message, {
      ...(cause !== undefined ? { cause } : {}),
      context: { command: this.command, stderr: tail, exitCode: this.exitInfo?.code ?? undefined, ...(this.hop ? { hop: this.hop } : {}) },
      hint: 'run the ProxyCommand by hand to see why it fails',
    });
  }

  override _read(): void {
    this.child.stdout?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed) {
      callback(this.failure('proxy command is no longer reading'));
      return;
    }
    stdin.write(chunk, (err) => callback(err ? this.failure('proxy command is no longer reading', err) : null));
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.child.stdin?.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    this.child.stdin?.destroy();
    this.child.stdout?.destroy();
    callback(error);
  }
}

/**
 * Runs an expanded ProxyCommand as OpenSSH does (`/bin/sh -c "exec COMMAND"`) and returns its stdio as one Duplex.
 * The stream errors with SSH_PROXY_COMMAND_FAILED (stderr tail in the message and context) if the child cannot
 * start or exits non-zero before sending a byte.
 * @example
 * const { stream } = spawnProxyCommand(expandProxyCommand('nc %h %p', { host, port, user, alias }));
 * new Client().connect({ sock: stream, username: user });
 */
export function spawnProxyCommand(command: string, options: SpawnProxyCommandOptions = {}): { stream: Duplex; child: ChildProcess } {
  const child = spawn('/bin/sh', ['-c', `exec ${command}`], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: options.env ?? process.env,
    windowsHide: true,
  });
  const stream = new ProxyCommandStream(child, command, options.hop);
  return { stream, child };
}
