import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isVmdeskError } from '../errors.js';
import {
  appendKnownHost,
  checkHostKey,
  fingerprintSha256,
  hostPattern,
  keyTypeOf,
  knownHostsLine,
  knownKeyTypes,
  removeCommand,
} from './known-hosts.js';

// Keys, lines and fingerprints come from the real ssh-keygen (fixtures/known-hosts/generate.sh).
const FIXTURES = fileURLToPath(new URL('../../fixtures/known-hosts/', import.meta.url));
const PLAIN = join(FIXTURES, 'known_hosts');
const GLOBAL = join(FIXTURES, 'known_hosts.global');
const HASHED = join(FIXTURES, 'known_hosts.hashed');
const MALFORMED = join(FIXTURES, 'known_hosts.malformed');

/** The wire blob of a fixture key: the base64 second field of its .pub file. */
function pub(name: string): Buffer {
  const [, base64] = readFileSync(join(FIXTURES, 'keys', `${name}.pub`), 'utf8').split(' ');
  return Buffer.from(base64 ?? '', 'base64');
}

const alphaEd = pub('alpha-ed25519');
const alphaEcdsa = pub('alpha-ecdsa');
const alphaRsa = pub('alpha-rsa');
const betaEd = pub('beta-ed25519');
const otherEd = pub('other-ed25519');
const caEd = pub('ca-ed25519');
const revokedEd = pub('revoked-ed25519');

const hasSshKeygen = spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error === undefined;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vmdesk-known-hosts-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function assertCode(code: string) {
  return (err: unknown) => isVmdeskError(err) && err.code === code;
}

test('keyTypeOf reads the type from the wire blob', () => {
  assert.equal(keyTypeOf(alphaEd), 'ssh-ed25519');
  assert.equal(keyTypeOf(alphaEcdsa), 'ecdsa-sha2-nistp256');
  assert.equal(keyTypeOf(alphaRsa), 'ssh-rsa');
  assert.throws(() => keyTypeOf(Buffer.from('garbage')), assertCode('INTERNAL'));
  assert.throws(() => keyTypeOf(Buffer.alloc(0)), assertCode('INTERNAL'));
});

