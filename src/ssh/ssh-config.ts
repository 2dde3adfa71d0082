/**
 * Resolves a destination the way OpenSSH does: by asking `ssh -G` (the only
 * exact implementation of ssh_config(5): Include, Match, first-value-wins,
 * canonicalisation) and parsing its `key value` dump. Without an `ssh` binary
 * it falls back to the `ssh-config` package plus OpenSSH's defaults.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { debuglog } from 'node:util';
import type SSHConfigType from 'ssh-config';
import { VmdeskError } from '../errors.js';
import type { ResolvedHost } from './types.js';

const debug = debuglog('vmdesk:ssh-config');

/** Options mirroring the `ssh` command line that influence how a destination resolves. */
export interface ResolveOptions {
  /** `-F`: the only config file read (`none`: none). Default: ~/.ssh/config then /etc/ssh/ssh_config. */
  configFile?: string;
  /** `-l`: wins over `user@` in the destination and over `User` in the config, as in OpenSSH. */
  user?: string;
  /** `-p`: wins over `:port` in the destination and over `Port` in the config. */
  port?: number;
  /** `-i`: tried before the config's IdentityFile entries; OpenSSH drops files that do not exist. */
  identityFiles?: string[];
  /** `-J`: resolve as `ssh -J jump dest` would; ProxyJump/ProxyCommand then follow OpenSSH's -J rules. */
  jump?: string;
  /** The `ssh` binary to ask; `null` forces the ssh-config fallback. Default: `ssh` from PATH. */
  sshBinary?: string | null;
  /** Environment for `ssh -G` and for `${VAR}` expansion. Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

/** vmdesk keeps chains alive even when ssh_config says ServerAliveInterval 0 (OpenSSH's "off"). */
export const DEFAULT_SERVER_ALIVE_INTERVAL_MS = 15_000;
/** `ssh -G` takes ~10 ms; a slower answer means a hung `Match exec` or a DNS canonicalisation. */
const SSH_G_TIMEOUT_MS = 5_000;
/** OpenSSH's READCONF_MAX_DEPTH for nested Include. */
const MAX_INCLUDE_DEPTH = 16;

/** Facts about the local user that OpenSSH substitutes into paths (`~`, %d, %u, %i, %l, %L). */
export interface LocalIdentity {
  userName: string;
  /** From the password database, as OpenSSH's tilde_expand_filename uses; not $HOME. */
  homeDir: string;
  uid: number;
  /** gethostname(), used by %l, %L and %C. */
  hostName: string;
  env: NodeJS.ProcessEnv;
}

/** The local identity of this process, with `env` for `${VAR}` expansion. */
export function currentLocalIdentity(env: NodeJS.ProcessEnv = process.env): LocalIdentity {
  let userName: string;
  let homeDir: string;
  try {
    const info = os.userInfo();
    userName = info.username;
    homeDir = info.homedir;
  } catch {
    userName = env['USER'] ?? env['LOGNAME'] ?? '';
    homeDir = os.homedir();
  }
  return { userName, homeDir, uid: typeof process.getuid === 'function' ? process.getuid() : -1, hostName: os.hostname(), env };
}

// ---------------------------------------------------------------------------
// Destinations

/** Characters OpenSSH's valid_hostname() refuses, plus `,` (it splits -J lists) and brackets. */
const BAD_HOST_CHARS = /['`"$\\;&<>|(){}\s\p{Cc},[\]@]/u;
const BAD_USER_CHARS = /['`"$;&<>|(){}\s\p{Cc}]/u;

function usage(message: string, dest: string, hint?: string): VmdeskError {
  return new VmdeskError('USAGE', message, { context: { host: dest }, ...(hint ? { hint } : {}) });
}

function parsePort(text: string, dest: string): number {
  if (!/^\d{1,5}$/.test(text)) throw usage(`bad port "${text}" in "${dest}"`, dest, 'a port is a number from 1 to 65535');
  const port = Number(text);
  if (port < 1 || port > 65535) throw usage(`bad port ${port} in "${dest}"`, dest, 'a port is a number from 1 to 65535');
  return port;
}

function checkHost(host: string, dest: string): string {
  if (host === '') throw usage(`no host in "${dest}"`, dest);
  if (host.startsWith('-') || BAD_HOST_CHARS.test(host)) throw usage(`host name contains invalid characters: "${host}"`, dest);
  return host;
}

function checkUser(user: string, dest: string): string {
  if (user === '') throw usage(`empty user name in "${dest}"`, dest);
  if (user.startsWith('-') || BAD_USER_CHARS.test(user)) throw usage(`user name contains invalid characters: "${user}"`, dest);
  return user;
}

/** Splits `host`, `host:port`, `[v6]`, `[v6]:port`; a bare address with several colons is an IPv6 host. */
function splitHostPort(text: string, dest: string): { host: string; port?: number } {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw usage(`unbalanced "[" in "${dest}"`, dest);
    const host = checkHost(text.slice(1, close), dest);
    const rest = text.slice(close + 1);
    if (rest === '') return { host };
    if (!rest.startsWith(':')) throw usage(`unexpected "${rest}" after "]" in "${dest}"`, dest);
    return { host, port: parsePort(rest.slice(1), dest) };
  }
  const colon = text.indexOf(':');
  if (colon >= 0 && colon === text.lastIndexOf(':')) {
    return { host: checkHost(text.slice(0, colon), dest), port: parsePort(text.slice(colon + 1), dest) };
  }
  if (colon >= 0 && !isIPv6(text.replace(/%[\w.-]+$/, ''))) throw usage(`cannot tell host from port in "${dest}"`, dest, 'write IPv6 addresses as [addr]:port');
  return { host: checkHost(text, dest) };
}

/**
 * Parses `[user@]host[:port]`, `[user@][v6]:port` or `ssh://[user@]host[:port]` (RFC 3986 / draft-ietf-secsh-scp-sftp-ssh-uri).
 * OpenSSH's `ssh` itself takes no `:port` in DEST; vmdesk does and turns it into `-p`.
 */
export function parseDestination(dest: string): { user?: string; host: string; port?: number } {
  if (typeof dest !== 'string' || dest.trim() === '') throw usage('empty destination', String(dest));
  let text = dest;
  let uriUser: string | undefined;
  const uri = /^ssh:\/\//i.exec(text);
  if (uri) {
    text = text.slice(uri[0].length);
    const slash = text.indexOf('/');
    if (slash >= 0) {
      if (text.slice(slash) !== '/') throw usage(`an ssh:// destination takes no path: "${dest}"`, dest);
      text = text.slice(0, slash);
    }
    const at = text.lastIndexOf('@');
    if (at >= 0) {
      // RFC draft: userinfo may carry ";fingerprint=..." connection parameters, which OpenSSH ignores.
      const userinfo = text.slice(0, at).split(';')[0] ?? '';
      try {
        uriUser = decodeURIComponent(userinfo);
      } catch (cause) {
        throw new VmdeskError('USAGE', `bad percent-encoding in the user of "${dest}"`, { cause, context: { host: dest } });
      }
      text = text.slice(at + 1);
    }
    const hp = splitHostPort(text, dest);
    return { ...(uriUser !== undefined ? { user: checkUser(uriUser, dest) } : {}), ...hp };
  }
  const at = text.lastIndexOf('@');
  const user = at >= 0 ? checkUser(text.slice(0, at), dest) : undefined;
  const hp = splitHostPort(at >= 0 ? text.slice(at + 1) : text, dest);
  return { ...(user !== undefined ? { user } : {}), ...hp };
}

// ---------------------------------------------------------------------------
// Token expansion (ssh_config(5) TOKENS and ENVIRONMENT VARIABLES)

/** Expands `%x` tokens; `%%` is a literal `%`, any other unknown token is an error as in OpenSSH's percent_expand(). */
export function expandPercentTokens(template: string, tokens: Readonly<Record<string, string>>, what: string): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== '%') {
      out += c;
      continue;
    }
    const key = template[++i];
    if (key === '%') out += '%';
    else if (key !== undefined && Object.hasOwn(tokens, key)) out += tokens[key];
    else {
      throw new VmdeskError('SSH_CONFIG_INVALID', key === undefined ? `${what}: "%" at the end of "${template}"` : `${what}: unknown token %${key} in "${template}"`, {
        context: { value: template },
        hint: `${what} accepts ${Object.keys(tokens).map((k) => `%${k}`).join(' ')} and %%`,
      });
    }
  }
  return out;
}

