/**
 * Builds the ordered hop list to a destination with OpenSSH's ProxyJump semantics. For `ProxyJump a,b,c`
 * OpenSSH runs `ssh -J a,b -W %h:%p c`, whose own jump is `ssh -J a -W ... b`, then `ssh -W ... a`: so every
 * jump host resolves through ssh_config with its own User/Port/HostName, but only the first one of a list
 * keeps its own ProxyJump/ProxyCommand (the others get -J), and that first one recurses.
 */
import { VmdeskError } from '../errors.js';
import { expandProxyCommand } from './proxy-command.js';
import { currentLocalIdentity, expandPercentTokens, parseDestination, resolveHost, type ResolveOptions } from './ssh-config.js';
import type { HopSpec, ResolvedHost } from './types.js';

/** Options of {@link planHops}: those of `ssh` that shape the chain. */
export interface PlanOptions extends ResolveOptions {
  /** `-J` value (`a,b,user@c:2222`, or `none`); overrides the destination's ProxyJump as on ssh's command line. */
  jump?: string;
  /** Longest chain accepted, destination included. Default 10. */
  maxHops?: number;
}

export const DEFAULT_MAX_HOPS = 10;

/** One element of a ProxyJump / -J list. */
export interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
}

/** Writes a jump spec back as `-J` takes it: `[user@]host[:port]`, IPv6 in brackets. */
export function formatJumpSpec(spec: JumpSpec): string {
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return `${spec.user !== undefined ? `${spec.user}@` : ''}${host}${spec.port !== undefined ? `:${spec.port}` : ''}`;
}

/**
 * Parses a ProxyJump or -J list (`a,user@b:2222,ssh://c`); `none` is the empty list. Errors are USAGE for
 * a command-line value and SSH_CONFIG_INVALID for a config value.
 */
export function parseJumpList(value: string, origin: 'command-line' | 'config' = 'command-line', owner?: string): JumpSpec[] {
  if (value.trim().toLowerCase() === 'none') return [];
  return value.split(',').map((element) => {
    try {
      if (element.toLowerCase() === 'none') throw new VmdeskError('USAGE', '"none" can only stand alone, not inside a jump list');
      return parseDestination(element);
    } catch (cause) {
      const message = `bad jump host "${element}" in ${origin === 'config' ? `ProxyJump${owner ? ` of ${owner}` : ''}` : '-J'} "${value}"`;
      const context = { value, ...(owner ? { host: owner } : {}) };
      throw new VmdeskError(origin === 'config' ? 'SSH_CONFIG_INVALID' : 'USAGE', message, { cause, context, hint: 'jump hosts are [user@]host[:port], separated by commas' });
    }
  });
}

/**
 * ProxyJump hosts and users take %h %n %p %r %% of the host they lead to: OpenSSH pastes them into the
 * implicit `ssh -W` ProxyCommand, which is expanded with that host's tokens.
 */
function expandJumpTokens(list: JumpSpec[], owner: ResolvedHost): JumpSpec[] {
  const tokens = { h: owner.hostName, k: owner.hostKeyAlias ?? owner.alias, n: owner.alias, p: String(owner.port), r: owner.user };
  return list.map((spec) => {
    if (!spec.host.includes('%') && !spec.user?.includes('%')) return spec;
    const expanded = formatJumpSpec({
      ...spec,
      host: expandPercentTokens(spec.host, tokens, 'ProxyJump'),
      ...(spec.user !== undefined ? { user: expandPercentTokens(spec.user, tokens, 'ProxyJump') } : {}),
    });
    return parseJumpList(expanded, 'config', owner.alias)[0] ?? spec;
  });
}

function compactEndpoint(host: ResolvedHost): string {
  const name = host.hostName.includes(':') && host.port !== 22 ? `[${host.hostName}]` : host.hostName;
  return `${host.user}@${name}${host.port === 22 ? '' : `:${host.port}`}`;
}

/** The alias as written when ssh_config gave it a HostName, else `user@host[:port]`. */
function labelFor(written: JumpSpec, host: ResolvedHost): string {
  return host.hostName !== written.host.toLowerCase() ? formatJumpSpec(written) : compactEndpoint(host);
}

/** Identifies one `ssh` invocation of the recursion: the same one twice means OpenSSH would fork forever. */
function invocationKey(spec: JumpSpec): string {
  return formatJumpSpec({ ...spec, host: spec.host.toLowerCase() });
}

interface PlanContext {
  base: ResolveOptions;
  maxHops: number;
}

function loopError(path: string[], again: string): VmdeskError {
  const cycle = [...path.slice(path.indexOf(again)), again].join(' -> ');
  return new VmdeskError('SSH_CONFIG_INVALID', `ProxyJump loop: ${cycle}`, {
    context: { host: path[0], chain: [...path, again] },
    hint: `give one of these hosts "ProxyJump none" in ssh_config (a "Host *" ProxyJump also applies to the jump host itself)`,
  });
}

function tooManyHops(path: string[], maxHops: number): VmdeskError {
  return new VmdeskError('SSH_CONFIG_INVALID', `the chain needs more than ${maxHops} hops: ${path.join(' -> ')}`, {
    context: { chain: path, maxHops },
    hint: 'check ProxyJump in ssh_config, or raise maxHops',
  });
}

