/**
 * The per-user background agent (like ssh's ControlMaster): it owns the SSH
 * chains and listeners of detached tunnels, answers the CLI over a unix
 * socket in the runtime directory, and exits once it holds nothing.
 */
import net from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import { VmdeskError, isVmdeskError } from '../errors.js';
import type { ForwardSpec } from '../forward/types.js';
import type { Prompter } from '../ssh/prompter.js';
import { planHops } from '../ssh/hop-plan.js';
import type { HopSpec } from '../ssh/types.js';
import type { SshChain } from '../ssh/chain.js';
import { ChainPool } from './chain-pool.js';
import { PROTOCOL_VERSION, readMessages, writeMessage, type ControlMessage } from './control-protocol.js';
import { agentSocketPath } from './runtime-dir.js';
import { Tunnel, type TunnelInfo } from './tunnel.js';
import { BUILD_ID, VERSION } from './version.js';

/** Parameters of the `open` request: everything is resolved by the CLI, so the agent needs no config. */
export interface OpenParams {
  dest: string;
  hops: HopSpec[];
  specs: ForwardSpec[];
  autoPort?: boolean;
  acceptNewHostKey?: boolean;
  agentSocket?: string;
  /** Whether the CLI has a terminal to answer prompts. */
  interactive?: boolean;
}

/**
 * Parameters of the `warm` request: a host the CLI is about to hand a tunnel for, sent as soon as the CLI knows
 * it (before its own lookup on the host), so the agent's SSH handshakes overlap with that lookup. The agent
 * resolves the hops itself (ssh -G, as the CLI does) and holds the chain for WARM_HOLD_MS; an `open` with the
 * same hops then finds it connected. A warm chain never prompts: one that needs a passphrase or a new host key
 * fails quietly and the `open` connects again with the CLI's prompter.
 */
export interface WarmParams {
  dest: string;
  configFile?: string;
  jump?: string;
  agentSocket?: string;
}

/** How long a warmed chain waits for the `open` that it was warmed for. */
const WARM_HOLD_MS = 15_000;

export interface HelloResult {
  version: string;
  build: string;
  protocol: number;
  pid: number;
}

export interface AgentOptions {
  dir: string;
  /** Exit after this long with no tunnels and no clients (default 2 s). */
  idleExitMs?: number;
  log?: (line: string) => void;
}

