/**
 * RDCleanPath, the PDU IronRDP's web client exchanges with its proxy before
 * the RDP bytes flow (IronRDP crates/ironrdp-rdcleanpath): one DER SEQUENCE,
 * every field an EXPLICIT context tag, version 3390. The client sends its
 * X.224 Connection Request and the destination; the proxy answers with the
 * server's X.224 Connection Confirm, its TLS certificate chain and address,
 * or with an error. Pure: bytes in, values out.
 */
import { VmdeskError } from '../errors.js';
import { contextTag, decodeUnsigned, decodeUtf8, encodeTlv, encodeUnsigned, expectTag, readAll, readTlv, TAG, tlvLength } from './der.js';

/** 3389 + 1: the only version IronRDP speaks. */
export const RDCLEANPATH_VERSION = 3390;
export const GENERAL_ERROR = 1;
export const NEGOTIATION_ERROR = 2;
/** A request is a few hundred bytes (a ticket, an address, a 40-byte X.224 PDU): refuse anything much larger unread. */
export const MAX_PDU_BYTES = 16 * 1024;

export interface RdCleanPathError {
  errorCode: number;
  httpStatusCode?: number;
  wsaLastError?: number;
  tlsAlertCode?: number;
}

export interface RdCleanPathPdu {
  version: number;
  error?: RdCleanPathError;
  /** Client to proxy: where the client wants to go. vmdesk never trusts it. */
  destination?: string;
  /** Client to proxy: the credential (vmdesk: a single-use ticket). */
  proxyAuth?: string;
  serverAuth?: string;
  preconnectionBlob?: string;
  /** The client's X.224 Connection Request, or the server's Confirm. */
  x224ConnectionPdu?: Buffer;
  /** Proxy to client: the server's TLS certificates, leaf first, DER. */
  serverCertChain?: Buffer[];
  /** Proxy to client: the address the proxy connected to. */
  serverAddr?: string;
}

const F = { version: 0, error: 1, destination: 2, proxyAuth: 3, serverAuth: 4, preconnectionBlob: 5, x224: 6, certChain: 7, serverAddr: 9 } as const;
const E = { errorCode: 0, http: 1, wsa: 2, tls: 3 } as const;

const explicit = (n: number, inner: Buffer) => encodeTlv(contextTag(n), inner);
const utf8 = (s: string) => encodeTlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
const octets = (b: Buffer) => encodeTlv(TAG.OCTET_STRING, b);

function invalid(reason: string, cause?: unknown): VmdeskError {
  return new VmdeskError('RDCLEANPATH_INVALID', `the RDCleanPath PDU is malformed: ${reason}`, { ...(cause ? { cause } : {}), hint: 'use an IronRDP web client that speaks RDCleanPath version 3390' });
}

export function encodeRdCleanPath(pdu: RdCleanPathPdu): Buffer {
  const fields: Buffer[] = [explicit(F.version, encodeUnsigned(pdu.version))];
  if (pdu.error) {
    const e = pdu.error;
    const inner = [explicit(E.errorCode, encodeUnsigned(e.errorCode))];
    if (e.httpStatusCode !== undefined) inner.push(explicit(E.http, encodeUnsigned(e.httpStatusCode)));
    if (e.wsaLastError !== undefined) inner.push(explicit(E.wsa, encodeUnsigned(e.wsaLastError)));
    if (e.tlsAlertCode !== undefined) inner.push(explicit(E.tls, encodeUnsigned(e.tlsAlertCode)));
    fields.push(explicit(F.error, encodeTlv(TAG.SEQUENCE, Buffer.concat(inner))));
  }
  if (pdu.destination !== undefined) fields.push(explicit(F.destination, utf8(pdu.destination)));
  if (pdu.proxyAuth !== undefined) fields.push(explicit(F.proxyAuth, utf8(pdu.proxyAuth)));
  if (pdu.serverAuth !== undefined) fields.push(explicit(F.serverAuth, utf8(pdu.serverAuth)));
  if (pdu.preconnectionBlob !== undefined) fields.push(explicit(F.preconnectionBlob, utf8(pdu.preconnectionBlob)));
  if (pdu.x224ConnectionPdu !== undefined) fields.push(explicit(F.x224, octets(pdu.x224ConnectionPdu)));
  if (pdu.serverCertChain !== undefined) fields.push(explicit(F.certChain, encodeTlv(TAG.SEQUENCE, Buffer.concat(pdu.serverCertChain.map(octets)))));
  if (pdu.serverAddr !== undefined) fields.push(explicit(F.serverAddr, utf8(pdu.serverAddr)));
  return encodeTlv(TAG.SEQUENCE, Buffer.concat(fields));
}

/**
 * How many bytes the PDU at the start of `buf` takes, or undefined until its
 * header has arrived. Throws RDCLEANPATH_INVALID when the bytes cannot start
 * one (not a SEQUENCE, or larger than MAX_PDU_BYTES).
 */
export function rdCleanPathLength(buf: Buffer): number | undefined {
  if (buf.length > 0 && buf[0] !== TAG.SEQUENCE) throw invalid(`starts with 0x${buf[0]!.toString(16)}, not a SEQUENCE`);
  let n: number | undefined;
  try {
    n = tlvLength(buf);
  } catch (err) {
    throw invalid((err as Error).message, err);
  }
  if (n !== undefined && n > MAX_PDU_BYTES) throw invalid(`${n} bytes, more than ${MAX_PDU_BYTES}`);
  return n;
}

