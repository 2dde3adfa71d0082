/**
 * An RDCleanPath proxy (the server half of IronRDP's web client): one
 * request PDU from the browser, the RDP server reached through an injected
 * opener, the X.224 exchange and the TLS handshake done here, one response
 * PDU back, then RDP bytes relayed with backpressure both ways. The
 * destination the browser names is never used: `authorize` maps the PDU's
 * credential to the one target it may open. No sockets of its own, no SSH:
 * the caller gives it the browser's stream and the opener.
 */
import { pipeline, type Duplex } from 'node:stream';
import tls, { type PeerCertificate, type TLSSocket } from 'node:tls';
import { isVmdeskError, VmdeskError } from '../errors.js';
import { decodeRdCleanPath, encodeRdCleanPath, httpError, negotiationError, rdCleanPathLength, rdCleanPathResponse, tlsAlertError, wsaError, type RdCleanPathPdu } from './rdcleanpath.js';
import { isConnectionRequest, NEG_FAILURE, parseConnectionConfirm, TpktReader } from './x224.js';

/** The RDP server's end, opened for one authorised request. */
export interface RdpUpstream {
  stream: Duplex;
  /** `ip:port` the channel goes to, reported to the client as `server_addr`. */
  serverAddr: string;
  /** Count relayed bytes (server -> browser is in, browser -> server is out). */
  count?: (bytesIn: number, bytesOut: number) => void;
  release?: () => void;
}

export interface RdpProxyOptions {
  /**
   * The opener the PDU's `proxy_auth` credential entitles it to, or
   * undefined to refuse it (401). Called once, with the whole decoded PDU.
   */
  authorize: (pdu: RdCleanPathPdu) => (() => Promise<RdpUpstream>) | undefined;
  /** Give up on a client, or a server, that sends nothing for this long before the relay starts (default 30 s). */
  handshakeTimeoutMs?: number;
}

export type RdpProxyOutcome = { kind: 'relayed'; serverAddr: string } | { kind: 'refused'; error: VmdeskError; reply: RdCleanPathPdu | undefined };

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

/** RFC 8446 section 6 alert numbers by OpenSSL's name for them (`ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE`). */
const TLS_ALERTS: Record<string, number> = {
  UNEXPECTED_MESSAGE: 10,
  BAD_RECORD_MAC: 20,
  RECORD_OVERFLOW: 22,
  HANDSHAKE_FAILURE: 40,
  BAD_CERTIFICATE: 42,
  UNSUPPORTED_CERTIFICATE: 43,
  CERTIFICATE_REVOKED: 44,
  CERTIFICATE_EXPIRED: 45,
  CERTIFICATE_UNKNOWN: 46,
  ILLEGAL_PARAMETER: 47,
  UNKNOWN_CA: 48,
  ACCESS_DENIED: 49,
  DECODE_ERROR: 50,
  DECRYPT_ERROR: 51,
  PROTOCOL_VERSION: 70,
  INSUFFICIENT_SECURITY: 71,
  INTERNAL_ERROR: 80,
  USER_CANCELLED: 90,
  NO_RENEGOTIATION: 100,
  UNSUPPORTED_EXTENSION: 110,
  UNRECOGNIZED_NAME: 112,
  NO_APPLICATION_PROTOCOL: 120,
};

/** Windows Sockets error numbers (the client's error table speaks these) for what an SSH hop reports. */
const WSA = { ECONNRESET: 10054, ETIMEDOUT: 10060, ECONNREFUSED: 10061, EHOSTDOWN: 10064, EHOSTUNREACH: 10065, ENETUNREACH: 10051 } as const;

function wsaOf(text: string): number {
  if (/refused/i.test(text)) return WSA.ECONNREFUSED;
  if (/timed? ?out/i.test(text)) return WSA.ETIMEDOUT;
  if (/no route/i.test(text)) return WSA.EHOSTUNREACH;
  if (/network is unreachable/i.test(text)) return WSA.ENETUNREACH;
  if (/host is down/i.test(text)) return WSA.EHOSTDOWN;
  if (/reset/i.test(text)) return WSA.ECONNRESET;
  return WSA.ECONNREFUSED;
}

function causeText(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) if (e.message) parts.push(e.message);
  return parts.join(' / ');
}

