/**
 * Host-key verification against OpenSSH known_hosts files, which ssh2 leaves to its caller.
 * Follows sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT" and the lookup rules of ssh(1)'s hostfile.c.
 */

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { debuglog } from 'node:util';
import { VmdeskError } from '../errors.js';

const debug = debuglog('vmdesk:known-hosts');

/** One known_hosts line that names the host, as reported back to callers. */
export interface KnownKey {
  file: string;
  /** 1-based, as editors and `ssh-keygen -F` count. */
  line: number;
  type: string;
  fingerprint: string;
  marker?: 'revoked' | 'cert-authority';
}

/** The outcome of looking a presented host key up in known_hosts files. */
export type HostKeyVerdict =
  | { status: 'match'; file: string; line: number }
  | { status: 'unknown'; otherTypesKnown: KnownKey[]; certAuthorityOnly: boolean }
  | { status: 'mismatch'; knownKeys: KnownKey[] }
  | { status: 'revoked'; file: string; line: number };

type Marker = 'revoked' | 'cert-authority';

/** A line whose host field matched the looked-up name and whose key parsed. */
interface HostEntry {
  file: string;
  line: number;
  marker: Marker | undefined;
  type: string;
  blob: Buffer;
}

const SSH_DEFAULT_PORT = 22;
/** `|1|` is the only hash scheme OpenSSH has ever written (HASH_MAGIC in hostfile.h). */
const HASH_MAGIC = '|1|';
/** Salt and digest of hashed names are both SHA-1 sized; OpenSSH rejects anything else. */
const SHA1_BYTES = 20;
/** `|1|` + 28 base64 characters of salt + `|` + 28 of digest. */
const HASHED_FIELD_LENGTH = HASH_MAGIC.length + 28 + 1 + 28;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Key type names are printable ASCII without spaces (RFC 4251 section 6). */
const KEY_TYPE_RE = /^[\x21-\x7e]{1,64}$/;
/** ssh(1) accepts RSA signature algorithm names in the type field of an ssh-rsa key (sshkey_type_from_name). */
const RSA_TYPE_ALIASES = new Set(['ssh-rsa', 'rsa-sha2-256', 'rsa-sha2-512']);
/** Characters that would turn a host name into a pattern, a list or a new field when written to a line. */
const UNSAFE_NAME_RE = /[\s,*?!|@#[\]]/;
const SHELL_SAFE_RE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** The key type named inside an SSH wire-format public key blob, e.g. `ssh-ed25519`. */
export function keyTypeOf(key: Buffer): string {
  const type = readKeyType(key);
  if (type === undefined) {
    throw new VmdeskError('INTERNAL', 'the host key is not a well-formed SSH public key blob', {
      context: { bytes: key.length },
    });
  }
  return type;
}

/** `SHA256:` plus unpadded base64 of the blob's SHA-256, exactly as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The name known_hosts stores for a host: `host` on port 22, `[host]:port` otherwise, lowercased as ssh(1) does. */
export function hostPattern(host: string, port: number): string {
  const name = host.toLowerCase();
  // put_host_port() in OpenSSH treats port 0 as "unspecified", i.e. the default port.
  return port === SSH_DEFAULT_PORT || port === 0 ? name : `[${name}]:${port}`;
}

/**
 * Looks the presented key up in known_hosts `files` the way ssh(1) does.
 * host: hostname or IP as connected (or HostKeyAlias, with port 22, since ssh(1) uses the alias verbatim);
 * port: 22 means plain `host`, else `[host]:port` as OpenSSH. key: the server key in SSH wire format
 * (Buffer, as ssh2's hostVerifier receives it).
 * @example
 * const verdict = await checkHostKey({ host: '10.0.0.1', port: 2222, key, files: ['~/.ssh/known_hosts'] });
 * if (verdict.status === 'mismatch') console.log(removeCommand('10.0.0.1', 2222, verdict.knownKeys[0].file));
 */
export async function checkHostKey(input: { host: string; port: number; key: Buffer; files: string[] }): Promise<HostKeyVerdict> {
  const { key } = input;
  const presentedType = keyTypeOf(key);
  const entries = await collectHostEntries(input.host, input.port, input.files);

  // A revoked key is refused even when another line or file lists it as good (check_key_not_revoked).
  const revoked = entries.find((e) => e.marker === 'revoked' && e.blob.equals(key));
  if (revoked) return { status: 'revoked', file: revoked.file, line: revoked.line };

  // Only unmarked lines can vouch for a plain key; @cert-authority lines vouch for certificates,
  // which ssh2 cannot negotiate, so they never match here.
  const plain = entries.filter((e) => e.marker === undefined);
  const exact = plain.find((e) => e.blob.equals(key));
  if (exact) return { status: 'match', file: exact.file, line: exact.line };

  const sameType = plain.filter((e) => e.type === presentedType);
  if (sameType.length > 0) return { status: 'mismatch', knownKeys: sameType.map(toKnownKey) };

  return {
    status: 'unknown',
    otherTypesKnown: plain.map(toKnownKey),
    certAuthorityOnly: plain.length === 0 && entries.some((e) => e.marker === 'cert-authority'),
  };
}

/**
 * Key types known for the host, in file order, so the caller can prefer them in ssh2's serverHostKey
 * algorithm list as OpenSSH does. `ssh-rsa` stands for the key type; it also covers rsa-sha2-256/512.
 */
export async function knownKeyTypes(input: { host: string; port: number; files: string[] }): Promise<string[]> {
  const entries = await collectHostEntries(input.host, input.port, input.files);
  const types = new Set<string>();
  for (const e of entries) if (e.marker === undefined) types.add(e.type);
  return [...types];
}

/** A known_hosts line for the key, without trailing newline; `hash` writes `|1|salt|hmac` like HashKnownHosts. */
export function knownHostsLine(host: string, port: number, key: Buffer, opts: { hash?: boolean } = {}): string {
  return knownHostsLines([{ host, port }], key, opts)[0]!;
}

/**
 * Lines recording one key under several names, as ssh(1) records `host,ip` for CheckHostIP:
 * one `a,b` line, or with `hash` one hashed line per name (a hashed field holds a single name).
 */
export function knownHostsLines(names: readonly { host: string; port: number }[], key: Buffer, opts: { hash?: boolean } = {}): string[] {
  const fields = names.map(({ host, port }) => {
    if (host === '' || UNSAFE_NAME_RE.test(host)) {
      throw new VmdeskError('SSH_CONFIG_INVALID', `cannot record a host key for ${JSON.stringify(host)}`, {
        context: { host, port },
        hint: 'Host names and HostKeyAlias values must not contain spaces, commas or the pattern characters * ? ! | @ # [ ].',
      });
    }
    const name = hostPattern(host, port);
    return opts.hash ? hashedName(name, randomBytes(SHA1_BYTES)) : name;
  });
  const keyFields = `${keyTypeOf(key)} ${key.toString('base64')}`;
  return opts.hash ? fields.map((f) => `${f} ${keyFields}`) : [`${fields.join(',')} ${keyFields}`];
}

/** Appends one line to a known_hosts file, creating its folder (0700) and the file (0600) when missing. */
export async function appendKnownHost(file: string, line: string): Promise<void> {
  const body = line.endsWith('\n') ? line.slice(0, -1) : line;
  // An embedded newline would let one recorded key smuggle in a second, unrelated entry.
  if (/[\r\n]/.test(body)) {
    throw new VmdeskError('INTERNAL', 'a known_hosts entry must be a single line', { context: { file } });
  }
  const path = expandHome(file);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const handle = await open(path, 'a+', 0o600);
  try {
    const { size } = await handle.stat();
    let separator = '';
    if (size > 0) {
      // Without this, a file whose last line lacks its newline would get our entry glued onto that line.
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) separator = '\n';
    }
    await handle.appendFile(`${separator}${body}\n`);
  } finally {
    await handle.close();
  }
}

