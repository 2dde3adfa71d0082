/**
 * The real lab: the seed's three machines as network namespaces, real OpenSSH
 * servers on the jump host and the KVM host, services on the KVM host's
 * loopback, and a client user who runs ssh and vmdesk like a person would.
 *
 * `labUp()` first removes whatever an earlier (possibly crashed) run left,
 * then builds everything afresh; `labDown()` removes it again. Both work from
 * a fresh process: they find what to stop from the namespaces, pid files and
 * the client user's uid, not from memory.
 *
 * @example
 *   const lab = await labUp();
 *   const r = await lab.vmdesk(['forward', '-d', 'kvmhost', '5900']);
 *   const sock = await lab.clientConnect('127.0.0.1', 5900);
 *   await labDown();
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { access, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { CLIENT_HOME, CLIENT_USER, SERVER_USER, asUser, ensureUser, lookupUser, prepareClientHome, prepareServerUser, keyOnly, type Account, type ClientFiles } from './accounts.js';
import { APP_DIR, installApp, removeApp } from './app-install.js';
import { acquireLabLock, releaseLabLock } from './lab-lock.js';
import { killGroup, runChecked, runProcess, spawnDetached, type RunResult } from './exec.js';
import { ADDRESSES, NAMESPACES, createTopology, destroyTopology, setLinkUp, type LinkName } from './netns.js';
import { ECHO_PORT, UNIX_SOCKET_NAME, VNC_FIRST_PORT, VNC_LAST_PORT } from './ports.js';
import { PollAbortError, pollUntil } from './poll.js';
import { killPids, pidsOwnedBy } from './processes.js';
import { connectVia } from './sockets.js';
import {
  SERVER_NAMES,
  generateHostKey,
  logMark,
  logSince,
  sshdSpec,
  startSshd as startSshdProcess,
  stopSshd as stopSshdProcess,
  writeSshdConfig,
  type ServerName,
  type SshdSpec,
} from './sshd.js';
import { fileExists } from './files.js';

export type { RunResult } from './exec.js';
export type { ServerName } from './sshd.js';
export type { LinkName } from './netns.js';

const LAB_DIR = dirname(fileURLToPath(import.meta.url));
/** The checkout this harness belongs to. */
export const CHECKOUT = resolve(LAB_DIR, '..', '..');
/** Root-only lab state: sshd configs, host keys, logs, pid files. Gitignored. */
export const STATE_DIR = join(LAB_DIR, '.state');
/** What other users must reach (sshd reads authorized_keys as the user; sshd's child connects to the unix socket as the user). */
export const RUN_DIR = '/run/vmd-lab';

const REQUIRED_COMMANDS = ['ip', 'sshd', 'ssh', 'ssh-keygen', 'setpriv', 'useradd', 'chpasswd', 'getent', 'sysctl', 'cp', 'chmod'];

export interface ClientRunOptions {
  timeoutMs?: number;
  /** Added to (or, with undefined, removed from) the client's clean login environment. */
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  /** See RunOptions.onStdioHeld: 'ignore' for `ssh -f`, which keeps our pipes on purpose. */
  onStdioHeld?: 'fail' | 'ignore';
}

/** A long-running process of the client user. */
export interface ClientProcess {
  child: ChildProcess;
  pid: number;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit status once it ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM to its process group, SIGKILL after 3 s; resolves when it has exited. */
  stop(): Promise<void>;
}

export interface Lab {
  readonly namespaces: typeof NAMESPACES;
  readonly addresses: typeof ADDRESSES;
  readonly paths: { checkout: string; stateDir: string; runDir: string; appDir: string; appPathDir: string };
  /** The server user's password, random per labUp. */
  readonly password: string;
  readonly users: {
    server: { name: string };
    client: { name: string; uid: number; gid: number; home: string; files: ClientFiles; publicKey: string };
  };
  /** Each server's current host public key line (`ssh-ed25519 AAAA... comment`). */
  readonly hostKeys: Record<ServerName, string>;
  readonly services: { echoPort: number; vncFirstPort: number; vncLastPort: number; unixSocket: string };
  /** The node binary the client user runs, and whether the checkout's dist/ was built when the lab came up. */
  readonly app: { nodePath: string; isBuilt: boolean };