/** Expands `${VAR}` as OpenSSH's dollar_expand(): an unset variable is an error. */
function expandDollarVars(value: string, env: NodeJS.ProcessEnv, what: string): string {
  return value.replace(/\$\{([^}]*)\}?/g, (whole, name: string) => {
    if (!whole.endsWith('}')) throw new VmdeskError('SSH_CONFIG_INVALID', `${what}: unterminated "\${" in "${value}"`, { context: { value } });
    const v = env[name];
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || v === undefined) {
      throw new VmdeskError('SSH_CONFIG_INVALID', `${what}: environment variable \${${name}} has no value`, { context: { value } });
    }
    return v;
  });
}

let passwdHomes: Map<string, string> | undefined;
function homeOfUser(name: string): string | undefined {
  if (!passwdHomes) {
    passwdHomes = new Map();
    try {
      for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const f = line.split(':');
        if (f.length >= 6 && f[0]) passwdHomes.set(f[0], f[5] ?? '');
      }
    } catch {
      // No passwd file (Windows, some containers): only `~` and `~me` expand.
    }
  }
  return passwdHomes.get(name);
}

/** `~` and `~user` at the start of a path, as OpenSSH's tilde_expand_filename(). */
export function expandTilde(value: string, local: LocalIdentity): string {
  if (!value.startsWith('~')) return value;
  const slash = value.indexOf('/');
  const name = slash < 0 ? value.slice(1) : value.slice(1, slash);
  const rest = slash < 0 ? '' : value.slice(slash);
  const home = name === '' || name === local.userName ? local.homeDir : homeOfUser(name);
  if (home === undefined) throw new VmdeskError('SSH_CONFIG_INVALID', `unknown user in "${value}"`, { context: { value } });
  return home.replace(/\/+$/, '') + rest;
}