test('fingerprintSha256 equals what ssh-keygen -lf printed', () => {
  const lines = readFileSync(join(FIXTURES, 'fingerprints.txt'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 7);
  for (const line of lines) {
    const [name, , printed] = line.split(' ');
    assert.ok(name && printed?.startsWith('SHA256:'), line);
    assert.equal(fingerprintSha256(pub(name)), printed, name);
  }
});

test('hostPattern: plain on port 22, bracketed otherwise, lowercased', () => {
  assert.equal(hostPattern('alpha.lab', 22), 'alpha.lab');
  assert.equal(hostPattern('10.0.0.1', 2222), '[10.0.0.1]:2222');
  assert.equal(hostPattern('Alpha.LAB', 2222), '[alpha.lab]:2222');
  assert.equal(hostPattern('fe80::1', 22), 'fe80::1');
});

test('plain entry matches, by name and by the second name of the line', async () => {
  assert.deepEqual(await checkHostKey({ host: 'alpha.lab', port: 22, key: alphaEd, files: [PLAIN] }), {
    status: 'match',
    file: PLAIN,
    line: 3,
  });
  assert.deepEqual(await checkHostKey({ host: '10.0.0.10', port: 22, key: alphaEd, files: [PLAIN] }), {
    status: 'match',
    file: PLAIN,
    line: 3,
  });
  const ecdsa = await checkHostKey({ host: 'alpha.lab', port: 22, key: alphaEcdsa, files: [PLAIN] });
  assert.deepEqual(ecdsa, { status: 'match', file: PLAIN, line: 4 });
});

test('names compare case-insensitively on both sides', async () => {
  const upper = await checkHostKey({ host: 'ALPHA.Lab', port: 22, key: alphaEd, files: [PLAIN] });
  assert.equal(upper.status, 'match');
  const mixed = await checkHostKey({ host: 'mixedcase.lab', port: 22, key: alphaEd, files: [PLAIN] });
  assert.deepEqual(mixed, { status: 'match', file: PLAIN, line: 9 });
});

test('[host]:port entries are distinct from port 22 entries', async () => {
  const on2222 = await checkHostKey({ host: 'alpha.lab', port: 2222, key: betaEd, files: [PLAIN] });
  assert.deepEqual(on2222, { status: 'match', file: PLAIN, line: 5 });

  // The port-22 key is not accepted on 2222, and the 2222 key not on 22.
  const wrongPort = await checkHostKey({ host: 'alpha.lab', port: 2222, key: alphaEd, files: [PLAIN] });
  assert.equal(wrongPort.status, 'mismatch');
  assert.deepEqual(wrongPort.status === 'mismatch' && wrongPort.knownKeys.map((k) => k.line), [5]);
  const on22 = await checkHostKey({ host: 'alpha.lab', port: 22, key: betaEd, files: [PLAIN] });
  assert.equal(on22.status, 'mismatch');
  assert.deepEqual(on22.status === 'mismatch' && on22.knownKeys.map((k) => k.line), [3]);

  const otherPort = await checkHostKey({ host: 'alpha.lab', port: 2200, key: betaEd, files: [PLAIN] });
  assert.deepEqual(otherPort, { status: 'unknown', otherTypesKnown: [], certAuthorityOnly: false });
});

test('lines hashed by ssh-keygen -H match every name they came from', async () => {
  const text = await readFile(HASHED, 'utf8');
  assert.ok(!text.includes('alpha.lab') && !text.includes('10.0.0.10'), 'fixture must really be hashed');

  const cases: Array<[string, number, Buffer, number]> = [
    ['alpha.lab', 22, alphaEd, 1],
    ['10.0.0.10', 22, alphaEd, 2],
    ['alpha.lab', 2222, betaEd, 3],
    ['RSAONLY.lab', 22, alphaRsa, 4],
    ['x.wild.lab', 22, alphaEd, 5],
  ];
  for (const [host, port, key, line] of cases) {
    assert.deepEqual(await checkHostKey({ host, port, key, files: [HASHED] }), { status: 'match', file: HASHED, line }, host);
  }
  const changed = await checkHostKey({ host: 'alpha.lab', port: 22, key: otherEd, files: [HASHED] });
  assert.equal(changed.status, 'mismatch');
  assert.deepEqual(changed.status === 'mismatch' && changed.knownKeys.map((k) => k.line), [1]);
  const stranger = await checkHostKey({ host: 'beta.lab', port: 22, key: alphaEd, files: [HASHED] });
  assert.equal(stranger.status, 'unknown');
});

test('host lookup agrees with ssh-keygen -F on the hashed fixture', { skip: !hasSshKeygen && 'ssh-keygen not installed' }, async () => {
  const names = ['alpha.lab', '10.0.0.10', '[alpha.lab]:2222', '[10.0.0.10]:2222', 'rsaonly.lab', 'x.wild.lab', 'secret.wild.lab', 'beta.lab'];
  for (const name of names) {
    const run = spawnSync('ssh-keygen', ['-F', name, '-f', HASHED], { encoding: 'utf8' });
    const theirs = [...run.stdout.matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]));
    const bracketed = /^\[(.*)\]:(\d+)$/.exec(name);
    const [host, port] = bracketed ? [bracketed[1] ?? '', Number(bracketed[2])] : [name, 22];
    // No ECDSA key is in the file, so every line naming the host is reported as another known type.
    const verdict = await checkHostKey({ host, port, key: alphaEcdsa, files: [HASHED] });
    assert.equal(verdict.status, 'unknown', name);
    const ours = verdict.status === 'unknown' ? verdict.otherTypesKnown.map((k) => k.line) : [];
    assert.deepEqual(ours, theirs, name);
  }
});

