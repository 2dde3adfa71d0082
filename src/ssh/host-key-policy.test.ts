/**
 * The verifier against ssh_config host-key options as the installed `ssh -G` resolves them:
 * each test writes a config, resolves it with the real OpenSSH, and feeds fixture keys made by
 * ssh-keygen (fixtures/known-hosts/generate.sh) to verifyHostKey. No sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { verifyHostKey } from './host-key-policy.js';
import { checkHostKey } from './known-hosts.js';
import type { Prompter } from './prompter.js';
import { resolveHost } from './ssh-config.js';
import type { HopSpec } from './types.js';
import { NO_SSH } from '../../test/openssh-client.js';

const KEYS = fileURLToPath(new URL('../../fixtures/known-hosts/keys/', import.meta.url));
const REVOKED = fileURLToPath(new URL('../../fixtures/revoked-keys/', import.meta.url));

function pubLine(name: string): string {
  return readFileSync(join(KEYS, `${name}.pub`), 'utf8').split(' ').slice(0, 2).join(' ');
}
function pub(name: string): Buffer {
  return Buffer.from(pubLine(name).split(' ')[1] ?? '', 'base64');
}
const alphaEd = pub('alpha-ed25519');
const otherEd = pub('other-ed25519');


const tmp = mkdtempSync(join(tmpdir(), 'vmdesk-host-key-policy-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let count = 0;

/** A fresh folder with an ssh_config holding `options` for Host `h` (before its default HostName); `%T` is that folder. */
function setup(options: string, files: Record<string, string> = {}): { dir: string; hop: () => Promise<HopSpec> } {
  const dir = join(tmp, `case-${++count}`);
  execFileSync('mkdir', ['-p', dir]);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const config = join(dir, 'config');
  const body = options.replaceAll('%T', dir);
  // Defaults kept inside the folder, so nothing reads the real ~/.ssh or /etc/ssh.
  writeFileSync(config, `Host h\n${body}\n  HostName host.lab\nHost *\n  UserKnownHostsFile ${dir}/known_hosts\n  GlobalKnownHostsFile ${dir}/global_known_hosts\n`);
  return {
    dir,
    hop: async () => ({ label: 'h', host: await resolveHost('h', { configFile: config }), transport: { kind: 'tcp' } }),
  };
}

function read(dir: string, name: string): string {
  try {
    return readFileSync(join(dir, name), 'utf8');
  } catch {
    return '';
  }
}

function answering(answer: string): Prompter & { asked: string[] } {
  const asked: string[] = [];
  return { asked, ask: async (q) => (asked.push(q), answer) };
}

const verify = (key: Buffer, hop: HopSpec, extra: { prompter?: Prompter; acceptNew?: boolean; remoteAddress?: string } = {}) =>
  verifyHostKey(key, { hop, hopIndex: 0, prompter: extra.prompter, acceptNew: extra.acceptNew ?? false, remoteAddress: extra.remoteAddress });

test('UserKnownHostsFile: several files, the key found in the second; nothing is written', { skip: NO_SSH }, async () => {
  const c = setup('  UserKnownHostsFile %T/first %T/second\n  StrictHostKeyChecking yes', { second: `host.lab ${pubLine('alpha-ed25519')}\n` });
  assert.equal(await verify(alphaEd, await c.hop()), null);
  assert.equal(read(c.dir, 'first'), '');
});

test('UserKnownHostsFile with ~ and %-tokens, expanded by ssh -G, is where the key is looked up', { skip: NO_SSH }, async () => {
  // %h %p %r %k as ssh(1) expands them; the tests run as the user who owns the home directory.
  const c = setup('  User kh\n  Port 2022\n  UserKnownHostsFile %T/kh-%h-%p-%r-%k');
  const hop = await c.hop();
  assert.deepEqual(hop.host.userKnownHostsFiles, [join(c.dir, 'kh-host.lab-2022-kh-h')]);
  writeFileSync(join(c.dir, 'kh-host.lab-2022-kh-h'), `[host.lab]:2022 ${pubLine('alpha-ed25519')}\n`);
  assert.equal(await verify(alphaEd, hop), null);
});

