/**
 * Running things inside the KVM host's network namespace: virsh as root or
 * as a user, and a TCP probe (the lab process itself stays in the root
 * namespace, so it connects through a short-lived node inside the namespace).
 */
import { lookupUser, asUser } from '../accounts.js';
import { runChecked, runProcess, type RunOptions, type RunResult } from '../exec.js';

export const LIBVIRT_URI = 'qemu:///system';

/** A fixed, English environment: virsh's messages are classified by text. */
export function hostEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', HOME: '/root', ...extra };
}

export interface HostRunOptions extends Pick<RunOptions, 'timeoutMs' | 'input' | 'cwd'> {
  /** Run as this user (uid, gid and supplementary groups from /etc/group) instead of root. */
  user?: string;
}

/** Runs argv inside namespace `ns`, as root or as `opts.user`, with hostEnv(). */
export async function runInNamespace(ns: string, argv: readonly string[], opts: HostRunOptions = {}): Promise<RunResult> {
  let prefix: string[] = [];
  let env = hostEnv();
  if (opts.user !== undefined) {
    const acct = await lookupUser(opts.user);
    if (!acct) throw new Error(`no user ${opts.user}`);
    prefix = asUser(acct);
    env = hostEnv({ HOME: acct.home, USER: acct.name, LOGNAME: acct.name });
  }
  return runProcess(['ip', 'netns', 'exec', ns, ...prefix, ...argv], {
    env,
    timeoutMs: opts.timeoutMs ?? 60_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
  });
}

/** `virsh -c qemu:///system ARGS` inside the namespace; resolves whatever the exit status. */
export function virshIn(ns: string, args: readonly string[], opts: HostRunOptions = {}): Promise<RunResult> {
  return runInNamespace(ns, ['virsh', '-c', LIBVIRT_URI, ...args], opts);
}

/** Like virshIn but throws unless virsh exits 0. */
export async function virshChecked(ns: string, args: readonly string[], opts: HostRunOptions = {}): Promise<string> {
  const r = await virshIn(ns, args, opts);
  if (r.code !== 0) throw new Error(`virsh ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout;
}

const PROBE_SOURCE = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
let out = '';
const timer = setTimeout(() => { process.stderr.write('timeout'); process.exit(3); }, Number(ms));
s.on('data', (b) => { out += b.toString('utf8'); });
s.on('end', () => { clearTimeout(timer); process.stdout.write(out); process.exit(0); });
s.on('error', (e) => { process.stderr.write(e.code || e.message); process.exit(2); });
`;

/** Connects from inside `ns` to host:port and returns what the peer sent before closing. */
export async function tcpReadIn(ns: string, host: string, port: number, timeoutMs = 3000): Promise<string> {
  return runChecked(['ip', 'netns', 'exec', ns, process.execPath, '-e', PROBE_SOURCE, host, String(port), String(timeoutMs)], {
    env: hostEnv(),
    timeoutMs: timeoutMs + 5000,
  });
}
