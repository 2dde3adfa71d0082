/**
 * Decides whether a hop's host key is trusted, like OpenSSH's
 * StrictHostKeyChecking, with one difference: a changed key is always
 * refused (there is no override), and the decision is made during key
 * exchange, before any authentication is attempted.
 */
import { VmdeskError } from '../errors.js';
import {
  appendKnownHost,
  checkHostKey,
  fingerprintSha256,
  keyTypeOf,
  knownHostsLine,
  removeCommand,
} from './known-hosts.js';
import type { Prompter } from './prompter.js';
import type { HopSpec } from './types.js';

export interface HostKeyPolicyOptions {
  hop: HopSpec;
  hopIndex: number;
  prompter: Prompter | undefined;
  /** `--accept-new-host-key`: trust an unknown key on first use and record it. */
  acceptNew: boolean;
}

/** Returns null when the key is trusted (possibly after recording it), else the error to raise. */
export async function verifyHostKey(key: Buffer, opts: HostKeyPolicyOptions): Promise<VmdeskError | null> {
  const { hop } = opts;
  const h = hop.host;
  const name = h.hostKeyAlias ?? h.hostName;
  // OpenSSH looks a HostKeyAlias up as written, without the port.
  const port = h.hostKeyAlias ? 22 : h.port;
  const files = [...h.userKnownHostsFiles, ...h.globalKnownHostsFiles];
  const verdict = await checkHostKey({ host: name, port, key, files });
  const context = { hop: hop.label, hopIndex: opts.hopIndex, host: h.hostName, port: h.port };
  const fp = fingerprintSha256(key);
  const type = keyTypeOf(key);
  switch (verdict.status) {
    case 'match':
      return null;
    case 'revoked':
      return new VmdeskError('SSH_HOST_KEY_REVOKED', `host key of ${hop.label} (${name}:${h.port}) is marked @revoked in ${verdict.file}:${verdict.line} (${type} ${fp}); refusing to connect`, {
        context,
        hint: 'the server presents a key its administrators revoked: contact them',
      });
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
  const writeFile = h.userKnownHostsFiles[0];
  const record = async (): Promise<null> => {
    // Like OpenSSH, failing to record the key does not stop a connection the user accepted.
    if (writeFile) await appendKnownHost(writeFile, knownHostsLine(name, port, key, { hash: h.hashKnownHosts })).catch(() => {});
    return null;
  };
  if (opts.acceptNew || h.strictHostKeyChecking === 'accept-new' || h.strictHostKeyChecking === 'no') return record();
  const otherTypes = verdict.otherTypesKnown.length > 0 ? ` (known_hosts has other key types for it: ${verdict.otherTypesKnown.map((k) => k.type).join(', ')})` : '';
  const certNote = verdict.certAuthorityOnly ? ' (known_hosts trusts a @cert-authority for it, and vmdesk cannot verify OpenSSH host certificates)' : '';
  if (h.strictHostKeyChecking === 'ask' && opts.prompter) {
    const answer = await opts.prompter.ask(
      `The authenticity of host '${hop.label}' (${name}:${h.port}) can't be established${otherTypes}${certNote}.\n${type} key fingerprint is ${fp}.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? `,
      { echo: true },
    );
    const a = answer.trim();
    if (a === 'yes' || a === fp) return record();
  }
  return new VmdeskError('SSH_HOST_KEY_UNKNOWN', `host key of ${hop.label} (${name}:${h.port}) is not known${otherTypes}${certNote}: ${type} ${fp}`, {
    context: { ...context, offered: fp },
    hint: `check the fingerprint with the host's administrator, then rerun with --accept-new-host-key (it is recorded in ${writeFile ?? 'known_hosts'})`,
  });
}
