/**
 * ssh_config's RevokedHostKeys: files of plain public keys or OpenSSH KRLs (PROTOCOL.krl).
 * Follows sshkey_check_revoked() in OpenSSH's authfile.c and ssh_krl_from_blob() in krl.c: a file
 * that cannot be read or parsed is a refusal, never "not revoked" (ssh(1) 9.2 refuses the host then).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { VmdeskError } from '../errors.js';
import { decodeKey } from './known-hosts.js';

/** Where a presented key was found revoked. */
export interface Revocation {
  file: string;
  /** 1-based line of a plain key list; absent for a KRL. */
  line?: number;
  by: 'listed-key' | 'krl-explicit-key' | 'krl-sha1' | 'krl-sha256';
}

/** What a KRL revokes that can apply to a plain (non-certificate) host key. */
export interface KrlPlainRevocations {
  keys: Buffer[];
  /** Hex SHA-1 and SHA-256 digests of revoked key blobs. */
  sha1: Set<string>;
  sha256: Set<string>;
}

/** Raised by the pure parsers; the caller turns it into a VmdeskError naming the file. */
export class RevokedKeysFormatError extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = 'RevokedKeysFormatError';
  }
}

/** "SSHKRL\n\0" (KRL_MAGIC in krl.h); a file not starting with it is read as a key list. */
const KRL_MAGIC = Buffer.from('SSHKRL\n\0', 'latin1');
const KRL_FORMAT_VERSION = 1;
const SECTION_CERTIFICATES = 1;
const SECTION_EXPLICIT_KEY = 2;
const SECTION_FINGERPRINT_SHA1 = 3;
const SECTION_SIGNATURE = 4;
const SECTION_FINGERPRINT_SHA256 = 5;
const CERT_SERIAL_LIST = 0x20;
const CERT_SERIAL_RANGE = 0x21;
const CERT_SERIAL_BITMAP = 0x22;
const CERT_KEY_ID = 0x23;

/** True when the bytes start with the KRL magic. */
export function isKrl(bytes: Buffer): boolean {
  return bytes.length >= KRL_MAGIC.length && bytes.subarray(0, KRL_MAGIC.length).equals(KRL_MAGIC);
}

