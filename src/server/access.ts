/**
 * Who may use the UI server: a random per-run token (cookie or bearer), and
 * requests addressed to this server by a page of this server. The Host check
 * defeats DNS rebinding (a hostile name resolving to 127.0.0.1 still sends its
 * own name as Host); the Origin check defeats cross-site WebSocket hijacking
 * and CSRF (browsers always send Origin on WebSocket handshakes and POSTs).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { networkInterfaces } from 'node:os';
import { isLoopback } from '../libvirt/domain-xml.js';

/** 256 random bits, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Cookies ignore ports, so each server's cookie carries its port: two vmdesk UIs on one machine do not clobber each other. */
export function cookieName(port: number): string {
  return `vmdesk-${port}`;
}

/** The Set-Cookie value of a session: script-proof, same-site only, whole server. */
export function sessionCookie(port: number, token: string): string {
  return `${cookieName(port)}=${token}; Path=/; HttpOnly; SameSite=Strict`;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Constant-time token comparison. */
export function isTokenEqual(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True when the request carries the token, in this server's cookie or as `Authorization: Bearer`. */
export function hasToken(req: IncomingMessage, port: number, token: string): boolean {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ') && isTokenEqual(auth.slice(7).trim(), token)) return true;
  return isTokenEqual(cookieValue(req.headers.cookie, cookieName(port)), token);
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