test('GlobalKnownHostsFile is read, never written; accept-new records to the FIRST user file', { skip: NO_SSH }, async () => {
  const c = setup('  UserKnownHostsFile %T/first %T/second\n  GlobalKnownHostsFile %T/global1 %T/global2\n  StrictHostKeyChecking accept-new', {
    global2: `host.lab ${pubLine('alpha-ed25519')}\n`,
  });
  const hop = await c.hop();
  assert.equal(await verify(alphaEd, hop), null);
  assert.equal(read(c.dir, 'first') + read(c.dir, 'second') + read(c.dir, 'global1'), '', 'a key known from a global file is not recorded again');
  // A key of another host: recorded in `first` only, and found there afterwards.
  const other = { ...hop, host: { ...hop.host, hostName: 'new.lab' } };
  assert.equal(await verify(otherEd, other), null);
  assert.equal(read(c.dir, 'first'), `new.lab ${pubLine('other-ed25519')}\n`);
  assert.equal(read(c.dir, 'second'), '');
  assert.equal((await checkHostKey({ host: 'new.lab', port: 22, key: otherEd, files: [join(c.dir, 'first')] })).status, 'match');
});

test('a changed key is refused whatever StrictHostKeyChecking says (no override, unlike ssh(1) with no/off)', { skip: NO_SSH }, async () => {
  for (const value of ['yes', 'ask', 'accept-new', 'no', 'off']) {
    const c = setup(`  StrictHostKeyChecking ${value}`, { known_hosts: `host.lab ${pubLine('alpha-ed25519')}\n` });
    const err = await verify(otherEd, await c.hop(), { prompter: answering('yes'), acceptNew: value === 'accept-new' });
    assert.equal(err?.code, 'SSH_HOST_KEY_MISMATCH', value);
    assert.equal(read(c.dir, 'known_hosts'), `host.lab ${pubLine('alpha-ed25519')}\n`, `${value}: known_hosts untouched`);
  }
});

test('StrictHostKeyChecking for an unknown key: yes refuses, ask asks, accept-new/no/off record', { skip: NO_SSH }, async () => {
  const outcomes: Record<string, string> = {};
  for (const value of ['yes', 'true', 'ask', 'accept-new', 'no', 'off', 'false']) {
    const c = setup(`  StrictHostKeyChecking ${value}`);
    const err = await verify(alphaEd, await c.hop());
    outcomes[value] = `${err?.code ?? 'accepted'}${read(c.dir, 'known_hosts') === `host.lab ${pubLine('alpha-ed25519')}\n` ? '+recorded' : ''}`;
  }
  assert.deepEqual(outcomes, {
    yes: 'SSH_HOST_KEY_UNKNOWN',
    true: 'SSH_HOST_KEY_UNKNOWN',
    ask: 'SSH_HOST_KEY_UNKNOWN', // no terminal to ask on
    'accept-new': 'accepted+recorded',
    no: 'accepted+recorded',
    off: 'accepted+recorded',
    false: 'accepted+recorded',
  });
  const ask = setup('  StrictHostKeyChecking ask');
  const yes = answering('yes');
  assert.equal(await verify(alphaEd, await ask.hop(), { prompter: yes }), null);
  assert.equal(yes.asked.length, 1);
  assert.equal(read(ask.dir, 'known_hosts'), `host.lab ${pubLine('alpha-ed25519')}\n`);
  const refuse = setup('  StrictHostKeyChecking ask');
  assert.equal((await verify(alphaEd, await refuse.hop(), { prompter: answering('no') }))?.code, 'SSH_HOST_KEY_UNKNOWN');
  assert.equal(read(refuse.dir, 'known_hosts'), '');
});

test('HostKeyAlias: looked up and recorded under the (lowercased) alias, without the port', { skip: NO_SSH }, async () => {
  const c = setup('  Port 2200\n  HostKeyAlias Console-Key\n  StrictHostKeyChecking accept-new', { known_hosts: `console-key ${pubLine('alpha-ed25519')}\n` });
  const hop = await c.hop();
  assert.equal(hop.host.hostKeyAlias, 'console-key');
  assert.equal(await verify(alphaEd, hop), null);
  // The host's own name and port do not vouch for it: the alias line is the only one consulted.
  const d = setup('  Port 2200\n  HostKeyAlias other-alias\n  StrictHostKeyChecking yes', { known_hosts: `[host.lab]:2200 ${pubLine('alpha-ed25519')}\n` });
  assert.equal((await verify(alphaEd, await d.hop()))?.code, 'SSH_HOST_KEY_UNKNOWN');
  const e = setup('  Port 2200\n  HostKeyAlias fresh-alias\n  StrictHostKeyChecking accept-new');
  assert.equal(await verify(alphaEd, await e.hop()), null);
  assert.equal(read(e.dir, 'known_hosts'), `fresh-alias ${pubLine('alpha-ed25519')}\n`);
});

