/**
 * Decides whether a hop's host key is trusted, like OpenSSH's verify_host_key() and
 * check_host_key() (sshconnect.c): RevokedHostKeys first, then known_hosts under the host name
 * (or HostKeyAlias) and, with CheckHostIP, under the address, then StrictHostKeyChecking.
 * Differences, all stricter: a changed or revoked key is always refused (OpenSSH's `no`/`off`
 * connects anyway with password authentication disabled), and the decision is made during key
 * exchange, before any authentication is attempted. docs/config.md lists them.
 */
import { debuglog } from 'node:util';
import { VmdeskError } from '../errors.js';
import {
  appendKnownHost,
  checkHostKey,
  fingerprintSha256,
  keyTypeOf,
  knownHostsLines,
  removeCommand,
  type HostKeyVerdict,
} from './known-hosts.js';
import type { Prompter } from './prompter.js';
import { findRevocation } from './revoked-keys.js';
import type { HopSpec } from './types.js';

const debug = debuglog('vmdesk:host-key');

export interface HostKeyPolicyOptions {
  hop: HopSpec;
  hopIndex: number;
  prompter: Prompter | undefined;
  /** `--accept-new-host-key`: trust an unknown key on first use and record it. */
  acceptNew: boolean;
  /**
   * The address a direct TCP hop reached, for CheckHostIP; undefined over ProxyCommand or a
   * previous hop's channel (ssh(1) runs ProxyJump as a ProxyCommand and skips CheckHostIP then).
   */
  remoteAddress?: string | undefined;
}

/** sockaddr_is_local() in OpenSSH: loopback addresses get no CheckHostIP. */
function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase();
  return a === '::1' || /^(::ffff:)?127\./.test(a);
}

/** The address to look up for CheckHostIP, or undefined when ssh(1) would skip that check. */
function checkedAddress(opts: HostKeyPolicyOptions): string | undefined {
  const h = opts.hop.host;
  const ip = opts.remoteAddress;
  if (!h.checkHostIp || ip === undefined || ip === '' || isLoopbackAddress(ip)) return undefined;
  // "if we don't have a hostname to compare with": HostName was the address itself.
  return ip === h.hostName.toLowerCase() ? undefined : ip;
}

/** Returns null when the key is trusted (possibly after recording it), else the error to raise. */
export async function verifyHostKey(key: Buffer, opts: HostKeyPolicyOptions): Promise<VmdeskError | null> {
  const { hop } = opts;
  const h = hop.host;
  const name = h.hostKeyAlias ?? h.hostName;
  // OpenSSH looks a HostKeyAlias up as written, without the port.
  const port = h.hostKeyAlias ? 22 : h.port;
  const files = [...h.userKnownHostsFiles, ...h.globalKnownHostsFiles];
  const context = { hop: hop.label, hopIndex: opts.hopIndex, host: h.hostName, port: h.port };
  const fp = fingerprintSha256(key);
  const type = keyTypeOf(key);

  // verify_host_key(): RevokedHostKeys is consulted before known_hosts, and an unreadable file refuses.
  try {
    const revocation = await findRevocation(key, h.revokedHostKeys);
    if (revocation) {
      const where = revocation.line !== undefined ? `${revocation.file}:${revocation.line}` : `the KRL ${revocation.file}`;
      return new VmdeskError('SSH_HOST_KEY_REVOKED', `host key of ${hop.label} (${name}:${h.port}) is revoked by ${where} (${type} ${fp}); refused before authenticating`, {
        context: { ...context, offered: fp, file: revocation.file, ...(revocation.line !== undefined ? { line: revocation.line } : {}), revokedBy: 'RevokedHostKeys' },
        hint: 'the server presents a key its administrators revoked (ssh_config RevokedHostKeys): contact them',
      });
    }
  } catch (err) {
    if (err instanceof VmdeskError) {
      return new VmdeskError(err.code, `cannot check the host key of ${hop.label}: ${err.message}`, { cause: err, context: { ...context, ...err.context }, ...(err.hint ? { hint: err.hint } : {}) });
    }
    throw err;
  }

  const verdict = await checkHostKey({ host: name, port, key, files });
  const ip = checkedAddress(opts);
  // The address is looked up with the real port even under a HostKeyAlias (get_hostfile_hostname_ipaddr).
  const ipVerdict: HostKeyVerdict | undefined = ip === undefined ? undefined : await checkHostKey({ host: ip, port: h.port, key, files });

  switch (verdict.status) {
    case 'match':
      break;
    case 'revoked':
      return revokedInKnownHosts(hop.label, name, h.port, verdict.file, verdict.line, type, fp, context);
    case 'mismatch': {
      const known = verdict.knownKeys[0]!;
      return new VmdeskError(
        'SSH_HOST_KEY_MISMATCH',
        `HOST KEY CHANGED for ${hop.label} (${name}:${h.port}): it offered ${type} ${fp}, known_hosts has ${known.type} ${known.fingerprint} at ${known.file}:${known.line}; refused before authenticating`,
        {
          context: { ...context, offered: fp, known: known.fingerprint, file: known.file, line: known.line },
          hint: `someone may be intercepting the connection; if the host was really reinstalled, remove the old key with: ${removeCommand(name, port, known.file)}`,
        },
      );
    }
    case 'unknown':
      break;
  }
  // A revoked key stays revoked whatever name it is listed under (stricter than ssh(1), which ignores this for the address).
  if (ipVerdict?.status === 'revoked') return revokedInKnownHosts(hop.label, ip!, h.port, ipVerdict.file, ipVerdict.line, type, fp, context);

  const accepted = verdict.status === 'match' ? true : await acceptUnknown(opts, verdict, name, fp, type);
  if (accepted instanceof VmdeskError) return accepted;

  // check_host_key()'s last step: the address holds another key of this type.
  if (ipVerdict?.status === 'mismatch') {
    const known = ipVerdict.knownKeys[0]!;
    const strict = opts.acceptNew ? 'accept-new' : h.strictHostKeyChecking;
    const message = `the ${type} host key of ${hop.label} (${name}) differs from the key for its address ${ip}: known_hosts has ${known.fingerprint} for it at ${known.file}:${known.line}`;
    let allowed = strict === 'no';
    if (strict === 'ask' && opts.prompter) {
      const answer = await opts.prompter.ask(`Warning: ${message}.\nAre you sure you want to continue connecting (yes/no)? `, { echo: true });
      allowed = answer.trim() === 'yes';
    }
    if (!allowed) {
      return new VmdeskError('SSH_HOST_KEY_MISMATCH', `${message}; refused before authenticating (CheckHostIP)`, {
        context: { ...context, address: ip, offered: fp, known: known.fingerprint, file: known.file, line: known.line },
        hint: `someone may be spoofing DNS for ${name}; if ${ip} really changed hands, remove its old key with: ${removeCommand(ip!, h.port, known.file)}`,
      });
    }
    debug('%s: %s; connecting (StrictHostKeyChecking %s)', hop.label, message, strict);
  }

  // Record what is new: the host (accepted just now) and/or the address, as ssh(1) does, in the first user file.
  const names: { host: string; port: number }[] = [];
  if (verdict.status === 'unknown') names.push({ host: name, port });
  if (ipVerdict?.status === 'unknown') names.push({ host: ip!, port: h.port });
  await record(opts, names, key);
  return null;
}