/** Runs the agent until it is idle or asked to shut down. Resolves false if another live agent owns the socket. */
export async function runAgent(opts: AgentOptions): Promise<boolean> {
  const path = agentSocketPath(opts.dir);
  const log = opts.log ?? (() => {});
  const idleExitMs = opts.idleExitMs ?? 2000;
  const pool = new ChainPool({ log });
  const tunnels = new Map<string, Tunnel>();
  /** Hop lists being warmed (see WarmParams), and warm chains held until their `open` (or WARM_HOLD_MS). */
  const warming = new Set<string>();
  const adopted = new Set<string>();
  const warmHops = new Map<string, HopSpec[]>();
  const warmHeld = new Map<string, { chain: SshChain; timer: NodeJS.Timeout }>();
  const dropWarm = (key: string): Promise<void> => {
    const w = warmHeld.get(key);
    if (!w) return Promise.resolve();
    warmHeld.delete(key);
    clearTimeout(w.timer);
    return pool.release(w.chain);
  };
  const clients = new Set<net.Socket>();
  let nextId = 1;
  let idleTimer: NodeJS.Timeout | undefined;
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));

  const server = net.createServer((sock) => {
    clients.add(sock);
    clearTimeout(idleTimer);
    const prompts = new Map<number, { resolve: (a: string) => void; reject: (e: Error) => void }>();
    let promptSeq = 0;
    sock.on('close', () => {
      clients.delete(sock);
      for (const p of prompts.values()) p.reject(new Error('the CLI went away'));
      prompts.clear();
      armIdle();
    });
    sock.on('error', () => {});
    readMessages(
      sock,
      (msg) => {
        const answer = msg.answer as { pid?: number; text?: string; error?: string } | undefined;
        if (answer && typeof answer.pid === 'number') {
          const p = prompts.get(answer.pid);
          prompts.delete(answer.pid);
          if (!p) return;
          if (typeof answer.text === 'string') p.resolve(answer.text);
          else p.reject(new Error(answer.error ?? 'no answer'));
          return;
        }
        const id = msg.id;
        const promptFor = (reqId: number | undefined): Prompter => ({
          ask(question, { echo }) {
            return new Promise<string>((resolve, reject) => {
              const pid = ++promptSeq;
              prompts.set(pid, { resolve, reject });
              writeMessage(sock, { id: reqId, prompt: { pid, question, echo } });
            });
          },
        });
        handle(msg, promptFor(id)).then(
          (result) => writeMessage(sock, { id, result }),
          (err: unknown) => {
            const e = isVmdeskError(err) ? err : new VmdeskError('INTERNAL', (err as Error)?.message ?? String(err), { cause: err });
            if (!isVmdeskError(err)) log(`internal error: ${(err as Error)?.stack ?? String(err)}`);
            writeMessage(sock, { id, error: e.toJSON() });
          },
        );
      },
      () => {},
    );
  });

  function armIdle(): void {
    clearTimeout(idleTimer);
    if (tunnels.size > 0 || clients.size > 0) return;
    idleTimer = setTimeout(() => void shutdown('idle: no tunnels left'), idleExitMs);
  }

  async function shutdown(reason: string): Promise<void> {
    log(`agent exiting (${reason})`);
    server.close();
    try {
      unlinkSync(path);
    } catch {
      /* already gone */
    }
    await Promise.all([...tunnels.values()].map((t) => t.close()));
    tunnels.clear();
    for (const w of warmHeld.values()) clearTimeout(w.timer);
    warmHeld.clear();
    await pool.closeAll();
    for (const c of clients) c.end();
    finish();
  }

  async function stopTunnel(t: Tunnel): Promise<void> {
    tunnels.delete(t.id);
    await t.close();
    await pool.release(t.chain);
    log(`tunnel ${t.id} to ${t.dest} stopped`);
  }

  async function handle(msg: ControlMessage, prompter: Prompter): Promise<unknown> {
    const params = (msg.params ?? {}) as Record<string, unknown>;
    switch (msg.method) {
      case 'hello':
        return { version: VERSION, build: BUILD_ID, protocol: PROTOCOL_VERSION, pid: process.pid } satisfies HelloResult;
      case 'warm': {
        const p = params as unknown as WarmParams;
        // Resolved once per agent: `ssh -G` twice is ~50-70 ms of CPU that the CLI, busy with its own chain, would
        // wait for on a two-core machine. A stale entry (ssh_config edited meanwhile) only warms a chain that the
        // `open`, which brings the CLI's own hops, does not use.
        const target = JSON.stringify([p.dest, p.configFile ?? null, p.jump ?? null]);
        let hops = warmHops.get(target);
        if (!hops) {
          hops = await planHops(p.dest, { ...(p.configFile ? { configFile: p.configFile } : {}), ...(p.jump ? { jump: p.jump } : {}) });
          warmHops.set(target, hops);
        }
        const key = ChainPool.keyOf(hops, p.agentSocket);
        if (pool.has(key) || warming.has(key) || warmHeld.has(key)) return { ok: true };
        warming.add(key);
        log(`warming a chain to ${p.dest}`);
        pool.acquire(hops, { acceptNewHostKey: false, ...(p.agentSocket ? { agentSocket: p.agentSocket } : {}), log }).then(
          (chain) => {
            warming.delete(key);
            // An `open` already took this chain while it connected: its tunnel holds it, the warm reference goes.
            log(`warm chain to ${p.dest} up (${chain.label})`);
            if (adopted.delete(key)) return void pool.release(chain);
            const timer = setTimeout(() => void dropWarm(key).finally(armIdle), WARM_HOLD_MS);
            warmHeld.set(key, { chain, timer });
          },
          (err: unknown) => {
            warming.delete(key);
            log(`warm chain to ${p.dest} not kept: ${(err as Error)?.message ?? String(err)}`);
          },
        );
        return { ok: true };
      }
      case 'open': {
        const p = params as unknown as OpenParams;
        const acquire = () =>
          pool.acquire(p.hops, {
            ...(p.interactive ? { prompter } : {}),
            acceptNewHostKey: p.acceptNewHostKey ?? false,
            ...(p.agentSocket ? { agentSocket: p.agentSocket } : {}),
            log,
          });
        // Joining a warm chain still connecting: if it fails (it had no prompter, or refused a new host key that
        // this request accepts), connect once more with this request's own options.
        const key = ChainPool.keyOf(p.hops, p.agentSocket);
        const joinedWarm = warming.has(key);
        const chain = await acquire().catch((err: unknown) => {
          if (!joinedWarm) throw err;
          return acquire();
        });
        // The tunnel's reference keeps the chain from here on.
        if (warmHeld.has(key)) await dropWarm(key);
        else if (warming.has(key)) adopted.add(key);
        chain.setPrompter(undefined);
        const id = String(nextId++);
        const tunnel = new Tunnel({ id, dest: p.dest, chain, specs: p.specs, autoPort: p.autoPort ?? false, log: (l) => log(`[${id}] ${l}`) });
        try {
          await tunnel.listen();
        } catch (err) {
          await pool.release(chain);
          armIdle();
          throw err;
        }
        tunnels.set(id, tunnel);
        log(`tunnel ${id} to ${p.dest} via ${chain.label}: ${p.specs.length} forward(s)`);
        return tunnel.info() satisfies TunnelInfo;
      }
      case 'list':
        return [...tunnels.values()].map((t) => t.info());
      case 'stop': {
        const all = params.all === true;
        const ids = Array.isArray(params.ids) ? (params.ids as unknown[]).map(String) : [];
        const unknown = ids.filter((i) => !tunnels.has(i));
        if (!all && unknown.length > 0) {
          throw new VmdeskError('TUNNEL_NOT_FOUND', `no tunnel with id ${unknown.join(', ')}`, { hint: 'see `vmdesk ps` for the ids' });
        }
        const chosen = all ? [...tunnels.values()] : ids.map((i) => tunnels.get(i)!);
        await Promise.all(chosen.map((t) => stopTunnel(t)));
        armIdle();
        return { stopped: chosen.map((t) => t.id) };
      }
      case 'shutdown':
        setImmediate(() => void shutdown('asked to shut down'));
        return { ok: true };
      default:
        throw new VmdeskError('AGENT_PROTOCOL', `unknown agent method ${String(msg.method)}`);
    }
  }

  const listening = await new Promise<boolean>((resolve, reject) => {
    const tryListen = (retry: boolean) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EADDRINUSE' || !retry) return reject(err);
        // A socket file exists: a live agent answers on it, a stale one does not.
        const probe = net.connect(path);
        probe.once('connect', () => {
          probe.destroy();
          resolve(false);
        });
        probe.once('error', () => {
          try {
            unlinkSync(path);
          } catch {
            /* raced with another cleanup */
          }
          tryListen(false);
        });
      });
      server.listen(path, () => {
        chmodSync(path, 0o600);
        resolve(true);
      });
    };
    tryListen(true);
  });
  if (!listening) return false;
  log(`agent ${BUILD_ID} pid ${process.pid} listening on ${path}`);
  armIdle();
  await finished;
  return true;
}