/** The error PDU the client expects for a failure, so the page can say what went wrong. */
export function errorReply(err: VmdeskError): RdCleanPathPdu {
  switch (err.code) {
    case 'RDP_UNAUTHORIZED':
      return httpError(401);
    case 'RDCLEANPATH_INVALID':
      return httpError(400);
    case 'VM_NOT_FOUND':
    case 'USAGE':
      return httpError(404);
    case 'VM_NO_IP':
    case 'VM_NOT_RUNNING':
    case 'VM_AMBIGUOUS':
      return httpError(409);
    case 'SSH_CHANNEL_REFUSED':
      return wsaError(wsaOf(causeText(err)));
    case 'RDP_TLS_FAILED':
      return typeof err.context.tlsAlert === 'number' ? tlsAlertError(err.context.tlsAlert) : wsaError(WSA.ECONNRESET);
    case 'RDP_NEGOTIATION_FAILED':
      return Buffer.isBuffer(err.context.confirm) ? negotiationError(err.context.confirm) : httpError(502);
    default:
      return err.code.startsWith('SSH_') || err.code.startsWith('LIBVIRT_') || err.code === 'VIRSH_MISSING' ? httpError(502) : httpError(500);
  }
}

/** Resolves with the next whole unit `take` finds in `stream`'s bytes; the stream is paused after. */
function readUnit<T>(stream: Duplex, take: (chunk: Buffer) => T | undefined, timeoutMs: number, what: string, onTimeout: () => VmdeskError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const finish = (err: Error | undefined, value?: T) => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
      stream.pause();
      if (err) reject(err);
      else resolve(value as T);
    };
    const onData = (b: Buffer) => {
      try {
        const v = take(b);
        if (v !== undefined) finish(undefined, v);
      } catch (err) {
        finish(err as Error);
      }
    };
    const onEnd = () => finish(new VmdeskError('RDP_CONNECTION_CLOSED', `the connection closed while waiting for ${what}`));
    const onError = (err: Error) => finish(new VmdeskError('RDP_CONNECTION_CLOSED', `the connection failed while waiting for ${what}: ${err.message}`, { cause: err }));
    const timer = setTimeout(() => finish(onTimeout()), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onError);
    stream.resume();
  });
}

/** The whole request PDU, however the browser's messages split it. */
function readRequest(client: Duplex, timeoutMs: number): Promise<RdCleanPathPdu> {
  let buf: Buffer = Buffer.alloc(0);
  return readUnit(
    client,
    (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const n = rdCleanPathLength(buf);
      if (n === undefined || buf.length < n) return undefined;
      // The client waits for the response before it sends anything else.
      if (buf.length > n) throw new VmdeskError('RDCLEANPATH_INVALID', `${buf.length - n} bytes after the RDCleanPath request`);
      return decodeRdCleanPath(buf);
    },
    timeoutMs,
    'the RDCleanPath request',
    () => new VmdeskError('RDCLEANPATH_INVALID', 'no RDCleanPath request arrived in time'),
  );
}

/** The server's whole X.224 Connection Confirm (TPKT framing, not one `data` event). */
function readConfirm(server: Duplex, timeoutMs: number): Promise<Buffer> {
  const reader = new TpktReader();
  return readUnit(
    server,
    (chunk) => {
      const got = reader.push(chunk);
      if (!got) return undefined;
      if (got.rest.length > 0) throw new VmdeskError('RDP_NEGOTIATION_FAILED', 'the RDP server sent data after its X.224 confirm, before TLS');
      return Buffer.from(got.frame);
    },
    timeoutMs,
    "the RDP server's X.224 confirm",
    () => new VmdeskError('RDP_NEGOTIATION_FAILED', 'the RDP server did not answer the X.224 connection request in time', { hint: 'is an RDP server listening on port 3389 of the guest?' }),
  );
}

/** The peer's chain, leaf first, as DER (what the client checks, and binds CredSSP to). */
function peerChain(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<PeerCertificate>();
  for (let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true); c?.raw && !seen.has(c); c = c.issuerCertificate) {
    seen.add(c);
    chain.push(c.raw);
  }
  return chain;
}