function decodeError(value: Buffer): RdCleanPathError {
  const seq = readTlv(value);
  if (seq.end !== value.length) throw new RangeError('error: trailing bytes');
  const out: RdCleanPathError = { errorCode: -1 };
  for (const f of readAll(expectTag(seq, TAG.SEQUENCE, 'error'))) {
    const inner = readTlv(f.value);
    if (f.tag === contextTag(E.errorCode)) out.errorCode = decodeUnsigned(inner, 'error_code', 0xffff);
    else if (f.tag === contextTag(E.http)) out.httpStatusCode = decodeUnsigned(inner, 'http_status_code', 0xffff);
    else if (f.tag === contextTag(E.wsa)) out.wsaLastError = decodeUnsigned(inner, 'wsa_last_error', 0xffff);
    else if (f.tag === contextTag(E.tls)) out.tlsAlertCode = decodeUnsigned(inner, 'tls_alert_code', 0xff);
  }
  if (out.errorCode < 0) throw new RangeError('error without error_code');
  return out;
}

/** Decodes one whole PDU (exactly `buf`); throws RDCLEANPATH_INVALID with the reason. */
export function decodeRdCleanPath(buf: Buffer): RdCleanPathPdu {
  try {
    const seq = readTlv(buf);
    if (seq.end !== buf.length) throw new RangeError(`${buf.length - seq.end} bytes after the PDU`);
    const pdu: Partial<RdCleanPathPdu> = {};
    let last = -1;
    for (const f of readAll(expectTag(seq, TAG.SEQUENCE, 'PDU'))) {
      if ((f.tag & 0xe0) !== 0xa0) throw new RangeError(`field tag 0x${f.tag.toString(16)} is not an explicit context tag`);
      const n = f.tag & 0x1f;
      // DER: SEQUENCE fields in their defined order, each at most once.
      if (n <= last) throw new RangeError(`field [${n}] out of order or repeated`);
      last = n;
      const inner = readTlv(f.value);
      if (inner.end !== f.value.length) throw new RangeError(`field [${n}]: trailing bytes`);
      switch (n) {
        case F.version:
          pdu.version = decodeUnsigned(inner, 'version', Number.MAX_SAFE_INTEGER);
          break;
        case F.error:
          pdu.error = decodeError(f.value);
          break;
        case F.destination:
          pdu.destination = decodeUtf8(inner, 'destination');
          break;
        case F.proxyAuth:
          pdu.proxyAuth = decodeUtf8(inner, 'proxy_auth');
          break;
        case F.serverAuth:
          pdu.serverAuth = decodeUtf8(inner, 'server_auth');
          break;
        case F.preconnectionBlob:
          pdu.preconnectionBlob = decodeUtf8(inner, 'preconnection_blob');
          break;
        case F.x224:
          pdu.x224ConnectionPdu = Buffer.from(expectTag(inner, TAG.OCTET_STRING, 'x224_connection_pdu'));
          break;
        case F.certChain:
          pdu.serverCertChain = readAll(expectTag(inner, TAG.SEQUENCE, 'server_cert_chain')).map((c) => Buffer.from(expectTag(c, TAG.OCTET_STRING, 'certificate')));
          break;
        case F.serverAddr:
          pdu.serverAddr = decodeUtf8(inner, 'server_addr');
          break;
        default:
        // A field a later version adds (8 was ocsp_response): skipped, as the tag says what it is.
      }
    }
    if (pdu.version === undefined) throw new RangeError('no version');
    if (pdu.version !== RDCLEANPATH_VERSION) throw new RangeError(`version ${pdu.version}, expected ${RDCLEANPATH_VERSION}`);
    return pdu as RdCleanPathPdu;
  } catch (err) {
    if (err instanceof VmdeskError) throw err;
    throw invalid((err as Error).message, err);
  }
}

/** The proxy's answer when the server was reached: its X.224 Confirm, TLS chain and address. */
export function rdCleanPathResponse(serverAddr: string, x224Confirm: Buffer, certChain: Buffer[]): RdCleanPathPdu {
  return { version: RDCLEANPATH_VERSION, x224ConnectionPdu: x224Confirm, serverCertChain: certChain, serverAddr };
}

export function httpError(status: number): RdCleanPathPdu {
  return { version: RDCLEANPATH_VERSION, error: { errorCode: GENERAL_ERROR, httpStatusCode: status } };
}

export function wsaError(code: number): RdCleanPathPdu {
  return { version: RDCLEANPATH_VERSION, error: { errorCode: GENERAL_ERROR, wsaLastError: code } };
}

export function tlsAlertError(alert: number): RdCleanPathPdu {
  return { version: RDCLEANPATH_VERSION, error: { errorCode: GENERAL_ERROR, tlsAlertCode: alert } };
}

/** The server refused the client's security protocols: its Confirm goes back so the client can say why (e.g. NLA required). */
export function negotiationError(x224Confirm: Buffer): RdCleanPathPdu {
  return { version: RDCLEANPATH_VERSION, error: { errorCode: NEGOTIATION_ERROR }, x224ConnectionPdu: x224Confirm };
}
