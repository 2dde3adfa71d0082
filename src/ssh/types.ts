/** Shared shapes of the ssh layer: a destination resolved like OpenSSH does, and a hop of a chain. */

/** What `ssh -G` says about one destination, in the fields vmdesk uses. */
export interface ResolvedHost {
  /** The name as the user gave it (alias or host), before HostName applies. */
  alias: string;
  hostName: string;
  port: number;
  user: string;
  /** IdentityFile entries, `~` and `%d/%u/%h/%r` expanded; may name files that do not exist (OpenSSH skips those). */
  identityFiles: string[];
  /** CertificateFile entries (ssh2 cannot use OpenSSH certificates: vmdesk reports them). */
  certificateFiles: string[];
  identitiesOnly: boolean;
  /** IdentityAgent: a socket path, `SSH_AUTH_SOCK` or `none`. */
  identityAgent: string | undefined;
  /** ProxyJump as written (`a,b,user@c:22`), undefined when none. */
  proxyJump: string | undefined;
  /** ProxyCommand as written (tokens `%h %p %r` not yet expanded), undefined when none. */
  proxyCommand: string | undefined;
  /** UserKnownHostsFile entries, expanded (`ssh -G` prints them so); the first one is where new keys are recorded. */
  userKnownHostsFiles: string[];
  /** GlobalKnownHostsFile entries, `~` expanded (OpenSSH expands no %-tokens in them). */
  globalKnownHostsFiles: string[];
  /** RevokedHostKeys files (plain public keys or KRLs), `~`, `${VAR}` and %-tokens expanded; empty for none. */
  revokedHostKeys: string[];
  /** CheckHostIP: also look the server's address up in known_hosts (direct TCP hops only, as in OpenSSH). */
  checkHostIp: boolean;
  strictHostKeyChecking: 'yes' | 'no' | 'ask' | 'accept-new';
  hashKnownHosts: boolean;
  /** HostKeyAlias: the name looked up in known_hosts instead of the host name. */
  hostKeyAlias: string | undefined;
  connectTimeoutMs: number | undefined;
  serverAliveIntervalMs: number;
  serverAliveCountMax: number;
  batchMode: boolean;
  passwordAuthentication: boolean;
  kbdInteractiveAuthentication: boolean;
  pubkeyAuthentication: boolean;
}

/** How a hop's transport is made. */
export type HopTransport =
  | { kind: 'tcp' }
  | { kind: 'proxy-command'; command: string }
  | { kind: 'via-previous-hop' };

/** One hop of a chain, in connection order: hops[0] is reached first. */
export interface HopSpec {
  /** A short human name for messages and `ps`: the alias, or user@host:port. */
  label: string;
  host: ResolvedHost;
  transport: HopTransport;
}