/** What the client-side tokens (%C %d %h %i %k %L %l %n %p %r %u, and %j of newer OpenSSH) stand for. */
export interface ClientTokenSource {
  alias: string;
  hostName: string;
  port: number;
  user: string;
  hostKeyAlias?: string | undefined;
  proxyJump?: string | undefined;
}

function clientTokens(h: ClientTokenSource, local: LocalIdentity): Record<string, string> {
  const port = String(h.port);
  return {
    // %C is SHA-1 of %l%h%p%r in OpenSSH 9.2 (later versions append %j).
    C: createHash('sha1').update(local.hostName + h.hostName + port + h.user).digest('hex'),
    d: local.homeDir,
    h: h.hostName,
    i: String(local.uid),
    j: h.proxyJump ?? '',
    k: h.hostKeyAlias ?? h.alias,
    L: local.hostName.split('.')[0] ?? local.hostName,
    l: local.hostName,
    n: h.alias,
    p: port,
    r: h.user,
    u: local.userName,
  };
}

/** Expands a path option the way OpenSSH does for IdentityFile: `~`, then `${VAR}`, then `%` tokens. */
function expandClientPath(value: string, h: ClientTokenSource, local: LocalIdentity, what: string): string {
  return expandPercentTokens(expandDollarVars(expandTilde(value, local), local.env, what), clientTokens(h, local), what);
}

// ---------------------------------------------------------------------------
// `ssh -G` output

type OptionValues = Map<string, string[]>;

function collectValues(text: string): OptionValues {
  const values: OptionValues = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const sp = line.indexOf(' ');
    const key = (sp < 0 ? line : line.slice(0, sp)).toLowerCase();
    const value = sp < 0 ? '' : line.slice(sp + 1);
    const list = values.get(key);
    if (list) list.push(value);
    else values.set(key, [value]);
  }
  return values;
}

function invalidOutput(alias: string, message: string): VmdeskError {
  return new VmdeskError('SSH_CONFIG_INVALID', `${message} in the ssh_config resolution of "${alias}"`, {
    context: { host: alias },
    hint: `run \`ssh -G ${alias}\` to see what OpenSSH resolves`,
  });
}