test('wildcards and negation', async () => {
  const wild = await checkHostKey({ host: 'node7.wild.lab', port: 22, key: alphaEd, files: [PLAIN] });
  assert.deepEqual(wild, { status: 'match', file: PLAIN, line: 6 });
  // `!secret.wild.lab` vetoes the line although `*.wild.lab` matches too.
  const negated = await checkHostKey({ host: 'secret.wild.lab', port: 22, key: alphaEd, files: [PLAIN] });
  assert.deepEqual(negated, { status: 'unknown', otherTypesKnown: [], certAuthorityOnly: false });
  // Wildcards do not reach across the port: `*.wild.lab` is not `[x.wild.lab]:2222`.
  const port = await checkHostKey({ host: 'node7.wild.lab', port: 2222, key: alphaEd, files: [PLAIN] });
  assert.equal(port.status, 'unknown');

  const question = await checkHostKey({ host: 'web1.lab', port: 22, key: alphaRsa, files: [PLAIN] });
  assert.deepEqual(question, { status: 'match', file: PLAIN, line: 7 });
  const tooLong = await checkHostKey({ host: 'web12.lab', port: 22, key: alphaRsa, files: [PLAIN] });
  assert.equal(tooLong.status, 'unknown');
});

test('same key type with another key is a mismatch listing the known keys', async () => {
  const verdict = await checkHostKey({ host: 'alpha.lab', port: 22, key: otherEd, files: [PLAIN] });
  assert.deepEqual(verdict, {
    status: 'mismatch',
    knownKeys: [{ file: PLAIN, line: 3, type: 'ssh-ed25519', fingerprint: fingerprintSha256(alphaEd) }],
  });
});

test('only other key types known is unknown, with those types listed', async () => {
  const verdict = await checkHostKey({ host: 'rsaonly.lab', port: 22, key: alphaEd, files: [PLAIN] });
  assert.deepEqual(verdict, {
    status: 'unknown',
    otherTypesKnown: [{ file: PLAIN, line: 8, type: 'ssh-rsa', fingerprint: fingerprintSha256(alphaRsa) }],
    certAuthorityOnly: false,
  });
});

test('a @revoked key is refused for any host, even when listed as good elsewhere', async () => {
  const anyHost = await checkHostKey({ host: 'anything.example', port: 22, key: revokedEd, files: [PLAIN] });
  assert.deepEqual(anyHost, { status: 'revoked', file: PLAIN, line: 11 });
  // known_hosts.global lists it as compromised.lab's plain key; the revocation in the other file wins.
  const listed = await checkHostKey({ host: 'compromised.lab', port: 22, key: revokedEd, files: [GLOBAL, PLAIN] });
  assert.deepEqual(listed, { status: 'revoked', file: PLAIN, line: 11 });
});

test('@cert-authority lines never match a plain key', async () => {
  const verdict = await checkHostKey({ host: 'node1.certs.lab', port: 22, key: alphaEd, files: [PLAIN] });
  assert.deepEqual(verdict, { status: 'unknown', otherTypesKnown: [], certAuthorityOnly: true });
  // Not even the CA's own key, presented as a plain host key.
  const caItself = await checkHostKey({ host: 'node1.certs.lab', port: 22, key: caEd, files: [PLAIN] });
  assert.deepEqual(caItself, { status: 'unknown', otherTypesKnown: [], certAuthorityOnly: true });
  assert.deepEqual(await knownKeyTypes({ host: 'node1.certs.lab', port: 22, files: [PLAIN] }), []);
  // With a plain key of another type also listed, the host is not "certificates only".
  const mixed = await checkHostKey({ host: 'mixed.certs.lab', port: 22, key: alphaEd, files: [PLAIN] });
  assert.deepEqual(mixed, {
    status: 'unknown',
    otherTypesKnown: [{ file: PLAIN, line: 12, type: 'ssh-rsa', fingerprint: fingerprintSha256(alphaRsa) }],
    certAuthorityOnly: false,
  });
});