  /**
   * Runs argv as the client user inside `vmd-client`, with a clean environment, no TTY and no agent:
   * `ip netns exec vmd-client setpriv --reuid vmdclient ... -- env -i HOME=/home/vmdclient ... <argv>`.
   */
  runClient(argv: readonly string[], opts?: ClientRunOptions): Promise<RunResult>;
  /** Starts a long-running argv as the client user inside `vmd-client`. */
  spawnClient(argv: readonly string[], opts?: Pick<ClientRunOptions, 'env'>): ClientProcess;
  /** Runs the vmdesk CLI as the client user (`vmdesk` on the PATH, as installed for users). */
  vmdesk(args: readonly string[], opts?: ClientRunOptions): Promise<RunResult>;
  /** Runs OpenSSH's client as the client user (for tests and benchmarks against plain ssh). */
  ssh(args: readonly string[], opts?: ClientRunOptions): Promise<RunResult>;
  /** Starts OpenSSH's client as the client user, e.g. `-N -L ...`. */
  spawnSsh(args: readonly string[], opts?: Pick<ClientRunOptions, 'env'>): ClientProcess;
  /** Opens a TCP connection from inside `vmd-client` (via the namespace relay); rejects with `code` ECONNREFUSED, ENETUNREACH, ETIMEDOUT... */
  clientConnect(host: string, port: number, opts?: { timeoutMs?: number }): Promise<Socket>;

  stopSshd(name: ServerName, opts?: { keepSessions?: boolean }): Promise<void>;
  startSshd(name: ServerName): Promise<void>;
  /** Gives the server a new host key and restarts it; the client's known_hosts keeps the old one. Returns the new public line. */
  replaceHostKey(name: ServerName): Promise<string>;
  /** A byte offset into the server's sshd log, to read only what follows. */
  sshdLogMark(name: ServerName): Promise<number>;
  sshdLogSince(name: ServerName, mark?: number): Promise<string>;
  /** Takes a wire down (packets vanish, no FIN/RST) or up again. */
  setLinkUp(link: LinkName, up: boolean): Promise<void>;

  /** Writes a file under the client's home, owned by the client user; returns its absolute path. */
  writeClientFile(relPath: string, content: string, mode?: number): Promise<string>;
  readClientFile(relPath: string): Promise<string>;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, users, sshd); run the lab tests as root');
}

async function requireCommands(): Promise<void> {
  const missing: string[] = [];
  for (const cmd of REQUIRED_COMMANDS) {
    const dirs = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
    let found = false;
    for (const d of dirs) {
      try {
        await access(join(d, cmd));
        found = true;
        break;
      } catch {
        // not here
      }
    }
    if (!found) missing.push(cmd);
  }
  if (missing.length > 0) {
    throw new Error(`the lab needs ${missing.join(', ')}; install the packages listed in .ci/run (openssh-server openssh-client iproute2 procps passwd util-linux)`);
  }
}

function specs(): Record<ServerName, SshdSpec> {
  const authorizedKeys = join(RUN_DIR, 'authorized_keys', '%u');
  return { jump: sshdSpec('jump', STATE_DIR, authorizedKeys), host: sshdSpec('host', STATE_DIR, authorizedKeys) };
}

/**
 * Removes every trace of a lab run that is still there; safe to call at any
 * time. The state dir (logs, configs) survives unless `removeState`, so a
 * failed run can be examined after labDown.
 */
async function cleanup(opts: { removeState: boolean }): Promise<void> {
  // Everything the lab runs lives in its namespaces (sshd and its sessions, services, relay, vmdesk agents).
  await destroyTopology();
  for (const spec of Object.values(specs())) await stopSshdProcess(spec);
  // A client-user process started outside the namespaces by hand would otherwise keep files open.
  const client = await lookupUser(CLIENT_USER);
  if (client && client.uid !== 0) await killPids(await pidsOwnedBy(client.uid));
  if (client) await rm(`/run/user/${client.uid}`, { recursive: true, force: true });
  await rm(RUN_DIR, { recursive: true, force: true });
  if (opts.removeState) await rm(STATE_DIR, { recursive: true, force: true });
}