function yesNo(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  return fallback;
}

function strictness(value: string | undefined): ResolvedHost['strictHostKeyChecking'] {
  switch (value?.toLowerCase()) {
    case 'yes':
    case 'true':
      return 'yes';
    case 'no':
    case 'false':
    case 'off':
      return 'no';
    case 'accept-new':
      return 'accept-new';
    default:
      return 'ask';
  }
}

function seconds(value: string | undefined, alias: string, key: string): number | undefined {
  if (value === undefined || value.toLowerCase() === 'none') return undefined;
  if (!/^\d+$/.test(value)) throw invalidOutput(alias, `bad ${key} "${value}"`);
  return Number(value);
}

/**
 * `ssh -G` prints a file list space-separated and unquoted, so a path containing a space cannot be
 * told from two paths: it splits into two (documented in docs/config.md).
 */
function knownHostsList(lines: string[] | undefined, fallback: string[]): string[] {
  if (!lines) return fallback;
  const files = lines.flatMap((l) => l.split(/\s+/)).filter((f) => f !== '');
  return files.length === 1 && files[0]?.toLowerCase() === 'none' ? [] : files;
}

function noneToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value.toLowerCase() === 'none' ? undefined : value;
}

/** Turns `ssh -G`-shaped option values into a ResolvedHost; shared by the ssh path and the fallback. */
function buildResolvedHost(alias: string, values: OptionValues, local: LocalIdentity): ResolvedHost {
  const first = (key: string): string | undefined => values.get(key)?.[0];
  const hostName = first('hostname');
  const user = first('user');
  const portText = first('port');
  if (!hostName) throw invalidOutput(alias, 'no hostname');
  if (user === undefined) throw invalidOutput(alias, 'no user');
  if (!portText || !/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw invalidOutput(alias, `bad port "${portText ?? ''}"`);
  const port = Number(portText);
  const hostKeyAlias = noneToUndefined(first('hostkeyalias'));
  const proxyJump = noneToUndefined(first('proxyjump'));
  const proxyCommand = noneToUndefined(first('proxycommand'));
  const tokenSource: ClientTokenSource = { alias, hostName, port, user, hostKeyAlias, proxyJump };
  // OpenSSH 9.2's dump leaves IdentityFile/CertificateFile unexpanded (ssh.c expands them after -G exits);
  // newer releases print them expanded, where this is a no-op unless a path holds a literal `%`.
  const paths = (key: string): string[] => (values.get(key) ?? []).map((f) => expandClientPath(f, tokenSource, local, key));

  let identityAgent = first('identityagent');
  if (identityAgent?.startsWith('$')) {
    // ssh_config(5): a value starting with `$` names an environment variable holding the socket path.
    identityAgent = local.env[identityAgent.slice(1)] ?? 'none';
  }

  const interval = seconds(first('serveraliveinterval'), alias, 'serveraliveinterval') ?? 0;
  const connectTimeout = seconds(first('connecttimeout'), alias, 'connecttimeout');
  const countText = first('serveralivecountmax');
  const home = local.homeDir.replace(/\/+$/, '');
  return {
    alias,
    hostName,
    port,
    user,
    identityFiles: paths('identityfile'),
    certificateFiles: paths('certificatefile'),
    identitiesOnly: yesNo(first('identitiesonly'), false),
    identityAgent,
    proxyJump,
    proxyCommand,
    userKnownHostsFiles: knownHostsList(values.get('userknownhostsfile'), [`${home}/.ssh/known_hosts`, `${home}/.ssh/known_hosts2`]),
    // ssh -G prints these as written; ssh.c only expands `~` in them (tilde_expand_paths), with the passwd home.
    globalKnownHostsFiles: knownHostsList(values.get('globalknownhostsfile'), ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']).map((f) => expandTilde(f, local)),
    // OpenSSH 9.4+ expands `~`, ${VAR} and %-tokens before the dump; 9.2 prints the value raw (and then
    // opens it as written, so `~` there names a relative path): expanding here gives what both versions mean.
    revokedHostKeys: knownHostsList(values.get('revokedhostkeys'), []).map((f) => expandClientPath(f, tokenSource, local, 'revokedhostkeys')),
    checkHostIp: yesNo(first('checkhostip'), false),
    strictHostKeyChecking: strictness(first('stricthostkeychecking')),
    hashKnownHosts: yesNo(first('hashknownhosts'), false),
    hostKeyAlias,
    connectTimeoutMs: connectTimeout === undefined || connectTimeout === 0 ? undefined : connectTimeout * 1000,
    serverAliveIntervalMs: interval === 0 ? DEFAULT_SERVER_ALIVE_INTERVAL_MS : interval * 1000,
    serverAliveCountMax: countText !== undefined && /^\d+$/.test(countText) ? Number(countText) : 3,
    batchMode: yesNo(first('batchmode'), false),
    passwordAuthentication: yesNo(first('passwordauthentication'), true),
    kbdInteractiveAuthentication: yesNo(first('kbdinteractiveauthentication'), true),
    // `unbound` and `host-bound` (OpenSSH 8.9+) still mean "use public keys".
    pubkeyAuthentication: yesNo(first('pubkeyauthentication'), true),
  };
}

/** Parses the `key value` dump of `ssh -G` for `alias`; pure except for `~`/%-token facts taken from `local`. */
export function parseSshGOutput(alias: string, text: string, local: LocalIdentity = currentLocalIdentity()): ResolvedHost {
  return buildResolvedHost(alias, collectValues(text), local);
}

/** Pulls "FILE line N" (or "FILE: line N:") out of OpenSSH's config error messages. */
function configErrorFrom(stderr: string, host: string, cause: unknown): VmdeskError {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('Pseudo-terminal'));
  const located = lines.map((l) => /^(.+?):? line (\d+):? (.*)$/.exec(l)).find((m) => m !== null);
  const opened = lines.map((l) => /^Can't open user config file (.+?): (.*)$/.exec(l)).find((m) => m !== null);
  const summary = lines.filter((l) => !/terminating, \d+ bad configuration options/.test(l)).join('; ') || 'ssh -G failed';
  if (located) {
    const [, file = '', line = '', what = ''] = located;
    return new VmdeskError('SSH_CONFIG_INVALID', `${file} line ${line}: ${what}`, {
      cause,
      context: { host, file, line: Number(line) },
      hint: `fix line ${line} of ${file}`,
    });
  }
  if (opened) {
    return new VmdeskError('SSH_CONFIG_INVALID', `cannot open ssh config ${opened[1]}: ${opened[2]}`, { cause, context: { host, file: opened[1] } });
  }
  return new VmdeskError('SSH_CONFIG_INVALID', `ssh -G ${host}: ${summary}`, { cause, context: { host }, hint: `run \`ssh -G ${host}\` to see what OpenSSH says` });
}

interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs `ssh -G`; resolves undefined when the binary does not exist (so the caller falls back). */
function runSshG(binary: string, argv: string[], env: NodeJS.ProcessEnv, host: string): Promise<ExecResult | undefined> {
  return new Promise((resolve, reject) => {
    execFile(binary, argv, { env, timeout: SSH_G_TIMEOUT_MS, maxBuffer: 1 << 20, windowsHide: true }, (err, stdout, stderr) => {
      if (!err) {
        resolve({ stdout, stderr });
        return;
      }
      const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
      if (e.code === 'ENOENT') {
        resolve(undefined);
        return;
      }
      if (e.killed) {
        reject(new VmdeskError('SSH_CONFIG_INVALID', `ssh -G ${host} did not answer within ${SSH_G_TIMEOUT_MS / 1000} s`, {
          cause: err,
          context: { host },
          hint: 'a Match exec command or host name canonicalisation in ssh_config is hanging',
        }));
        return;
      }
      reject(configErrorFrom(stderr, host, err));
    });
  });
}

function sshArgv(host: string, user: string | undefined, port: number | undefined, opts: ResolveOptions): string[] {
  const argv = ['-G'];
  if (opts.configFile !== undefined) argv.push('-F', opts.configFile);
  if (user !== undefined) argv.push('-l', user);
  if (port !== undefined) argv.push('-p', String(port));
  for (const file of opts.identityFiles ?? []) argv.push('-i', file);
  if (opts.jump !== undefined) argv.push('-J', opts.jump);
  argv.push('--', host);
  return argv;
}

/**
 * Resolves DEST (`alias`, `host`, `user@host`, `[user@]host[:port]`, `ssh://user@host:port`) like OpenSSH,
 * by running `ssh -G`. `opts.user`/`opts.port` act as `-l`/`-p` and win over the destination's own.
 * Without an `ssh` binary it falls back to the ssh-config package, which is limited: an Include of Host/Match
 * sections from inside a Host/Match block is skipped, `Match exec` is never run (never matches), `Match
 * canonical`/`tagged`/`localnetwork` never match, unknown keywords are not reported.
 * @example
 * const h = await resolveHost('kvmhost', { configFile: '/etc/vmdesk/ssh_config' });
 * // h.hostName '192.168.0.2', h.proxyJump 'jump'
 */
export async function resolveHost(dest: string, opts: ResolveOptions = {}): Promise<ResolvedHost> {
  const d = parseDestination(dest);
  const user = opts.user !== undefined ? checkUser(opts.user, dest) : d.user;
  const port = opts.port !== undefined ? parsePort(String(opts.port), dest) : d.port;
  const env = opts.env ?? process.env;
  const local = currentLocalIdentity(env);
  const binary = opts.sshBinary === undefined ? 'ssh' : opts.sshBinary;
  if (binary !== null) {
    const result = await runSshG(binary, sshArgv(d.host, user, port, opts), env, d.host);
    if (result) {
      // e.g. "Warning: Identity file X not accessible": OpenSSH drops that -i file and goes on, so do we.
      for (const line of result.stderr.split('\n')) if (line.trim() !== '' && !line.startsWith('Pseudo-terminal')) debug('ssh -G %s: %s', d.host, line);
      return parseSshGOutput(d.host, result.stdout, local);
    }
    if (opts.sshBinary !== undefined && opts.sshBinary !== 'ssh') {
      throw new VmdeskError('USAGE', `ssh binary not found: ${binary}`, { context: { host: d.host }, hint: 'install OpenSSH or leave sshBinary unset' });
    }
    debug('no ssh binary on PATH; resolving %s with the ssh-config fallback', d.host);
  }
  return resolveWithoutSsh(d.host, user, port, opts, local);
}

// ---------------------------------------------------------------------------
// Fallback without an `ssh` binary

const DEFAULT_IDENTITY_FILES = ['~/.ssh/id_rsa', '~/.ssh/id_ecdsa', '~/.ssh/id_ecdsa_sk', '~/.ssh/id_ed25519', '~/.ssh/id_ed25519_sk', '~/.ssh/id_dsa'];

/** Time values as OpenSSH's convtime(): `90`, `1m30s`, `2h` (s m h d w, case-insensitive). */
function convTime(value: string, what: string): number {
  const units: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  if (!/^(\d+[smhdw]?)+$/i.test(value)) throw new VmdeskError('SSH_CONFIG_INVALID', `${what}: bad time value "${value}"`, { context: { value } });
  let total = 0;
  for (const m of value.matchAll(/(\d+)([smhdw]?)/gi)) total += Number(m[1]) * (units[(m[2] ?? '').toLowerCase()] ?? 1);
  return total;
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (const c of pattern) {
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Include arguments: `~` (user configs only), relative to ~/.ssh or /etc/ssh, wildcards in the last component, lexical order. */
async function includeTargets(args: string, isUserConfig: boolean, local: LocalIdentity): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args.split(/\s+/).map((a) => a.replace(/^"(.*)"$/, '$1')).filter((a) => a !== '')) {
    let p = isUserConfig ? expandTilde(arg, local) : arg;
    if (!path.isAbsolute(p)) p = isUserConfig ? path.join(local.homeDir, '.ssh', p) : path.join('/etc/ssh', p);
    const base = path.basename(p);
    if (!/[*?]/.test(base)) {
      out.push(p);
      continue;
    }
    const dir = path.dirname(p);
    const names = await readdir(dir).catch(() => [] as string[]);
    const re = globToRegExp(base);
    out.push(...names.filter((n) => re.test(n) && !n.startsWith('.')).sort().map((n) => path.join(dir, n)));
  }
  return out;
}

/**
 * Inlines `Include` so the ssh-config package sees one text. Exact at top level (a `Host *` after the
 * included text restores the unconditional state) and for included files without Host/Match; an
 * Include of sections inside a Host/Match block cannot be flattened and is skipped.
 */
async function loadConfigText(file: string, isUserConfig: boolean, local: LocalIdentity, depth: number, mustExist: boolean): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if (!mustExist) return '';
    throw new VmdeskError('SSH_CONFIG_INVALID', `cannot read ssh config ${file}`, { cause, context: { file } });
  }
  const out: string[] = [];
  let inSection = false;
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z]+)(?:\s*=\s*|\s+)(.*)$/.exec(line);
    const keyword = m?.[1]?.toLowerCase();
    if (keyword === 'host' || keyword === 'match') inSection = true;
    if (keyword !== 'include' || !m) {
      out.push(line);
      continue;
    }
    if (depth >= MAX_INCLUDE_DEPTH) throw new VmdeskError('SSH_CONFIG_INVALID', `${file}: Include nested too deeply`, { context: { file } });
    for (const target of await includeTargets(m[2] ?? '', isUserConfig, local)) {
      const included = await loadConfigText(target, isUserConfig, local, depth + 1, false);
      const hasSections = /^\s*(host|match)(\s|=)/im.test(included);
      if (!hasSections) out.push(included);
      else if (!inSection) out.push(included, 'Host *');
      else debug('%s: Include %s inside a Host/Match block is not supported without ssh; skipped', file, target);
    }
  }
  return out.join('\n');
}

