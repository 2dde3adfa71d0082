/** `vmdesk forward`: the seed's `ssh -L ... -N -f` recipes, over one multiplexed chain. */
import { isIP } from 'node:net';
import { AgentClient } from '../../daemon/agent-client.js';
import type { OpenParams } from '../../daemon/agent.js';
import type { TunnelInfo } from '../../daemon/tunnel.js';
import { parseForwardSpecs } from '../../forward/port-spec.js';
import { planHops } from '../../ssh/hop-plan.js';
import type { HopSpec } from '../../ssh/types.js';
import { VmdeskError } from '../../errors.js';
import { formatTable, forwardRows } from '../output.js';
import { choosePrompter } from '../prompters.js';

export interface ForwardOptions {
  login?: string;
  port?: string;
  identity?: string[];
  jump?: string;
  config?: string;
  detach?: boolean;
  bind?: string;
  autoPort?: boolean;
  acceptNewHostKey?: boolean;
  json?: boolean;
}

export interface CliContext {
  /** argv that starts the agent process. */
  agentCommand: string[];
  /** Resolves when the user asks to stop (Ctrl-C, SIGTERM). */
  stopSignal: Promise<string>;
}

function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr === '::1' || (isIP(addr) === 4 && addr.startsWith('127.'));
}

/** Listeners are loopback-only unless the user says otherwise; then say what that means. */
export function warnIfNotLoopback(addresses: string[]): void {
  for (const a of new Set(addresses)) {
    if (!isLoopback(a)) process.stderr.write(`vmdesk: warning: listening on ${a}, not loopback: anyone who can reach this machine can use these forwards\n`);
  }
}

export function parsePortOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 65535) throw new VmdeskError('USAGE', `-p expects a port number from 1 to 65535, got '${value}'`);
  return n;
}

export function printTunnel(info: TunnelInfo, json: boolean, detached: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(info)}\n`);
    return;
  }
  const rows = forwardRows(info.forwards).map((r) => [r.local, '->', r.remote]);
  process.stdout.write(`${formatTable(['LOCAL', '', `REMOTE (on ${info.dest})`], rows)}\n`);
  process.stdout.write(`via ${info.chain}, one SSH connection${detached ? `; tunnel ${info.id} runs in the background (vmdesk ps, vmdesk stop ${info.id})` : '; Ctrl-C stops'}\n`);
}

/** Hand a tunnel to the background agent (started if needed); the terminal answers its questions meanwhile. */
export async function openInAgent(ctx: CliContext, p: Omit<OpenParams, 'interactive' | 'agentSocket'>, started?: Promise<AgentClient | undefined>): Promise<TunnelInfo> {
  const agent = await (started ?? connectAgent(ctx));
  const prompter = choosePrompter();
  try {
    const params: OpenParams = { ...p, interactive: prompter !== undefined, ...(process.env.SSH_AUTH_SOCK ? { agentSocket: process.env.SSH_AUTH_SOCK } : {}) };
    return (await agent!.request('open', params, prompter)) as TunnelInfo;
  } finally {
    agent!.close();
  }
}

/** Connect to the agent, starting it if none runs. */
export function connectAgent(ctx: CliContext): Promise<AgentClient | undefined> {
  return AgentClient.connect({ start: true, agentCommand: ctx.agentCommand, onNotice: (l) => process.stderr.write(`vmdesk: ${l}\n`) });
}

export async function forwardCommand(dest: string, specs: string[], opts: ForwardOptions, ctx: CliContext): Promise<number> {
  const bind = opts.bind ?? '127.0.0.1';
  const forwards = parseForwardSpecs(specs, { bindAddress: bind });
  warnIfNotLoopback(forwards.map((f) => f.bindAddress));
  // Starting the agent (a new Node process) overlaps with reading ssh_config.
  const agentStarted = opts.detach ? connectAgent(ctx) : undefined;
  agentStarted?.catch(() => {});
  const hops: HopSpec[] = await planHops(dest, {
    ...(opts.config ? { configFile: opts.config } : {}),
    ...(opts.login ? { user: opts.login } : {}),
    ...(opts.port ? { port: parsePortOption(opts.port)! } : {}),
    ...(opts.identity?.length ? { identityFiles: opts.identity } : {}),
    ...(opts.jump ? { jump: opts.jump } : {}),
  });
  if (opts.detach) {
    printTunnel(await openInAgent(ctx, { dest, hops, specs: forwards, autoPort: opts.autoPort ?? false, acceptNewHostKey: opts.acceptNewHostKey ?? false }, agentStarted), opts.json ?? false, true);
    return 0;
  }
  // The SSH library is loaded only for foreground tunnels: `-d` hands everything to the agent.
  const [{ SshChain }, { Tunnel }] = await Promise.all([import('../../ssh/chain.js'), import('../../daemon/tunnel.js')]);
  const prompter = choosePrompter();
  const chain = new SshChain(hops, {
    ...(prompter ? { prompter } : {}),
    acceptNewHostKey: opts.acceptNewHostKey ?? false,
    log: (l) => process.stderr.write(`vmdesk: ${l}\n`),
  });
  await chain.connect();
  const tunnel = new Tunnel({ id: 'fg', dest, chain, specs: forwards, autoPort: opts.autoPort ?? false, log: (l) => process.stderr.write(`vmdesk: ${l}\n`) });
  try {
    await tunnel.listen();
  } catch (err) {
    await chain.close();
    throw err;
  }
  printTunnel(tunnel.info(), opts.json ?? false, false);
  const signal = await ctx.stopSignal;
  process.stderr.write(`vmdesk: ${signal}: closing ${forwards.length} forward(s)\n`);
  await tunnel.close();
  await chain.close();
  return 0;
}