test('missing files are skipped', async (t) => {
  const dir = await tempDir(t);
  const missing = join(dir, 'nope', 'known_hosts');
  const none = await checkHostKey({ host: 'alpha.lab', port: 22, key: alphaEd, files: [missing] });
  assert.deepEqual(none, { status: 'unknown', otherTypesKnown: [], certAuthorityOnly: false });
  const some = await checkHostKey({ host: 'alpha.lab', port: 22, key: alphaEd, files: [missing, '~/vmdesk-no-such-file', PLAIN] });
  assert.deepEqual(some, { status: 'match', file: PLAIN, line: 3 });
  assert.deepEqual(await checkHostKey({ host: 'alpha.lab', port: 22, key: alphaEd, files: [] }), none);
});

test('several files: a match in any file wins over a mismatch in another', async () => {
  const files = [PLAIN, GLOBAL];
  assert.deepEqual(await checkHostKey({ host: 'alpha.lab', port: 22, key: alphaEd, files }), { status: 'match', file: PLAIN, line: 3 });
  assert.deepEqual(await checkHostKey({ host: 'alpha.lab', port: 22, key: otherEd, files }), { status: 'match', file: GLOBAL, line: 2 });
  assert.deepEqual(await checkHostKey({ host: 'gamma.lab', port: 22, key: betaEd, files }), { status: 'match', file: GLOBAL, line: 1 });

  const changed = await checkHostKey({ host: 'alpha.lab', port: 22, key: betaEd, files });
  assert.equal(changed.status, 'mismatch');
  assert.deepEqual(
    changed.status === 'mismatch' && changed.knownKeys.map((k) => [k.file, k.line, k.fingerprint]),
    [
      [PLAIN, 3, fingerprintSha256(alphaEd)],
      [GLOBAL, 2, fingerprintSha256(otherEd)],
    ],
  );
});

test('malformed lines are skipped without throwing', async () => {
  assert.deepEqual(await checkHostKey({ host: 'broken.lab', port: 22, key: alphaEd, files: [MALFORMED] }), {
    status: 'match',
    file: MALFORMED,
    line: 14,
  });
  assert.deepEqual(await checkHostKey({ host: 'crlf.lab', port: 22, key: alphaRsa, files: [MALFORMED] }), {
    status: 'match',
    file: MALFORMED,
    line: 15,
  });
  // Only the well-formed line counts as knowledge about broken.lab.
  const changed = await checkHostKey({ host: 'broken.lab', port: 22, key: otherEd, files: [MALFORMED] });
  assert.deepEqual(changed.status === 'mismatch' && changed.knownKeys.map((k) => k.line), [14]);
  assert.deepEqual(await knownKeyTypes({ host: 'broken.lab', port: 22, files: [MALFORMED] }), ['ssh-ed25519']);
});

test('a directory given as a known_hosts file is skipped', async () => {
  const verdict = await checkHostKey({ host: 'alpha.lab', port: 22, key: alphaEd, files: [FIXTURES, PLAIN] });
  assert.equal(verdict.status, 'match');
});

test('knownKeyTypes lists plain key types in file order, once each', async () => {
  assert.deepEqual(await knownKeyTypes({ host: 'alpha.lab', port: 22, files: [PLAIN, GLOBAL] }), ['ssh-ed25519', 'ecdsa-sha2-nistp256']);
  assert.deepEqual(await knownKeyTypes({ host: 'alpha.lab', port: 2222, files: [PLAIN] }), ['ssh-ed25519']);
  assert.deepEqual(await knownKeyTypes({ host: 'rsaonly.lab', port: 22, files: [HASHED] }), ['ssh-rsa']);
  assert.deepEqual(await knownKeyTypes({ host: 'nowhere.lab', port: 22, files: [PLAIN] }), []);
});

