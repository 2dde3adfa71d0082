// The server's HTTP API as docs/ui.md defines it. These shapes are copied, not
// imported: web/ never imports src/ (the bundle must not pull in Node code).

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
  kind: 'rdp' | 'console';
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

/** The console page of a VM: `uuid` says which, `name` is for the title. */
export function consoleHref(host: string, vm: { uuid: string; name: string }): string {
  return `/console?${new URLSearchParams({ host, uuid: vm.uuid, name: vm.name }).toString()}`;
}

/** Fetches JSON; any non-2xx answer becomes an ApiError carrying the server's code, message and hint. */
export async function fetchJson<T>(path: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { credentials: 'same-origin', ...init });
  } catch (err) {
    throw new ApiError('NETWORK', 'vmdesk did not answer (is `vmdesk ui` still running?)', undefined, 0, { cause: err });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: unknown; message?: unknown; hint?: unknown } } | undefined)?.error;
    if (res.status === 403 && e === undefined) {
      throw new ApiError('FORBIDDEN', 'This page lost its vmdesk session (the server was restarted?). Open the link `vmdesk ui` printed again.', undefined, 403);
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

/** POSTs a JSON body; the server demands content-type JSON and a same-origin Origin (browsers add it). */
export function postJson<T>(path: string, body: unknown): Promise<T> {
  return fetchJson<T>(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}
