/**
 * The UI's HTTP server: the dashboard and console pages, a small JSON API,
 * Server-Sent Events for live state, and the console WebSocket. Every
 * request is checked here, in one place, before any route runs (docs/ui.md):
 * Host (DNS rebinding), the bearer token (or a single-use ticket where a
 * browser cannot send a header), Origin for WebSockets and POSTs (hijacking,
 * CSRF), and every response carries a strict CSP. The two pages are static
 * shells that hold nothing secret and start nothing: their scripts
 * authenticate every call they make.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocketServer, type WebSocket } from 'ws';
import { VmdeskError } from '../errors.js';
import { allowedHosts, bearerOf, isCrossOriginFetch, isHostAllowed, isOriginAllowed, newToken, TicketBook, type TicketPurpose } from './access.js';
import { bridgeConsole, keepAlive } from './console-socket.js';
import { serveRdCleanPath } from '../console/rdp-proxy.js';
import { errorView, type ErrorView, type HostSessions } from './host-sessions.js';
import { BodyError, readBody } from './request-body.js';
import { vmUuidParam } from './vm-identity.js';
import { loadStaticFiles, type StaticFile } from './static-assets.js';

export interface UiServerOptions {
  sessions: HostSessions;
  /** Default 127.0.0.1; anything else must have been asked for explicitly (the CLI warns). */
  bindAddress?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Default: a fresh random token. */
  token?: string;
  /** Label everything as the embedded demo site. */
  isDemo?: boolean;
  /** Where the built web bundle is (default: the package's dist/web). */
  staticRoot?: string;
  log?: (line: string) => void;
  /** The clock tickets expire by (tests move it). */
  now?: () => number;
}

export interface UiServer {
  readonly port: number;
  readonly token: string;
  /** The address to open: `path` on this server with the token in the fragment. */
  url(path?: string): string;
  close(): Promise<void>;
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The RDP page's CSP: the dashboard's plus 'wasm-unsafe-eval', which lets it
 * compile IronRDP's WebAssembly (served by us, from 'self'). No other page
 * gets it; it still allows no eval() of JavaScript.
 */
const RDP_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'");

/** Assets whose name carries a hash of their contents (`ironrdp-0123abcd.wasm`): cached for good. */
const HASHED_ASSET = /^\/assets\/[a-z0-9-]+-[0-9a-f]{16}\.wasm$/;

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // No Cross-Origin-Opener-Policy: it made Chromium swap renderer processes when a console tab
  // opens (measured: the page's DOM ready 170-480 ms -> 60-160 ms without it). Framing is refused
  // above, the links that open consoles are noopener, and no cookie is ever set.
  'cache-control': 'no-store',
};

const EVENTS_TICK_MS = 1_000;
const EVENTS_HEARTBEAT_MS = 25_000;

/** HTTP status of an error code: the client's mistake, the VM's state, or the path to the host. */
function statusOf(code: string): number {
  if (code === 'UI_UNAUTHORIZED') return 401;
  if (code === 'UI_FORBIDDEN') return 403;
  if (code === 'UI_NOT_FOUND' || code === 'VM_NOT_FOUND' || code === 'USAGE') return 404;
  if (code === 'UI_BAD_REQUEST') return 400;
  if (code === 'UI_METHOD') return 405;
  if (['VM_NOT_RUNNING', 'VNC_NOT_CONFIGURED', 'VM_NO_IP', 'VM_AMBIGUOUS', 'GRAPHICS_EDIT_UNSUPPORTED', 'VM_SHUTDOWN_TIMEOUT'].includes(code)) return 409;
  if (code.startsWith('SSH_') || code.startsWith('LIBVIRT_') || code === 'VIRSH_MISSING' || code === 'VNC_SOCKET_DENIED') return 502;
  return 500;
}

class HttpError extends Error {
  constructor(
    readonly view: ErrorView,
    readonly status = statusOf(view.code),
  ) {
    super(view.message);
  }
}

const forbidden = (message: string) => new HttpError({ code: 'UI_FORBIDDEN', message });
const unauthorized = (message: string) => new HttpError({ code: 'UI_UNAUTHORIZED', message, hint: 'open the link vmdesk printed (it ends in #token=...)' });

function send(res: ServerResponse, status: number, body: string | Buffer, contentType: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8');
}

/** The request target as a URL, or undefined when it is not one (`//[`: `new URL` throws on it). */
function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://x');
  } catch {
    return undefined;
  }
}