test('knownHostsLine round trip, plain and hashed', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'known_hosts');
  const plain = knownHostsLine('New.Lab', 2222, alphaEd);
  assert.equal(plain, `[new.lab]:2222 ssh-ed25519 ${alphaEd.toString('base64')}`);
  const hashed = knownHostsLine('hashed.lab', 22, alphaRsa, { hash: true });
  assert.match(hashed, /^\|1\|[A-Za-z0-9+/]{27}=\|[A-Za-z0-9+/]{27}= ssh-rsa AAAA\S+$/);
  assert.ok(!hashed.includes('hashed.lab'));
  assert.notEqual(knownHostsLine('hashed.lab', 22, alphaRsa, { hash: true }), hashed, 'each hash gets a fresh salt');

  await appendKnownHost(file, plain);
  await appendKnownHost(file, hashed);
  assert.deepEqual(await checkHostKey({ host: 'new.lab', port: 2222, key: alphaEd, files: [file] }), { status: 'match', file, line: 1 });
  assert.deepEqual(await checkHostKey({ host: 'hashed.lab', port: 22, key: alphaRsa, files: [file] }), { status: 'match', file, line: 2 });
  assert.equal((await checkHostKey({ host: 'hashed.lab', port: 2222, key: alphaRsa, files: [file] })).status, 'unknown');

  assert.throws(() => knownHostsLine('*', 22, alphaEd), assertCode('SSH_CONFIG_INVALID'));
  assert.throws(() => knownHostsLine('a.lab,b.lab', 22, alphaEd), assertCode('SSH_CONFIG_INVALID'));
  assert.throws(() => knownHostsLine('', 22, alphaEd), assertCode('SSH_CONFIG_INVALID'));
});

test('lines we write are found by ssh-keygen -F', { skip: !hasSshKeygen && 'ssh-keygen not installed' }, async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'known_hosts');
  await appendKnownHost(file, knownHostsLine('10.0.0.1', 2222, alphaEd, { hash: true }));
  await appendKnownHost(file, knownHostsLine('plain.lab', 22, alphaEcdsa));
  for (const [name, line] of [['[10.0.0.1]:2222', 1], ['plain.lab', 2]] as const) {
    const run = spawnSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' });
    assert.equal(run.status, 0, name);
    assert.match(run.stdout, new RegExp(`found: line ${line}\\b`), name);
  }
});

test('appendKnownHost creates the folder 0700 and the file 0600', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'deep', '.ssh', 'known_hosts');
  await appendKnownHost(file, 'a.lab ssh-ed25519 AAAA');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'deep', '.ssh'))).mode & 0o777, 0o700);
  assert.equal(await readFile(file, 'utf8'), 'a.lab ssh-ed25519 AAAA\n');
});

test('appendKnownHost adds the newline the previous content lacks, and only then', async (t) => {
  const dir = await tempDir(t);
  const unterminated = join(dir, 'unterminated');
  await writeFile(unterminated, 'old.lab ssh-ed25519 AAAA');
  await appendKnownHost(unterminated, 'new.lab ssh-ed25519 BBBB');
  assert.equal(await readFile(unterminated, 'utf8'), 'old.lab ssh-ed25519 AAAA\nnew.lab ssh-ed25519 BBBB\n');

  const terminated = join(dir, 'terminated');
  await writeFile(terminated, 'old.lab ssh-ed25519 AAAA\n');
  await appendKnownHost(terminated, 'new.lab ssh-ed25519 BBBB\n');
  assert.equal(await readFile(terminated, 'utf8'), 'old.lab ssh-ed25519 AAAA\nnew.lab ssh-ed25519 BBBB\n');

  const empty = join(dir, 'empty');
  await writeFile(empty, '');
  await appendKnownHost(empty, 'new.lab ssh-ed25519 BBBB');
  assert.equal(await readFile(empty, 'utf8'), 'new.lab ssh-ed25519 BBBB\n');

  await assert.rejects(appendKnownHost(empty, 'a.lab ssh-ed25519 AAAA\n* ssh-ed25519 BBBB'), assertCode('INTERNAL'));
  assert.equal(await readFile(empty, 'utf8'), 'new.lab ssh-ed25519 BBBB\n');
});

