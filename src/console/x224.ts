/**
 * The plaintext start of an RDP connection: TPKT (RFC 1006 section 6) frames
 * carrying X.224 Connection Request / Confirm PDUs, with the RDP negotiation
 * structures of MS-RDPBCGR 2.2.1.1.1 and 2.2.1.2. A reader that returns whole
 * TPKT frames however the bytes arrive (a Confirm can come split over several
 * `data` events through an SSH channel), and a parser for the Confirm. Pure.
 */
import { VmdeskError } from '../errors.js';

/** A Connection Confirm is 11 or 19 bytes; anything near this is not one. */
export const MAX_X224_BYTES = 512;
const TPKT_VERSION = 3;
const X224_CONNECTION_CONFIRM = 0xd0;
const X224_CONNECTION_REQUEST = 0xe0;
const TYPE_RDP_NEG_RSP = 0x02;
const TYPE_RDP_NEG_FAILURE = 0x03;

/** MS-RDPBCGR 2.2.1.1.1 requestedProtocols / 2.2.1.2.1 selectedProtocol. */
export const PROTOCOL = { RDP: 0, SSL: 1, HYBRID: 2, RDSTLS: 4, HYBRID_EX: 8 } as const;

/** MS-RDPBCGR 2.2.1.2.2 failureCode. */
export const NEG_FAILURE: Record<number, string> = {
  1: 'SSL_REQUIRED_BY_SERVER',
  2: 'SSL_NOT_ALLOWED_BY_SERVER',
  3: 'SSL_CERT_NOT_ON_SERVER',
  4: 'INCONSISTENT_FLAGS',
  5: 'HYBRID_REQUIRED_BY_SERVER',
  6: 'SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER',
};

export type X224Confirm = { kind: 'response'; protocol: number } | { kind: 'failure'; failureCode: number } | { kind: 'legacy' };

function x224Error(reason: string): VmdeskError {
  return new VmdeskError('RDP_NEGOTIATION_FAILED', `the RDP server's X.224 reply is not a connection confirm: ${reason}`, { hint: 'is an RDP server listening on port 3389 of the guest?' });
}

/**
 * The total length of the TPKT frame at the start of `buf`, or undefined
 * until its 4-byte header has arrived.
 */
export function tpktLength(buf: Buffer): number | undefined {
  if (buf.length > 0 && buf[0] !== TPKT_VERSION) throw x224Error(`first byte 0x${buf[0]!.toString(16)}, not TPKT version 3`);
  if (buf.length < 4) return undefined;
  const n = buf.readUInt16BE(2);
  // 4 bytes of TPKT + the X.224 length indicator and at least 6 bytes of fixed header.
  if (n < 11 || n > MAX_X224_BYTES) throw x224Error(`TPKT length ${n}`);
  return n;
}

/**
 * Collects bytes until one whole TPKT frame is there. `push` returns the
 * frame once complete, with any bytes after it (which, before TLS, a server
 * must not send).
 */
export class TpktReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): { frame: Buffer; rest: Buffer } | undefined {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const n = tpktLength(this.buf);
    if (n === undefined || this.buf.length < n) return undefined;
    return { frame: this.buf.subarray(0, n), rest: this.buf.subarray(n) };
  }
}

/** True when `frame` is a TPKT-framed X.224 Connection Request (what a client's RDCleanPath PDU must carry). */
export function isConnectionRequest(frame: Buffer): boolean {
  try {
    return tpktLength(frame) === frame.length && frame[4]! + 5 <= frame.length && (frame[5]! & 0xf0) === X224_CONNECTION_REQUEST;
  } catch {
    return false;
  }
}

/** Parses a whole TPKT frame holding an X.224 Connection Confirm. */
export function parseConnectionConfirm(frame: Buffer): X224Confirm {
  const n = tpktLength(frame);
  if (n !== frame.length) throw x224Error('incomplete frame');
  const li = frame[4]!;
  if (li + 5 > frame.length || li < 6) throw x224Error(`length indicator ${li}`);
  if ((frame[5]! & 0xf0) !== X224_CONNECTION_CONFIRM) throw x224Error(`X.224 code 0x${frame[5]!.toString(16)}`);
  // Fixed part: code, DST-REF (2), SRC-REF (2), class (1). Then the optional 8-byte negotiation structure.
  if (li === 6) return { kind: 'legacy' };
  if (li < 14) throw x224Error(`length indicator ${li}`);
  const type = frame[11]!;
  const value = frame.readUInt32LE(15);
  if (type === TYPE_RDP_NEG_RSP) return { kind: 'response', protocol: value };
  if (type === TYPE_RDP_NEG_FAILURE) return { kind: 'failure', failureCode: value };
  throw x224Error(`negotiation type 0x${type.toString(16)}`);
}
