import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isVmdeskError } from '../errors.js';
import { findRevocation, isKrl, krlRevokes, listedKeyLine, parseKrl, RevokedKeysFormatError } from './revoked-keys.js';

// KRLs and lists made by the real ssh-keygen (fixtures/revoked-keys/generate.sh); expected.txt holds `ssh-keygen -Q`'s verdicts.
const FIXTURES = fileURLToPath(new URL('../../fixtures/revoked-keys/', import.meta.url));
const KEYS = fileURLToPath(new URL('../../fixtures/known-hosts/keys/', import.meta.url));

function pub(name: string): Buffer {
  const [, base64] = readFileSync(join(KEYS, `${name}.pub`), 'utf8').split(' ');
  return Buffer.from(base64 ?? '', 'base64');
}

const expected = readFileSync(join(FIXTURES, 'expected.txt'), 'utf8')
  .trim()
  .split('\n')
  .map((line) => line.split(' ') as [string, string, string]);

function assertCode(code: string) {
  return (err: unknown) => isVmdeskError(err) && err.code === code;
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vmdesk-revoked-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A KRL header as ssh-keygen writes it (PROTOCOL.krl section 1), followed by raw section bytes. */
function krlWith(...sections: Buffer[]): Buffer {
  const header = Buffer.alloc(4 + 8 + 8 + 8 + 4 + 4);
  header.writeUInt32BE(1, 0);
  return Buffer.concat([Buffer.from('SSHKRL\n\0', 'latin1'), header, ...sections]);
}

function sshString(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function section(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), sshString(body)]);
}

test('every KRL verdict matches ssh-keygen -Q (explicit keys, SHA1, SHA256, certificate sections)', () => {
  assert.ok(expected.length >= 28);
  for (const [file, keyName, verdict] of expected) {
    const krl = parseKrl(readFileSync(join(FIXTURES, file)));
    const by = krlRevokes(krl, pub(keyName));
    assert.equal(by === undefined ? 'ok' : 'REVOKED', verdict, `${file} ${keyName}`);
  }
});

test('a KRL says which section revoked the key', () => {
  const hashes = parseKrl(readFileSync(join(FIXTURES, 'hashes.krl')));
  assert.equal(krlRevokes(hashes, pub('beta-ed25519')), 'krl-sha1');
  assert.equal(krlRevokes(hashes, pub('alpha-ecdsa')), 'krl-sha256');
  assert.equal(krlRevokes(parseKrl(readFileSync(join(FIXTURES, 'explicit.krl'))), pub('alpha-rsa')), 'krl-explicit-key');
});

test('malformed KRLs are format errors, never "not revoked"', () => {
  const good = readFileSync(join(FIXTURES, 'mixed.krl'));
  assert.ok(isKrl(good));
  // Cut anywhere but between two sections, a KRL is truncated.
  const boundaries = new Set<number>();
  let at = 8 + 4 + 8 + 8 + 8;
  at += 4 + good.readUInt32BE(at);
  at += 4 + good.readUInt32BE(at);
  while (at <= good.length) {
    boundaries.add(at);
    if (at === good.length) break;
    at += 1 + 4 + good.readUInt32BE(at + 1);
  }
  assert.ok(boundaries.has(good.length) && boundaries.size >= 3);
  for (let cut = 8; cut < good.length; cut++) {
    if (boundaries.has(cut)) assert.doesNotThrow(() => parseKrl(good.subarray(0, cut)), `cut at ${cut}`);
    else assert.throws(() => parseKrl(good.subarray(0, cut)), RevokedKeysFormatError, `cut at ${cut}`);
  }
  const version2 = Buffer.from(good);
  version2.writeUInt32BE(2, 8);
  assert.throws(() => parseKrl(version2), /format version 2/);
  assert.throws(() => parseKrl(krlWith(section(9, Buffer.alloc(0)))), /unsupported KRL section 9/);
  // A signature section (type 4): OpenSSH verifies it; vmdesk cannot, so it refuses rather than skip it.
  assert.throws(() => parseKrl(krlWith(Buffer.from([4]), sshString(pub('alpha-ed25519')), sshString(Buffer.alloc(64)))), /signed/);
  assert.throws(() => parseKrl(krlWith(section(3, sshString(Buffer.alloc(19))))), /19 bytes/);
  assert.throws(() => parseKrl(krlWith(section(5, sshString(Buffer.alloc(20))))), /20 bytes/);
  // Certificate subsections must be consumed exactly, as parse_revoked_certs() requires.
  const certHeader = Buffer.concat([sshString(Buffer.alloc(0)), sshString(Buffer.alloc(0))]);
  assert.throws(() => parseKrl(krlWith(section(1, Buffer.concat([certHeader, Buffer.from([0x21]), sshString(Buffer.alloc(24))])))), /unparsed/);
  assert.throws(() => parseKrl(krlWith(section(1, Buffer.concat([certHeader, Buffer.from([0x30]), sshString(Buffer.alloc(0))])))), /subsection 48/);
  const reversed = Buffer.alloc(16);
  reversed.writeBigUInt64BE(5n, 0);
  reversed.writeBigUInt64BE(1n, 8);
  assert.throws(() => parseKrl(krlWith(section(1, Buffer.concat([certHeader, Buffer.from([0x21]), sshString(reversed)])))), /range/);
  // An empty KRL (header only) is valid and revokes nothing.
  assert.equal(krlRevokes(parseKrl(krlWith()), pub('alpha-ed25519')), undefined);
});

