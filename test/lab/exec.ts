/**
 * Process running for the lab: argv arrays only (no shell), every child in its
 * own process group so a timeout kills the whole tree, output captured.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface RunResult {
  /** Exit status; null when the process died from a signal or timed out. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  /** Kill the process group after this long (default 60 s). */
  timeoutMs?: number;
  /** The complete environment (not merged with ours). */
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, then stdin is closed; without it stdin is /dev/null. */
  input?: string | Buffer;
  cwd?: string;
  /**
   * What to do when the process exits but a child it left behind still holds
   * its stdout/stderr (`ssh -f` does this on purpose). 'fail' (default) turns
   * it into an error, because `out=$(cmd)` would hang for a user too;
   * 'ignore' returns what was read by then.
   */
  onStdioHeld?: 'fail' | 'ignore';
}

const STDIO_GRACE_MS = 2000;

/** Runs argv and resolves with its exit status and output, whatever the status. */
export function runProcess(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new Error('runProcess: empty argv'));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      detached: true,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    let settled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let heldTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    const finish = (e?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (heldTimer) clearTimeout(heldTimer);
      if (e) {
        reject(e);
        return;
      }
      resolve({
        code: timedOut ? null : (exit?.code ?? null),
        signal: exit?.signal ?? null,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    };
    child.on('error', (e) => finish(e));
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      heldTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        if ((opts.onStdioHeld ?? 'fail') === 'ignore') {
          finish();
          return;
        }
        finish(
          new Error(
            `${argv.join(' ')} exited (${code ?? signal}) but a process it left behind kept its stdout/stderr open ` +
              `for ${STDIO_GRACE_MS} ms; a shell's $(...) would hang. stdout so far: ${JSON.stringify(Buffer.concat(out).toString())} ` +
              `stderr so far: ${JSON.stringify(Buffer.concat(err).toString())}`,
          ),
        );
      }, STDIO_GRACE_MS);
    });
    child.on('close', () => finish());
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
  });
}

/** Runs argv and returns stdout; throws with the command, status and stderr unless it exits 0. */
export async function runChecked(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await runProcess(argv, opts);
  if (r.code !== 0) {
    const how = r.timedOut ? 'timed out' : `exited ${r.code ?? r.signal}`;
    throw new Error(`${argv.map(shellQuote).join(' ')} ${how}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** Starts a long-running argv in its own process group, output to files or ignored. */
export function spawnDetached(
  argv: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdout?: number | 'ignore' | 'pipe'; stderr?: number | 'ignore' | 'pipe' } = {},
): ChildProcess {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('spawnDetached: empty argv');
  return spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', opts.stdout ?? 'ignore', opts.stderr ?? 'ignore'],
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
}

/** Sends `signal` to the process group led by `pid`; false when it is already gone. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals = 'SIGTERM'): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** True while a process with this pid exists (zombies included). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Quotes one word for a POSIX shell. Only used where OpenSSH forces a shell
 * on us (a remote command is one string run by the remote user's shell).
 */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_\-+=/.,:@%]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