/** Splits `/api/hosts/H/vms/V/rdp` into decoded segments; undefined when a segment is not valid percent-encoding. */
function segments(pathname: string): string[] | undefined {
  try {
    return pathname.split('/').slice(1).map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

export async function startUiServer(opts: UiServerOptions): Promise<UiServer> {
  const sessions = opts.sessions;
  const bindAddress = opts.bindAddress ?? '127.0.0.1';
  const token = opts.token ?? newToken();
  const log = opts.log ?? (() => {});
  const tickets = new TicketBook(opts.now);
  const files: Map<string, StaticFile> = loadStaticFiles(opts.staticRoot);
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
  const eventClients = new Set<ServerResponse>();
  let port = 0;
  let allowed = new Set<string>();

  const hostsPayload = () => ({ demo: opts.isDemo ?? false, hosts: sessions.hostViews() });

  function page(req: IncomingMessage, res: ServerResponse, name: string): void {
    const f = files.get(name);
    if (!f) throw new HttpError({ code: 'UI_NOT_FOUND', message: `${name} is missing from the web bundle` }, 500);
    // A page another site navigated this tab to is marked: its scripts then use only a token in its own link,
    // never the tab's stored one, so that site cannot make the page act (web/session.ts).
    const isForeign = isCrossOriginFetch(req);
    const extra: Record<string, string> = name === '/rdp.html' ? { 'content-security-policy': RDP_CSP } : {};
    send(res, 200, isForeign ? Buffer.from(f.body.toString('utf8').replace('<html lang="en">', '<html lang="en" data-entry="foreign">')) : f.body, f.contentType, extra);
  }

  // ---- Server-Sent Events: state pushed on change, byte counters at most once a second.
  let lastTunnels = '';
  let tunnelsQueued = false;
  const broadcast = (event: string, data: string) => {
    for (const res of eventClients) res.write(`event: ${event}\ndata: ${data}\n\n`);
  };
  const pushTunnels = (force: boolean) => {
    const data = JSON.stringify({ tunnels: sessions.tunnelViews() });
    if (!force && data === lastTunnels) return;
    lastTunnels = data;
    broadcast('tunnels', data);
  };
  const onTunnels = () => {
    if (tunnelsQueued) return;
    tunnelsQueued = true;
    setImmediate(() => {
      tunnelsQueued = false;
      pushTunnels(false);
    });
  };
  const onHosts = () => broadcast('hosts', JSON.stringify(hostsPayload()));
  sessions.on('tunnels', onTunnels);
  sessions.on('hosts', onHosts);
  const ticker = setInterval(() => {
    if (eventClients.size > 0) pushTunnels(false);
  }, EVENTS_TICK_MS);
  const heartbeat = setInterval(() => {
    for (const res of eventClients) res.write(': keep-alive\n\n');
  }, EVENTS_HEARTBEAT_MS);
  ticker.unref();
  heartbeat.unref();

  function openEvents(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    res.write(`retry: 2000\n\nevent: hosts\ndata: ${JSON.stringify(hostsPayload())}\n\nevent: tunnels\ndata: ${JSON.stringify({ tunnels: sessions.tunnelViews() })}\n\n`);
    eventClients.add(res);
    req.socket.setNoDelay(true);
    res.on('close', () => eventClients.delete(res));
  }

  // ---- API routes (the token was checked before any of these runs).
  async function api(req: IncomingMessage, res: ServerResponse, parts: string[]): Promise<void> {
    const method = req.method ?? 'GET';
    const expect = (m: string) => {
      if (method !== m) throw new HttpError({ code: 'UI_METHOD', message: `use ${m} for this route` });
    };
    if (parts.length === 2 && parts[1] === 'hosts') {
      expect('GET');
      return sendJson(res, 200, hostsPayload());
    }
    if (parts.length === 2 && parts[1] === 'events') {
      expect('GET');
      return openEvents(req, res);
    }
    if (parts.length === 2 && parts[1] === 'tickets') {
      expect('POST');
      const body = await readBody(req, { purpose: { type: 'string', isRequired: true, oneOf: ['events', 'console', 'rdp'] }, host: { type: 'string', maxLength: 1024 }, uuid: { type: 'string', maxLength: 64 } });
      let purpose: TicketPurpose = { kind: 'events' };
      if (body.purpose === 'rdp') {
        const uuid = vmUuidParam(body.uuid);
        if (!body.host || !uuid) throw new BodyError('UI_BODY_INVALID', 'an RDP ticket needs "host" and the VM\'s "uuid"');
        // The lookup for the connection this ticket opens, made now: a refusal comes with its reason (no such VM,
        // not running, no IP) rather than the PDU's bare status code, and the endpoint need not look up again.
        purpose = { kind: 'rdp', host: body.host, uuid, found: await sessions.rdpTarget(body.host, uuid) };
      } else if (body.purpose === 'console') {
        const uuid = vmUuidParam(body.uuid);
        if (!body.host || !uuid) throw new BodyError('UI_BODY_INVALID', 'a console ticket needs "host" and the VM\'s "uuid"');
        purpose = { kind: 'console', host: body.host, uuid };
        // The page opens this console's WebSocket right after: look the console up and open its channel now.
        sessions.prepareConsole(body.host, uuid);
      } else if (body.host !== undefined || body.uuid !== undefined) {
        throw new BodyError('UI_BODY_INVALID', 'an events ticket takes no "host" or "uuid"');
      }
      return sendJson(res, 200, { ticket: tickets.issue(purpose), expiresInMs: tickets.ttlMs });
    }
    if (parts[1] === 'hosts' && parts[3] === 'vms' && parts[2] !== undefined) {
      const host = parts[2];
      if (parts.length === 4) {
        expect('GET');
        return sendJson(res, 200, { host, vms: await sessions.listVms(host) });
      }
      if (parts[4] !== undefined && parts[4] !== '') {
        const vm = vmUuidParam(parts[4]);
        if (vm === undefined) throw new HttpError({ code: 'UI_BAD_REQUEST', message: 'the API names a VM by its UUID: /api/hosts/HOST/vms/UUID', hint: 'GET /api/hosts/HOST/vms lists each VM with its uuid' });
        if (parts.length === 5) {
          expect('GET');
          return sendJson(res, 200, { vm: await sessions.readVm(host, vm) });
        }
        if (parts.length === 6 && parts[5] === 'rdp') {
          expect('POST');
          await readBody(req, {});
          return sendJson(res, 200, await sessions.startRdp(host, vm));
        }
        if (parts.length === 6 && parts[5] === 'vnc-listen') {
          expect('POST');
          // The dashboard only ever moves consoles back to loopback; exposing one takes the CLI and --yes.
          const body = await readBody(req, { address: { type: 'string', oneOf: ['127.0.0.1'] }, restart: { type: 'boolean' } });
          return sendJson(res, 200, await sessions.moveToLoopback(host, vm, { restart: body.restart === true }));
        }
        if (parts.length === 6 && parts[5] === 'rdp-file') {
          expect('GET');
          const file = sessions.rdpFile(host, vm);
          if (file === undefined) throw new HttpError({ code: 'UI_NOT_FOUND', message: `no RDP forward to ${vm} was started`, hint: 'press RDP first' });
          const fileName = `${host}-${file.vm}`.replace(/[^A-Za-z0-9._-]/g, '_');
          return send(res, 200, file.text, 'application/x-rdp', { 'content-disposition': `attachment; filename="${fileName}.rdp"` });
        }
      }
    }
    throw new HttpError({ code: 'UI_NOT_FOUND', message: `no route ${method} ${req.url ?? ''}`.slice(0, 200) });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!isHostAllowed(req, allowed)) throw forbidden('this server answers only to its own address (Host header refused)');
    const url = requestUrl(req);
    if (!url) throw new HttpError({ code: 'UI_BAD_REQUEST', message: 'the request target is not a URL path' });
    const method = req.method ?? 'GET';
    if (url.pathname.startsWith('/assets/')) {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError({ code: 'UI_METHOD', message: 'use GET' });
      const f = files.get(url.pathname);
      if (!f) throw new HttpError({ code: 'UI_NOT_FOUND', message: 'no such asset' });
      return send(res, 200, f.body, f.contentType, HASHED_ASSET.test(url.pathname) ? { 'cache-control': 'public, max-age=31536000, immutable' } : {});
    }
    if (url.pathname === '/' || url.pathname === '/console' || url.pathname === '/rdp') {
      // Static shells: nothing secret in them and nothing started by them (no lookup, no channel),
      // so they need no credential. Their scripts send the token with every call.
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError({ code: 'UI_METHOD', message: 'use GET' });
      return page(req, res, url.pathname === '/' ? '/index.html' : `${url.pathname}.html`);
    }
    // Browsers add the headers below themselves; a page cannot forge them (the Fetch standard's forbidden headers).
    if (method !== 'GET' && method !== 'HEAD' && !isOriginAllowed(req, allowed)) throw forbidden('cross-origin request refused');
    if (isCrossOriginFetch(req)) throw forbidden('a request made by another site or origin (Sec-Fetch-Site) is refused');
    const bearer = bearerOf(req, token);
    if (bearer === 'invalid') throw unauthorized('wrong token in the Authorization header');
    if (bearer === 'absent') {
      // The one route a browser reaches without headers of its own (EventSource) takes a ticket instead.
      const isEvents = url.pathname === '/api/events' && method === 'GET';
      if (!isEvents || !tickets.take(url.searchParams.get('ticket'), { kind: 'events' })) throw unauthorized(isEvents ? 'missing, used or expired ticket' : 'missing token: send Authorization: Bearer TOKEN');
    }
    const parts = segments(url.pathname);
    if (!parts) throw new HttpError({ code: 'UI_BAD_REQUEST', message: 'bad percent-encoding in the path' });
    if (parts[0] === 'api') return api(req, res, parts);
    throw new HttpError({ code: 'UI_NOT_FOUND', message: 'no such page' });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : err instanceof BodyError ? new HttpError({ code: err.code, message: err.message }, err.status) : new HttpError(errorView(err));
      if (e.status >= 500 && !(err instanceof VmdeskError)) log(`ui: ${req.method} ${requestUrl(req)?.pathname ?? '?'}: ${(err as Error)?.stack ?? String(err)}`);
      if (res.headersSent) return void res.destroy();
      // A refused body may still be arriving: answer, then close rather than read the rest.
      if (err instanceof BodyError && !req.complete) res.setHeader('connection', 'close');
      sendJson(res, e.status, { error: e.view });
    });
  });
  server.keepAliveTimeout = 65_000;

  /** One browser RDP session: RDCleanPath on the WebSocket, the target from the ticket's VM, resolved now. */
  function serveRdp(ws: WebSocket): void {
    const stream = createWebSocketStream(ws, { readableObjectMode: false, writableObjectMode: false });
    stream.on('error', () => {});
    keepAlive(ws);
    void serveRdCleanPath(stream, {
      authorize: (pdu) => {
        const purpose = tickets.redeem(pdu.proxyAuth);
        const uuid = purpose?.kind === 'rdp' ? vmUuidParam(purpose.uuid) : undefined;
        if (purpose?.kind !== 'rdp' || !uuid) return undefined;
        return async () => {
          const ch = await sessions.openRdp(purpose.host, uuid, purpose.found);
          return { stream: ch.stream, serverAddr: ch.serverAddr, count: ch.count, release: ch.release };
        };
      },
    }).then((outcome) => {
      // The path to the VM failing is worth a line; a client's bad or unauthorised PDU adds none (as for HTTP).
      // Never the PDU itself: it holds the ticket.
      const quiet = ['RDP_CONNECTION_CLOSED', 'RDP_UNAUTHORIZED', 'RDCLEANPATH_INVALID'];
      if (outcome.kind === 'refused' && !quiet.includes(outcome.error.code)) log(`rdp: ${outcome.error.code}: ${outcome.error.message}`);
    });
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    socket.on('error', () => {});
    const url = requestUrl(req);
    if (!isHostAllowed(req, allowed) || !isOriginAllowed(req, allowed)) return refuse(403, 'Forbidden');
    if (!url) return refuse(400, 'Bad Request');
    const bearer = bearerOf(req, token);
    if (bearer === 'invalid') return refuse(401, 'Unauthorized');
    if (url.pathname === '/ws/rdp') {
      // The credential is inside the first message: IronRDP's RDCleanPath PDU carries the ticket as proxy_auth.
      // The ticket names the host and VM; the PDU's destination is never looked at (docs/ui.md).
      return wss.handleUpgrade(req, socket, head, (ws) => serveRdp(ws));
    }
    if (url.pathname !== '/ws/console') return refuse(bearer === 'valid' ? 404 : 401, bearer === 'valid' ? 'Not Found' : 'Unauthorized');
    const host = url.searchParams.get('host');
    const vm = vmUuidParam(url.searchParams.get('uuid'));
    // A browser's WebSocket cannot carry a header: it presents the ticket its page fetched for this console.
    if (bearer === 'absent' && !(host && vm && tickets.take(url.searchParams.get('ticket'), { kind: 'console', host, uuid: vm }))) return refuse(401, 'Unauthorized');
    if (!host || !vm) return refuse(400, 'Bad Request');
    wss.handleUpgrade(req, socket, head, (ws) => {
      bridgeConsole(ws, () => sessions.openConsole(host, vm), errorView, log);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new VmdeskError('PORT_IN_USE', `${bindAddress}:${opts.port} is in use`, { cause: err, context: { port: opts.port ?? 0 }, hint: 'choose another --port, or leave it out for a free one' })
          : new VmdeskError('LISTEN_FAILED', `cannot listen on ${bindAddress}:${opts.port ?? 0}: ${err.message}`, { cause: err }),
      ),
    );
    server.listen(opts.port ?? 0, bindAddress, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  allowed = allowedHosts(bindAddress, port);
  const urlHost = bindAddress === '0.0.0.0' || bindAddress === '::' ? '127.0.0.1' : bindAddress.includes(':') ? `[${bindAddress}]` : bindAddress;

  return {
    port,
    token,
    url: (path = '/') => `http://${urlHost}:${port}${path}#token=${token}`,
    close: async () => {
      sessions.off('tunnels', onTunnels);
      sessions.off('hosts', onHosts);
      clearInterval(ticker);
      clearInterval(heartbeat);
      for (const res of eventClients) res.end();
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}