/** One-line command the user can run to remove stale entries, e.g. `ssh-keygen -R '[10.0.0.1]:2222' -f ~/.ssh/known_hosts`. */
export function removeCommand(host: string, port: number, file: string): string {
  return `ssh-keygen -R ${shellQuote(hostPattern(host, port))} -f ${displayPath(file)}`;
}

/** Reads every readable file and keeps the lines naming the host, in file then line order. */
async function collectHostEntries(host: string, port: number, files: string[]): Promise<HostEntry[]> {
  const matcher = new HostMatcher(hostPattern(host, port));
  const paths = files.map(expandHome);
  const texts = await Promise.all(paths.map(readIfPresent));
  const entries: HostEntry[] = [];
  paths.forEach((path, i) => {
    const text = texts[i];
    if (text !== undefined) scanFile(path, text, matcher, entries);
  });
  return entries;
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    // ssh(1) skips unreadable known_hosts files too (load_hostkeys); a missing one is the common case.
    debug('skipping %s: %s', path, (err as NodeJS.ErrnoException).code ?? String(err));
    return undefined;
  }
}

function scanFile(file: string, text: string, matcher: HostMatcher, out: HostEntry[]): void {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const trimmed = (lines[i] ?? '').trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const fields = trimmed.split(/[ \t]+/);
    let at = 0;
    let marker: Marker | undefined;
    if (fields[0]?.startsWith('@')) {
      if (fields[0] === '@revoked') marker = 'revoked';
      else if (fields[0] === '@cert-authority') marker = 'cert-authority';
      else {
        debug('%s:%d: unknown marker %s', file, i + 1, fields[0]);
        continue;
      }
      at = 1;
    }
    const hosts = fields[at];
    const typeName = fields[at + 1];
    const base64 = fields[at + 2];
    // Host matching first: it rejects nearly every line of a big file without decoding any key.
    if (hosts === undefined || !matcher.matches(hosts)) continue;
    const blob = typeName === undefined || base64 === undefined ? undefined : decodeKey(typeName, base64);
    if (blob === undefined) {
      debug('%s:%d: malformed key for a matching host, line skipped', file, i + 1);
      continue;
    }
    // readKeyType cannot fail here: decodeKey already checked the blob.
    out.push({ file, line: i + 1, marker, type: readKeyType(blob) ?? typeName ?? '', blob });
  }
}