test('CheckHostIP yes: the address is recorded beside a known host, and a different key for it refuses', { skip: NO_SSH }, async () => {
  const known = `host.lab ${pubLine('alpha-ed25519')}\n`;
  const c = setup('  CheckHostIP yes\n  StrictHostKeyChecking yes', { known_hosts: known });
  const hop = await c.hop();
  assert.equal(hop.host.checkHostIp, true);
  assert.equal(await verify(alphaEd, hop, { remoteAddress: '192.0.2.7' }), null);
  assert.equal(read(c.dir, 'known_hosts'), `${known}192.0.2.7 ${pubLine('alpha-ed25519')}\n`);

  // The address holds another key of the same type: DNS spoofing in ssh(1)'s words.
  for (const [value, expected] of [['yes', 'SSH_HOST_KEY_MISMATCH'], ['accept-new', 'SSH_HOST_KEY_MISMATCH'], ['ask', 'SSH_HOST_KEY_MISMATCH'], ['no', null]] as const) {
    const d = setup(`  CheckHostIP yes\n  StrictHostKeyChecking ${value}`, { known_hosts: `${known}192.0.2.7 ${pubLine('other-ed25519')}\n` });
    const err = await verify(alphaEd, await d.hop(), { remoteAddress: '192.0.2.7' });
    assert.equal(err?.code ?? null, expected, value);
  }
  const asked = setup('  CheckHostIP yes\n  StrictHostKeyChecking ask', { known_hosts: `${known}192.0.2.7 ${pubLine('other-ed25519')}\n` });
  const prompter = answering('yes');
  assert.equal(await verify(alphaEd, await asked.hop(), { remoteAddress: '192.0.2.7', prompter }), null);
  assert.match(prompter.asked[0] ?? '', /192\.0\.2\.7/);
});

test('CheckHostIP: skipped when off, over loopback, without a TCP address, or when HostName is the address', { skip: NO_SSH }, async () => {
  const known = `host.lab ${pubLine('alpha-ed25519')}\n`;
  const conflicting = `${known}192.0.2.7 ${pubLine('other-ed25519')}\n127.0.0.1 ${pubLine('other-ed25519')}\n`;
  const off = setup('  CheckHostIP no', { known_hosts: conflicting });
  assert.equal(await verify(alphaEd, await off.hop(), { remoteAddress: '192.0.2.7' }), null);
  const on = setup('  CheckHostIP yes', { known_hosts: conflicting });
  assert.equal(await verify(alphaEd, await on.hop(), { remoteAddress: '127.0.0.1' }), null);
  assert.equal(await verify(alphaEd, await on.hop()), null);
  assert.equal(read(on.dir, 'known_hosts'), conflicting, 'nothing recorded when the check is skipped');
  const literal = setup('  HostName 192.0.2.7\n  CheckHostIP yes', { known_hosts: `192.0.2.7 ${pubLine('alpha-ed25519')}\n` });
  assert.equal(await verify(alphaEd, await literal.hop(), { remoteAddress: '192.0.2.7' }), null);
  assert.equal(read(literal.dir, 'known_hosts'), `192.0.2.7 ${pubLine('alpha-ed25519')}\n`);
});

