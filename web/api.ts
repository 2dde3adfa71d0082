// The server's HTTP API as docs/ui.md defines it. These shapes are copied, not
// imported: web/ never imports src/ (the bundle must not pull in Node code).
import { NEEDS_LINK, sessionToken } from './session';

export interface HopView {
  label: string;
  state: 'idle' | 'connecting' | 'up' | 'down';
  since: number;
  error?: { code: string; message: string };
}

export interface HostView {
  name: string;
  dest: string;
  hops: HopView[];
  error?: { code: string; message: string; hint?: string };
}

export interface ConsoleView {
  kind: string;
  address: string;
  isExposed: boolean;
  hasPassword: boolean | null;
  isUsable: boolean;
}

export interface VmView {
  name: string;
  uuid: string;
  state: 'running' | 'paused' | 'shut off' | 'other' | 'unknown';
  consoles: ConsoleView[];
  ip?: { address: string; source: 'lease' | 'neigh' | 'agent'; isPinned?: boolean };
  commands: { vnc: string; rdp: string };
}

export interface TunnelView {
  id: string;
  kind: 'rdp' | 'rdp-web' | 'console';
  host: string;
  uuid: string;
  vm: string;
  address?: string;
  state: 'up' | 'connecting' | 'down';
  hops: HopView[];
  active: number;
  bytesIn: number;
  bytesOut: number;
}

export interface HostsReply { demo: boolean; hosts: HostView[] }
export interface VmsReply { host: string; vms: VmView[] }
export interface VmReply { vm: VmView }
export interface RdpReply { tunnelId: string; address: string; port: number; rdpFile: string }
export interface TunnelsEvent { tunnels: TunnelView[] }
export interface TicketReply { ticket: string; expiresInMs: number }
export type TicketPurpose = { purpose: 'events' } | { purpose: 'console' | 'rdp'; host: string; uuid: string };

/** An error answer of the API, or a transport failure (`code` NETWORK / HTTP_n). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint: string | undefined,
    readonly status: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ApiError';
  }
}

export function vmsPath(host: string): string {
  return `/api/hosts/${encodeURIComponent(host)}/vms`;
}

/** The API names a VM by host and UUID (docs/ui.md); its name is only shown. */
export function vmPath(host: string, uuid: string): string {
  return `${vmsPath(host)}/${encodeURIComponent(uuid)}`;
}

/**
 * A console page's link: `uuid` says which VM, `name` is for the title. It opens in a new tab without an
 * opener, which starts with an empty sessionStorage: the token goes along in the fragment (never sent to a
 * server), as in the link vmdesk prints.
 */
export function consoleHref(host: string, vm: { uuid: string; name: string }): string {
  const token = sessionToken();
  return `/console?${new URLSearchParams({ host, uuid: vm.uuid, name: vm.name }).toString()}${token === undefined ? '' : `#token=${encodeURIComponent(token)}`}`;
}

/** The RDP page's link (a new tab, like a console's: the token goes along in the fragment). */
export function rdpHref(host: string, vm: { uuid: string; name: string }): string {
  const token = sessionToken();
  return `/rdp?${new URLSearchParams({ host, uuid: vm.uuid, name: vm.name }).toString()}${token === undefined ? '' : `#token=${encodeURIComponent(token)}`}`;
}

/** An authenticated request: the token as a bearer header, never a cookie (credentials: 'omit'). */
async function authFetch(path: string, init?: RequestInit): Promise<Response> {
  const token = sessionToken();
  if (token === undefined) throw new ApiError('UI_UNAUTHORIZED', NEEDS_LINK, undefined, 401);
  const headers = new Headers(init?.headers);
  headers.set('authorization', `Bearer ${token}`);
  try {
    return await fetch(path, { ...init, headers, credentials: 'omit' });
  } catch (err) {
    throw new ApiError('NETWORK', 'vmdesk did not answer (is `vmdesk ui` still running?)', undefined, 0, { cause: err });
  }
}

/** Fetches JSON; any non-2xx answer becomes an ApiError carrying the server's code, message and hint. */
export async function fetchJson<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await authFetch(path, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: unknown; message?: unknown; hint?: unknown } } | undefined)?.error;
    if (res.status === 401) {
      throw new ApiError('UI_UNAUTHORIZED', 'vmdesk refused this page\'s token (the server was restarted?). Open the link `vmdesk ui` printed again.', undefined, 401);
    }
    throw new ApiError(
      typeof e?.code === 'string' ? e.code : `HTTP_${res.status}`,
      typeof e?.message === 'string' ? e.message : `vmdesk answered ${res.status} ${res.statusText}`,
      typeof e?.hint === 'string' ? e.hint : undefined,
      res.status,
    );
  }
  return body as T;
}

/** POSTs a JSON body; the server demands a same-origin Origin (browsers add it). */
export function postJson<T>(path: string, body: unknown): Promise<T> {
  return fetchJson<T>(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** A single-use ticket for the one WebSocket or EventSource that cannot carry the bearer header. */
export async function fetchTicket(purpose: TicketPurpose): Promise<string> {
  return (await postJson<TicketReply>('/api/tickets', purpose)).ticket;
}

/** Downloads an authenticated file (a plain link would carry no token) as `fileName`. */
export async function downloadFile(path: string, fileName: string): Promise<void> {
  const res = await authFetch(path);
  if (!res.ok) throw new ApiError(`HTTP_${res.status}`, `vmdesk answered ${res.status} ${res.statusText}`, undefined, res.status);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