test('~ in paths is the home directory', async (t) => {
  const home = await tempDir(t);
  const saved = process.env.HOME;
  process.env.HOME = home;
  t.after(() => {
    process.env.HOME = saved;
  });
  assert.equal(homedir(), home);
  await appendKnownHost('~/.ssh/known_hosts', knownHostsLine('tilde.lab', 22, alphaEd));
  assert.equal((await stat(join(home, '.ssh', 'known_hosts'))).mode & 0o777, 0o600);
  const verdict = await checkHostKey({ host: 'tilde.lab', port: 22, key: alphaEd, files: ['~/.ssh/known_hosts'] });
  assert.deepEqual(verdict, { status: 'match', file: join(home, '.ssh', 'known_hosts'), line: 1 });
});

test('removeCommand quotes for the shell and shortens the home directory', () => {
  const userFile = join(homedir(), '.ssh', 'known_hosts');
  assert.equal(removeCommand('10.0.0.1', 2222, userFile), `ssh-keygen -R '[10.0.0.1]:2222' -f ~/.ssh/known_hosts`);
  assert.equal(removeCommand('Alpha.lab', 22, '~/.ssh/known_hosts'), 'ssh-keygen -R alpha.lab -f ~/.ssh/known_hosts');
  assert.equal(removeCommand('alpha.lab', 22, "/srv/it's hosts"), `ssh-keygen -R alpha.lab -f '/srv/it'\\''s hosts'`);
});

test('removeCommand output really removes the entry', { skip: !hasSshKeygen && 'ssh-keygen not installed' }, async (t) => {
  const home = await tempDir(t);
  const saved = process.env.HOME;
  process.env.HOME = home;
  t.after(() => {
    process.env.HOME = saved;
  });
  const file = join(home, 'my hosts', 'known_hosts');
  await appendKnownHost(file, knownHostsLine('10.0.0.1', 2222, alphaEd, { hash: true }));
  await appendKnownHost(file, knownHostsLine('keep.lab', 22, alphaEd));
  const command = removeCommand('10.0.0.1', 2222, file);
  assert.equal(command, `ssh-keygen -R '[10.0.0.1]:2222' -f ~/'my hosts/known_hosts'`);
  const run = spawnSync('sh', ['-c', command], { encoding: 'utf8', env: { ...process.env, HOME: home } });
  assert.equal(run.status, 0, run.stderr);
  assert.equal((await checkHostKey({ host: '10.0.0.1', port: 2222, key: alphaEd, files: [file] })).status, 'unknown');
  assert.equal((await checkHostKey({ host: 'keep.lab', port: 22, key: alphaEd, files: [file] })).status, 'match');
});

test('a 10k-line hashed file is scanned to its last line', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'known_hosts');
  const lines: string[] = [];
  for (let i = 0; i < 10_000; i++) lines.push(knownHostsLine(`host${i}.lab`, 22, i % 2 ? alphaEd : alphaRsa, { hash: true }));
  lines.push(knownHostsLine('last.lab', 22, betaEd, { hash: true }));
  await mkdir(dir, { recursive: true });
  await writeFile(file, `${lines.join('\n')}\n`);
  assert.deepEqual(await checkHostKey({ host: 'last.lab', port: 22, key: betaEd, files: [file] }), { status: 'match', file, line: 10_001 });
  assert.deepEqual(await checkHostKey({ host: 'host9999.lab', port: 22, key: alphaEd, files: [file] }), { status: 'match', file, line: 10_000 });
});