/** SSH wire-format reader (RFC 4251 section 5) that throws on truncation. */
class WireReader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}
  get remaining(): number {
    return this.buf.length - this.offset;
  }
  private need(n: number, what: string): void {
    if (this.remaining < n) throw new RevokedKeysFormatError(`truncated ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.offset++]!;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }
  string(what: string): Buffer {
    const length = this.u32(what);
    this.need(length, what);
    const v = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return v;
  }
}

/**
 * Parses a KRL as ssh_krl_from_blob() does, keeping what revokes plain keys (explicit keys and
 * SHA-1/SHA-256 fingerprints). Certificate sections are checked for shape only: they revoke
 * certificates, which ssh2 never negotiates as host keys. A signed KRL is refused because
 * OpenSSH verifies its signature and vmdesk does not.
 */
export function parseKrl(bytes: Buffer): KrlPlainRevocations {
  if (!isKrl(bytes)) throw new RevokedKeysFormatError('not a KRL (bad magic)');
  const r = new WireReader(bytes.subarray(KRL_MAGIC.length));
  const version = r.u32('format version');
  if (version !== KRL_FORMAT_VERSION) throw new RevokedKeysFormatError(`unsupported KRL format version ${version}`);
  r.u64('krl_version');
  r.u64('generated_date');
  r.u64('flags');
  r.string('reserved');
  r.string('comment');
  const out: KrlPlainRevocations = { keys: [], sha1: new Set(), sha256: new Set() };
  while (r.remaining > 0) {
    const type = r.u8('section type');
    const body = r.string('section');
    switch (type) {
      case SECTION_CERTIFICATES:
        checkCertificateSection(new WireReader(body));
        break;
      case SECTION_EXPLICIT_KEY:
        for (const blob of blobs(body, 0)) out.keys.push(Buffer.from(blob));
        break;
      case SECTION_FINGERPRINT_SHA1:
        for (const blob of blobs(body, 20)) out.sha1.add(blob.toString('hex'));
        break;
      case SECTION_FINGERPRINT_SHA256:
        for (const blob of blobs(body, 32)) out.sha256.add(blob.toString('hex'));
        break;
      case SECTION_SIGNATURE:
        throw new RevokedKeysFormatError('the KRL is signed, and vmdesk cannot verify KRL signatures');
      default:
        throw new RevokedKeysFormatError(`unsupported KRL section ${type}`);
    }
  }
  return out;
}

/** A section that is a run of strings, each `expectedLength` bytes when that is not 0 (blob_section). */
function blobs(body: Buffer, expectedLength: number): Buffer[] {
  const r = new WireReader(body);
  const out: Buffer[] = [];
  while (r.remaining > 0) {
    const blob = r.string('revoked entry');
    if (expectedLength !== 0 && blob.length !== expectedLength) throw new RevokedKeysFormatError(`a fingerprint of ${blob.length} bytes where ${expectedLength} are expected`);
    out.push(blob);
  }
  return out;
}

/** parse_revoked_certs(): CA key, reserved, then typed subsections that must be consumed exactly. */
function checkCertificateSection(r: WireReader): void {
  r.string('CA key');
  r.string('reserved');
  while (r.remaining > 0) {
    const type = r.u8('certificate subsection type');
    const sub = new WireReader(r.string('certificate subsection'));
    switch (type) {
      case CERT_SERIAL_LIST:
        while (sub.remaining > 0) sub.u64('serial');
        break;
      case CERT_SERIAL_RANGE: {
        const low = sub.u64('serial range');
        const high = sub.u64('serial range');
        if (low > high) throw new RevokedKeysFormatError('a serial range whose start is above its end');
        break;
      }
      case CERT_SERIAL_BITMAP:
        sub.u64('bitmap offset');
        sub.string('bitmap');
        break;
      case CERT_KEY_ID:
        while (sub.remaining > 0) sub.string('key id');
        break;
      default:
        throw new RevokedKeysFormatError(`unsupported KRL certificate subsection ${type}`);
    }
    if (sub.remaining > 0) throw new RevokedKeysFormatError('a certificate subsection with unparsed data');
  }
}

/** How a KRL revokes `key`, or undefined (is_key_revoked(): hashes first, then explicit keys). */
export function krlRevokes(krl: KrlPlainRevocations, key: Buffer): Revocation['by'] | undefined {
  if (krl.sha1.has(createHash('sha1').update(key).digest('hex'))) return 'krl-sha1';
  if (krl.sha256.has(createHash('sha256').update(key).digest('hex'))) return 'krl-sha256';
  if (krl.keys.some((k) => k.equals(key))) return 'krl-explicit-key';
  return undefined;
}

/**
 * Looks `key` up in a plain key list the way sshkey_in_file() does: blank and `#` lines are skipped,
 * every other line must start `type base64` (an authorized_keys options prefix or a known_hosts
 * host field is a format error there, so it is here). Returns the 1-based line that lists the key.
 */
export function listedKeyLine(text: string, key: Buffer): number | undefined {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const trimmed = (lines[i] ?? '').replace(/\r$/, '').replace(/^[ \t]+/, '');
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const [type = '', base64 = ''] = trimmed.split(/[ \t]+/);
    const blob = decodeKey(type, base64);
    if (blob === undefined) throw new RevokedKeysFormatError(`line ${i + 1} is not a public key (expected "type base64 [comment]")`, i + 1);
    if (blob.equals(key)) return i + 1;
  }
  return undefined;
}

/**
 * Checks the presented host key against every RevokedHostKeys file (already expanded).
 * Resolves the first revocation found, or undefined; rejects with SSH_REVOKED_KEYS_UNREADABLE when
 * any file cannot be read or parsed, as ssh(1) then refuses the host too.
 */
export async function findRevocation(key: Buffer, files: readonly string[]): Promise<Revocation | undefined> {
  for (const file of files) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (cause) {
      const reason = (cause as NodeJS.ErrnoException).code ?? String(cause);
      throw unreadable(file, `cannot read it (${reason})`, cause);
    }
    try {
      if (isKrl(bytes)) {
        const by = krlRevokes(parseKrl(bytes), key);
        if (by) return { file, by };
      } else {
        const line = listedKeyLine(bytes.toString('utf8'), key);
        if (line !== undefined) return { file, line, by: 'listed-key' };
      }
    } catch (cause) {
      if (!(cause instanceof RevokedKeysFormatError)) throw cause;
      throw unreadable(file, `${isKrl(bytes) ? 'cannot read KRL' : 'cannot parse it'}: ${cause.message}`, cause, cause.line);
    }
  }
  return undefined;
}

function unreadable(file: string, what: string, cause: unknown, line?: number): VmdeskError {
  return new VmdeskError('SSH_REVOKED_KEYS_UNREADABLE', `RevokedHostKeys file ${file}: ${what}; vmdesk refuses to connect rather than ignore it`, {
    cause,
    context: { file, ...(line !== undefined ? { line } : {}) },
    hint: 'fix or recreate the file (plain public keys one per line, or a KRL from `ssh-keygen -k`), or remove RevokedHostKeys from ssh_config',
  });
}