/** Hops for a jump list, in connection order; the last one is the hop the list's owner is reached from. */
async function hopsThroughJumps(list: JumpSpec[], ctx: PlanContext, path: string[]): Promise<HopSpec[]> {
  const [head, ...tail] = list;
  if (!head) return [];
  const headKey = invocationKey(head);
  if (path.includes(headKey)) throw loopError(path, headKey);
  // Each recursion level adds at least one hop, so this also stops token-driven endless recursion (ProxyJump j-%h).
  if (path.length + list.length > ctx.maxHops) throw tooManyHops([...path, ...list.map(formatJumpSpec)], ctx.maxHops);

  const resolveSpec = (spec: JumpSpec, jump: string | undefined): Promise<ResolvedHost> =>
    resolveHost(spec.host.includes(':') ? `[${spec.host}]` : spec.host, {
      ...ctx.base,
      ...(spec.user !== undefined ? { user: spec.user } : {}),
      ...(spec.port !== undefined ? { port: spec.port } : {}),
      ...(jump !== undefined ? { jump } : {}),
    });
  // Every `ssh -G` is independent: the head (which recurses) and the -J'd tail resolve in parallel.
  const [headHops, ...tailHosts] = await Promise.all([
    resolveSpec(head, undefined).then((host) => hopsTo(host, labelFor(head, host), ctx, [...path, headKey])),
    ...tail.map((spec, i) => resolveSpec(spec, list.slice(0, i + 1).map(formatJumpSpec).join(','))),
  ]);
  const tailHops = tailHosts.map((host, i): HopSpec => ({ label: labelFor(tail[i] ?? { host: host.alias }, host), host, transport: { kind: 'via-previous-hop' } }));
  return [...headHops, ...tailHops];
}

/** Hops up to and including `host`. */
async function hopsTo(host: ResolvedHost, label: string, ctx: PlanContext, path: string[]): Promise<HopSpec[]> {
  if (host.proxyJump !== undefined) {
    const list = expandJumpTokens(parseJumpList(host.proxyJump, 'config', host.alias), host);
    if (list.length > 0) {
      const before = await hopsThroughJumps(list, ctx, path);
      return [...before, { label, host, transport: { kind: 'via-previous-hop' } }];
    }
  }
  if (host.proxyCommand !== undefined) {
    const command = expandProxyCommand(
      host.proxyCommand,
      { host: host.hostName, port: host.port, user: host.user, alias: host.alias, hostKeyAlias: host.hostKeyAlias },
      currentLocalIdentity(ctx.base.env),
    );
    return [{ label, host, transport: { kind: 'proxy-command', command } }];
  }
  return [{ label, host, transport: { kind: 'tcp' } }];
}

/**
 * Builds the ordered hop list to reach DEST: hops[0] is connected first, the last hop is DEST itself.
 * `-J` (opts.jump) overrides DEST's ProxyJump; a ProxyCommand can only drive hops[0]. A ProxyJump cycle
 * (which would make OpenSSH fork forever) or more than maxHops hops is SSH_CONFIG_INVALID; a host that
 * merely appears twice in an explicit list (`-J a,b,a`) is allowed, as in OpenSSH.
 * @example
 * const hops = await planHops('kvmhost', { jump: 'alice@bastion:2222' });
 * // [{ label: 'alice@bastion:2222', transport: { kind: 'tcp' } }, { label: 'kvmhost', transport: { kind: 'via-previous-hop' } }]
 */
export async function planHops(dest: string, opts: PlanOptions = {}): Promise<HopSpec[]> {
  const maxHops = opts.maxHops ?? DEFAULT_MAX_HOPS;
  if (!Number.isInteger(maxHops) || maxHops < 1) throw new VmdeskError('USAGE', `maxHops must be a positive integer, not ${maxHops}`);
  const written = parseDestination(dest);
  if (opts.jump !== undefined) parseJumpList(opts.jump, 'command-line');
  const { maxHops: _maxHops, ...resolveOptions } = opts;
  const ctx: PlanContext = {
    base: {
      ...(opts.configFile !== undefined ? { configFile: opts.configFile } : {}),
      ...(opts.sshBinary !== undefined ? { sshBinary: opts.sshBinary } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    },
    maxHops,
  };
  const key = invocationKey({ ...written, ...(opts.user !== undefined ? { user: opts.user } : {}), ...(opts.port !== undefined ? { port: opts.port } : {}) });

  // With a token-free -J the jump hosts do not depend on DEST's resolution: resolve both at once.
  const jumpList = opts.jump !== undefined && !opts.jump.includes('%') ? parseJumpList(opts.jump, 'command-line') : undefined;
  let hops: HopSpec[];
  if (jumpList && jumpList.length > 0) {
    const [host, before] = await Promise.all([resolveHost(dest, resolveOptions), hopsThroughJumps(jumpList, ctx, [key])]);
    hops = [...before, { label: labelFor(written, host), host, transport: { kind: 'via-previous-hop' } }];
  } else {
    const host = await resolveHost(dest, resolveOptions);
    hops = await hopsTo(host, labelFor(written, host), ctx, [key]);
  }
  if (hops.length > maxHops) throw tooManyHops(hops.map((h) => h.label), maxHops);
  return hops;
}
