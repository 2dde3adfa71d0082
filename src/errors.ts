/**
 * The one error type of vmdesk. Every expected failure carries a stable `code`
 * (asserted by tests, mapped to exit codes by the CLI in one place), the
 * low-level `cause`, and context naming the hop, host, port or VM involved.
 */

export const ERROR_CODES = [
  'USAGE',
  'CONFIG_INVALID',
  'SSH_CONFIG_INVALID',
  'PORT_SPEC_INVALID',
  'PORT_IN_USE',
  'LISTEN_FAILED',
  'SSH_HOST_KEY_UNKNOWN',
  'SSH_HOST_KEY_MISMATCH',
  'SSH_HOST_KEY_REVOKED',
  'SSH_REVOKED_KEYS_UNREADABLE',
  'SSH_CERT_UNSUPPORTED',
  'SSH_AUTH_FAILED',
  'SSH_HOP_UNREACHABLE',
  'SSH_HOP_TIMEOUT',
  'SSH_PROXY_COMMAND_FAILED',
  'SSH_CONNECTION_LOST',
  'SSH_CHANNEL_REFUSED',
  'SSH_KEY_UNREADABLE',
  'AGENT_UNAVAILABLE',
  'AGENT_PROTOCOL',
  'TUNNEL_NOT_FOUND',
  'VM_NOT_FOUND',
  'LIBVIRT_PERMISSION_DENIED',
  'LIBVIRT_UNAVAILABLE',
  'VIRSH_MISSING',
  'LIBVIRT_COMMAND_FAILED',
  'LIBVIRT_OUTPUT_INVALID',
  'VM_NOT_RUNNING',
  'VM_AMBIGUOUS',
  'VNC_NOT_CONFIGURED',
  'VM_NO_IP',
  'VNC_SOCKET_DENIED',
  'CONFIRMATION_REQUIRED',
  'GRAPHICS_EDIT_UNSUPPORTED',
  'VM_SHUTDOWN_TIMEOUT',
  'VM_NO_NETWORK',
  'DHCP_IP_INVALID',
  'DHCP_IP_CONFLICT',
  'RDCLEANPATH_INVALID',
  'RDP_UNAUTHORIZED',
  'RDP_NEGOTIATION_FAILED',
  'RDP_TLS_FAILED',
  'RDP_CONNECTION_CLOSED',
  'INTERRUPTED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Where an error happened: which hop of which chain, which host, port or VM. */
export interface ErrorContext {
  hop?: string;
  hopIndex?: number;
  host?: string;
  port?: number;
  vm?: string;
  file?: string;
  [key: string]: unknown;
}

/** The single error class of vmdesk; `code` is stable, `message` is for people. */
export class VmdeskError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;
  /** A short hint telling the user what to do next, shown under the message. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; context?: ErrorContext; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VmdeskError';
    this.code = code;
    this.context = options.context ?? {};
    this.hint = options.hint;
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; context: ErrorContext } {
    return { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}), context: this.context };
  }
}

/** True when `err` is a VmdeskError, optionally with the given code. */
export function isVmdeskError(err: unknown, code?: ErrorCode): err is VmdeskError {
  return err instanceof VmdeskError && (code === undefined || err.code === code);
}

/** Rebuilds a VmdeskError from its JSON form (as sent over the agent's control socket). */
export function errorFromJSON(json: { code?: string; message?: string; hint?: string; context?: ErrorContext }): VmdeskError {
  const code = (ERROR_CODES as readonly string[]).includes(json.code ?? '') ? (json.code as ErrorCode) : 'INTERNAL';
  return new VmdeskError(code, json.message ?? 'unknown error', { context: json.context ?? {}, ...(json.hint ? { hint: json.hint } : {}) });
}