async function fallbackConfigText(opts: ResolveOptions, local: LocalIdentity): Promise<string> {
  if (opts.configFile !== undefined) {
    return opts.configFile.toLowerCase() === 'none' ? '' : loadConfigText(opts.configFile, true, local, 0, true);
  }
  const user = await loadConfigText(path.join(local.homeDir, '.ssh', 'config'), true, local, 0, false);
  const system = await loadConfigText('/etc/ssh/ssh_config', false, local, 0, false);
  // OpenSSH reads the user file, then the system file, first value winning: `Host *` ends the user file's last block.
  return `${user}\nHost *\n${system}`;
}

function valueText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(' ') : v;
}

/**
 * Resolution without `ssh -G`: the `ssh-config` package's compute() plus OpenSSH's defaults, emitted in
 * `ssh -G`'s shape so both paths share buildResolvedHost(). Limits are listed on resolveHost(); also,
 * CanonicalizeHostname makes the package shell out to nslookup.
 */
async function resolveWithoutSsh(host: string, user: string | undefined, port: number | undefined, opts: ResolveOptions, local: LocalIdentity): Promise<ResolvedHost> {
  // Loaded only here: the common path (ssh -G) should not pay for the parser at start-up.
  const { default: SSHConfig } = await import('ssh-config');
  const config = SSHConfig.parse(await fallbackConfigText(opts, local));
  // The package tracks HostName/User for `Match host`/`Match user` only under their canonical spelling,
  // and compares the unexpanded HostName: normalise both so Match sees what OpenSSH sees.
  const normalise = (lines: SSHConfigType): void => {
    for (const line of lines) {
      if (line.type !== SSHConfig.DIRECTIVE) continue;
      if (/^hostname$/i.test(line.param)) {
        line.param = 'HostName';
        if (typeof line.value === 'string') line.value = expandPercentTokens(line.value, { h: host }, 'HostName').toLowerCase();
      } else if (/^user$/i.test(line.param)) line.param = 'User';
      if ('config' in line) normalise(line.config);
    }
  };
  normalise(config);
  const computed = config.compute({ Host: host, ...(user !== undefined ? { User: user } : {}) }, { ignoreCase: true, matchExec: false });
  const get = (key: string): string | undefined => valueText(computed[key]);
  const values: OptionValues = new Map();
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined) values.set(key, [value]);
  };

  const hostName = get('hostname') ?? host.toLowerCase();
  const resolvedUser = user ?? get('user') ?? local.userName;
  const resolvedPort = port ?? (get('port') !== undefined ? Number(get('port')) : 22);
  set('hostname', hostName);
  set('user', resolvedUser);
  set('port', String(resolvedPort));
  const hostKeyAlias = get('hostkeyalias');
  set('hostkeyalias', hostKeyAlias);

  // ProxyJump and ProxyCommand: whichever is set first wins (readconf.c); -J overrides ProxyJump, and
  // -J none lets a configured ProxyCommand through, as OpenSSH 9.2's `ssh -G -J none` shows.
  const keys = Object.keys(computed);
  const jumpAt = keys.indexOf('proxyjump');
  const commandAt = keys.indexOf('proxycommand');
  if (opts.jump !== undefined) {
    if (opts.jump.toLowerCase() === 'none') set('proxycommand', get('proxycommand'));
    else set('proxyjump', opts.jump);
  } else if (jumpAt >= 0 && (commandAt < 0 || jumpAt < commandAt)) set('proxyjump', get('proxyjump'));
  else if (commandAt >= 0) set('proxycommand', get('proxycommand'));

  const tokenSource: ClientTokenSource = { alias: host, hostName, port: resolvedPort, user: resolvedUser, hostKeyAlias, proxyJump: values.get('proxyjump')?.[0] };
  const expandForDump = (value: string, what: string): string => expandClientPath(value, tokenSource, local, what);

  // `-i` files come first and, as in ssh.c, only when they exist; defaults apply when nothing is configured.
  const cliIdentities = (opts.identityFiles ?? []).map((f) => expandTilde(f, local)).filter((f) => {
    try {
      statSync(f);
      return true;
    } catch {
      return false;
    }
  });
  const configIdentities = ([] as string[]).concat(computed['identityfile'] ?? []);
  const identities = [...cliIdentities, ...configIdentities];
  values.set('identityfile', identities.length > 0 ? identities : DEFAULT_IDENTITY_FILES);
  const certificates = ([] as string[]).concat(computed['certificatefile'] ?? []);
  if (certificates.length > 0) values.set('certificatefile', certificates);

  const agent = get('identityagent');
  if (agent !== undefined) {
    const special = agent === 'SSH_AUTH_SOCK' || agent.startsWith('$') || agent.toLowerCase() === 'none';
    set('identityagent', special ? agent : expandForDump(agent, 'identityagent'));
  }
  const knownHosts = (key: string, defaults: string[], expand: boolean): void => {
    const listed = ([] as string[]).concat(computed[key] ?? []);
    const files = listed.length > 0 ? listed : defaults;
    const none = files.length === 1 && files[0]?.toLowerCase() === 'none';
    values.set(key, [none ? 'none' : files.map((f) => (expand ? expandForDump(f, key) : f)).join(' ')]);
  };
  knownHosts('userknownhostsfile', ['~/.ssh/known_hosts', '~/.ssh/known_hosts2'], true);
  knownHosts('globalknownhostsfile', ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'], false);

  set('revokedhostkeys', get('revokedhostkeys'));
  for (const key of ['checkhostip', 'identitiesonly', 'stricthostkeychecking', 'hashknownhosts', 'serveralivecountmax', 'batchmode', 'passwordauthentication', 'pubkeyauthentication']) {
    set(key, get(key));
  }
  set('kbdinteractiveauthentication', get('kbdinteractiveauthentication') ?? get('challengeresponseauthentication'));
  for (const key of ['connecttimeout', 'serveraliveinterval']) {
    const v = get(key);
    if (v !== undefined) set(key, v.toLowerCase() === 'none' ? 'none' : String(convTime(v, key)));
  }
  // readconf.c fill_default_options(): in batch mode an unset ServerAliveInterval defaults to 300 s.
  if (!values.has('serveraliveinterval') && yesNo(get('batchmode'), false)) set('serveraliveinterval', '300');
  return buildResolvedHost(host, values, local);
}