function tlsHandshake(server: Duplex, serverAddr: string, timeoutMs: number): Promise<TLSSocket> {
  return new Promise<TLSSocket>((resolve, reject) => {
    // RDP servers present self-signed certificates: the client is given the chain and decides (as mstsc does).
    const socket = tls.connect({ socket: server, rejectUnauthorized: false });
    const timer = setTimeout(() => socket.destroy(new Error('TLS handshake timed out')), timeoutMs);
    const fail = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const alert = /ALERT_([A-Z_]+)$/.exec(err.code ?? '')?.[1];
      const isTls = err.code?.startsWith('ERR_SSL_') === true || /handshake/i.test(err.message);
      reject(
        new VmdeskError('RDP_TLS_FAILED', `the TLS handshake with the RDP server at ${serverAddr} failed: ${err.message}`, {
          cause: err,
          context: isTls ? { tlsAlert: (alert && TLS_ALERTS[alert]) ?? TLS_ALERTS.HANDSHAKE_FAILURE! } : {},
          hint: 'the server must offer TLS (the web client does not speak Standard RDP Security)',
        }),
      );
    };
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

function asVmdeskError(err: unknown): VmdeskError {
  return isVmdeskError(err) ? err : new VmdeskError('INTERNAL', (err as Error)?.message ?? String(err), { cause: err });
}

/**
 * Serves one RDCleanPath connection on `client` (the browser's WebSocket as
 * a byte stream). Resolves once the relay is under way, or once a refusal
 * has been sent; never rejects.
 */
export async function serveRdCleanPath(client: Duplex, opts: RdpProxyOptions): Promise<RdpProxyOutcome> {
  const timeoutMs = opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  let upstream: RdpUpstream | undefined;
  let reply: RdCleanPathPdu | undefined;
  try {
    const request = await readRequest(client, timeoutMs);
    if (!request.x224ConnectionPdu || !isConnectionRequest(request.x224ConnectionPdu)) {
      throw new VmdeskError('RDCLEANPATH_INVALID', 'the RDCleanPath request carries no X.224 connection request');
    }
    const open = opts.authorize(request);
    if (!open) throw new VmdeskError('RDP_UNAUTHORIZED', 'the RDCleanPath request has no valid ticket', { hint: 'reload the RDP page' });
    upstream = await open();
    const server = upstream.stream;
    server.write(request.x224ConnectionPdu);
    const confirm = await readConfirm(server, timeoutMs);
    const parsed = parseConnectionConfirm(confirm);
    if (parsed.kind === 'failure') {
      throw new VmdeskError('RDP_NEGOTIATION_FAILED', `the RDP server refused the security protocols offered: ${NEG_FAILURE[parsed.failureCode] ?? `failure code ${parsed.failureCode}`}`, { context: { confirm } });
    }
    if (parsed.kind === 'legacy' || parsed.protocol === 0) {
      throw new VmdeskError('RDP_NEGOTIATION_FAILED', 'the RDP server offers only Standard RDP Security, which the web client does not speak', { hint: 'enable TLS or NLA on the server' });
    }
    const secure = await tlsHandshake(server, upstream.serverAddr, timeoutMs);
    const chain = peerChain(secure);
    client.write(encodeRdCleanPath(rdCleanPathResponse(upstream.serverAddr, confirm, chain)));
    relay(client, secure, upstream);
    return { kind: 'relayed', serverAddr: upstream.serverAddr };
  } catch (err) {
    const error = asVmdeskError(err);
    if (error.code !== 'RDP_CONNECTION_CLOSED') {
      reply = errorReply(error);
      if (client.writable) client.end(encodeRdCleanPath(reply));
    } else {
      client.destroy();
    }
    upstream?.stream.destroy();
    upstream?.release?.();
    return { kind: 'refused', error, reply };
  }
}

/**
 * RDP bytes both ways, with backpressure (pipeline pauses the faster side).
 * RDP has no half-close: once the browser's side ends, the server's is torn
 * down; once the server's ends, the browser's gets the rest and then its end.
 * The upstream is released once both directions are done.
 */
function relay(client: Duplex, server: TLSSocket, upstream: RdpUpstream): void {
  if (upstream.count) {
    const count = upstream.count;
    server.on('data', (b: Buffer) => count(b.length, 0));
    client.on('data', (b: Buffer) => count(0, b.length));
  }
  let finished = 0;
  const settle = () => {
    if (++finished === 2) upstream.release?.();
  };
  pipeline(client, server, () => {
    server.destroy();
    upstream.stream.destroy();
    settle();
  });
  pipeline(server, client, (err) => {
    if (err) client.destroy();
    settle();
  });
}
