/**
 * Who may use the UI server: a random per-run token sent as
 * `Authorization: Bearer` (never a cookie: cookies ignore ports, so every
 * other server on 127.0.0.1 would receive it), single-use tickets for the
 * WebSocket and the event stream, and requests addressed to this server by a
 * page of this server. The Host check defeats DNS rebinding (a hostile name
 * resolving to 127.0.0.1 still sends its own name as Host); the Origin check
 * defeats cross-site WebSocket hijacking and CSRF (browsers always send Origin
 * on WebSocket handshakes and POSTs).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { networkInterfaces } from 'node:os';
import { isLoopback } from '../libvirt/domain-xml.js';

/** 256 random bits, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time token comparison. */
export function isTokenEqual(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * What the request's `Authorization` header says: absent, the right bearer
 * token, or anything else (another scheme, a wrong or empty token). A present
 * header alone decides: a wrong one is refused, never passed on to a ticket
 * or any other credential.
 */
export function bearerOf(req: IncomingMessage, token: string): 'absent' | 'valid' | 'invalid' {
  const auth = req.headers.authorization;
  if (auth === undefined) return 'absent';
  const m = /^Bearer +([^\s]+) *$/i.exec(auth);
  return m && isTokenEqual(m[1], token) ? 'valid' : 'invalid';
}

/** What a ticket opens: the event stream, one console's WebSocket, or one VM's browser RDP session (VMs by host + UUID). */
export type TicketPurpose =
  | { kind: 'events' }
  | { kind: 'console'; host: string; uuid: string }
  /** `found`: where the guest's RDP port was found when the ticket was issued, for the one connection it opens. */
  | { kind: 'rdp'; host: string; uuid: string; found?: { target: { kind: 'tcp'; host: string; port: number }; vm: string } };

function isSamePurpose(a: TicketPurpose, b: TicketPurpose): boolean {
  if (a.kind === 'events' || b.kind === 'events') return a.kind === b.kind;
  return a.kind === b.kind && a.host === b.host && a.uuid === b.uuid;
}

/** How long a ticket lives: it is fetched right before the socket or stream it opens. */
export const TICKET_TTL_MS = 30_000;
/** Outstanding tickets kept at most (each authenticated page takes one or two at a time). */
const MAX_TICKETS = 1_000;

/**
 * Single-use, short-lived tickets for the two routes a browser cannot send a
 * header to: `new WebSocket()` and `new EventSource()` take only a URL. A
 * ticket is issued to a request that carried the bearer token and passed the
 * Origin check, names what it opens, and is gone once presented (valid or
 * not), so a ticket that leaks from a URL (devtools, a log) opens nothing.
 * 256 random bits: a Map lookup by the ticket itself leaks nothing useful.
 */
export class TicketBook {
  private readonly tickets = new Map<string, { purpose: TicketPurpose; expiresAt: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    readonly ttlMs = TICKET_TTL_MS,
  ) {}

  issue(purpose: TicketPurpose): string {
    const t = this.now();
    for (const [k, v] of this.tickets) if (v.expiresAt <= t) this.tickets.delete(k);
    // The oldest go first when a client hoards tickets it never uses.
    while (this.tickets.size >= MAX_TICKETS) this.tickets.delete(this.tickets.keys().next().value!);
    const ticket = newToken();
    this.tickets.set(ticket, { purpose, expiresAt: t + this.ttlMs });
    return ticket;
  }

  /** True when `ticket` was issued for `purpose` and has not expired; it is used up either way. */
  take(ticket: string | null, purpose: TicketPurpose): boolean {
    const got = this.redeem(ticket);
    return got !== undefined && isSamePurpose(got, purpose);
  }

  /**
   * What an unexpired `ticket` was issued for, or undefined; it is used up
   * either way. For a credential that itself names its target (the RDP
   * endpoint's PDU carries only the ticket: the ticket says which VM).
   */
  redeem(ticket: string | null | undefined): TicketPurpose | undefined {
    if (ticket === null || ticket === undefined) return undefined;
    const entry = this.tickets.get(ticket);
    if (!entry) return undefined;
    this.tickets.delete(ticket);
    return entry.expiresAt > this.now() ? entry.purpose : undefined;
  }
}

/** True when `Sec-Fetch-Site` (sent by current browsers) says another site or origin made the request. */
export function isCrossOriginFetch(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  return site !== undefined && site !== 'same-origin' && site !== 'none';
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

/**
 * The `Host` values this server answers to: its loopback names, and the bound
 * address (all of this machine's addresses when bound to a wildcard).
 */
export function allowedHosts(bindAddress: string, port: number): Set<string> {
  const names = new Set(['127.0.0.1', 'localhost', '::1']);
  if (bindAddress === '0.0.0.0' || bindAddress === '::') {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.address.replace(/%.*$/, ''));
  } else {
    names.add(bindAddress);
  }
  return new Set([...names].map((n) => hostPort(n, port).toLowerCase()));
}

/** True when `Host` names this server (DNS rebinding defence). */
export function isHostAllowed(req: IncomingMessage, allowed: Set<string>): boolean {
  const host = req.headers.host?.toLowerCase();
  return host !== undefined && allowed.has(host);
}

/** True when `Origin` is one of this server's own origins. A missing Origin is refused: browsers always send it here. */
export function isOriginAllowed(req: IncomingMessage, allowed: Set<string>): boolean {
  const origin = req.headers.origin?.toLowerCase();
  if (!origin?.startsWith('http://')) return false;
  return allowed.has(origin.slice('http://'.length));
}

/** True when binding `address` keeps the server on this machine only. */
export function isLoopbackBind(address: string): boolean {
  return isLoopback(address);
}