function revokedInKnownHosts(
  label: string,
  name: string,
  port: number,
  file: string,
  line: number,
  type: string,
  fp: string,
  context: Record<string, unknown>,
): VmdeskError {
  return new VmdeskError('SSH_HOST_KEY_REVOKED', `host key of ${label} (${name}:${port}) is marked @revoked in ${file}:${line} (${type} ${fp}); refused before authenticating`, {
    context: { ...context, offered: fp, file, line, revokedBy: 'known_hosts' },
    hint: 'the server presents a key its administrators revoked: contact them',
  });
}

/** StrictHostKeyChecking for a key known_hosts does not have: true when accepted, else the error. */
async function acceptUnknown(
  opts: HostKeyPolicyOptions,
  verdict: Extract<HostKeyVerdict, { status: 'unknown' }>,
  name: string,
  fp: string,
  type: string,
): Promise<true | VmdeskError> {
  const { hop } = opts;
  const h = hop.host;
  if (opts.acceptNew || h.strictHostKeyChecking === 'accept-new' || h.strictHostKeyChecking === 'no') return true;
  const otherTypes = verdict.otherTypesKnown.length > 0 ? ` (known_hosts has other key types for it: ${verdict.otherTypesKnown.map((k) => k.type).join(', ')})` : '';
  const certNote = verdict.certAuthorityOnly ? ' (known_hosts trusts a @cert-authority for it, and vmdesk cannot verify OpenSSH host certificates)' : '';
  if (h.strictHostKeyChecking === 'ask' && opts.prompter) {
    const answer = await opts.prompter.ask(
      `The authenticity of host '${hop.label}' (${name}:${h.port}) can't be established${otherTypes}${certNote}.\n${type} key fingerprint is ${fp}.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? `,
      { echo: true },
    );
    const a = answer.trim();
    if (a === 'yes' || a === fp) return true;
  }
  const writeFile = h.userKnownHostsFiles[0];
  return new VmdeskError('SSH_HOST_KEY_UNKNOWN', `host key of ${hop.label} (${name}:${h.port}) is not known${otherTypes}${certNote}: ${type} ${fp}`, {
    context: { hop: hop.label, hopIndex: opts.hopIndex, host: h.hostName, port: h.port, offered: fp },
    hint: `check the fingerprint with the host's administrator, then rerun with --accept-new-host-key (it is recorded in ${writeFile ?? 'known_hosts'})`,
  });
}

/** Appends the key under `names` to the first UserKnownHostsFile; like ssh(1), a failed write does not stop the connection. */
async function record(opts: HostKeyPolicyOptions, names: { host: string; port: number }[], key: Buffer): Promise<void> {
  const h = opts.hop.host;
  const writeFile = h.userKnownHostsFiles[0];
  if (names.length === 0 || writeFile === undefined) return;
  for (const line of knownHostsLines(names, key, { hash: h.hashKnownHosts })) {
    await appendKnownHost(writeFile, line).catch((err: unknown) => debug('cannot record a host key in %s: %s', writeFile, String(err)));
  }
}
