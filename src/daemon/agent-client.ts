/**
 * The CLI's side of the agent: connect to the control socket, start the
 * agent when none answers, replace one from another build, and relay the
 * agent's questions (passphrases, host keys) to the person at the terminal.
 */
import net from 'node:net';
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { VmdeskError, errorFromJSON } from '../errors.js';
import type { Prompter } from '../ssh/prompter.js';
import type { HelloResult, WarmParams } from './agent.js';
import { PROTOCOL_VERSION, readMessages, writeMessage, type ControlMessage } from './control-protocol.js';
import { agentLogPath, agentSocketPath, ensureRuntimeDir } from './runtime-dir.js';
import { BUILD_ID } from './version.js';

export interface AgentClientOptions {
  /** argv that starts the agent (e.g. [node, main.js, '__agent']); without it no agent is started. */
  agentCommand?: string[];
  env?: NodeJS.ProcessEnv;
  /** Told when an agent from another build is replaced. */
  onNotice?: (line: string) => void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  prompter: Prompter | undefined;
}

/** A connection to the agent. */
/** How long a freshly spawned agent may take to answer on its socket. */
const AGENT_START_TIMEOUT_MS = 30_000;

/** The connection `prestart` began, until a `connect` takes it. */
let early: Promise<AgentClient | undefined> | undefined;

export class AgentClient {
  private seq = 0;
  private closed = false;
  private readonly pending = new Map<number, Pending>();

  private constructor(private readonly sock: net.Socket) {
    readMessages(
      sock,
      (m) => this.onMessage(m),
      (err) => this.failAll(err),
    );
    sock.on('close', () => {
      this.closed = true;
      this.failAll(new VmdeskError('AGENT_UNAVAILABLE', 'the vmdesk agent closed the connection', { hint: 'see the agent log in the runtime directory' }));
    });
    sock.on('error', () => {});
  }

  /**
   * Start connecting to the agent (spawning one if none answers) now, for a command that will hand it a tunnel
   * once its own work (ssh_config, the VM lookup) is done: the agent's start-up (a new Node process loading ssh2)
   * then overlaps with that work instead of following it. With `warm`, the host the command is about to need is
   * sent too, and the agent connects to it while the CLI does its own lookup there (see WarmParams). The next `connect({ start: true })` takes this
   * connection; if none does, it closes when the CLI exits.
   */
  static prestart(opts: AgentClientOptions, warm?: () => Promise<WarmParams | undefined>): void {
    if (early || !opts.agentCommand) return;
    early = AgentClient.connect({ ...opts, start: true });
    early.catch(() => {});
    // Best effort: a warm chain that cannot be had changes nothing, the `open` connects as it always did.
    if (warm) {
      void Promise.all([early, warm()])
        .then(([client, params]) => (client && params ? client.request('warm', params) : undefined))
        .catch(() => {});
    }
  }

  /** Connect to the running agent, or start one (when allowed). Returns undefined if none runs and `start` is false. */
  static async connect(opts: AgentClientOptions & { start: boolean }): Promise<AgentClient | undefined> {
    if (opts.start && early) {
      const started = early;
      early = undefined;
      const client = await started.catch(() => undefined);
      // A prestarted connection the agent has closed meanwhile (it was replaced, or crashed) is not reused.
      if (client && !client.closed) return client;
    }
    const env = opts.env ?? process.env;
    const dir = ensureRuntimeDir(env);
    const path = agentSocketPath(dir);
    let client = await AgentClient.tryConnect(path);
    if (client) {
      const hello = (await client.request('hello', {})) as HelloResult;
      if (hello.build === BUILD_ID && hello.protocol === PROTOCOL_VERSION) return client;
      // Another build answers: ask it to go (its tunnels end with it), then start ours.
      opts.onNotice?.(`replacing vmdesk agent ${hello.build} (pid ${hello.pid}) with ${BUILD_ID}`);
      await client.request('shutdown', {}).catch(() => {});
      client.close();
      for (let i = 0; i < 50 && (await AgentClient.tryConnect(path).then((c) => (c?.close(), c !== undefined))); i++) await sleep(100);
      client = undefined;
    }
    if (!opts.start || !opts.agentCommand) return undefined;
    const [cmd, ...args] = opts.agentCommand;
    const logFd = openSync(agentLogPath(dir), 'a', 0o600);
    let exited: number | null | undefined;
    try {
      const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', logFd, logFd], env: { ...env, VMDESK_RUNTIME_DIR: dir } });
      child.once('exit', (code) => (exited = code));
      child.unref();
    } finally {
      closeSync(logFd);
    }
    // Usually up in a few hundred ms; a loaded machine (or tsx compiling on first use) can take many seconds.
    // An agent that died is reported at once instead of after the whole wait.
    const deadline = Date.now() + AGENT_START_TIMEOUT_MS;
    while (Date.now() < deadline && exited === undefined) {
      client = await AgentClient.tryConnect(path);
      if (client) return client;
      await sleep(50);
    }
    // Ours may have exited because another client's agent won the race for the socket.
    client = await AgentClient.tryConnect(path);
    if (client) return client;
    throw new VmdeskError('AGENT_UNAVAILABLE', `the vmdesk agent did not start (${exited !== undefined ? `it exited with status ${exited}` : `no answer on ${path} in ${AGENT_START_TIMEOUT_MS / 1000} s`})`, { hint: `see ${agentLogPath(dir)}` });
  }

  private static tryConnect(path: string): Promise<AgentClient | undefined> {
    return new Promise((resolve) => {
      const sock = net.connect(path);
      sock.once('connect', () => {
        sock.removeAllListeners('error');
        resolve(new AgentClient(sock));
      });
      sock.once('error', () => resolve(undefined));
    });
  }

  /** Send one request; `prompter` answers the agent's questions meanwhile. */
  request(method: string, params: unknown, prompter?: Prompter): Promise<unknown> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, prompter });
      writeMessage(this.sock, { id, method, params } as ControlMessage);
    });
  }

  close(): void {
    this.sock.end();
  }

  private onMessage(m: ControlMessage): void {
    const p = typeof m.id === 'number' ? this.pending.get(m.id) : undefined;
    if (!p) return;
    if (m.prompt) {
      const q = m.prompt as { pid: number; question: string; echo: boolean };
      if (!p.prompter) {
        writeMessage(this.sock, { answer: { pid: q.pid, error: 'no terminal' } });
        return;
      }
      p.prompter.ask(q.question, { echo: q.echo }).then(
        (text) => writeMessage(this.sock, { answer: { pid: q.pid, text } }),
        (err: Error) => writeMessage(this.sock, { answer: { pid: q.pid, error: err.message } }),
      );
      return;
    }
    this.pending.delete(m.id!);
    if (m.error) p.reject(errorFromJSON(m.error as Record<string, never>));
    else p.resolve(m.result);
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