test('CheckHostIP with a new host: one `host,ip` line, or two hashed lines with HashKnownHosts', { skip: NO_SSH }, async () => {
  const plain = setup('  Port 2200\n  CheckHostIP yes\n  StrictHostKeyChecking accept-new');
  assert.equal(await verify(alphaEd, await plain.hop(), { remoteAddress: '192.0.2.7' }), null);
  assert.equal(read(plain.dir, 'known_hosts'), `[host.lab]:2200,[192.0.2.7]:2200 ${pubLine('alpha-ed25519')}\n`);
  const hashed = setup('  CheckHostIP yes\n  HashKnownHosts yes\n  StrictHostKeyChecking accept-new');
  assert.equal(await verify(alphaEd, await hashed.hop(), { remoteAddress: '192.0.2.7' }), null);
  const lines = read(hashed.dir, 'known_hosts').trim().split('\n');
  assert.equal(lines.length, 2);
  assert.ok(lines.every((l) => l.startsWith('|1|')));
  const files = [join(hashed.dir, 'known_hosts')];
  assert.equal((await checkHostKey({ host: 'host.lab', port: 22, key: alphaEd, files })).status, 'match');
  assert.equal((await checkHostKey({ host: '192.0.2.7', port: 22, key: alphaEd, files })).status, 'match');
});

test('RevokedHostKeys: a listed key is refused even when known_hosts trusts it and checking is off', { skip: NO_SSH }, async () => {
  const c = setup('  RevokedHostKeys %T/revoked\n  StrictHostKeyChecking off', {
    known_hosts: `host.lab ${pubLine('revoked-ed25519')}\n`,
    revoked: `# revoked\n${pubLine('revoked-ed25519')} old jump key\n`,
  });
  const hop = await c.hop();
  assert.deepEqual(hop.host.revokedHostKeys, [join(c.dir, 'revoked')]);
  const err = await verify(pub('revoked-ed25519'), hop, { prompter: answering('yes'), acceptNew: true });
  assert.equal(err?.code, 'SSH_HOST_KEY_REVOKED');
  assert.deepEqual([err?.context.file, err?.context.line, err?.context.hop], [join(c.dir, 'revoked'), 2, 'h']);
  // Another key of another host is unaffected.
  assert.equal(await verify(alphaEd, { ...hop, host: { ...hop.host, hostName: 'else.lab' } }), null);
});

test('RevokedHostKeys: a KRL from ssh-keygen -k revokes by explicit key and by fingerprint', { skip: NO_SSH }, async () => {
  const c = setup('  RevokedHostKeys %T/revoked.krl\n  StrictHostKeyChecking no');
  copyFileSync(join(REVOKED, 'mixed.krl'), join(c.dir, 'revoked.krl'));
  const hop = await c.hop();
  assert.equal((await verify(otherEd, hop))?.code, 'SSH_HOST_KEY_REVOKED');
  assert.equal((await verify(alphaEd, hop))?.code, 'SSH_HOST_KEY_REVOKED');
  assert.equal(await verify(pub('beta-ed25519'), hop), null);
});

test('RevokedHostKeys: a missing or malformed file refuses every key, as ssh(1) does', { skip: NO_SSH }, async () => {
  const missing = setup('  RevokedHostKeys %T/nope\n  StrictHostKeyChecking no');
  const err = await verify(alphaEd, await missing.hop());
  assert.equal(err?.code, 'SSH_REVOKED_KEYS_UNREADABLE');
  assert.equal(read(missing.dir, 'known_hosts'), '', 'nothing recorded');
  const malformed = setup('  RevokedHostKeys %T/revoked', { revoked: `host.lab ${pubLine('other-ed25519')}\n` });
  assert.equal((await verify(alphaEd, await malformed.hop()))?.code, 'SSH_REVOKED_KEYS_UNREADABLE');
  const none = setup('  RevokedHostKeys none\n  StrictHostKeyChecking no');
  assert.deepEqual((await none.hop()).host.revokedHostKeys, []);
});

test('known_hosts @revoked and RevokedHostKeys give the same code', { skip: NO_SSH }, async () => {
  const marked = setup('  StrictHostKeyChecking no', { known_hosts: `@revoked host.lab ${pubLine('revoked-ed25519')}\n` });
  const fromKnownHosts = await verify(pub('revoked-ed25519'), await marked.hop());
  const listed = setup('  RevokedHostKeys %T/revoked', { revoked: `${pubLine('revoked-ed25519')}\n` });
  const fromList = await verify(pub('revoked-ed25519'), await listed.hop());
  assert.equal(fromKnownHosts?.code, 'SSH_HOST_KEY_REVOKED');
  assert.equal(fromList?.code, 'SSH_HOST_KEY_REVOKED');
  assert.deepEqual([fromKnownHosts?.context.revokedBy, fromList?.context.revokedBy], ['known_hosts', 'RevokedHostKeys']);
});
