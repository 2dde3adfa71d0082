// What the RDP page says when a connection fails: IronRDP's error kind plus the
// RDCleanPath details vmdesk's endpoint put in the PDU (docs/ui.md, "RDP in the browser").
// Pure, so it has tests; each message names what to do.

/** IronRDP's IronErrorKind (ironrdp-wasm 1.1 pkg/rdp_client.d.ts). */
export const IRON_KIND = { General: 0, WrongPassword: 1, LogonFailure: 2, AccessDenied: 3, RDCleanPath: 4, ProxyConnect: 5, NegotiationFailure: 6 } as const;

export interface RdpFailure {
  /** Stable, for tests and the status line: RDP_WRONG_PASSWORD, RDP_NLA_REQUIRED, RDP_PORT_REFUSED, ... */
  code: string;
  message: string;
}

export interface IronFailure {
  kind: number;
  httpStatus?: number;
  wsa?: number;
  tlsAlert?: number;
  /** The error's own text (IronRDP's backtrace() first line), for the negotiation case. */
  detail?: string;
  /** The proxy had answered and the client was in CredSSP (NLA) when it failed. */
  isSigningIn?: boolean;
}

export function describeIronFailure(f: IronFailure): RdpFailure {
  switch (f.kind) {
    case IRON_KIND.WrongPassword:
    case IRON_KIND.LogonFailure:
      return { code: 'RDP_WRONG_PASSWORD', message: 'The RDP server refused this user name or password.' };
    case IRON_KIND.AccessDenied:
      return { code: 'RDP_ACCESS_DENIED', message: 'The RDP server accepted the password but denies this user a session (Remote Desktop Users group?).' };
    case IRON_KIND.NegotiationFailure:
      return /HYBRID_REQUIRED|CredSSP|NLA/i.test(f.detail ?? '')
        ? { code: 'RDP_NLA_REQUIRED', message: 'The RDP server requires Network Level Authentication (NLA).' }
        : { code: 'RDP_NEGOTIATION_FAILED', message: `The RDP server refused the security protocols offered${f.detail ? `: ${f.detail}` : ''}.` };
    case IRON_KIND.ProxyConnect:
      return { code: 'RDP_PROXY_UNREACHABLE', message: 'vmdesk did not answer the RDP WebSocket (is `vmdesk ui` still running?).' };
    case IRON_KIND.RDCleanPath:
      return describeCleanPath(f);
    default:
      // FreeRDP's server (and others) just close the connection when NLA refuses the credentials;
      // Windows sends STATUS_LOGON_FAILURE, which IronRDP reports as WrongPassword above.
      if (f.isSigningIn && /not enough bytes|connection (closed|reset)|unexpected eof|CredSSP/i.test(f.detail ?? '')) {
        return { code: 'RDP_LOGON_FAILED', message: 'The RDP server closed the connection during sign-in (NLA): most likely a wrong user name or password.' };
      }
      return { code: 'RDP_FAILED', message: `The RDP session failed${f.detail ? `: ${f.detail}` : ''}.` };
  }
}

function describeCleanPath(f: IronFailure): RdpFailure {
  if (f.wsa === 10061) return { code: 'RDP_PORT_REFUSED', message: "Nothing accepts connections on the guest's RDP port (3389): is Remote Desktop enabled in the guest, and its firewall open?" };
  if (f.wsa === 10060) return { code: 'RDP_PORT_TIMEOUT', message: "The guest's RDP port (3389) did not answer in time." };
  if (f.wsa === 10065 || f.wsa === 10051) return { code: 'RDP_NO_ROUTE', message: 'The hypervisor has no route to the guest.' };
  if (f.wsa !== undefined) return { code: 'RDP_SOCKET_ERROR', message: `The connection to the guest's RDP port failed (Windows socket error ${f.wsa}).` };
  if (f.tlsAlert !== undefined) return { code: 'RDP_TLS_FAILED', message: `The TLS handshake with the RDP server failed (TLS alert ${f.tlsAlert}).` };
  if (f.httpStatus === 401) return { code: 'RDP_UNAUTHORIZED', message: 'vmdesk refused this page\'s RDP ticket: reload the page.' };
  if (f.httpStatus === 409) return { code: 'RDP_NO_TARGET', message: 'The VM is not running or has no IP address now.' };
  if (f.httpStatus === 404) return { code: 'RDP_NO_TARGET', message: 'No such VM on this host.' };
  if (f.httpStatus === 502) return { code: 'RDP_PATH_FAILED', message: 'vmdesk could not reach the guest through the SSH chain.' };
  if (f.httpStatus === 400) return { code: 'RDP_BAD_REQUEST', message: 'vmdesk refused the RDP request as malformed.' };
  return { code: 'RDP_FAILED', message: `The RDP connection failed${f.httpStatus ? ` (HTTP ${f.httpStatus})` : ''}.` };
}
