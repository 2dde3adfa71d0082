/**
 * The few DER (ITU-T X.690) shapes RDCleanPath uses: definite-length TLVs,
 * SEQUENCE, INTEGER (non-negative), UTF8String, OCTET STRING, and explicit
 * context-specific tags. Pure; throws `RangeError` with a reason, which the
 * caller wraps in its own error.
 */

export const TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
} as const;

/** `[n]` EXPLICIT: context-specific, constructed (X.690 8.14). */
export const contextTag = (n: number): number => 0xa0 | n;

/** One decoded TLV: its tag byte, its contents, and where the next TLV starts. */
export interface Tlv {
  tag: number;
  value: Buffer;
  end: number;
}

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function encodeTlv(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(value.length), value]);
}

/** A non-negative INTEGER in its minimal two's-complement form (a leading 0x00 when the top bit is set). */
export function encodeUnsigned(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a non-negative integer: ${n}`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return encodeTlv(TAG.INTEGER, Buffer.from(bytes));
}

/**
 * The total length of the TLV at the start of `buf` (header and contents),
 * or undefined while its header is incomplete. Lets a reader know when a
 * whole PDU has arrived before decoding it.
 */
export function tlvLength(buf: Buffer): number | undefined {
  if (buf.length < 2) return undefined;
  if ((buf[0]! & 0x1f) === 0x1f) throw new RangeError('multi-byte tags are not used here');
  const first = buf[1]!;
  if (first < 0x80) return 2 + first;
  const count = first & 0x7f;
  if (count === 0) throw new RangeError('indefinite length is not DER');
  if (count > 4) throw new RangeError('length too large');
  if (buf.length < 2 + count) return undefined;
  let len = 0;
  for (let i = 0; i < count; i++) len = len * 256 + buf[2 + i]!;
  if (len < 0x80 || (count > 1 && buf[2] === 0)) throw new RangeError('length not in its shortest form (DER)');
  return 2 + count + len;
}

/** The TLV at `offset` of `buf`, which must hold it whole. */
export function readTlv(buf: Buffer, offset = 0): Tlv {
  const rest = buf.subarray(offset);
  const total = tlvLength(rest);
  if (total === undefined || total > rest.length) throw new RangeError(`truncated TLV at offset ${offset}`);
  const header = rest[1]! < 0x80 ? 2 : 2 + (rest[1]! & 0x7f);
  return { tag: rest[0]!, value: rest.subarray(header, total), end: offset + total };
}

/** Every TLV in `buf`, in order (the contents of a SEQUENCE). */
export function readAll(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < buf.length; ) {
    const t = readTlv(buf, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

export function expectTag(t: Tlv, tag: number, what: string): Buffer {
  if (t.tag !== tag) throw new RangeError(`${what}: tag 0x${t.tag.toString(16)}, expected 0x${tag.toString(16)}`);
  return t.value;
}

/** A non-negative INTEGER no wider than `maxBytes` of magnitude. */
export function decodeUnsigned(t: Tlv, what: string, max: number): number {
  const v = expectTag(t, TAG.INTEGER, what);
  if (v.length === 0) throw new RangeError(`${what}: empty INTEGER`);
  if (v[0]! & 0x80) throw new RangeError(`${what}: negative`);
  if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) throw new RangeError(`${what}: INTEGER not in its shortest form (DER)`);
  if (v.length > 7) throw new RangeError(`${what}: too large`);
  let n = 0;
  for (const b of v) n = n * 256 + b;
  if (n > max) throw new RangeError(`${what}: ${n} is over ${max}`);
  return n;
}

export function decodeUtf8(t: Tlv, what: string): string {
  const v = expectTag(t, TAG.UTF8_STRING, what);
  const s = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  try {
    return s.decode(v);
  } catch {
    throw new RangeError(`${what}: not UTF-8`);
  }
}