test('a plain list is read like sshkey_in_file(): comments, blanks, leading blanks, no comment field', () => {
  const text = readFileSync(join(FIXTURES, 'revoked.list'), 'utf8');
  assert.equal(listedKeyLine(text, pub('other-ed25519')), 3);
  assert.equal(listedKeyLine(text, pub('revoked-ed25519')), 4);
  assert.equal(listedKeyLine(text, pub('alpha-ed25519')), undefined);
  assert.equal(listedKeyLine('', pub('alpha-ed25519')), undefined);
  assert.equal(listedKeyLine(`ssh-ed25519 ${pub('alpha-ed25519').toString('base64')}\r\n`, pub('alpha-ed25519')), 1);
});

test('a line that is not "type base64" makes the whole list unreadable, as in ssh(1)', () => {
  const kh = readFileSync(join(FIXTURES, 'known-hosts-style.list'), 'utf8');
  assert.throws(() => listedKeyLine(kh, pub('alpha-ed25519')), (e: unknown) => e instanceof RevokedKeysFormatError && e.line === 1);
  const ed = pub('alpha-ed25519').toString('base64');
  for (const bad of ['hello world', `from="10.0.0.1" ssh-ed25519 ${ed}`, 'ssh-ed25519', `ssh-rsa ${ed}`, 'ssh-ed25519 !!!']) {
    assert.throws(() => listedKeyLine(`# ok\n${bad}\n`, pub('beta-ed25519')), RevokedKeysFormatError, bad);
  }
});

test('findRevocation: first file that revokes, in order; KRL and list files mixed', async () => {
  const list = join(FIXTURES, 'revoked.list');
  const krl = join(FIXTURES, 'mixed.krl');
  assert.deepEqual(await findRevocation(pub('other-ed25519'), [list, krl]), { file: list, line: 3, by: 'listed-key' });
  assert.deepEqual(await findRevocation(pub('other-ed25519'), [krl, list]), { file: krl, by: 'krl-explicit-key' });
  assert.deepEqual(await findRevocation(pub('alpha-ed25519'), [list, krl]), { file: krl, by: 'krl-sha256' });
  assert.equal(await findRevocation(pub('beta-ed25519'), [list, krl]), undefined);
  assert.equal(await findRevocation(pub('beta-ed25519'), []), undefined);
});

test('findRevocation: a missing, unreadable or malformed file refuses (SSH_REVOKED_KEYS_UNREADABLE)', async (t) => {
  const dir = await tempDir(t);
  const key = pub('beta-ed25519');
  await assert.rejects(findRevocation(key, [join(dir, 'missing')]), assertCode('SSH_REVOKED_KEYS_UNREADABLE'));
  await assert.rejects(findRevocation(key, [dir]), assertCode('SSH_REVOKED_KEYS_UNREADABLE'));
  await assert.rejects(findRevocation(key, [join(FIXTURES, 'known-hosts-style.list')]), assertCode('SSH_REVOKED_KEYS_UNREADABLE'));
  const truncated = join(dir, 'truncated.krl');
  await writeFile(truncated, readFileSync(join(FIXTURES, 'mixed.krl')).subarray(0, 60));
  await assert.rejects(findRevocation(key, [truncated]), (e: unknown) => isVmdeskError(e, 'SSH_REVOKED_KEYS_UNREADABLE') && e.context.file === truncated);
  // Even when an earlier file in the list is fine.
  await assert.rejects(findRevocation(key, [join(FIXTURES, 'revoked.list'), join(dir, 'missing')]), assertCode('SSH_REVOKED_KEYS_UNREADABLE'));
});