/** Decodes a `type base64` key field pair, or undefined when it is not a well-formed blob of the named type. */
export function decodeKey(typeName: string, base64: string): Buffer | undefined {
  // Buffer.from() silently drops invalid characters, so validate first.
  if (!BASE64_RE.test(base64)) return undefined;
  const blob = Buffer.from(base64, 'base64');
  const blobType = readKeyType(blob);
  if (blobType === undefined || !isWellFormedBlob(blob)) return undefined;
  if (typeName === blobType) return blob;
  return blobType === 'ssh-rsa' && RSA_TYPE_ALIASES.has(typeName) ? blob : undefined;
}

function readKeyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || 4 + length > blob.length) return undefined;
  const type = blob.toString('latin1', 4, 4 + length);
  return KEY_TYPE_RE.test(type) ? type : undefined;
}

/**
 * Every plain public key format (RSA, DSA, ECDSA, Ed25519 and their sk- forms) is a run of SSH strings
 * and mpints (RFC 4253 section 6.6, RFC 5656 section 3.1, RFC 8709 section 4), so a blob that does not
 * split into length-prefixed fields exactly is truncated or garbage.
 */
function isWellFormedBlob(blob: Buffer): boolean {
  let offset = 0;
  let fields = 0;
  while (offset < blob.length) {
    if (offset + 4 > blob.length) return false;
    offset += 4 + blob.readUInt32BE(offset);
    fields++;
  }
  return offset === blob.length && fields >= 2;
}

/** Matches host fields against one looked-up name, remembering HMACs per salt. */
class HostMatcher {
  private readonly hashes = new Map<string, string>();

  constructor(private readonly name: string) {}

  /** True when the field names the host: a hashed name, or a pattern list with a positive and no negated match. */
  matches(field: string): boolean {
    if (field.startsWith('|')) return this.matchesHashed(field);
    let positive = false;
    for (const item of field.split(',')) {
      const negated = item.startsWith('!');
      const pattern = (negated ? item.slice(1) : item).toLowerCase();
      if (!globMatch(this.name, pattern)) continue;
      // match_pattern_list(): a negated match vetoes the whole line, whatever else matched.
      if (negated) return false;
      positive = true;
    }
    return positive;
  }

  /**
   * OpenSSH rebuilds `|1|salt|hmac` from the decoded salt and compares the whole field as a string
   * (match_maybe_hashed), so a list, a non-canonical encoding or a salt of the wrong size never matches.
   */
  private matchesHashed(field: string): boolean {
    if (field.length !== HASHED_FIELD_LENGTH || !field.startsWith(HASH_MAGIC)) return false;
    const saltText = field.slice(HASH_MAGIC.length, field.indexOf('|', HASH_MAGIC.length));
    let expected = this.hashes.get(saltText);
    if (expected === undefined) {
      if (!BASE64_RE.test(saltText)) return false;
      const salt = Buffer.from(saltText, 'base64');
      if (salt.length !== SHA1_BYTES) return false;
      expected = hashedName(this.name, salt);
      this.hashes.set(saltText, expected);
    }
    return field === expected;
  }
}

function hashedName(name: string, salt: Buffer): string {
  const digest = createHmac('sha1', salt).update(name).digest();
  return `${HASH_MAGIC}${salt.toString('base64')}|${digest.toString('base64')}`;
}

/** `*` and `?` globbing as match_pattern() does; iterative so hostile patterns cannot make it exponential. */
function globMatch(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let starAt = -1;
  let resumeAt = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '*') {
      starAt = p++;
      resumeAt = t;
    } else if (c !== undefined && (c === '?' || c === text[t])) {
      t++;
      p++;
    } else if (starAt >= 0) {
      p = starAt + 1;
      t = ++resumeAt;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

function toKnownKey(e: HostEntry): KnownKey {
  const known: KnownKey = { file: e.file, line: e.line, type: e.type, fingerprint: fingerprintSha256(e.blob) };
  if (e.marker !== undefined) known.marker = e.marker;
  return known;
}

/** `~` and `~/x` become the home directory as ssh(1) expands them; `~user` is left alone. */
function expandHome(path: string): string {
  if (path === '~') return homedir();
  return path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}

/** The path as the user would type it: under the home directory it starts with `~/`. */
function displayPath(file: string): string {
  const path = expandHome(file);
  const home = homedir().replace(/\/+$/, '');
  if (home !== '' && path.startsWith(`${home}/`)) return `~/${shellQuote(path.slice(home.length + 1))}`;
  return shellQuote(path);
}

function shellQuote(word: string): string {
  return SHELL_SAFE_RE.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