async function startBackground(name: string, ns: string, script: string, args: readonly string[]): Promise<number> {
  const logFd = openSync(join(STATE_DIR, `${name}.log`), 'a');
  try {
    const child = spawnDetached(['ip', 'netns', 'exec', ns, process.execPath, '--import', 'tsx', join(LAB_DIR, script), ...args], {
      cwd: CHECKOUT,
      stdout: logFd,
      stderr: logFd,
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`cannot start ${name}`);
    await writeFile(join(STATE_DIR, `${name}.pid`), `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(logFd);
  }
}

async function waitBackground(name: string, pid: number, ready: () => Promise<boolean>): Promise<void> {
  await pollUntil(
    async () => {
      try {
        process.kill(pid, 0);
      } catch {
        const log = await readFile(join(STATE_DIR, `${name}.log`), 'utf8').catch(() => '');
        throw new PollAbortError(`${name} exited: ${log.trim()}`);
      }
      return ready();
    },
    { timeoutMs: 20_000, intervalMs: 50, what: `${name} to be ready` },
  );
}


/** Builds the lab from scratch (removing an earlier run's leftovers first) and returns a handle to drive it. */
export async function labUp(): Promise<Lab> {
  requireRoot();
  await requireCommands();
  await acquireLabLock();
  await cleanup({ removeState: true });

  await mkdir(STATE_DIR, { recursive: true, mode: 0o700 });
  await mkdir(join(RUN_DIR, 'authorized_keys'), { recursive: true, mode: 0o755 });
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  await createTopology();

  const password = randomBytes(12).toString('base64url');
  await prepareServerUser(password);
  const client: Account = await ensureUser(CLIENT_USER, CLIENT_HOME);

  const sshd = specs();
  const hostKeys = {} as Record<ServerName, string>;
  for (const name of SERVER_NAMES) {
    hostKeys[name] = await generateHostKey(sshd[name]);
    await writeSshdConfig(sshd[name]);
  }
  const { files, publicKey } = await prepareClientHome(client, hostKeys);
  await writeFile(join(RUN_DIR, 'authorized_keys', SERVER_USER), `${publicKey}\n`, { mode: 0o644 });
  const app = await installApp(CHECKOUT, client);

  const relaySocket = join(STATE_DIR, 'relay-client.sock');
  const servicesReady = join(RUN_DIR, 'services.ready');
  const [servicesPid, relayPid] = await Promise.all([
    startBackground('services', NAMESPACES.host, 'services.ts', [RUN_DIR, servicesReady]),
    startBackground('relay-client', NAMESPACES.client, 'ns-relay.ts', [relaySocket]),
  ]);
  await Promise.all([
    startSshdProcess(sshd.jump),
    startSshdProcess(sshd.host),
    waitBackground('services', servicesPid, () => fileExists(servicesReady)),
    waitBackground('relay-client', relayPid, async () => {
      try {
        (await connectVia(relaySocket, { host: '127.0.0.1', port: 1, timeoutMs: 1000 })).destroy();
      } catch (e) {
        // ECONNREFUSED from inside the namespace means the relay itself answered.
        return (e as { code?: string }).code === 'ECONNREFUSED';
      }
      return true;
    }),
  ]);

  const env = (extra: ClientRunOptions['env'] = {}): string[] => {
    const base: Record<string, string | undefined> = {
      HOME: client.home,
      USER: CLIENT_USER,
      LOGNAME: CLIENT_USER,
      SHELL: '/bin/bash',
      PATH: `${app.pathDir}:/usr/local/bin:/usr/bin:/bin`,
      LANG: 'C.UTF-8',
      XDG_RUNTIME_DIR: files.runtimeDir,
      ...extra,
    };
    return Object.entries(base)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`bad environment variable name ${JSON.stringify(k)}`);
        return `${k}=${v}`;
      });
  };
  // setpriv execs in place (runuser would add a PAM-session parent that delays signals by 2 s), so the
  // pid we hold is the client program's own. `env -i` gives it a login-like environment: no
  // SSH_AUTH_SOCK, no CI variables.
  const clientArgv = (argv: readonly string[], extra?: ClientRunOptions['env']): string[] => [
    'ip', 'netns', 'exec', NAMESPACES.client,
    ...asUser(client),
    'env', '-i', ...env(extra), ...argv,
  ];

  const runClient = (argv: readonly string[], opts: ClientRunOptions = {}): Promise<RunResult> =>
    runProcess(clientArgv(argv, opts.env), {
      timeoutMs: opts.timeoutMs ?? 60_000,
      ...(opts.input !== undefined ? { input: opts.input } : {}),
      ...(opts.onStdioHeld ? { onStdioHeld: opts.onStdioHeld } : {}),
    });

  const spawnClient = (argv: readonly string[], opts: Pick<ClientRunOptions, 'env'> = {}): ClientProcess => {
    const child = spawnDetached(clientArgv(argv, opts.env), { stdout: 'pipe', stderr: 'pipe' });
    if (child.pid === undefined) throw new Error(`cannot start ${argv.join(' ')}`);
    const pid = child.pid;
    let out = '';
    let err = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.stderr?.on('data', (b: Buffer) => (err += b.toString('utf8')));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      child.once('exit', (code, signal) => res({ code, signal }));
    });
    let done = false;
    void exited.then(() => (done = true));
    return {
      child,
      pid,
      stdout: () => out,
      stderr: () => err,
      exited,
      async stop() {
        if (done) return;
        killGroup(pid, 'SIGTERM');
        const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      },
    };
  };

  const clientPath = (relPath: string): string => {
    const p = resolve(client.home, relPath);
    if (!p.startsWith(`${client.home}/`)) throw new Error(`${relPath} is outside the client's home`);
    return p;
  };

  const lab: Lab = {
    namespaces: NAMESPACES,
    addresses: ADDRESSES,
    paths: { checkout: CHECKOUT, stateDir: STATE_DIR, runDir: RUN_DIR, appDir: APP_DIR, appPathDir: app.pathDir },
    password,
    users: { server: { name: SERVER_USER }, client: { name: CLIENT_USER, uid: client.uid, gid: client.gid, home: client.home, files, publicKey } },
    hostKeys,
    services: { echoPort: ECHO_PORT, vncFirstPort: VNC_FIRST_PORT, vncLastPort: VNC_LAST_PORT, unixSocket: join(RUN_DIR, UNIX_SOCKET_NAME) },
    app: { nodePath: app.nodePath, isBuilt: app.isBuilt },
    runClient,
    spawnClient,
    vmdesk: (args, opts) => runClient(['vmdesk', ...args], opts),
    ssh: (args, opts) => runClient(['ssh', ...args], opts),
    spawnSsh: (args, opts) => spawnClient(['ssh', ...args], opts),
    clientConnect: (host, port, opts = {}) => connectVia(relaySocket, { host, port, timeoutMs: opts.timeoutMs ?? 5000 }),
    stopSshd: (name, opts) => stopSshdProcess(sshd[name], opts),
    async startSshd(name) {
      await startSshdProcess(sshd[name]);
    },
    async replaceHostKey(name) {
      await stopSshdProcess(sshd[name]);
      hostKeys[name] = await generateHostKey(sshd[name]);
      await startSshdProcess(sshd[name]);
      return hostKeys[name];
    },
    sshdLogMark: (name) => logMark(sshd[name]),
    sshdLogSince: (name, mark) => logSince(sshd[name], mark),
    setLinkUp,
    async writeClientFile(relPath, content, mode = 0o600) {
      const p = clientPath(relPath);
      await mkdir(dirname(p), { recursive: true, mode: 0o700 });
      await chown(dirname(p), client.uid, client.gid);
      await writeFile(p, content, { mode });
      await chown(p, client.uid, client.gid);
      return p;
    },
    readClientFile: (relPath) => readFile(clientPath(relPath), 'utf8'),
  };

  await writeFile(
    join(STATE_DIR, 'lab.json'),
    `${JSON.stringify({ addresses: ADDRESSES, namespaces: NAMESPACES, password, hostKeys: Object.fromEntries(Object.entries(hostKeys).map(([k, v]) => [k, keyOnly(v)])), app }, null, 2)}\n`,
    { mode: 0o600 },
  );
  return lab;
}

/**
 * Stops everything the lab started and deletes its namespaces; logs stay in
 * the state dir until the next labUp. With `purge`, also removes the state
 * dir, the CLI copy in /opt/vmdesk-lab and the two lab users.
 */
export async function labDown(opts: { purge?: boolean } = {}): Promise<void> {
  requireRoot();
  await acquireLabLock();
  await cleanup({ removeState: opts.purge ?? false });
  if (opts.purge) {
    await removeApp();
    for (const user of [CLIENT_USER, SERVER_USER]) {
      if (await lookupUser(user)) await runChecked(['userdel', '--remove', user]).catch(() => runChecked(['userdel', user]));
    }
    await rm(CLIENT_HOME, { recursive: true, force: true });
  }
  await releaseLabLock();
}
